/**
 * The data dictionary of a streamed run: everything small of every split (caption rows,
 * image indices, vocabulary, URLs) but, of the feature matrices, only the rows that
 * evaluation and validation read — the first images of each split in caption order. Training
 * minibatches come from {@linkcode StreamBatches} instead, so memory stays bounded whatever
 * the size of the features files (the 4096-d COCO train features alone are 1.36 GB).
 *
 * Image numbering. In the returned dictionary an image's index is its rank in caption order
 * (image 0 is the image of caption row 0, image 1 the next image met, ... — the order
 * `referencesByImage` in evaluate.ts lists images in), not its feature row in the files;
 * `subset[split].imageRows` maps it back. With this numbering the loaded feature rows are
 * exactly images `0 .. loadedImages - 1`:
 *
 * - val: only the captions of loaded images are kept (`val_captions`, `val_image_idxs`), so the
 *   solver's validation subset and evaluation cannot reach an image without features.
 * - train: every caption is kept, in file order, with its image index — the trivial baseline of
 *   `evaluateSplit` is the most frequent of ALL train captions, and the run reports their
 *   count. Images at or past `train_features.shape[0]` (= `subset.train.loadedImages`) have no
 *   features here: evaluate the train split with at most that many images, and train from a
 *   {@linkcode StreamBatches}, never from this dictionary's train split.
 *
 * - test (imported datasets that have one): as val.
 *
 * URLs, and an imported dataset's image ids and raw references, follow the same numbering
 * (every image met for train, the loaded images for val and test).
 *
 * Dimension letters: N caption rows, T+1 ids per row (17 in the CS231n files), I images,
 * K loaded images, D feature dimension (CS231n: 512 with PCA features, 4096 without).
 * @module
 */
import { Tensor } from "../../layers/tensor.ts";
import type { LoadedCaptionData, Split, SubsetSplitInfo } from "./caption_data.ts";
import { openCocoFiles } from "./coco_files.ts";
import {
  checkFiniteFeatures,
  featuresDatasetName,
  loadSplitImages,
  type SplitImages,
} from "./dataset_checks.ts";
import { planReads } from "./stream/coco_reader.ts";
import type { H5File } from "../io/h5.ts";

/** Options of {@linkcode loadCocoForStreaming}. */
export interface LoadCocoSubsetOptions {
  /** The dataset directory (default `datasets/coco_captioning`). */
  baseDir?: string;
  /** Load the 512-d `_pca` features (default true) or the 4096-d ones. */
  pcaFeatures?: boolean;
  /**
   * Images whose features to load, per split: the first ones in caption order (fewer when the
   * split has fewer). `train` and `test` default to 0 (not evaluated); `val` should cover both
   * the evaluation and the sample images.
   */
  numImages: { train?: number; val: number; test?: number };
}

/** Merge two feature reads when the unwanted rows between them total at most this. */
const GAP_BYTES = 256 << 10;
/** The largest single feature read (also the size of the read buffer). */
const MAX_READ_BYTES = 8 << 20;

/**
 * Loads the COCO captioning data for a streamed run: caption rows, image indices, vocabulary
 * and URLs of both splits, and the features of only the first `numImages` images of each
 * split in caption order, read with few large hyperslab reads. Checks every file first as
 * {@linkcode loadCocoData} does (same checks in the same order, same messages), scanning the
 * captions in bounded blocks.
 * @param options Where the data is, which features, and how many images per split.
 * @returns The dictionary: pass it to `CaptioningSolver` together with a `StreamBatches`
 *   (`batches`), and to `evaluateSplit` with at most `subset[split].loadedImages` images.
 * @throws InputError naming the file, the dataset and what to do; RangeError for a bad `numImages`.
 *
 * @example
 * ```ts
 * import { loadCocoForStreaming } from "./coco_subset.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const baseDir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir: baseDir, numTrain: 20, numVal: 5, images: false });
 * const data = await loadCocoForStreaming({ baseDir, numImages: { train: 3, val: 2 } });
 * console.assert(data.train_features.shape[0] === 3 && data.val_features.shape[0] === 2);
 * console.assert(data.train_captions.shape[0] === 100); // every train caption
 * ```
 */
export async function loadCocoForStreaming(
  options: LoadCocoSubsetOptions,
): Promise<LoadedCaptionData & { subset: NonNullable<LoadedCaptionData["subset"]> }> {
  const { baseDir = "datasets/coco_captioning", pcaFeatures = true } = options;
  const want: Record<Split, number> = {
    train: options.numImages.train ?? 0,
    val: options.numImages.val,
    test: options.numImages.test ?? 0,
  };
  for (const split of ["train", "val", "test"] as const) {
    const n = want[split];
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot load COCO data: numImages.${split} must be a non-negative integer, got ${n}`,
      );
    }
  }
  // The checks of loadCocoData, in its order, so a broken dataset gets the same message.
  const files = await openCocoFiles(baseDir, pcaFeatures);
  const { layout } = files;
  const data: Record<string, unknown> = {
    idx_to_word: files.vocab.idx_to_word,
    word_to_idx: files.vocab.word_to_idx,
  };
  const subset: Partial<Record<Split, SubsetSplitInfo>> = {};
  try {
    // Everything is checked: number the images, read the features and image lists wanted.
    for (const split of layout.splits) {
      const captions = files.captions.read(`${split}_captions`, "int32");
      const idxs = files.captions.read(`${split}_image_idxs`, "int32");
      const cut = subsetSplit(files.features[split]!, captions, idxs, files.numImages[split]!, {
        loaded: want[split],
        keepAllCaptions: split === "train",
      });
      const images = await loadSplitImages(
        layout,
        split,
        files.numImages[split]!,
        cut.info.imageRows,
      );
      Object.assign(data, {
        [`${split}_captions`]: cut.captions,
        [`${split}_image_idxs`]: cut.imageIdxs,
        [`${split}_features`]: cut.features,
        ...splitImages(split, images),
      });
      subset[split] = cut.info;
    }
  } finally {
    files.close();
  }
  return { ...data, subset } as unknown as LoadedCaptionData & {
    subset: NonNullable<LoadedCaptionData["subset"]>;
  };
}

/** A split's image list as dictionary keys: `<split>_urls`, and ids and references when known. */
function splitImages(split: Split, images: SplitImages): Record<string, unknown> {
  return {
    [`${split}_urls`]: images.urls,
    ...(images.ids ? { [`${split}_image_ids`]: images.ids } : {}),
    ...(images.references ? { [`${split}_references`]: images.references } : {}),
  };
}

/** One split, renumbered and cut down. */
interface SplitSubset {
  captions: Tensor<"int32">;
  imageIdxs: Tensor<"int32">;
  features: Tensor<"float32">;
  info: SubsetSplitInfo;
}

/**
 * Numbers a split's images by first caption, reads the features of the first `loaded`, and
 * keeps all captions (train) or those of loaded images (val).
 */
function subsetSplit(
  file: H5File,
  captions: Tensor<"int32">,
  fileIdxs: Tensor<"int32">,
  numRows: number,
  opts: { loaded: number; keepAllCaptions: boolean },
): SplitSubset {
  const N = fileIdxs.shape[0], T = captions.shape[1];
  // rank[row]: the image's rank in caption order, or -1 before it is met.
  const rank = new Int32Array(numRows).fill(-1);
  const order: number[] = [];
  const ids = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const row = fileIdxs.data[i];
    if (rank[row] < 0) {
      rank[row] = order.length;
      order.push(row);
    }
    ids[i] = rank[row];
  }
  const K = Math.min(opts.loaded, order.length);
  const allRows = Int32Array.from(order);
  const loadedRows = allRows.subarray(0, K);
  const { features, reads } = readFeatureRows(file, loadedRows, file.info("features").shape[1]);
  let keptCaptions = captions, keptIds = new Tensor<"int32">(ids, [N]), imageRows = allRows;
  if (!opts.keepAllCaptions) {
    let M = 0;
    for (let i = 0; i < N; i++) if (ids[i] < K) M++;
    const c = new Int32Array(M * T), d = new Int32Array(M);
    for (let i = 0, m = 0; i < N; i++) {
      if (ids[i] >= K) continue;
      c.set(captions.data.subarray(i * T, (i + 1) * T), m * T);
      d[m++] = ids[i];
    }
    keptCaptions = new Tensor<"int32">(c, [M, T]);
    keptIds = new Tensor<"int32">(d, [M]);
    imageRows = allRows.slice(0, K);
  }
  return {
    captions: keptCaptions,
    imageIdxs: keptIds,
    features,
    info: {
      loadedImages: K,
      totalImages: order.length,
      totalCaptions: N,
      imageRows,
      featureReads: reads,
    },
  };
}

/**
 * Reads the given feature rows (distinct, in any order) into a (K, D) tensor in that order,
 * by hyperslab reads over the sorted rows, merged across small gaps.
 */
function readFeatureRows(
  file: H5File,
  rows: Int32Array,
  dim: number,
): { features: Tensor<"float32">; reads: number } {
  const K = rows.length, rowBytes = dim * 4;
  const features = new Tensor<"float32">(new Float32Array(K * dim), [K, dim]);
  // Output positions sorted by file row, walked along the planned ranges.
  const byRow = Int32Array.from({ length: K }, (_, i) => i).sort((a, b) => rows[a] - rows[b]);
  const maxRows = Math.max(1, Math.floor(MAX_READ_BYTES / rowBytes));
  const ranges = planReads(rows, Math.floor(GAP_BYTES / rowBytes), maxRows);
  // Merged ranges include the unwanted rows between wanted ones: size for the longest.
  const buf = new Float32Array(Math.max(0, ...ranges.map(([s, e]) => e - s)) * dim);
  let p = 0;
  for (const [start, end] of ranges) {
    file.readRowsInto("features", start, end, buf);
    for (; p < K && rows[byRow[p]] < end; p++) {
      const r = rows[byRow[p]] - start;
      features.data.set(buf.subarray(r * dim, (r + 1) * dim), byRow[p] * dim);
    }
  }
  checkFiniteFeatures(features.data, dim, featuresDatasetName(file.path), (r) => rows[r]);
  return { features, reads: ranges.length };
}
