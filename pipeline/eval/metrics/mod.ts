/**
 * Caption metrics computed the way the COCO caption evaluation does: BLEU-1..4, CIDEr-D and
 * ROUGE-L over all references of each image, plus the exercise's unigram BLEU, caption
 * diagnostics, and the trivial "most frequent caption" baseline to compare a model against.
 * METEOR and SPICE are not computed: pycocoevalcap runs them as Java programs with their own
 * data files (METEOR's paraphrase tables and WordNet synonyms, SPICE's Stanford CoreNLP
 * parser models, about 1 GB), which recap does not ship.
 * @module
 */
import { METRIC_NAMES } from "../../config/schema.ts";
import { bleuFromTokens, unigramBleu } from "./bleu.ts";
import { ciderDFromTokens } from "./cider.ts";
import { rougeLFromTokens } from "./rouge.ts";
import { type CaptionDiagnostics, diagnoseTokens } from "./diagnostics.ts";
import { type CaptionsById, tokenizePairs } from "./ngrams.ts";
import { tokenizeCaption } from "../../data/tokenize.ts";

export { bleuFromTokens, closestRefLength, corpusBleu, unigramBleu } from "./bleu.ts";
export type { BleuScores } from "./bleu.ts";
export { ciderD, ciderDFromTokens, CiderDScorer, documentFrequencies } from "./cider.ts";
export type { CiderReferences, CiderVector, DocumentFrequencies } from "./cider.ts";
export { lcsLength, ROUGE_BETA, rougeL, rougeLFromTokens, rougeLScore } from "./rouge.ts";
export { diagnoseTokens, repeatsTrigram } from "./diagnostics.ts";
export type { CaptionDiagnostics } from "./diagnostics.ts";
export { countNgrams, tokenizePairs } from "./ngrams.ts";
export type { CaptionsById, TokenizedPair } from "./ngrams.ts";
export {
  SPECIAL_TOKENS,
  tokenizeCaption,
  tokenizeReference,
  UNK_TOKEN,
} from "../../data/tokenize.ts";

/** A metric name, as listed in `evaluate.metrics`. */
export type Metric = typeof METRIC_NAMES[number];

/** Scores by metric name; only the metrics asked for are present. */
export type MetricScores = Partial<Record<Metric, number>>;

const ALL: readonly Metric[] = METRIC_NAMES;

const lookup = <T>(c: CaptionsById<T>, id: string): T | undefined =>
  c instanceof Map ? (c.get(id) ?? c.get(Number(id))) : c[id];

/**
 * Computes the chosen metrics for one set of generated captions.
 * `unigram_bleu` is the exercise's score averaged over images, each against its first
 * reference (the caption the exercise pairs with the sample).
 * @param candidates One generated caption per image id.
 * @param references The reference captions per image id.
 * @param metrics Which metrics to compute; all by default.
 * @returns The scores, keyed by metric name.
 * @throws {RangeError} When an image has no references.
 *
 * @example
 * ```ts
 * import { evaluateCaptions } from "./mod.ts";
 * const refs = { 1: ["a cat on a mat"], 2: ["a dog in a park"] };
 * const s = evaluateCaptions({ 1: "a cat on a mat", 2: "a dog" }, refs, ["bleu1", "cider"]);
 * console.log(s.bleu1, s.cider);
 * ```
 */
export function evaluateCaptions(
  candidates: CaptionsById<string>,
  references: CaptionsById<readonly string[]>,
  metrics: readonly Metric[] = ALL,
): MetricScores {
  const out: MetricScores = {};
  const pairs = tokenizePairs(candidates, references);
  if (metrics.some((m) => m.startsWith("bleu"))) {
    const bleu = bleuFromTokens(pairs);
    for (const m of metrics) if (m in bleu) out[m] = bleu[m as keyof typeof bleu];
  }
  if (metrics.includes("cider")) out.cider = ciderDFromTokens(pairs).score;
  if (metrics.includes("rougeL")) out.rougeL = rougeLFromTokens(pairs).score;
  if (metrics.includes("unigram_bleu")) {
    let sum = 0;
    for (const p of pairs) {
      sum += unigramBleu(lookup(candidates, p.id)!, lookup(references, p.id)![0]);
    }
    out.unigram_bleu = pairs.length ? sum / pairs.length : 0;
  }
  return out;
}

/**
 * The trivial captioner's caption: the most frequent training caption (after the COCO
 * tokenisation, so `<START>`/`<END>`/`<NULL>`, case and punctuation do not split counts).
 * Ties go to the caption that reached the count first. Captioning every image with it gives the baseline
 * row of a report.
 * @param trainCaptions The training captions, as text.
 * @returns The most frequent caption, its tokens joined by spaces ("" when there are none).
 *
 * @example
 * ```ts
 * import { mostFrequentCaptionBaseline } from "./mod.ts";
 * console.log(mostFrequentCaptionBaseline(["<START> a cat <END>", "a dog", "A cat."])); // a cat
 * ```
 */
export function mostFrequentCaptionBaseline(trainCaptions: Iterable<string>): string {
  const counts = new Map<string, number>();
  let best = "", bestCount = 0;
  for (const caption of trainCaptions) {
    const key = tokenizeCaption(caption).join(" ");
    if (key === "") continue;
    const c = (counts.get(key) ?? 0) + 1;
    counts.set(key, c);
    if (c > bestCount) [best, bestCount] = [key, c];
  }
  return best;
}

/**
 * Captions as a set of their COCO tokenisations, to tell a novel caption from a copy.
 * @param captions The captions (e.g. the training split's), as text.
 * @returns Each caption's tokens joined by spaces.
 *
 * @example
 * ```ts
 * import { captionSet } from "./mod.ts";
 * console.log(captionSet(["<START> A cat. <END>"]).has("a cat")); // true
 * ```
 */
export function captionSet(captions: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const c of captions) out.add(tokenizeCaption(c).join(" "));
  return out;
}

/**
 * The caption diagnostics of generated captions, tokenised the COCO way: vocabulary used,
 * the fraction of novel captions, mean length, the fraction repeating a trigram.
 * @param captions The captions, as text.
 * @param training The training captions, from {@linkcode captionSet}.
 * @returns The diagnostics.
 *
 * @example
 * ```ts
 * import { captionDiagnostics, captionSet } from "./mod.ts";
 * const d = captionDiagnostics(["a cat", "a dog on a dog on"], captionSet(["a cat"]));
 * console.log(d.novel, d.repeatedTrigrams); // 0.5 0.5
 * ```
 */
export function captionDiagnostics(
  captions: readonly string[],
  training: ReadonlySet<string>,
): CaptionDiagnostics {
  return diagnoseTokens(captions.map(tokenizeCaption), training);
}
