/**
 * Caption tokenisation as the COCO caption evaluation does it, without its Java
 * PTBTokenizer: lower-case, split off punctuation and the clitics PTB splits ("dog's" →
 * "dog 's", "don't" → "do n't"), then drop the punctuation tokens pycocoevalcap drops.
 * One implementation for both ends: the metrics tokenise candidates and references with it,
 * and `dataset import` tokenises raw captions that come without tokens with it, so a model
 * learns the words it is scored on.
 *
 * Special tokens: `<START>`, `<END>` and `<NULL>` are dropped (they are not words).
 * `<UNK>` is kept as the word `<unk>`: COCO scores a caption against the raw human
 * captions, so an `<UNK>` the model writes counts toward its length and matches nothing.
 * In references, {@linkcode tokenizeReference} turns each `<UNK>` into a word of its own:
 * it stood for a real (rare) word, which counts toward the reference length and its n-grams
 * but can never be matched by a candidate.
 * @module
 */

/** The special tokens of the CS231n vocabulary. */
export const SPECIAL_TOKENS = {
  start: "<START>",
  end: "<END>",
  null: "<NULL>",
  unk: "<UNK>",
} as const;

/** The token `<UNK>` becomes after tokenisation. */
export const UNK_TOKEN = "<unk>";

const DROPPED = new Set(["<start>", "<end>", "<null>"]);
const PUNCT_ONLY = /^[.,!?;:'"`()[\]{}\-_…]+$/;
const TOKEN =
  /<(?:unk|start|end|null)>|n't|'(?:s|re|ve|ll|d|m)|[\p{L}\p{N}]+(?:['\-./&][\p{L}\p{N}]+)*|\S/gu;

/**
 * Tokenises one caption the COCO evaluation way.
 * @param caption A caption, e.g. `"<START> A dog's ball. <END>"`.
 * @returns The tokens, e.g. `["a", "dog", "'s", "ball"]`.
 *
 * @example
 * ```ts
 * import { tokenizeCaption } from "./tokenize.ts";
 * console.log(tokenizeCaption("<START> A man, riding a <UNK>! <END>"));
 * // ["a", "man", "riding", "a", "<unk>"]
 * ```
 */
export function tokenizeCaption(caption: string): string[] {
  const text = caption.toLowerCase()
    .replace(/n't\b/g, " n't")
    .replace(/'(s|re|ve|ll|d|m)\b/g, " '$1");
  const out: string[] = [];
  for (const m of text.matchAll(TOKEN)) {
    const t = m[0];
    if (DROPPED.has(t) || PUNCT_ONLY.test(t)) continue;
    out.push(t);
  }
  return out;
}

/**
 * Tokenises a reference caption: like {@linkcode tokenizeCaption}, but each `<UNK>` becomes
 * a unique word (`<unk#key#i>`) that no candidate can match.
 * @param caption The reference caption.
 * @param key A string unique to this reference among all references scored together.
 * @returns The tokens.
 *
 * @example
 * ```ts
 * import { tokenizeReference } from "./tokenize.ts";
 * console.log(tokenizeReference("a <UNK> on a <UNK>", "7/0")); // ["a", "<unk#7/0#0>", "on", "a", "<unk#7/0#1>"]
 * ```
 */
export function tokenizeReference(caption: string, key: string): string[] {
  let i = 0;
  return tokenizeCaption(caption).map((t) => (t === UNK_TOKEN ? `<unk#${key}#${i++}>` : t));
}
