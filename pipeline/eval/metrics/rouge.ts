/**
 * ROUGE-L as the COCO caption evaluation (pycocoevalcap's `Rouge`) computes it: for each
 * image, the longest common subsequence (LCS) of the candidate with each reference gives a
 * precision LCS / |candidate| and a recall LCS / |reference|; the best precision and the best
 * recall over the references (possibly from different references) make an F-measure with
 * β = 1.2, and the score is the mean over images.
 * @module
 */
import { type CaptionsById, type TokenizedPair, tokenizePairs } from "./ngrams.ts";

/** pycocoevalcap's β: recall weighs 1.2² as much as precision. */
export const ROUGE_BETA = 1.2;

/**
 * The length of the longest common subsequence of two token lists (dynamic programming).
 * @param a The first tokens.
 * @param b The second tokens.
 * @returns The LCS length.
 *
 * @example
 * ```ts
 * import { lcsLength } from "./rouge.ts";
 * console.log(lcsLength(["a", "cat", "on", "a", "mat"], ["a", "mat", "on", "a", "cat"])); // 3
 * ```
 */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Int32Array(b.length + 1), cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/**
 * ROUGE-L of one candidate against its references (pycocoevalcap's `calc_score`).
 * @param candidate The candidate's tokens.
 * @param references Each reference's tokens.
 * @returns The F-measure, in [0, 1]; 0 when nothing matches (or the candidate is empty).
 *
 * @example
 * ```ts
 * import { rougeL } from "./rouge.ts";
 * // LCS 2 ("a cat"): precision 2/2, recall 2/4; F = (1 + 1.44)·1·0.5 / (0.5 + 1.44·1)
 * console.log(rougeL(["a", "cat"], [["a", "black", "cat", "sits"]]).toFixed(4)); // 0.6289
 * ```
 */
export function rougeL(
  candidate: readonly string[],
  references: readonly (readonly string[])[],
): number {
  let precision = 0, recall = 0;
  for (const ref of references) {
    const lcs = lcsLength(ref, candidate);
    if (candidate.length > 0) precision = Math.max(precision, lcs / candidate.length);
    if (ref.length > 0) recall = Math.max(recall, lcs / ref.length);
  }
  if (precision === 0 || recall === 0) return 0;
  const b2 = ROUGE_BETA * ROUGE_BETA;
  return ((1 + b2) * precision * recall) / (recall + b2 * precision);
}

/**
 * ROUGE-L over tokenised pairs: the mean of each image's score.
 * @param pairs Candidate and reference tokens per image.
 * @returns The mean and the per-image scores, in the pairs' order.
 *
 * @example
 * ```ts
 * import { rougeLFromTokens } from "./rouge.ts";
 * const { score } = rougeLFromTokens([{ id: "1", candidate: ["a", "cat"], references: [["a", "cat"]] }]);
 * console.log(score); // 1
 * ```
 */
export function rougeLFromTokens(
  pairs: readonly TokenizedPair[],
): { score: number; perImage: number[] } {
  const perImage = pairs.map((p) => rougeL(p.candidate, p.references));
  const score = perImage.length ? perImage.reduce((a, b) => a + b, 0) / perImage.length : 0;
  return { score, perImage };
}

/**
 * ROUGE-L the COCO way: captions tokenised as the COCO evaluation does, each image scored
 * against all its references, averaged.
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id.
 * @returns The mean ROUGE-L.
 *
 * @example
 * ```ts
 * import { rougeLScore } from "./rouge.ts";
 * console.log(rougeLScore({ 1: "A cat." }, { 1: ["a cat", "a dog"] })); // 1
 * ```
 */
export function rougeLScore(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
): number {
  return rougeLFromTokens(tokenizePairs(candidates, references)).score;
}
