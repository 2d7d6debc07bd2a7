/**
 * Turning word indices back into text, as the exercise's `decode_captions`.
 * @module
 */
import type { DType, Tensor } from "../layers/tensor.ts";

/**
 * Decodes captions to strings: words joined by spaces, `<NULL>` dropped, stopping after
 * the first `<END>` (which is kept, as in the exercise).
 * @param captions Word indices, (N, T) — or (T,) for one caption.
 * @param idxToWord The vocabulary: index → word.
 * @returns One string per caption (one string in the array for a 1-d input).
 *
 * @example
 * ```ts
 * import { decodeCaptions, Tensor } from "../mod.ts";
 * const idxToWord = ["<NULL>", "<START>", "<END>", "a", "cat"];
 * console.log(decodeCaptions(Tensor.fromValues([1, 3, 4, 2, 0], [1, 5], "int32"), idxToWord));
 * // ["<START> a cat <END>"]
 * ```
 */
export function decodeCaptions(captions: Tensor<DType>, idxToWord: readonly string[]): string[] {
  const single = captions.shape.length === 1;
  const t = captions.shape[captions.shape.length - 1];
  const n = single ? 1 : captions.shape[0];
  const decoded: string[] = [];
  for (let i = 0; i < n; i++) {
    const words: string[] = [];
    for (let s = 0; s < t; s++) {
      const word = idxToWord[captions.data[i * t + s]];
      if (word === undefined) {
        throw new RangeError(
          `Cannot decode caption ${i}: index ${captions.data[i * t + s]} is not in the vocabulary`,
        );
      }
      if (word !== "<NULL>") words.push(word);
      if (word === "<END>") break;
    }
    decoded.push(words.join(" "));
  }
  return decoded;
}
