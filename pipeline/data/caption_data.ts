/**
 * The captioning data dictionary (the exercise's `load_coco_data` keys), the one shape every
 * loader returns and every consumer reads: caption rows, the image of each caption, image
 * features, the vocabulary and image URLs, per split; for an imported dataset also a test
 * split, the image ids and every raw human caption of each image.
 *
 * Dimension legend: N caption rows, T+1 caption length (17 in COCO), I images, D image feature.
 * @module
 */
import { gatherRows, type Tensor } from "../../layers/tensor.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { Minibatch } from "../../model/minibatch.ts";
import { InputError } from "../errors.ts";

/** A data split (test: imported datasets that have one). */
export type Split = "train" | "val" | "test";

/** The data splits, in order. */
export const SPLITS: readonly Split[] = ["train", "val", "test"];

/**
 * An image's id: a COCO id, another dataset's number, or a name (public types spell it out as
 * `number | string`).
 */
export type ImageId = number | string;

/** How one split of a dictionary loaded for a streamed run relates to the files. */
export interface SubsetSplitInfo {
  /** K: images with features (`*_features` rows), the first K images in caption order. */
  loadedImages: number;
  /** Distinct images the split's captions refer to in the files. */
  totalImages: number;
  /** Caption rows of the split in the files (train keeps them all; val only those of loaded images). */
  totalCaptions: number;
  /**
   * The feature row (= URL line) in the files of each image index of the dictionary: length I
   * for train (every image keeps an index), K for val.
   */
  imageRows: Int32Array;
  /** Hyperslab reads made to load the K feature rows. */
  featureReads: number;
}

/** The data dictionary, as the exercise's `load_coco_data` returns it (same keys). */
export interface CaptionData {
  /** Caption rows of the train split, (N, T+1) int32. */
  train_captions: Tensor<"int32">;
  /** The train image (feature row) of each caption, (N,) int32. */
  train_image_idxs: Tensor<"int32">;
  /** Train image features, (I, D). */
  train_features: Tensor<FloatDType>;
  /** Caption rows of the val split. */
  val_captions?: Tensor<"int32">;
  /** The val image of each caption. */
  val_image_idxs?: Tensor<"int32">;
  /** Val image features. */
  val_features?: Tensor<FloatDType>;
  /** Caption rows of the test split (imported datasets that have one). */
  test_captions?: Tensor<"int32">;
  /** The test image of each caption. */
  test_image_idxs?: Tensor<"int32">;
  /** Test image features. */
  test_features?: Tensor<FloatDType>;
  /** index → word. */
  idx_to_word: string[];
  /** word → index. */
  word_to_idx: Record<string, number>;
  /** URL (or path relative to the dataset directory) of each train image. */
  train_urls?: string[];
  /** URL (or relative path) of each val image. */
  val_urls?: string[];
  /** URL (or relative path) of each test image. */
  test_urls?: string[];
  /** The id of each train image (imported datasets; else images are known by their index). */
  train_image_ids?: (number | string)[];
  /** The id of each val image. */
  val_image_ids?: (number | string)[];
  /** The id of each test image. */
  test_image_ids?: (number | string)[];
  /**
   * Every raw human caption of each train image (imported datasets): the references
   * evaluation scores against, untruncated and without `<UNK>`. Without them evaluation
   * decodes the encoded captions.
   */
  train_references?: string[][];
  /** Every raw human caption of each val image. */
  val_references?: string[][];
  /** Every raw human caption of each test image. */
  test_references?: string[][];
  /**
   * Present when the dictionary was loaded for a streamed run (see `loadCocoForStreaming`):
   * only the first images of each split have features, and images are numbered by their rank
   * in caption order; this says how each split maps back to the files.
   */
  subset?: { train: SubsetSplitInfo; val: SubsetSplitInfo; test?: SubsetSplitInfo };
}

/**
 * A dictionary that has both splits and their URLs, as the loaders of a dataset directory
 * return it (the same dictionary, with the optional fields known to be there).
 */
export type LoadedCaptionData =
  & CaptionData
  & Required<
    Pick<
      CaptionData,
      "val_captions" | "val_image_idxs" | "val_features" | "train_urls" | "val_urls"
    >
  >;

/** One split of a {@linkcode CaptionData}: its captions, their images, features and URLs. */
export interface SplitData {
  /** (N, T+1) int32. */
  captions: Tensor<"int32">;
  /** (N,) int32. */
  imageIdxs: Tensor<"int32">;
  /** (I, D). */
  features: Tensor<FloatDType>;
  /** One per image, when known. */
  urls?: string[];
  /** One per image, when known. */
  imageIds?: (number | string)[];
  /** Every raw caption of each image, when known. */
  references?: string[][];
}

/**
 * The splits a dictionary has (caption rows, image indices and features all present).
 * @param data The data dictionary.
 * @returns The splits, in order.
 *
 * @example
 * ```ts
 * import { splitsOf } from "./caption_data.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([2, 3], "int32"), train_image_idxs: Tensor.zeros([2], "int32"),
 *   train_features: Tensor.zeros([1, 4], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * console.log(splitsOf(data)); // ["train"]
 * ```
 */
export function splitsOf(data: CaptionData): Split[] {
  return SPLITS.filter((s) =>
    data[`${s}_captions`] && data[`${s}_image_idxs`] && data[`${s}_features`]
  );
}

/**
 * Checks that a dictionary has every split asked for, naming what asked for it.
 * @param data The data dictionary.
 * @param splits The splits needed.
 * @param where What asked, e.g. `"evaluate.splits"` or `"command line: --split"`.
 * @param dir The dataset directory, for the message.
 * @throws InputError naming the split, the dataset and what it has.
 *
 * @example
 * ```ts
 * import { requireSplits } from "./caption_data.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([2, 3], "int32"), train_image_idxs: Tensor.zeros([2], "int32"),
 *   train_features: Tensor.zeros([1, 4], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * try {
 *   requireSplits(data, ["test"], "evaluate.splits", "datasets/mine");
 * } catch (e) {
 *   console.log((e as Error).message); // evaluate.splits: datasets/mine has no "test" split (it has train); …
 * }
 * ```
 */
export function requireSplits(
  data: CaptionData,
  splits: readonly Split[],
  where: string,
  dir: string,
): void {
  const has = splitsOf(data);
  const absent = splits.find((s) => !has.includes(s));
  if (absent === undefined) return;
  throw new InputError(
    `${where}: ${dir} has no "${absent}" split (it has ${has.join(", ")}); ` +
      (absent === "test"
        ? "use val, or import a dataset whose annotations have a test split"
        : `use one of ${has.join(", ")}`),
  );
}

/**
 * One split of the dictionary.
 * @param data The data dictionary.
 * @param split The split.
 * @returns Its arrays.
 * @throws {RangeError} When the dictionary has no such split.
 *
 * @example
 * ```ts
 * import { splitOf } from "./caption_data.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([2, 3], "int32"), train_image_idxs: Tensor.zeros([2], "int32"),
 *   train_features: Tensor.zeros([1, 4], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * console.log(splitOf(data, "train").features.shape); // [1, 4]
 * ```
 */
export function splitOf(data: CaptionData, split: Split): SplitData {
  const captions = data[`${split}_captions`], imageIdxs = data[`${split}_image_idxs`];
  const features = data[`${split}_features`], urls = data[`${split}_urls`];
  const imageIds = data[`${split}_image_ids`], references = data[`${split}_references`];
  if (!captions || !imageIdxs || !features) {
    throw new RangeError(`Cannot use the "${split}" split: the data has none`);
  }
  return {
    captions,
    imageIdxs,
    features,
    ...(urls ? { urls } : {}),
    ...(imageIds ? { imageIds } : {}),
    ...(references ? { references } : {}),
  };
}

/**
 * Gathers the given caption rows of a split with their features, as the exercise's
 * `sample_coco_minibatch` does once it has chosen the rows.
 * @param data The data dictionary.
 * @param split The split.
 * @param rows Caption row indices.
 * @returns The minibatch (with `captionIdxs`, and `urls` when the data has them).
 *
 * @example
 * ```ts
 * import { gatherMinibatch } from "./caption_data.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.fromValues([1, 4, 2, 1, 5, 2], [2, 3], "int32"),
 *   train_image_idxs: Tensor.fromValues([1, 0], [2], "int32"),
 *   train_features: Tensor.fromValues([0, 0, 7, 7], [2, 2], "float32"),
 *   idx_to_word: [], word_to_idx: {},
 * };
 * console.log(gatherMinibatch(data, "train", [0]).features.data); // [7, 7]
 * ```
 */
export function gatherMinibatch(
  data: CaptionData,
  split: Split,
  rows: ArrayLike<number>,
): Minibatch {
  const { captions, imageIdxs: idxs, features, urls } = splitOf(data, split);
  const captionIdxs = Int32Array.from(rows);
  const imageIdxs = gatherRows(idxs, captionIdxs).data;
  for (let i = 0; i < imageIdxs.length; i++) {
    const img = imageIdxs[i];
    if (img < 0 || img >= features.shape[0]) {
      throw new RangeError(
        `Cannot gather caption ${captionIdxs[i]} of ${split}: its image ${img} has no feature ` +
          `row (${features.shape[0]} loaded)`,
      );
    }
  }
  return {
    captions: gatherRows(captions, captionIdxs),
    features: gatherRows(features, imageIdxs),
    imageIdxs,
    captionIdxs,
    ...(urls ? { urls: Array.from(imageIdxs, (i) => urls[i]) } : {}),
  };
}

/**
 * Checks that a split has captions, for the stages that need them (training needs train
 * captions; evaluating or sampling a split needs its captions and images).
 * @param data The data dictionary.
 * @param split The split.
 * @param dir The dataset directory, for the message.
 * @param why What needs them, e.g. "training" or "evaluate.splits".
 * @throws InputError when the split is absent or empty.
 *
 * @example
 * ```ts
 * import { requireCaptions } from "./caption_data.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([2, 3], "int32"), train_image_idxs: Tensor.zeros([2], "int32"),
 *   train_features: Tensor.zeros([1, 4], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * requireCaptions(data, "train", "datasets/x", "training"); // fine
 * ```
 */
export function requireCaptions(data: CaptionData, split: Split, dir: string, why: string): void {
  const n = data[`${split}_captions`]?.shape[0] ?? 0;
  if (n > 0) return;
  throw new InputError(
    `${dir}: the ${split} split has no captions, and ${why} needs some; use a dataset whose ` +
      `${split} split has captions`,
  );
}
