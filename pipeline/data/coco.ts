/**
 * The in-memory COCO captioning loader: the exercise's `load_coco_data` and
 * `sample_coco_minibatch`, reading the HDF5 files with h5wasm and checking them first. It
 * reads the CS231n COCO files, the synthetic dataset and imported datasets alike (see
 * dataset_layout.ts). For training at scale without holding the features in memory, see
 * `CocoStream` in {@link ./stream/coco_stream.ts}.
 *
 * Dimension letters: N caption rows, T+1 ids per row (17 in the CS231n files), I images,
 * D feature dimension (CS231n: 512 with PCA features, 4096 without), B batch size.
 * @module
 */
import { Rng } from "../../layers/random.ts";
import { gatherRows } from "../../layers/tensor.ts";
import type { Minibatch } from "../../model/minibatch.ts";
import { drawBatchIndices } from "./batches.ts";
import {
  type CaptionData,
  gatherMinibatch,
  type LoadedCaptionData,
  requireCaptions,
  type Split,
  SPLITS,
} from "./caption_data.ts";
import { openCocoFiles } from "./coco_files.ts";
import { checkFiniteFeatures, featuresDatasetName, loadSplitImages } from "./dataset_checks.ts";

/** Options of {@linkcode loadCocoData}. */
export interface LoadCocoOptions {
  /** The dataset directory (default `datasets/coco_captioning`): CS231n files or imported. */
  baseDir?: string;
  /** Keep a random subset of this many train captions (drawn with replacement, as the exercise). */
  maxTrain?: number;
  /** CS231n files: load the 512-d `_pca` features (default true) or the 4096-d ones. */
  pcaFeatures?: boolean;
  /** The generator (or seed) for the `maxTrain` subset (default seed 0). */
  rng?: Rng | number;
}

/**
 * Loads the COCO captioning data into memory, checking every file first (shapes, dtypes,
 * word ids inside the vocabulary, image indices inside the feature rows, URL counts). An
 * imported dataset also gives its test split, image ids and raw references.
 * @param options Where the data is, the train subset, and which features.
 * @returns The exercise's dictionary, with every split and its URLs.
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
export async function loadCocoData(options: LoadCocoOptions = {}): Promise<LoadedCaptionData> {
  const { baseDir = "datasets/coco_captioning", maxTrain, pcaFeatures = true } = options;
  const files = await openCocoFiles(baseDir, pcaFeatures);
  const data: Partial<Record<string, unknown>> = {
    idx_to_word: files.vocab.idx_to_word,
    word_to_idx: files.vocab.word_to_idx,
  };
  try {
    for (const split of files.layout.splits) {
      data[`${split}_captions`] = files.captions.read(`${split}_captions`, "int32");
      data[`${split}_image_idxs`] = files.captions.read(`${split}_image_idxs`, "int32");
      const features = files.features[split]!.read("features", "float32");
      checkFiniteFeatures(
        features.data,
        features.shape[1],
        featuresDatasetName(files.features[split]!.path),
      );
      data[`${split}_features`] = features;
    }
  } finally {
    files.close();
  }
  for (const split of files.layout.splits) {
    const images = await loadSplitImages(files.layout, split, files.numImages[split]!);
    data[`${split}_urls`] = images.urls;
    if (images.ids) data[`${split}_image_ids`] = images.ids;
    if (images.references) data[`${split}_references`] = images.references;
  }
  return subsample(data as unknown as LoadedCaptionData, maxTrain, options.rng);
}

/** The dictionary with a random subset of `maxTrain` train captions, as the exercise's `max_train`. */
function subsample(
  data: LoadedCaptionData,
  maxTrain: number | undefined,
  seed: Rng | number | undefined,
): LoadedCaptionData {
  if (maxTrain !== undefined) {
    if (!Number.isInteger(maxTrain) || maxTrain < 1) {
      throw new RangeError(
        `Cannot load COCO data: maxTrain must be a positive integer, got ${maxTrain}`,
      );
    }
    requireCaptions(data, "train", "the data", "maxTrain");
    const rng = typeof seed === "object" ? seed : new Rng(seed ?? 0);
    // np.random.randint(num_train, size=max_train): uniform, with replacement.
    const mask = drawBatchIndices(rng, data.train_captions.shape[0], maxTrain);
    data.train_captions = gatherRows(data.train_captions, mask);
    data.train_image_idxs = gatherRows(data.train_image_idxs, mask);
  }
  return data;
}

/**
 * Samples a random minibatch (uniform, with replacement), as the exercise's
 * `sample_coco_minibatch`.
 * @param data The loaded data.
 * @param options `batchSize` (default 100), `split` (default `"train"`), `rng` (generator or seed, default 0).
 * @returns The captions, features, the caption rows drawn, their images and URLs.
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
  data: CaptionData,
  options: { batchSize?: number; split?: Split; rng?: Rng | number } = {},
): Minibatch {
  const { batchSize = 100, split = "train" } = options;
  if (!(SPLITS as readonly string[]).includes(split)) {
    throw new RangeError(
      `Cannot sample a minibatch: split must be "train", "val" or "test", got "${split}"`,
    );
  }
  const rng = typeof options.rng === "object" ? options.rng : new Rng(options.rng ?? 0);
  const size = data[`${split}_captions`]?.shape[0] ?? 0;
  return gatherMinibatch(data, split, drawBatchIndices(rng, size, batchSize));
}
