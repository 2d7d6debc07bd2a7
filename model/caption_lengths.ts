/**
 * What both fused training steps need first from a batch of captions: every word and target
 * index checked (with the messages the layers give), and each caption's length — one past its
 * last target that is not `<NULL>` (0 when all are masked). Rows past a caption's length
 * contribute exactly nothing to the loss or any gradient, so the steps never compute them.
 *
 * Dimension legend: N captions, T + 1 caption length, V vocabulary.
 * @module
 */

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
 * import { captionLengths } from "./caption_lengths.ts";
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
