/**
 * recap: the CS231n image-captioning models (vanilla RNN and LSTM over image features)
 * with hand-written forward and backward passes, as a Deno library and command-line tool.
 *
 * @example Run one RNN step, as in the exercise
 * ```ts
 * import { rnnStepForward, Tensor } from "./mod.ts";
 * const [nextH] = rnnStepForward(
 *   Tensor.linspace(-0.4, 0.7, [3, 10]),
 *   Tensor.linspace(-0.2, 0.5, [3, 4]),
 *   Tensor.linspace(-0.1, 0.9, [10, 4]),
 *   Tensor.linspace(-0.3, 0.7, [4, 4]),
 *   Tensor.linspace(-0.2, 0.4, [4]),
 * );
 * console.log(nextH.shape); // [3, 4]
 * ```
 * @module
 */
export { allocArray, dtypeOf, shapeSize, Tensor } from "./layers/tensor.ts";
export type { ArrayOf, DType, FloatArray, FloatDType } from "./layers/tensor.ts";
export { Rng } from "./layers/random.ts";
export type { RngState } from "./layers/random.ts";
