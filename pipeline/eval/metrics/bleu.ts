/**
 * BLEU as the COCO caption evaluation (pycocoevalcap) computes it: corpus-level, n-gram
 * counts clipped by the maximum count over all references of an image, and a brevity
 * penalty from the summed "closest" reference lengths (ties go to the shorter reference).
 * Also the exercise's unigram BLEU against a single reference.
 * @module
 */
import { type CaptionsById, countNgrams, type TokenizedPair, tokenizePairs } from "./ngrams.ts";

/** Corpus BLEU-1..4. */
export interface BleuScores {
  /** BLEU with unigrams only. */
  bleu1: number;
  /** BLEU up to bigrams. */
  bleu2: number;
  /** BLEU up to trigrams. */
  bleu3: number;
  /** BLEU up to 4-grams. */
  bleu4: number;
}

// pycocoevalcap's smoothing constants: zero matches give ~0 rather than a division by zero.
const TINY = 1e-15;
const SMALL = 1e-9;

/**
 * The reference length closest to the candidate's (ties: the shorter), as BLEU's "closest".
 * @param candidateLength The candidate's word count.
 * @param referenceLengths The references' word counts.
 * @returns The effective reference length.
 *
 * @example
 * ```ts
 * import { closestRefLength } from "./bleu.ts";
 * console.log(closestRefLength(5, [3, 7, 9])); // 3 (|5-3| = |5-7|: the shorter wins)
 * ```
 */
export function closestRefLength(candidateLength: number, referenceLengths: number[]): number {
  let best = referenceLengths[0];
  for (const l of referenceLengths) {
    const d = Math.abs(l - candidateLength), bd = Math.abs(best - candidateLength);
    if (d < bd || (d === bd && l < best)) best = l;
  }
  return best;
}

/**
 * Corpus BLEU-1..4 over already tokenised pairs (see {@linkcode corpusBleu}).
 * @param pairs Candidate and reference tokens per image.
 * @returns BLEU-1..4.
 *
 * @example
 * ```ts
 * import { bleuFromTokens } from "./bleu.ts";
 * const s = bleuFromTokens([{ id: "1", candidate: ["a", "cat"], references: [["a", "cat"]] }]);
 * console.log(s.bleu1.toFixed(6)); // 1.000000
 * ```
 */
export function bleuFromTokens(pairs: readonly TokenizedPair[]): BleuScores {
  const guess = [0, 0, 0, 0], correct = [0, 0, 0, 0];
  let testLen = 0, refLen = 0;
  for (const { candidate, references } of pairs) {
    const maxRef = new Map<string, number>();
    for (const ref of references) {
      for (const [g, c] of countNgrams(ref, 4)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
    }
    for (const [g, c] of countNgrams(candidate, 4)) {
      correct[g.split(" ").length - 1] += Math.min(c, maxRef.get(g) ?? 0);
    }
    for (let k = 0; k < 4; k++) guess[k] += Math.max(0, candidate.length - k);
    testLen += candidate.length;
    refLen += closestRefLength(candidate.length, references.map((r) => r.length));
  }
  const ratio = (testLen + TINY) / (refLen + SMALL);
  const bp = ratio < 1 ? Math.exp(1 - 1 / ratio) : 1;
  const scores: number[] = [];
  let product = 1;
  for (let n = 1; n <= 4; n++) {
    product *= (correct[n - 1] + TINY) / (guess[n - 1] + SMALL);
    scores.push(product ** (1 / n) * bp);
  }
  return { bleu1: scores[0], bleu2: scores[1], bleu3: scores[2], bleu4: scores[3] };
}

/**
 * Corpus BLEU-1..4 the COCO way: every image's candidate against all its references.
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id (every candidate's id must be there).
 * @returns BLEU-1..4 in [0, 1].
 *
 * @example
 * ```ts
 * import { corpusBleu } from "./bleu.ts";
 * const s = corpusBleu({ 1: "a dog runs on grass" }, { 1: ["a dog runs on the grass", "a dog"] });
 * console.log(s.bleu1.toFixed(4)); // 0.8187
 * ```
 */
export function corpusBleu(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
): BleuScores {
  return bleuFromTokens(tokenizePairs(candidates, references));
}

const EXERCISE_DROPPED = ["<END>", "<START>", "<UNK>", "<NULL>"];
const exerciseTokens = (s: string) =>
  s.split(/\s+/).filter((w) => w !== "" && !EXERCISE_DROPPED.some((t) => w.includes(t)));

/**
 * The exercise's BLEU (CS231n `BLEU_score`: nltk `sentence_bleu([reference], candidate,
 * weights=[1])`): clipped unigram precision times the brevity penalty against one
 * reference. Words containing `<START>`, `<END>`, `<UNK>` or `<NULL>` are dropped first,
 * and nothing is lower-cased, as in the exercise.
 * @param candidate The generated caption.
 * @param reference The one reference caption.
 * @returns The score in [0, 1]; 0 for an empty candidate or no matching word.
 *
 * @example
 * ```ts
 * import { unigramBleu } from "./bleu.ts";
 * console.log(unigramBleu("<START> a dog <END>", "a big dog")); // exp(1 - 3/2) ≈ 0.6065
 * ```
 */
export function unigramBleu(candidate: string, reference: string): number {
  const hyp = exerciseTokens(candidate), ref = exerciseTokens(reference);
  if (hyp.length === 0) return 0;
  const refCounts = countNgrams(ref, 1);
  let matched = 0;
  for (const [w, c] of countNgrams(hyp, 1)) matched += Math.min(c, refCounts.get(w) ?? 0);
  if (matched === 0) return 0;
  const bp = hyp.length > ref.length ? 1 : Math.exp(1 - ref.length / hyp.length);
  return bp * (matched / hyp.length);
}
