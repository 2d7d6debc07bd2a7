/**
 * Building a vocabulary from word counts and encoding captions into the rows recap trains on,
 * shared by the synthetic writer and `dataset import`: the four special tokens at ids 0-3,
 * then every word seen at least `minCount` times in the training captions, by falling count
 * (ties alphabetical, so the same counts always give the same ids); other words are `<UNK>`.
 *
 * A caption row (T+1 ids) is `<START>`, at most T-1 words, `<END>`, then `<NULL>` padding.
 * @module
 */
import { END_ID, NULL_ID, SPECIAL_TOKENS, START_ID, UNK_ID, type Vocab } from "./coco_layout.ts";

/**
 * The vocabulary of some word counts: the special tokens, then the words counted at least
 * `minCount` times, most frequent first (ties in alphabetical order). Words that spell a
 * special token in any case (`<unk>` in text already preprocessed) are left out: they are
 * `<UNK>`.
 * @param counts How often each word occurs in the training captions.
 * @param minCount The fewest occurrences a word needs to get an id of its own.
 * @returns The vocabulary (`idx_to_word` and `word_to_idx`).
 *
 * @example
 * ```ts
 * import { buildVocabulary } from "./vocabulary.ts";
 * const v = buildVocabulary(new Map([["dog", 3], ["cat", 3], ["emu", 1], ["a", 9]]), 2);
 * console.log(v.idx_to_word); // ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "dog"]
 * ```
 */
export function buildVocabulary(counts: ReadonlyMap<string, number>, minCount: number): Vocab {
  const specials = new Set<string>(SPECIAL_TOKENS.map((t) => t.toLowerCase()));
  const kept = [...counts]
    .filter(([w, c]) => c >= minCount && !specials.has(w.toLowerCase()))
    .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
    .map(([w]) => w);
  const idx_to_word = [...SPECIAL_TOKENS, ...kept];
  const word_to_idx: Record<string, number> = {};
  idx_to_word.forEach((w, i) => (word_to_idx[w] = i));
  return { idx_to_word, word_to_idx };
}

/** What {@linkcode encodeCaptionRow} wrote. */
export interface EncodedRow {
  /** Words written (at most the row length - 2). */
  words: number;
  /** How many of them are `<UNK>`. */
  unknown: number;
  /** Whether words were cut off because the caption is longer than the row. */
  truncated: boolean;
}

/**
 * Writes one caption into a row: `<START>`, its word ids (the first `rowLength - 2`),
 * `<END>`, `<NULL>` to the end of the row.
 * @param length The caption's word count.
 * @param idAt The vocabulary id of word `t` (`UNK_ID` for a word outside the vocabulary).
 * @param out The caption rows.
 * @param offset Where the row starts in `out`.
 * @param rowLength T+1, ids per row.
 * @returns The words written, how many are `<UNK>`, and whether the caption was truncated.
 *
 * @example
 * ```ts
 * import { encodeCaptionRow } from "./vocabulary.ts";
 * const row = new Int32Array(6);
 * const ids = [7, 3, 9, 8, 5];
 * console.log(encodeCaptionRow(ids.length, (t) => ids[t], row, 0, 6)); // { words: 4, unknown: 1, truncated: true }
 * console.log(row); // Int32Array [1, 7, 3, 9, 8, 2]
 * ```
 */
export function encodeCaptionRow(
  length: number,
  idAt: (t: number) => number,
  out: Int32Array,
  offset: number,
  rowLength: number,
): EncodedRow {
  const words = Math.min(length, rowLength - 2);
  out[offset] = START_ID;
  let unknown = 0;
  for (let t = 0; t < words; t++) {
    const id = idAt(t);
    if (id === UNK_ID) unknown++;
    out[offset + 1 + t] = id;
  }
  out[offset + 1 + words] = END_ID;
  out.fill(NULL_ID, offset + 2 + words, offset + rowLength);
  return { words, unknown, truncated: length > words };
}
