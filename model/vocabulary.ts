/**
 * A captioning model's vocabulary as the exercise defines it: V = len(word_to_idx) rows of the
 * embedding and of the scores, and the special tokens' indices. Shared by every model.
 * @module
 */

/** A checked vocabulary: index → word, and the special tokens. */
export interface Vocabulary {
  /** Index → word (`<UNK>` where no word has the index). */
  idxToWord: string[];
  /** The index of `<NULL>`, the padding the loss masks out. */
  nullIdx: number;
  /** The index of `<START>`, or -1 when the vocabulary has none. */
  startIdx: number;
  /** The index of `<END>`, or -1 when the vocabulary has none. */
  endIdx: number;
  /** The index of `<UNK>`, or -1 when the vocabulary has none. */
  unkIdx: number;
}

/**
 * Checks a vocabulary: a `<NULL>` token, special tokens that index rows of the V-row embedding
 * and scores (V = len(word_to_idx), as in the exercise), no two words sharing an index. Other
 * words may lie outside [0, V) — the exercise's test vocabulary does — as long as no caption
 * uses them.
 * @param wordToIdx Word → index.
 * @returns Index → word and the special tokens' indices.
 * @throws {RangeError} When the vocabulary breaks one of those rules, naming the words.
 *
 * @example
 * ```ts
 * import { resolveVocabulary } from "./vocabulary.ts";
 * const v = resolveVocabulary({ "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 });
 * console.log(v.idxToWord[3], v.endIdx); // cat 2
 * ```
 */
export function resolveVocabulary(wordToIdx: Record<string, number>): Vocabulary {
  if (!("<NULL>" in wordToIdx)) {
    throw new RangeError(`Invalid vocabulary: wordToIdx has no "<NULL>" token`);
  }
  const vocabSize = Object.keys(wordToIdx).length;
  for (const token of ["<NULL>", "<START>", "<END>"]) {
    if (!(token in wordToIdx)) continue;
    const i = wordToIdx[token];
    if (!Number.isInteger(i) || i < 0 || i >= vocabSize) {
      throw new RangeError(
        `Invalid vocabulary: "${token}" has index ${i}, outside [0, ${vocabSize}) for a ` +
          `vocabulary of ${vocabSize} words`,
      );
    }
  }
  const seen = new Map<number, string>();
  for (const [word, i] of Object.entries(wordToIdx)) {
    if (!Number.isInteger(i) || i < 0) {
      throw new RangeError(
        `Invalid vocabulary: "${word}" has index ${i}, expected an integer >= 0`,
      );
    }
    const other = seen.get(i);
    if (other !== undefined) {
      throw new RangeError(
        `Invalid vocabulary: "${other}" and "${word}" share index ${i}; each word needs its own`,
      );
    }
    seen.set(i, word);
  }
  const idxToWord = new Array<string>(vocabSize).fill("<UNK>");
  for (const [w, i] of Object.entries(wordToIdx)) if (i < vocabSize) idxToWord[i] = w;
  return {
    idxToWord,
    nullIdx: wordToIdx["<NULL>"],
    startIdx: wordToIdx["<START>"] ?? -1,
    endIdx: wordToIdx["<END>"] ?? -1,
    unkIdx: wordToIdx["<UNK>"] ?? -1,
  };
}
