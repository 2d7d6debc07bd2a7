/**
 * What every model needs first from a batch of captions: its shapes checked, the words read and
 * the targets predicted with their mask (for the layer-composed references), every word and
 * target index checked (with the messages the layers give), and each caption's length — one
 * past its last target that is not `<NULL>` (0 when all are masked). Rows past a caption's
 * length contribute exactly nothing to the loss or any gradient, so the fused steps never
 * compute them.
 *
 * Dimension legend: N captions, T + 1 caption length, D image feature, V vocabulary.
 * @module
 */
import { type FloatDType, Tensor } from "../layers/tensor.ts";

/**
 * Checks the shapes of a batch: captions int32 (N, T + 1) with T ≥ 1, features (N, D).
 * @param features Image features.
 * @param captions Word indices.
 * @param inputDim D, the model's feature size.
 * @throws {RangeError} For another shape or dtype, naming what was expected.
 *
 * @example
 * ```ts
 * import { Tensor } from "../layers/tensor.ts";
 * import { checkBatch } from "./captions.ts";
 * checkBatch(Tensor.zeros([2, 4]), Tensor.zeros([2, 17], "int32"), 4); // fine
 * ```
 */
export function checkBatch(
  features: Tensor<FloatDType>,
  captions: Tensor<"int32">,
  inputDim: number,
): void {
  const [n, t1] = captions.shape;
  if (captions.dtype !== "int32" || captions.shape.length !== 2 || t1 < 2) {
    throw new RangeError(
      `Invalid captions: expected int32 (N, T+1) with T >= 1, got ${captions.dtype} [${captions.shape}]`,
    );
  }
  if (features.shape.length !== 2 || features.shape[0] !== n || features.shape[1] !== inputDim) {
    throw new RangeError(`Invalid features: expected [${n}, ${inputDim}], got [${features.shape}]`);
  }
}

/**
 * The exercise's split of a batch: captions_in = captions[:, :-1] (read), captions_out =
 * captions[:, 1:] (predicted), mask = captions_out != `<NULL>`.
 * @param captions Word indices, (N, T + 1).
 * @param nullIdx The index of `<NULL>`.
 * @returns `{ capIn, capOut, mask }`, (N, T) int32 each.
 *
 * @example
 * ```ts
 * import { Tensor } from "../layers/tensor.ts";
 * import { splitCaptions } from "./captions.ts";
 * const { capIn, mask } = splitCaptions(Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32"), 0);
 * console.log(capIn.data, mask.data); // [1, 3, 2] [1, 1, 0]
 * ```
 */
export function splitCaptions(
  captions: Tensor<"int32">,
  nullIdx: number,
): { capIn: Tensor<"int32">; capOut: Tensor<"int32">; mask: Tensor<"int32"> } {
  const [n, t1] = captions.shape, t = t1 - 1;
  const capIn = Tensor.zeros([n, t], "int32"), capOut = Tensor.zeros([n, t], "int32");
  const mask = Tensor.zeros([n, t], "int32");
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < t; s++) {
      capIn.data[i * t + s] = captions.data[i * t1 + s];
      const target = captions.data[i * t1 + s + 1];
      capOut.data[i * t + s] = target;
      mask.data[i * t + s] = target !== nullIdx ? 1 : 0;
    }
  }
  return { capIn, capOut, mask };
}

/**
 * Checks a batch's indices and writes each caption's length.
 * @param captions Word indices, (N, T + 1), row-major.
 * @param n N.
 * @param t1 T + 1.
 * @param vocabSize V.
 * @param nullIdx The index of `<NULL>`, whose targets are masked out.
 * @param len Where the lengths go, (N,).
 * @throws {RangeError} For a word (words first, as the layers meet them) or a target outside
 * [0, V), naming its position in the (N, T) inputs or targets.
 *
 * @example
 * ```ts
 * import { captionLengths } from "./captions.ts";
 * const len = new Int32Array(2);
 * captionLengths(new Int32Array([1, 3, 2, 0, 1, 0, 0, 0]), 2, 4, 4, 0, len);
 * console.log(len); // [2, 0]: <START> → cat → <END>, and a caption of padding only
 * ```
 */
export function captionLengths(
  captions: Int32Array,
  n: number,
  t1: number,
  vocabSize: number,
  nullIdx: number,
  len: Int32Array,
): void {
  const t = t1 - 1;
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < t; s++) {
      const word = captions[i * t1 + s];
      if (word < 0 || word >= vocabSize) {
        throw new RangeError(
          `Invalid word index ${word} at position ${i * t + s}: expected 0 <= index < ${vocabSize}`,
        );
      }
    }
  }
  for (let i = 0; i < n; i++) {
    len[i] = 0;
    for (let s = 0; s < t; s++) {
      const target = captions[i * t1 + s + 1];
      if (target === nullIdx) continue;
      if (target < 0 || target >= vocabSize) {
        throw new RangeError(
          `Invalid target index ${target} at position ${
            i * t + s
          }: expected 0 <= index < ${vocabSize}`,
        );
      }
      len[i] = s + 1;
    }
  }
}
