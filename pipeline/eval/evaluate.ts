/**
 * Evaluation of a captioning model on a split: caption a fixed subset of images (greedy and,
 * when beamSize > 1, beam search), score them against all references of each image with the
 * COCO metrics — corpus scores and each image's — and score the trivial most-frequent-caption
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
import type { CaptioningRNN } from "../../model/captioning_rnn.ts";
import { decodeCaptions } from "../../model/decode.ts";
import type { SampleOptions, SampleResult } from "../../model/sampling.ts";
import {
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
  /** All reference captions of the image. */
  references: string[];
  /** The image's own scores of each caption (see metrics/per_image.ts). */
  scores?: { greedy: MetricScores; beam?: MetricScores };
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
  model: CaptioningRNN<FloatDType>,
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
  const greedy = decode(await caption(features, { maxLength, beamSize: 1 }));
  const beam = beamSize > 1 ? decode(await caption(features, { maxLength, beamSize })) : undefined;
  const references = new Map(images.map((img) => [img, refs.get(img)!]));
  const byImage = (texts: string[]) => new Map(images.map((img, i) => [img, texts[i]]));
  const base = baselineCaption(data);
  const greedyScores = scoreCaptions(byImage(greedy), references, metrics);
  const beamScores = beam ? scoreCaptions(byImage(beam), references, metrics) : undefined;
  return {
    split,
    numImages: images.length,
    greedy: greedyScores.corpus,
    ...(beamScores ? { beam: beamScores.corpus } : {}),
    baseline: evaluateCaptions(byImage(images.map(() => base)), references, metrics),
    baselineCaption: base,
    images: images.map((img, i) => ({
      imageIdx: img,
      ...(imageIds ? { imageId: imageIds[img] } : {}),
      ...(urls ? { url: urls[img] } : {}),
      greedy: greedy[i],
      ...(beam ? { beam: beam[i] } : {}),
      references: refs.get(img)!,
      scores: {
        greedy: greedyScores.perImage.get(String(img))!,
        ...(beamScores ? { beam: beamScores.perImage.get(String(img))! } : {}),
      },
    })),
  };
}

/**
 * A small text table of an evaluation: baseline, greedy and beam rows.
 * @param ev The evaluation.
 * @returns Lines to print.
 */
export function formatEvaluation(ev: SplitEvaluation): string {
  return formatScoreTable(`Evaluation on ${ev.split} (${ev.numImages} images):`, [
    ["baseline", ev.baseline],
    ["greedy", ev.greedy],
    ...(ev.beam ? [["beam", ev.beam] as [string, MetricScores]] : []),
  ]);
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
