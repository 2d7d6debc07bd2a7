/**
 * Reads minibatches of one split straight from the HDF5 files, never holding a whole
 * dataset of captions or features: the caption rows drawn and the feature rows they point
 * to, by hyperslab reads planned to be few and large (indices sorted, deduplicated, and
 * merged when adjacent or close). Only the small image-index dataset (4 bytes a caption) is
 * held in memory. The streaming loader's worker runs it; it also works on the main thread.
 *
 * Dimension letters: B batch size, T+1 ids per caption row, D feature dimension.
 * @module
 */
import type { Split } from "../caption_data.ts";
import { openCocoFiles } from "../coco_files.ts";
import { checkFiniteFeatures, featuresDatasetName } from "../dataset_checks.ts";
import type { H5File } from "../../io/h5.ts";

/** A read of rows [start, end). */
export type RowRange = [start: number, end: number];

/**
 * Plans reads of the given rows: sorted, deduplicated, and merged into one range when the
 * gap between two wanted rows is at most `maxGap` rows (reading a few unwanted rows is
 * cheaper than another read), with ranges at most `maxRows` long.
 * @param rows The wanted row indices, in any order, with repeats.
 * @param maxGap The most unwanted rows to read to merge two ranges (0 merges only adjacent rows).
 * @param maxRows The longest range.
 * @returns Disjoint ascending ranges covering every wanted row.
 *
 * @example
 * ```ts
 * import { planReads } from "./coco_reader.ts";
 * console.assert(JSON.stringify(planReads([9, 3, 4, 3, 20], 0)) === "[[3,5],[9,10],[20,21]]");
 * ```
 */
export function planReads(rows: ArrayLike<number>, maxGap = 0, maxRows = Infinity): RowRange[] {
  const sorted = Int32Array.from(rows).sort();
  const out: RowRange[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i];
    const last = out[out.length - 1];
    if (last && r < last[1]) continue; // duplicate
    if (last && r - last[1] <= maxGap && r + 1 - last[0] <= maxRows) last[1] = r + 1;
    else out.push([r, r + 1]);
  }
  return out;
}

/** Gap tolerance: merge two reads when the unwanted rows between them total at most this. */
const GAP_BYTES = 32 << 10;
/** The largest single read. */
const MAX_READ_BYTES = 4 << 20;

/** What {@linkcode CocoSplitReader.open} found in the files. */
export interface SplitInfo {
  /** Caption rows of the split. */
  rows: number;
  /** Images (feature rows) of the split. */
  numImages: number;
  /** Feature dimension. */
  featureDim: number;
  /** T+1, ids per caption row. */
  captionLength: number;
  /** Vocabulary size. */
  vocabSize: number;
}

/**
 * One split's caption and feature files, open and validated, read a minibatch at a time.
 *
 * @example
 * ```ts
 * import { CocoSplitReader } from "./coco_reader.ts";
 * import { writeSyntheticDataset } from "../synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 20, numVal: 5, images: false });
 * const r = await CocoSplitReader.open(dir, "train", true);
 * const caps = new Int32Array(2 * 17), feats = new Float32Array(2 * 512), imgs = new Int32Array(2);
 * r.readBatch(new Int32Array([7, 3]), caps, feats, imgs);
 * console.assert(caps[0] === 1 && imgs[0] >= 0);
 * r.close();
 * ```
 */
export class CocoSplitReader {
  /** The split's sizes. */
  readonly info: SplitInfo;
  /** The split. */
  readonly split: Split;
  #captions: H5File;
  #features: H5File;
  #capBuf = new Int32Array(0);
  #imageIdxs: Int32Array;
  #featBuf = new Float32Array(0);

  private constructor(
    split: Split,
    captions: H5File,
    features: H5File,
    info: SplitInfo,
    imageIdxs: Int32Array,
  ) {
    this.split = split;
    this.#imageIdxs = imageIdxs;
    this.#captions = captions;
    this.#features = features;
    this.info = info;
  }

  /**
   * Opens and validates a split: shapes, dtypes, word ids against the vocabulary, and image
   * indices against the feature rows (scanned in bounded blocks).
   * @param baseDir The dataset directory.
   * @param split The split.
   * @param pcaFeatures CS231n files: read the 512-d `_pca` features (true) or the 4096-d ones.
   * @returns The open reader.
   * @throws InputError naming the file, the dataset and what to do.
   */
  static async open(baseDir: string, split: Split, pcaFeatures: boolean): Promise<CocoSplitReader> {
    const files = await openCocoFiles(baseDir, pcaFeatures, [split]);
    try {
      // The image index of every caption stays in memory (4 bytes a caption, 1.6 MB for
      // COCO train): it halves the reads of a batch. Captions and features are streamed.
      const imageIdxs = files.captions.readRows(`${split}_image_idxs`) as Int32Array;
      return new CocoSplitReader(split, files.captions, files.features[split]!, {
        rows: files.numCaptions[split]!,
        numImages: files.numImages[split]!,
        featureDim: files.featureDim,
        captionLength: files.captionLength,
        vocabSize: files.vocab.idx_to_word.length,
      }, imageIdxs);
    } catch (e) {
      files.close();
      throw e;
    }
  }

  /**
   * Reads the caption rows `captionIdxs`, their image indices, and those images' features
   * into the given arrays (batch order kept; repeated rows read once).
   * @param captionIdxs (B,) caption rows to read.
   * @param captions (B, T) destination.
   * @param features (B, D) destination.
   * @param imageIdxs (B,) destination of each caption's image index.
   * @returns The number of hyperslab reads made.
   */
  readBatch(
    captionIdxs: Int32Array,
    captions: Int32Array,
    features: Float32Array,
    imageIdxs: Int32Array,
  ): number {
    const B = captionIdxs.length, T = this.info.captionLength, D = this.info.featureDim;
    const capName = `${this.split}_captions`;
    let reads = 0;
    // Caption rows and their image indices.
    const capRanges = planReads(
      captionIdxs,
      Math.floor(GAP_BYTES / (T * 4)),
      Math.floor(MAX_READ_BYTES / (T * 4)),
    );
    for (const [start, end] of capRanges) {
      const n = end - start;
      if (this.#capBuf.length < n * T) this.#capBuf = new Int32Array(n * T);
      this.#captions.readRowsInto(capName, start, end, this.#capBuf);
      reads++;
      for (let b = 0; b < B; b++) {
        const r = captionIdxs[b];
        if (r < start || r >= end) continue;
        captions.set(this.#capBuf.subarray((r - start) * T, (r - start + 1) * T), b * T);
        imageIdxs[b] = this.#imageIdxs[r];
      }
    }
    // Feature rows of those images.
    const featRanges = planReads(
      imageIdxs,
      Math.floor(GAP_BYTES / (D * 4)),
      Math.floor(MAX_READ_BYTES / (D * 4)),
    );
    for (const [start, end] of featRanges) {
      const n = end - start;
      if (this.#featBuf.length < n * D) this.#featBuf = new Float32Array(n * D);
      this.#features.readRowsInto("features", start, end, this.#featBuf);
      reads++;
      for (let b = 0; b < B; b++) {
        const r = imageIdxs[b];
        if (r < start || r >= end) continue;
        features.set(this.#featBuf.subarray((r - start) * D, (r - start + 1) * D), b * D);
      }
    }
    checkFiniteFeatures(
      features.subarray(0, B * D),
      D,
      featuresDatasetName(this.#features.path),
      (b) => imageIdxs[b],
    );
    return reads;
  }

  /**
   * Closes both files (idempotent).
   */
  close(): void {
    try {
      this.#captions.close();
    } finally {
      this.#features.close();
    }
  }
}
