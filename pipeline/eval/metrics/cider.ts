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
 * score is 0: CIDEr needs a set of images. The scorer also takes document frequencies from
 * elsewhere: self-critical training rewards captions with the training split's.
 * @module
 */
import { type CaptionsById, countNgrams, type TokenizedPair, tokenizePairs } from "./ngrams.ts";

const N = 4;
const SIGMA = 6;

/** A caption's TF-IDF vectors of 1..4-grams. */
export interface CiderVector {
  /** Per order n − 1: n-gram → tf · idf. */
  readonly weights: Map<string, number>[];
  /** The L2 norm of each order's weights. */
  readonly norms: number[];
  /** The caption's length as the penalty counts it: its number of bigrams. */
  readonly length: number;
}

/**
 * Document frequencies of n-grams (n = 1..4) over a corpus of images: in how many images'
 * reference sets each n-gram occurs, and log(number of images). pycocoevalcap takes them
 * from the scored images' references; self-critical training takes them once from the
 * training split's (as self-critical.pytorch's `prepro_ngrams.py` does).
 */
export interface DocumentFrequencies {
  /** n-gram → the number of images whose references contain it. */
  df: Map<string, number>;
  /** log of the number of images. */
  logImages: number;
}

/**
 * The document frequencies of a corpus of reference sets.
 * @param referenceSets Each image's references, tokenised.
 * @returns The frequencies.
 *
 * @example
 * ```ts
 * import { documentFrequencies } from "./cider.ts";
 * const { df } = documentFrequencies([[["a", "cat"]], [["a", "dog"], ["a", "dog"]]]);
 * console.log(df.get("a"), df.get("a dog")); // 2 1
 * ```
 */
export function documentFrequencies(
  referenceSets: Iterable<readonly (readonly string[])[]>,
): DocumentFrequencies {
  const df = new Map<string, number>();
  let images = 0;
  for (const refs of referenceSets) {
    images++;
    const seen = new Set<string>();
    for (const ref of refs) for (const g of countNgrams(ref, N).keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  return { df, logImages: Math.log(images) };
}

/** An image's references as CIDEr-D vectors, computed once and scored against many captions. */
export interface CiderReferences {
  /** One vector per reference. */
  readonly vectors: readonly CiderVector[];
}

/**
 * The CIDEr-D scorer for fixed document frequencies: TF-IDF vectors of 1..4-grams, candidate
 * weights clipped by the reference's, the Gaussian length penalty, the mean over n and over
 * references, ×10.
 *
 * @example
 * ```ts
 * import { CiderDScorer, documentFrequencies } from "./cider.ts";
 * const refs = [[["a", "cat"]], [["a", "dog"]]];
 * const scorer = new CiderDScorer(documentFrequencies(refs));
 * console.log(scorer.score(["a", "cat"], scorer.references(refs[0]))); // 10: the only reference
 * ```
 */
export class CiderDScorer {
  readonly #df: DocumentFrequencies;

  /**
   * A scorer over document frequencies.
   * @param df The corpus's document frequencies.
   */
  constructor(df: DocumentFrequencies) {
    this.#df = df;
  }

  /**
   * An image's references as vectors.
   * @param references Its references, tokenised.
   * @returns What {@linkcode CiderDScorer.score} compares a caption with.
   */
  references(references: readonly (readonly string[])[]): CiderReferences {
    return { vectors: references.map((r) => this.#vector(countNgrams(r, N))) };
  }

  /**
   * CIDEr-D of one caption against an image's references.
   * @param candidate The caption, tokenised.
   * @param references The image's references, from {@linkcode CiderDScorer.references}.
   * @returns The score (≥ 0).
   */
  score(candidate: readonly string[], references: CiderReferences): number {
    const hyp = this.#vector(countNgrams(candidate, N));
    const total = new Array<number>(N).fill(0);
    for (const ref of references.vectors) {
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
    return (mean / references.vectors.length) * 10;
  }

  /** The TF-IDF vector of n-gram counts; "length" is the number of bigrams, as pycocoevalcap's. */
  #vector(counts: Map<string, number>): CiderVector {
    const { df, logImages } = this.#df;
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
  }
}

/**
 * CIDEr-D over already tokenised pairs (see {@linkcode ciderD}), with document frequencies
 * from the pairs' references (pycocoevalcap's) unless others are given.
 * @param pairs Candidate and reference tokens per image.
 * @param df Document frequencies to use instead (e.g. the training split's).
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
  df?: DocumentFrequencies,
): { score: number; perImage: number[] } {
  if (pairs.length === 0) return { score: 0, perImage: [] };
  const scorer = new CiderDScorer(df ?? documentFrequencies(pairs.map((p) => p.references)));
  const perImage = pairs.map((p) => scorer.score(p.candidate, scorer.references(p.references)));
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
