/**
 * Per-image scores beside the corpus scores, as pycocoevalcap's `imgToEval` gives them: an
 * image's score of a metric is the metric computed on that image alone (BLEU with the image's
 * own n-gram counts and brevity penalty, as the BLEU scorer's per-sentence scores are), except
 * CIDEr-D, whose document frequencies come from the whole set of images scored (an image alone
 * would score 0), as pycocoevalcap's per-image CIDEr does.
 * @module
 */
import { ciderDFromTokens } from "./cider.ts";
import { evaluateCaptions, type Metric, type MetricScores } from "./mod.ts";
import { type CaptionsById, tokenizePairs } from "./ngrams.ts";

/** The corpus scores of a set of captions, and each image's. */
export interface ScoredCaptions {
  /** The scores of the whole set (what `evaluateCaptions` returns). */
  corpus: MetricScores;
  /** Each image's scores, by image id (the candidates' ids, as strings), in their order. */
  perImage: Map<string, MetricScores>;
}

/**
 * Scores generated captions against their references: the corpus scores and each image's.
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id.
 * @param metrics Which metrics to compute.
 * @returns The corpus scores and the per-image scores.
 * @throws {RangeError} When an image has no references.
 *
 * @example
 * ```ts
 * import { scoreCaptions } from "./per_image.ts";
 * const refs = { 1: ["a cat on a mat"], 2: ["a dog in a park"] };
 * const { corpus, perImage } = scoreCaptions({ 1: "a cat on a mat", 2: "a dog" }, refs, ["bleu1", "cider"]);
 * console.log(corpus.bleu1, perImage.get("1")?.bleu1); // the corpus BLEU-1, and 1 for image 1
 * ```
 */
export function scoreCaptions(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
  metrics: readonly Metric[],
): ScoredCaptions {
  const corpus = evaluateCaptions(candidates, references, metrics);
  const pairs = tokenizePairs(candidates, references);
  const alone = metrics.filter((m) => m !== "cider");
  const cider = metrics.includes("cider") ? ciderDFromTokens(pairs).perImage : [];
  const byId = (c: CaptionsById<unknown>, id: string) =>
    c instanceof Map ? (c.has(id) ? c.get(id) : c.get(Number(id))) : c[id];
  const perImage = new Map<string, MetricScores>();
  pairs.forEach((p, i) => {
    const scores = alone.length === 0 ? {} : evaluateCaptions(
      { [p.id]: byId(candidates, p.id) as string },
      { [p.id]: byId(references, p.id) as readonly string[] },
      alone,
    );
    // The corpus's metric order, CIDEr-D in its place.
    const ordered: MetricScores = {};
    for (const m of Object.keys(corpus) as Metric[]) {
      ordered[m] = m === "cider" ? cider[i] : scores[m];
    }
    perImage.set(p.id, ordered);
  });
  return { corpus, perImage };
}
