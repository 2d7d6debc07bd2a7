/**
 * Which words a decoder may write next, and the likeliest of them: the words every strategy
 * bans (`<UNK>` when suppressed; `<NULL>` and `<START>` when sampling, as they are never a
 * training target), the words that would repeat a trigram of the caption so far, and the top
 * k of a row of scores among the allowed words.
 *
 * Dimension legend: V vocabulary.
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";
import { topIndices } from "../layers/kernels/top_wasm.ts";

/**
 * A (V,) mask of the words a strategy never writes.
 * @param vocabSize V.
 * @param words The banned word indices (negative ones, "no such token", are skipped).
 * @returns 1 for a banned word, 0 for an allowed one.
 *
 * @example
 * ```ts
 * import { bannedWords } from "./next_words.ts";
 * console.log(bannedWords(4, [3, -1])); // Uint8Array [0, 0, 0, 1]
 * ```
 */
export function bannedWords(vocabSize: number, words: readonly number[]): Uint8Array {
  const banned = new Uint8Array(vocabSize);
  for (const w of words) if (w >= 0 && w < vocabSize) banned[w] = 1;
  return banned;
}

/**
 * The words that would repeat a trigram: every c such that (a, b, c) already occurs in the
 * caption, where a and b are its last two words.
 * @param words The caption so far (from `start`).
 * @param start Where it starts in `words`.
 * @param len Its length.
 * @param out Where to put the words (cleared first).
 * @returns `out`.
 *
 * @example
 * ```ts
 * import { trigramRepeats } from "./next_words.ts";
 * console.log(trigramRepeats([5, 6, 7, 5, 6], 0, 5, [])); // [7]: "5 6 7" again
 * ```
 */
export function trigramRepeats(
  words: ArrayLike<number>,
  start: number,
  len: number,
  out: number[],
): number[] {
  out.length = 0;
  if (len < 3) return out;
  const a = words[start + len - 2], b = words[start + len - 1];
  for (let i = start; i + 2 < start + len; i++) {
    if (words[i] === a && words[i + 1] === b) out.push(words[i + 2]);
  }
  return out;
}

/**
 * The indices of the k largest values of a[offset … offset+len) that are not banned, largest
 * first (ties: the lower index first). Fewer than k when fewer are allowed. A decoder's float32
 * scores (in a WebAssembly memory) go through the SIMD kernel `topIndices`, which gives the
 * same result.
 * @param a The values.
 * @param offset Where the row starts.
 * @param len Its length (V).
 * @param k How many.
 * @param banned A (V,) mask of excluded indices, or null for none.
 * @returns The indices.
 *
 * @example
 * ```ts
 * import { topWords } from "./next_words.ts";
 * console.log(topWords(new Float32Array([0.1, 0.9, 0.5, 0.9]), 0, 4, 2, null)); // [1, 3]
 * console.log(topWords(new Float32Array([0.1, 0.9, 0.5]), 0, 3, 2, new Uint8Array([0, 1, 0]))); // [2, 0]
 * ```
 */
export function topWords(
  a: FloatArray,
  offset: number,
  len: number,
  k: number,
  banned: Uint8Array | null,
): number[] {
  // A decoder's float32 scores: the WebAssembly kernel, four words to a compare.
  const fast = topIndices(a, offset, len, k, banned);
  if (fast !== null) return fast;
  const best: number[] = [];
  if (k <= 0) return best;
  // Once k are held, a word must beat the k-th (most words do not: one comparison each).
  let floor = -Infinity;
  for (let j = 0; j < len; j++) {
    const val = a[offset + j];
    if (best.length === k && !(val > floor)) continue;
    if (banned !== null && banned[j]) continue;
    let pos = best.length < k ? best.length : k - 1;
    if (best.length < k) best.push(j);
    while (pos > 0 && a[offset + best[pos - 1]] < val) {
      best[pos] = best[pos - 1];
      pos--;
    }
    best[pos] = j;
    if (best.length === k) floor = a[offset + best[k - 1]];
  }
  return best;
}

/**
 * The allowed word with the highest score (ties: the lower index), or -1 when none is.
 * @param a The scores.
 * @param offset Where the row starts.
 * @param len Its length (V).
 * @param banned A (V,) mask of excluded indices.
 * @returns The index.
 *
 * @example
 * ```ts
 * import { argmaxAllowed } from "./next_words.ts";
 * console.log(argmaxAllowed(new Float32Array([3, 9, 9]), 0, 3, new Uint8Array([0, 1, 0]))); // 2
 * ```
 */
export function argmaxAllowed(
  a: FloatArray,
  offset: number,
  len: number,
  banned: Uint8Array,
): number {
  const fast = topIndices(a, offset, len, 1, banned);
  if (fast !== null) return fast.length ? fast[0] : -1;
  let best = -1, bestVal = 0;
  for (let j = 0; j < len; j++) {
    const val = a[offset + j];
    if ((best < 0 || val > bestVal) && !banned[j]) {
      best = j;
      bestVal = val;
    }
  }
  return best;
}

/**
 * Bans some words for the duration of `fn` (those already banned stay banned after it).
 * @param banned The mask, changed in place and restored.
 * @param words The words to ban.
 * @param fn What runs with them banned.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import { withBanned } from "./next_words.ts";
 * const banned = new Uint8Array(3);
 * console.log(withBanned(banned, [1], () => banned[1]), banned[1]); // 1 0
 * ```
 */
export function withBanned<T>(banned: Uint8Array, words: readonly number[], fn: () => T): T {
  if (words.length === 0) return fn();
  const added: number[] = [];
  for (const w of words) {
    if (!banned[w]) {
      banned[w] = 1;
      added.push(w);
    }
  }
  try {
    return fn();
  } finally {
    for (const w of added) banned[w] = 0;
  }
}
