/**
 * recap: the CS231n image-captioning models (vanilla RNN and LSTM over image features)
 * with hand-written forward and backward passes, as a Deno library and command-line tool.
 *
 * Every layer is a forward/backward pair with the exercise's argument order; forward
 * returns `[out, cache]`, backward returns the gradients by name.
 *
 * @example Check an RNN step's gradient the way the notebook does
 * ```ts
 * import {
 *   evalNumericalGradientArray, relError, rnnStepBackward, rnnStepForward, Tensor,
 * } from "./mod.ts";
 * const x = Tensor.randn([3, 10], 1), prevH = Tensor.randn([3, 4], 2);
 * const Wx = Tensor.randn([10, 4], 3), Wh = Tensor.randn([4, 4], 4), b = Tensor.randn([4], 5);
 * const [nextH, cache] = rnnStepForward(x, prevH, Wx, Wh, b);
 * const dnextH = Tensor.randn(nextH.shape, 6);
 * const { dx } = rnnStepBackward(dnextH, cache);
 * const numeric = evalNumericalGradientArray(() => rnnStepForward(x, prevH, Wx, Wh, b)[0], x, dnextH);
 * console.log(relError(numeric, dx)); // ~1e-10
 * ```
 * @module
 */
export { allocArray, allocFloat, dtypeOf, shapeSize, Tensor } from "./layers/tensor.ts";
export type { ArrayOf, DType, FloatArray, FloatDType } from "./layers/tensor.ts";
export { Rng } from "./layers/random.ts";
export type { RngState } from "./layers/random.ts";
export { sigmoid } from "./layers/activations.ts";
export type { Activation } from "./layers/activations.ts";
export { affineBackward, affineForward } from "./layers/affine.ts";
export type { AffineCache, AffineGrads } from "./layers/affine.ts";
export { rnnBackward, rnnForward, rnnStepBackward, rnnStepForward } from "./layers/rnn.ts";
export type { RnnCache, RnnGrads, RnnStepCache, RnnStepGrads } from "./layers/rnn.ts";
export { lstmBackward, lstmForward, lstmStepBackward, lstmStepForward } from "./layers/lstm.ts";
export type { LstmCache, LstmGrads, LstmStepCache, LstmStepGrads } from "./layers/lstm.ts";
export { wordEmbeddingBackward, wordEmbeddingForward } from "./layers/word_embedding.ts";
export type { WordEmbeddingCache, WordEmbeddingGrads } from "./layers/word_embedding.ts";
export { temporalAffineBackward, temporalAffineForward } from "./layers/temporal_affine.ts";
export type { TemporalAffineCache } from "./layers/temporal_affine.ts";
export { temporalSoftmaxLoss } from "./layers/temporal_softmax_loss.ts";
export {
  evalNumericalGradient,
  evalNumericalGradientArray,
  relError,
} from "./layers/gradient_check.ts";
export { kernels, setKernels } from "./layers/kernels/mod.ts";
export type { BackendName, Kernels } from "./layers/kernels/mod.ts";
export { InputError } from "./pipeline/errors.ts";
