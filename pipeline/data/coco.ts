/**
 * The in-memory COCO captioning loader: the exercise's `load_coco_data` and
 * `sample_coco_minibatch`, reading the HDF5 files with h5wasm and checking them first.
 * For training at scale without holding the features in memory, see `CocoStream` in
 * {@link ./stream/coco_stream.ts}.
 *
 * Dimension letters: N caption rows, T = 17 tokens per row, I images, D feature dimension
 * (512 with PCA features, 4096 without), B batch size.
 * @module
 */
import { Rng } from "../../layers/random.ts";
import { Tensor } from "../../layers/tensor.ts";
import {
  CAPTION_LENGTH,
  CAPTIONS_FILE,
  drawBatchIndices,
  featuresFile,
  loadUrls,
  loadVocab,
  requireFile,
  type Split,
  validateCaptions,
  validateFeatures,
} from "./coco_layout.ts";
import { H5File } from "../io/h5.ts";

/** The exercise's data dictionary (same keys). */
export interface CocoData {
  /** Caption rows of the train split: (N, 17) int32. */
  train_captions: Tensor<"int32">;
  /** The train image (feature row) of each caption: (N,) int32. */
  train_image_idxs: Tensor<"int32">;
  /** Caption rows of the val split: (M, 17) int32. */
  val_captions: Tensor<"int32">;
  /** The val image of each caption: (M,) int32. */
  val_image_idxs: Tensor<"int32">;
  /** Train image features: (I, D) float32. */
  train_features: Tensor<"float32">;
  /** Val image features: (I_val, D) float32. */
  val_features: Tensor<"float32">;
  /** Word of each id. */
  idx_to_word: string[];
  /** Id of each word. */
  word_to_idx: Record<string, number>;
  /** URL (or path relative to the dataset directory) of each train image. */
  train_urls: string[];
  /** URL (or relative path) of each val image. */
  val_urls: string[];
}

/** Options of {@linkcode loadCocoData}. */
export interface LoadCocoOptions {
  /** The dataset directory (default `datasets/coco_captioning`). */
  baseDir?: string;
  /** Keep a random subset of this many train captions (drawn with replacement, as the exercise). */
  maxTrain?: number;
  /** Load the 512-d `_pca` features (default true) or the 4096-d ones. */
  pcaFeatures?: boolean;
  /** The generator (or seed) for the `maxTrain` subset (default seed 0). */
  rng?: Rng | number;
}

/**
 * Loads the COCO captioning data into memory, checking every file first (shapes, dtypes,
 * word ids inside the vocabulary, image indices inside the feature rows, URL counts).
 * @param options Where the data is, the train subset, and which features.
 * @returns The exercise's dictionary.
 * @throws InputError naming the file, the dataset and what to do.
 *
 * @example
 * ```ts
 * import { loadCocoData } from "./coco.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const baseDir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir: baseDir, numTrain: 20, numVal: 5, images: false });
 * const data = await loadCocoData({ baseDir, maxTrain: 50 });
 * console.assert(data.train_captions.shape[0] === 50 && data.train_features.shape[1] === 512);
 * ```
 */
export async function loadCocoData(options: LoadCocoOptions = {}): Promise<CocoData> {
  const { baseDir = "datasets/coco_captioning", maxTrain, pcaFeatures = true } = options;
  const vocab = await loadVocab(baseDir);
  const V = vocab.idx_to_word.length;
  const capPath = `${baseDir}/${CAPTIONS_FILE}`;
  const features: Partial<Record<Split, Tensor<"float32">>> = {};
  for (const split of ["train", "val"] as const) {
    const path = `${baseDir}/${featuresFile(split, pcaFeatures)}`;
    await requireFile(path);
    const f = await H5File.open(path);
    try {
      validateFeatures(f, pcaFeatures);
      features[split] = f.read("features", "float32");
    } finally {
      f.close();
    }
  }
  await requireFile(capPath);
  const cf = await H5File.open(capPath);
  const caps: Partial<Record<string, Tensor<"int32">>> = {};
  try {
    for (const split of ["train", "val"] as const) {
      validateCaptions(cf, split, V, features[split]!.shape[0]);
      caps[`${split}_captions`] = cf.read(`${split}_captions`, "int32");
      caps[`${split}_image_idxs`] = cf.read(`${split}_image_idxs`, "int32");
    }
  } finally {
    cf.close();
  }
  const data: CocoData = {
    train_captions: caps.train_captions!,
    train_image_idxs: caps.train_image_idxs!,
    val_captions: caps.val_captions!,
    val_image_idxs: caps.val_image_idxs!,
    train_features: features.train!,
    val_features: features.val!,
    idx_to_word: vocab.idx_to_word,
    word_to_idx: vocab.word_to_idx,
    train_urls: await loadUrls(baseDir, "train", features.train!.shape[0]),
    val_urls: await loadUrls(baseDir, "val", features.val!.shape[0]),
  };
  if (maxTrain !== undefined) {
    if (!Number.isInteger(maxTrain) || maxTrain < 1) {
      throw new RangeError(
        `Cannot load COCO data: maxTrain must be a positive integer, got ${maxTrain}`,
      );
    }
    const rng = typeof options.rng === "object" ? options.rng : new Rng(options.rng ?? 0);
    // np.random.randint(num_train, size=max_train): uniform, with replacement.
    const mask = drawBatchIndices(rng, data.train_captions.shape[0], maxTrain);
    data.train_captions = gatherRows(data.train_captions, mask);
    data.train_image_idxs = gatherRows(data.train_image_idxs, mask);
  }
  return data;
}

/**
 * Rows of a tensor by index (numpy's `x[idx]` on the first axis).
 * @param x The tensor, rows first.
 * @param idx The row indices.
 * @returns A new tensor of `idx.length` rows.
 *
 * @example
 * ```ts
 * import { gatherRows } from "./coco.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const t = Tensor.fromValues([1, 2, 3, 4, 5, 6], [3, 2], "int32");
 * console.assert(gatherRows(t, [2, 0]).data[0] === 5);
 * ```
 */
export function gatherRows<D extends "int32" | "float32" | "float64">(
  x: Tensor<D>,
  idx: ArrayLike<number>,
): Tensor<D> {
  const row = x.shape.length > 1 ? x.size / x.shape[0] : 1;
  const out = Tensor.zeros([idx.length, ...x.shape.slice(1)], x.dtype);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < x.shape[0])) {
      throw new RangeError(`Cannot gather row ${r}: the tensor has ${x.shape[0]} rows`);
    }
    out.data.set(x.data.subarray(r * row, (r + 1) * row), i * row);
  }
  return out;
}

/** A minibatch, as the exercise's `sample_coco_minibatch` returns it (plus indices). */
export interface CocoMinibatch {
  /** Caption rows: (B, 17) int32. */
  captions: Tensor<"int32">;
  /** The features of each caption's image: (B, D) float32. */
  features: Tensor<"float32">;
  /** The URL of each caption's image. */
  urls: string[];
  /** The caption row drawn for each batch entry. */
  captionIdxs: Int32Array;
  /** The image (feature row) of each batch entry. */
  imageIdxs: Int32Array;
}

/**
 * Samples a random minibatch (uniform, with replacement), as the exercise's
 * `sample_coco_minibatch`.
 * @param data The loaded data.
 * @param options `batchSize` (default 100), `split` (default `"train"`), `rng` (generator or seed, default 0).
 * @returns The captions, features and URLs.
 *
 * @example
 * ```ts
 * import { loadCocoData, sampleCocoMinibatch } from "./coco.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * import { Rng } from "../../layers/random.ts";
 * const baseDir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir: baseDir, numTrain: 20, numVal: 5, images: false });
 * const data = await loadCocoData({ baseDir });
 * const { captions, features } = sampleCocoMinibatch(data, { batchSize: 8, rng: new Rng(1) });
 * console.assert(captions.shape[0] === 8 && features.shape[0] === 8);
 * ```
 */
export function sampleCocoMinibatch(
  data: CocoData,
  options: { batchSize?: number; split?: Split; rng?: Rng | number } = {},
): CocoMinibatch {
  const { batchSize = 100, split = "train" } = options;
  if (split !== "train" && split !== "val") {
    throw new RangeError(
      `Cannot sample a minibatch: split must be "train" or "val", got "${split}"`,
    );
  }
  const rng = typeof options.rng === "object" ? options.rng : new Rng(options.rng ?? 0);
  const captionsAll = data[`${split}_captions`];
  const captionIdxs = drawBatchIndices(rng, captionsAll.shape[0], batchSize);
  const captions = gatherRows(captionsAll, captionIdxs);
  const imageIdxs = gatherRows(data[`${split}_image_idxs`], captionIdxs).data;
  const features = gatherRows(data[`${split}_features`], imageIdxs);
  const urls = Array.from(imageIdxs, (i) => data[`${split}_urls`][i]);
  return { captions, features, urls, captionIdxs, imageIdxs };
}

/** Re-exported so a caller of the in-memory loader needs only this module. */
export { CAPTION_LENGTH };
