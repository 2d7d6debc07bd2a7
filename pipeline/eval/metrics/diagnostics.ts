/**
 * Caption diagnostics, as self-critical.pytorch reports beside the scores: how many distinct
 * words the captions use, how many captions are not copies of a training caption, their mean
 * length, and how many repeat a trigram (a sign of degenerate decoding, which self-critical
 * training can cause and trigram blocking prevents). Captions are tokenised the COCO way.
 * @module
 */
import { tokenizeCaption } from "./tokenize.ts";

/** What {@linkcode captionDiagnostics} measures. */
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
 * The training captions as a set of tokenised texts, to tell novel captions from copies.
 * @param captions The training captions, as text.
 * @returns Their tokens joined by spaces.
 *
 * @example
 * ```ts
 * import { captionSet } from "./diagnostics.ts";
 * console.log(captionSet(["<START> A cat. <END>"]).has("a cat")); // true
 * ```
 */
export function captionSet(captions: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const c of captions) out.add(tokenizeCaption(c).join(" "));
  return out;
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
 * The diagnostics of a set of generated captions.
 * @param captions The captions, as text.
 * @param training The training captions, from {@linkcode captionSet}.
 * @returns Vocabulary used, novel fraction, mean length and repeated-trigram fraction (zeros
 * for no captions).
 *
 * @example
 * ```ts
 * import { captionDiagnostics, captionSet } from "./diagnostics.ts";
 * const d = captionDiagnostics(["a cat", "a dog on a dog on"], captionSet(["a cat"]));
 * console.log(d); // { vocabulary: 4, novel: 0.5, meanLength: 4, repeatedTrigrams: 0.5 }
 * ```
 */
export function captionDiagnostics(
  captions: readonly string[],
  training: ReadonlySet<string>,
): CaptionDiagnostics {
  const words = new Set<string>();
  let novel = 0, length = 0, repeated = 0;
  for (const caption of captions) {
    const tokens = tokenizeCaption(caption);
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
