/**
 * Evaluation of a captioning model on a split: caption a fixed subset of images (greedy; beam
 * search when beamSize > 1; sampling when asked, each with the decoding controls), score them
 * against all references of each image with the COCO metrics — corpus scores and each
 * image's — measure the caption diagnostics, and score the trivial most-frequent-caption
 * baseline beside them.
 *
 * References: every raw human caption of an image when the dataset has them (an imported
 * dataset: untruncated, without `<UNK>`, as the COCO evaluation scores), else its encoded
 * captions decoded (the CS231n files and the synthetic dataset: truncated, with `<UNK>`).
 *
 * Dimension legend: N images, D feature, L maxLength.
 * @module
 */
import { type FloatDType, gatherRows, type Tensor } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { decodeCaptions } from "../../model/decode.ts";
import type { DecodeMethod, SampleOptions, SampleResult } from "../../model/sampling.ts";
import {
  type CaptionDiagnostics,
  captionDiagnostics,
  captionSet,
  evaluateCaptions,
  type Metric,
  type MetricScores,
  mostFrequentCaptionBaseline,
} from "./metrics/mod.ts";
import { scoreCaptions } from "./metrics/per_image.ts";
import { type CaptionData, type Split, splitOf } from "../data/caption_data.ts";
import { InputError } from "../errors.ts";

/** A function that captions images (the model itself, or the worker pool). */
export type Captioner = (
  features: Tensor<FloatDType>,
  options: SampleOptions,
) => SampleResult | Promise<SampleResult>;

/** The decoders an evaluation scores: greedy decoding, beam search and sampling. */
export type DecoderName = DecodeMethod;

/**
 * The decoding controls of an evaluation (the experiment's `evaluate` section): those of
 * beam search, those of sampling, and those every decoder obeys.
 */
export interface DecodingControls {
  /** Beam captions kept per image, best first (default 1). */
  nBest?: number;
  /** How beam search ranks finished captions of different lengths (default "none"). */
  lengthPenalty?: SampleOptions["lengthPenalty"];
  /** The GNMT length penalty's α (default 0.6). */
  lengthAlpha?: number;
  /** Diverse beam search: groups (default 1). */
  beamGroups?: number;
  /** Diverse beam search: strength (default 0.5). */
  diversity?: number;
  /** Beam search without greedy's caption among the candidates (default false). */
  plainBeam?: boolean;
  /** Never repeat a trigram (every decoder; default false). */
  blockTrigrams?: boolean;
  /** Never write `<UNK>` (every decoder; default false). */
  suppressUnk?: boolean;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Sampling: the k likeliest words only (default 0 = all). */
  topK?: number;
  /** Sampling: the nucleus of probability p (default 1 = all). */
  topP?: number;
  /** Sampling seed (default 0). */
  seed?: number;
}

/**
 * The sampling options of one decoder: the controls that decoder reads.
 * @param decoder "greedy", "beam" or "sample".
 * @param beamSize The beam width (beam search).
 * @param maxLength The longest caption.
 * @param controls The decoding controls.
 * @returns Options for `sampleCaptions` (or a pool's `sample`).
 *
 * @example
 * ```ts
 * import { decoderOptions } from "./evaluate.ts";
 * console.log(decoderOptions("greedy", 3, 16, { blockTrigrams: true, topK: 5 }));
 * // { method: "greedy", maxLength: 16, blockTrigrams: true }
 * ```
 */
export function decoderOptions(
  decoder: DecoderName,
  beamSize: number,
  maxLength: number,
  controls: DecodingControls = {},
): SampleOptions {
  const c = controls;
  const pick = (keys: (keyof DecodingControls)[]) =>
    Object.fromEntries(keys.filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));
  const every = pick(["blockTrigrams", "suppressUnk"]);
  if (decoder === "greedy") return { method: "greedy", maxLength, ...every };
  if (decoder === "beam") {
    return {
      method: "beam",
      beamSize,
      maxLength,
      ...pick(["nBest", "lengthPenalty", "lengthAlpha", "beamGroups", "diversity", "plainBeam"]),
      ...every,
    };
  }
  return {
    method: "sample",
    maxLength,
    ...pick(["temperature", "topK", "topP", "seed"]),
    ...every,
  };
}

/** Options of {@linkcode evaluateSplit}. */
export interface EvaluateOptions {
  /** The split to evaluate. */
  split: Split;
  /** How many images (the first ones that have captions, in caption order). */
  numImages: number;
  /** Beam width; 1 = greedy only. */
  beamSize: number;
  /** The longest caption generated. */
  maxLength: number;
  /** The metrics to compute. */
  metrics: readonly Metric[];
  /** Captions images (default: the model's own sampling in this thread). */
  captioner?: Captioner;
  /** The decoding controls (default: none). */
  decoding?: DecodingControls;
  /** Also score one sampled caption per image (default false). */
  sample?: boolean;
  /** Measure the caption diagnostics, against the training captions (default true). */
  diagnostics?: boolean;
}

/** One captioned image. */
export interface CaptionedImage {
  /** Its feature row in the split. */
  imageIdx: number;
  /** Its id, when the dataset has image ids (an imported dataset's). */
  imageId?: number | string;
  /** Its URL (from the URL file), when known. */
  url?: string;
  /** The greedy caption. */
  greedy: string;
  /** The beam-search caption, when beamSize > 1. */
  beam?: string;
  /** The n best beam captions, best first, when nBest > 1. */
  beamNBest?: string[];
  /** The sampled caption, when sampling is scored. */
  sample?: string;
  /** All reference captions of the image. */
  references: string[];
  /** The image's own scores of each caption (see metrics/per_image.ts). */
  scores?: { greedy: MetricScores; beam?: MetricScores; sample?: MetricScores };
}

/** The evaluation of one split. */
export interface SplitEvaluation {
  /** The split. */
  split: Split;
  /** Images evaluated. */
  numImages: number;
  /** Scores of the greedy captions. */
  greedy: MetricScores;
  /** Scores of the beam captions, when beamSize > 1. */
  beam?: MetricScores;
  /** Scores of the sampled captions, when sampling is scored. */
  sample?: MetricScores;
  /** The caption diagnostics of each decoder (when measured). */
  diagnostics?: Partial<Record<DecoderName, CaptionDiagnostics>>;
  /** Scores of the trivial captioner (the most frequent training caption for every image). */
  baseline: MetricScores;
  /** The baseline's caption. */
  baselineCaption: string;
  /** Every image's captions. */
  images: CaptionedImage[];
}

/** Words of a decoded caption without the special tokens. */
export function cleanCaption(text: string): string {
  return text.split(" ").filter((w) =>
    w !== "<START>" && w !== "<END>" && w !== "<NULL>" && w !== ""
  )
    .join(" ");
}

/**
 * The reference captions of every image of a split that has captions, as text: its raw human
 * captions when the data has them, else its encoded captions decoded.
 * @param data The data dictionary.
 * @param split The split.
 * @returns image index → its references; and the images in order of first caption.
 */
export function referencesByImage(
  data: CaptionData,
  split: Split,
): { refs: Map<number, string[]>; order: number[] } {
  const { captions: caps, imageIdxs: idxs, references: raw } = splitOf(data, split);
  const texts = raw ? [] : decodeCaptions(caps, data.idx_to_word).map(cleanCaption);
  const refs = new Map<number, string[]>(), order: number[] = [];
  for (let i = 0; i < idxs.shape[0]; i++) {
    const img = idxs.data[i];
    let list = refs.get(img);
    if (!list) {
      list = raw ? raw[img] : [];
      refs.set(img, list);
      order.push(img);
    }
    if (!raw) list.push(texts[i]);
  }
  return { refs, order };
}

/**
 * The trivial captioner's caption: the most frequent training caption.
 * @param data The data dictionary.
 * @returns The caption text.
 */
export function baselineCaption(data: CaptionData): string {
  return mostFrequentCaptionBaseline(
    decodeCaptions(data.train_captions, data.idx_to_word).map(cleanCaption),
  );
}

/**
 * Captions a fixed subset of a split and scores it, with the baseline beside it.
 * @param model The model.
 * @param data The data dictionary.
 * @param options Which split, how many images, decoding and metrics.
 * @returns Scores and captions.
 *
 * @example
 * ```ts ignore
 * const result = await evaluateSplit(model, data, { split: "val", numImages: 500, beamSize: 2, maxLength: 30, metrics: ["bleu4", "cider"] });
 * console.log(result.greedy.cider, result.baseline.cider);
 * ```
 */
export async function evaluateSplit(
  model: CaptioningModel<FloatDType>,
  data: CaptionData,
  options: EvaluateOptions,
): Promise<SplitEvaluation> {
  const { split, beamSize, maxLength, metrics } = options;
  const { features: feats, urls, imageIds } = splitOf(data, split);
  const { refs, order } = referencesByImage(data, split);
  if (order.length === 0) {
    throw new InputError(
      `Cannot evaluate the ${split} split: none of its images has a reference caption (it ` +
        `was imported without them); caption its images with deno task caption instead`,
    );
  }
  const images = order.slice(0, options.numImages);
  const unloaded = images.find((img) => img >= feats.shape[0]);
  if (unloaded !== undefined) {
    throw new RangeError(
      `Cannot evaluate ${split} image ${unloaded}: only ${feats.shape[0]} feature rows are ` +
        `loaded; lower evaluate.numImages`,
    );
  }
  const features = gatherRows(feats, images);
  const caption = options.captioner ??
    ((f: Tensor<FloatDType>, o: SampleOptions) => model.sampleWithScores(f, o));
  const decode = (r: SampleResult) => decodeCaptions(r.captions, model.idxToWord).map(cleanCaption);
  const run = async (decoder: DecoderName) =>
    decode(await caption(features, decoderOptions(decoder, beamSize, maxLength, options.decoding)));
  const decoders: DecoderName[] = [
    "greedy",
    ...(beamSize > 1 ? ["beam" as const] : []),
    ...(options.sample ? ["sample" as const] : []),
  ];
  const texts: Partial<Record<DecoderName, string[]>> = {};
  for (const d of decoders) texts[d] = await run(d);
  // With nBest > 1, beam search returns m captions per image: the first is the best.
  const m = texts.beam ? texts.beam.length / images.length : 1;
  const nBest = m > 1 ? texts.beam : undefined;
  if (nBest) texts.beam = images.map((_, i) => nBest[i * m]);
  const references = new Map(images.map((img) => [img, refs.get(img)!]));
  const byImage = (t: string[]) => new Map(images.map((img, i) => [img, t[i]]));
  const base = baselineCaption(data);
  const scored: Partial<Record<DecoderName, ReturnType<typeof scoreCaptions>>> = {};
  for (const d of decoders) scored[d] = scoreCaptions(byImage(texts[d]!), references, metrics);
  const training = options.diagnostics === false ? null : trainingCaptions(data);
  const perImage = (img: number) =>
    Object.fromEntries(decoders.map((d) => [d, scored[d]!.perImage.get(String(img))!]));
  return {
    split,
    numImages: images.length,
    greedy: scored.greedy!.corpus,
    ...(scored.beam ? { beam: scored.beam.corpus } : {}),
    ...(scored.sample ? { sample: scored.sample.corpus } : {}),
    ...(training
      ? {
        diagnostics: Object.fromEntries(
          decoders.map((d) => [d, captionDiagnostics(texts[d]!, training)]),
        ),
      }
      : {}),
    baseline: evaluateCaptions(byImage(images.map(() => base)), references, metrics),
    baselineCaption: base,
    images: images.map((img, i) => ({
      imageIdx: img,
      ...(imageIds ? { imageId: imageIds[img] } : {}),
      ...(urls ? { url: urls[img] } : {}),
      greedy: texts.greedy![i],
      ...(texts.beam ? { beam: texts.beam[i] } : {}),
      ...(nBest ? { beamNBest: nBest.slice(i * m, (i + 1) * m) } : {}),
      ...(texts.sample ? { sample: texts.sample[i] } : {}),
      references: refs.get(img)!,
      scores: perImage(img) as NonNullable<CaptionedImage["scores"]>,
    })),
  };
}

/** The training captions of a dictionary, tokenised, computed once per dictionary. */
const TRAINING_CAPTIONS = new WeakMap<CaptionData, Set<string>>();

function trainingCaptions(data: CaptionData): Set<string> {
  let set = TRAINING_CAPTIONS.get(data);
  if (set === undefined) {
    set = captionSet(decodeCaptions(data.train_captions, data.idx_to_word).map(cleanCaption));
    TRAINING_CAPTIONS.set(data, set);
  }
  return set;
}

/**
 * A small text table of an evaluation: baseline, greedy, beam and sample rows, then the
 * caption diagnostics.
 * @param ev The evaluation.
 * @returns Lines to print.
 */
export function formatEvaluation(ev: SplitEvaluation): string {
  const table = formatScoreTable(`Evaluation on ${ev.split} (${ev.numImages} images):`, [
    ["baseline", ev.baseline],
    ["greedy", ev.greedy],
    ...(ev.beam ? [["beam", ev.beam] as [string, MetricScores]] : []),
    ...(ev.sample ? [["sample", ev.sample] as [string, MetricScores]] : []),
  ]);
  const diagnostics = Object.entries(ev.diagnostics ?? {}).map(([d, x]) =>
    `  ${d.padEnd(10)}${x.vocabulary} words used, ${(100 * x.novel).toFixed(1)}% novel, ` +
    `mean length ${x.meanLength.toFixed(2)}, ${
      (100 * x.repeatedTrigrams).toFixed(1)
    }% repeat a trigram`
  );
  return diagnostics.length ? [table, "Caption diagnostics:", ...diagnostics].join("\n") : table;
}

/**
 * A title and one row of scores per captioner, the metrics of the last row as the columns.
 * @param title The first line.
 * @param rows Each captioner's label and scores.
 * @returns Lines to print.
 *
 * @example
 * ```ts
 * import { formatScoreTable } from "./evaluate.ts";
 * console.log(formatScoreTable("Scores:", [["baseline", { cider: 0.1 }], ["model", { cider: 0.61 }]]));
 * // Scores:
 * //   baseline  cider 0.100
 * //   model     cider 0.610
 * ```
 */
export function formatScoreTable(
  title: string,
  rows: readonly (readonly [string, MetricScores])[],
): string {
  const names = Object.keys(rows.at(-1)?.[1] ?? {}) as Metric[];
  const row = (label: string, s: MetricScores) =>
    `  ${label.padEnd(10)}` + names.map((n) => `${n} ${formatScore(s[n])}`).join("  ");
  return [title, ...rows.map(([label, s]) => row(label, s))].join("\n");
}

/**
 * A score with three decimals, or "-" when absent.
 * @param v The score.
 * @returns The text.
 */
export function formatScore(v: number | undefined): string {
  return v === undefined ? "-" : v.toFixed(3);
}
