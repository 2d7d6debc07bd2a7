/**
 * CIDEr-D as the COCO caption evaluation (pycocoevalcap's `Cider`) computes it: TF-IDF
 * vectors of 1..4-grams with document frequencies taken from the reference sets of the
 * scored images, candidate weights clipped by the reference's, a Gaussian penalty on the
 * length difference (σ = 6), the mean over n, averaged over references, ×10, then the mean
 * over images.
 *
 * Two details follow pycocoevalcap exactly: the "length" in the penalty is the number of
 * bigrams (the scorer counts n-grams at index 1), and an n whose vector has zero norm
 * contributes 0. With a single image every reference n-gram has idf log(1/1) = 0, so the
 * score is 0: CIDEr needs a set of images.
 * @module
 */
import { type CaptionsById, countNgrams, type TokenizedPair, tokenizePairs } from "./ngrams.ts";

const N = 4;
const SIGMA = 6;

interface Vec {
  weights: Map<string, number>[]; // per order n-1: n-gram -> tf * idf
  norms: number[];
  length: number;
}

/**
 * CIDEr-D over already tokenised pairs (see {@linkcode ciderD}).
 * @param pairs Candidate and reference tokens per image.
 * @returns The mean score and the per-image scores, in the pairs' order.
 *
 * @example
 * ```ts
 * import { ciderDFromTokens } from "./cider.ts";
 * const { score } = ciderDFromTokens([
 *   { id: "1", candidate: ["a", "cat"], references: [["a", "cat"]] },
 *   { id: "2", candidate: ["a", "dog"], references: [["a", "dog"]] },
 * ]);
 * console.log(score.toFixed(4));
 * ```
 */
export function ciderDFromTokens(
  pairs: readonly TokenizedPair[],
): { score: number; perImage: number[] } {
  if (pairs.length === 0) return { score: 0, perImage: [] };
  const df = new Map<string, number>();
  const refCounts = pairs.map((p) => p.references.map((r) => countNgrams(r, N)));
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const g of counts.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logImages = Math.log(pairs.length);
  const toVec = (counts: Map<string, number>): Vec => {
    const weights = Array.from({ length: N }, () => new Map<string, number>());
    const norms = new Array<number>(N).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const n = g.split(" ").length - 1;
      const w = tf * (logImages - Math.log(Math.max(1, df.get(g) ?? 0)));
      weights[n].set(g, w);
      norms[n] += w * w;
      if (n === 1) length += tf;
    }
    return { weights, norms: norms.map(Math.sqrt), length };
  };
  const perImage = pairs.map((p, i) => {
    const hyp = toVec(countNgrams(p.candidate, N));
    const total = new Array<number>(N).fill(0);
    for (const counts of refCounts[i]) {
      const ref = toVec(counts);
      const delta = hyp.length - ref.length;
      const penalty = Math.exp(-(delta * delta) / (2 * SIGMA * SIGMA));
      for (let n = 0; n < N; n++) {
        let val = 0;
        for (const [g, wh] of hyp.weights[n]) {
          const wr = ref.weights[n].get(g) ?? 0;
          val += Math.min(wh, wr) * wr;
        }
        if (hyp.norms[n] !== 0 && ref.norms[n] !== 0) val /= hyp.norms[n] * ref.norms[n];
        total[n] += val * penalty;
      }
    }
    const mean = total.reduce((a, b) => a + b, 0) / N;
    return (mean / refCounts[i].length) * 10;
  });
  return { score: perImage.reduce((a, b) => a + b, 0) / perImage.length, perImage };
}

/**
 * CIDEr-D the COCO way (pycocoevalcap's "CIDEr"), with document frequencies from the
 * references of the scored images.
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id.
 * @returns The mean CIDEr-D over the images: ≥ 0, and 10 for captions equal to their only reference.
 *
 * @example
 * ```ts
 * import { ciderD } from "./cider.ts";
 * const refs = { 1: ["a cat on a mat"], 2: ["a dog in a park"] };
 * console.log(ciderD({ 1: "a cat on a mat", 2: "a dog in a park" }, refs)); // 10 (each n-gram weight matches)
 * ```
 */
export function ciderD(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
): number {
  return ciderDFromTokens(tokenizePairs(candidates, references)).score;
}
