/**
 * N-gram counting and the caption-set inputs shared by the metrics.
 * @module
 */
import { tokenizeCaption, tokenizeReference } from "../../data/tokenize.ts";

/** Captions keyed by image id: a Map or a plain object. */
export type CaptionsById<T> = Map<string | number, T> | Record<string | number, T>;

/**
 * Counts the n-grams of a token list for n = 1..maxN (keys join words with a space).
 * @param tokens The words.
 * @param maxN The longest n-gram.
 * @returns Counts keyed by n-gram; `key.split(" ").length` is its order.
 *
 * @example
 * ```ts
 * import { countNgrams } from "./ngrams.ts";
 * console.log(countNgrams(["a", "a", "b"], 2)); // Map { "a" => 2, "b" => 1, "a a" => 1, "a b" => 1 }
 * ```
 */
export function countNgrams(tokens: readonly string[], maxN: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= maxN; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = tokens.slice(i, i + n).join(" ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** One scored image: the candidate's tokens and each reference's tokens. */
export interface TokenizedPair {
  /** The image id. */
  id: string;
  /** The candidate caption's tokens. */
  candidate: string[];
  /** Each reference caption's tokens. */
  references: string[][];
}

const entries = <T>(c: CaptionsById<T>): [string, T][] =>
  c instanceof Map ? [...c].map(([k, v]) => [String(k), v]) : Object.entries(c);

/**
 * Tokenises candidates and their references, pairing them by image id in the candidates'
 * order. Every candidate's image must have at least one reference.
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id.
 * @returns The tokenised pairs.
 * @throws {RangeError} When an image has no references.
 *
 * @example
 * ```ts
 * import { tokenizePairs } from "./ngrams.ts";
 * const [p] = tokenizePairs({ 1: "A dog." }, { 1: ["a dog runs"] });
 * console.log(p.candidate, p.references); // ["a", "dog"] [["a", "dog", "runs"]]
 * ```
 */
export function tokenizePairs(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
): TokenizedPair[] {
  const refs = new Map(entries(references));
  return entries(candidates).map(([id, candidate]) => {
    const r = refs.get(id);
    if (!r || r.length === 0) {
      throw new RangeError(`Cannot score captions: image ${id} has no reference captions`);
    }
    return {
      id,
      candidate: tokenizeCaption(candidate),
      references: r.map((ref, j) => tokenizeReference(ref, `${id}/${j}`)),
    };
  });
}
