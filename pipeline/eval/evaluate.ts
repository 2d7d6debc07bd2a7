/**
 * Evaluation of a captioning model on a split: caption a fixed subset of images (greedy and,
 * when beamSize > 1, beam search), score them against all references of each image with the
 * COCO metrics, and score the trivial most-frequent-caption baseline beside them.
 *
 * Dimension legend: N images, D feature, L maxLength.
 * @module
 */
import { type FloatDType, gatherRows, type Tensor } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { decodeCaptions } from "../../model/decode.ts";
import type { SampleOptions, SampleResult } from "../../model/sampling.ts";
import {
  evaluateCaptions,
  type Metric,
  type MetricScores,
  mostFrequentCaptionBaseline,
} from "./metrics/mod.ts";
import { type CaptionData, type Split, splitOf } from "../data/caption_data.ts";

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
  /** Its URL (from the URL file), when known. */
  url?: string;
  /** The greedy caption. */
  greedy: string;
  /** The beam-search caption, when beamSize > 1. */
  beam?: string;
  /** All reference captions of the image. */
  references: string[];
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
 * The reference captions of every image of a split (all of its captions), as text.
 * @param data The data dictionary.
 * @param split The split.
 * @returns image index → its captions, in caption order; and the images in order of first caption.
 */
export function referencesByImage(
  data: CaptionData,
  split: Split,
): { refs: Map<number, string[]>; order: number[] } {
  const { captions: caps, imageIdxs: idxs } = splitOf(data, split);
  const texts = decodeCaptions(caps, data.idx_to_word).map(cleanCaption);
  const refs = new Map<number, string[]>(), order: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    const img = idxs.data[i];
    let list = refs.get(img);
    if (!list) {
      list = [];
      refs.set(img, list);
      order.push(img);
    }
    list.push(texts[i]);
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
  const { features: feats, urls } = splitOf(data, split);
  const { refs, order } = referencesByImage(data, split);
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
  return {
    split,
    numImages: images.length,
    greedy: evaluateCaptions(byImage(greedy), references, metrics),
    ...(beam ? { beam: evaluateCaptions(byImage(beam), references, metrics) } : {}),
    baseline: evaluateCaptions(byImage(images.map(() => base)), references, metrics),
    baselineCaption: base,
    images: images.map((img, i) => ({
      imageIdx: img,
      ...(urls ? { url: urls[img] } : {}),
      greedy: greedy[i],
      ...(beam ? { beam: beam[i] } : {}),
      references: refs.get(img)!,
    })),
  };
}

/**
 * A small text table of an evaluation: baseline, greedy and beam rows.
 * @param ev The evaluation.
 * @returns Lines to print.
 */
export function formatEvaluation(ev: SplitEvaluation): string {
  const names = Object.keys(ev.greedy);
  const row = (label: string, s: Record<string, number | undefined>) =>
    `  ${label.padEnd(10)}` + names.map((n) => `${n} ${formatScore(s[n])}`).join("  ");
  return [
    `Evaluation on ${ev.split} (${ev.numImages} images):`,
    row("baseline", ev.baseline),
    row("greedy", ev.greedy),
    ...(ev.beam ? [row("beam", ev.beam)] : []),
  ].join("\n");
}

/**
 * A score with three decimals, or "-" when absent.
 * @param v The score.
 * @returns The text.
 */
export function formatScore(v: number | undefined): string {
  return v === undefined ? "-" : v.toFixed(3);
}
