/**
 * Caption diagnostics, as self-critical.pytorch reports beside the scores: how many distinct
 * words the captions use, how many captions are not copies of a training caption, their mean
 * length, and how many repeat a trigram (a sign of degenerate decoding, which self-critical
 * training can cause and trigram blocking prevents), over captions tokenised the COCO way
 * (`captionDiagnostics` in mod.ts takes them as text).
 * @module
 */

/** What {@linkcode diagnoseTokens} measures. */
export interface CaptionDiagnostics {
  /** Distinct words over all captions. */
  vocabulary: number;
  /** The fraction of captions that are no training caption (after tokenisation). */
  novel: number;
  /** The mean number of words. */
  meanLength: number;
  /** The fraction of captions in which a trigram occurs twice. */
  repeatedTrigrams: number;
}

/**
 * Whether a token list has a trigram that occurs twice.
 * @param tokens The words.
 * @returns True when a trigram repeats.
 *
 * @example
 * ```ts
 * import { repeatsTrigram } from "./diagnostics.ts";
 * console.log(repeatsTrigram("a dog and a dog and".split(" "))); // true
 * ```
 */
export function repeatsTrigram(tokens: readonly string[]): boolean {
  const seen = new Set<string>();
  for (let i = 0; i + 3 <= tokens.length; i++) {
    const key = `${tokens[i]} ${tokens[i + 1]} ${tokens[i + 2]}`;
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

/**
 * The diagnostics of a set of generated captions, tokenised.
 * @param captions Each caption's tokens.
 * @param training The training captions' tokens, each joined by spaces.
 * @returns Vocabulary used, novel fraction, mean length and repeated-trigram fraction (zeros
 * for no captions).
 *
 * @example
 * ```ts
 * import { diagnoseTokens } from "./diagnostics.ts";
 * const d = diagnoseTokens([["a", "cat"], "a dog on a dog on".split(" ")], new Set(["a cat"]));
 * console.log(d); // { vocabulary: 4, novel: 0.5, meanLength: 4, repeatedTrigrams: 0.5 }
 * ```
 */
export function diagnoseTokens(
  captions: readonly (readonly string[])[],
  training: ReadonlySet<string>,
): CaptionDiagnostics {
  const words = new Set<string>();
  let novel = 0, length = 0, repeated = 0;
  for (const tokens of captions) {
    for (const t of tokens) words.add(t);
    if (!training.has(tokens.join(" "))) novel++;
    length += tokens.length;
    if (repeatsTrigram(tokens)) repeated++;
  }
  const n = Math.max(captions.length, 1);
  return {
    vocabulary: words.size,
    novel: novel / n,
    meanLength: length / n,
    repeatedTrigrams: repeated / n,
  };
}
