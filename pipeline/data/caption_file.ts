/**
 * Writing a dataset's HDF5 files the way its loaders read them fastest, shared by the
 * synthetic writer and `dataset import`: caption rows and image indices of a split in the
 * captions file (gzip-compressed chunks), and a split's features (chunks of a few whole rows,
 * uncompressed, so a minibatch's random rows are cheap hyperslab reads).
 *
 * Dimension letters: N caption rows, T+1 ids per row, I images, D feature dimension.
 * @module
 */
import type { H5File, H5LibverBounds } from "../io/h5.ts";
import type { Split } from "./caption_data.ts";

/**
 * The HDF5 file format datasets are written in: 1.10's fixed-array chunk index makes a random
 * row read about twice as fast as the 1.8 B-tree (h5py and any HDF5 >= 1.10 read it).
 */
export const DATASET_LIBVER: H5LibverBounds = ["v110", "v110"];

/**
 * Writes a split's `<split>_captions` (N, T+1) and `<split>_image_idxs` (N,) int32 datasets.
 * @param file The captions file, open for writing.
 * @param split The split.
 * @param captions (N, T+1) caption rows, row-major.
 * @param imageIdxs (N,) the image (feature row) of each caption.
 * @param rowLength T+1, ids per row (needed: a split may have no captions).
 *
 * @example
 * ```ts
 * import { writeCaptionSplit } from "./caption_file.ts";
 * import { H5File } from "../io/h5.ts";
 * const f = await H5File.open(await Deno.makeTempFile(), "w");
 * writeCaptionSplit(f, "val", new Int32Array([1, 5, 2, 1, 6, 2]), new Int32Array([0, 0]), 3);
 * console.log(f.info("val_captions").shape); // [2, 3]
 * f.close();
 * ```
 */
export function writeCaptionSplit(
  file: H5File,
  split: Split,
  captions: Int32Array,
  imageIdxs: Int32Array,
  rowLength: number,
): void {
  const n = imageIdxs.length;
  file.write(`${split}_captions`, { data: captions, shape: [n, rowLength] }, {
    chunks: [32, rowLength],
    gzip: 4,
  });
  file.write(`${split}_image_idxs`, { data: imageIdxs, shape: [n] }, { chunks: [4096], gzip: 4 });
}

/**
 * Creates the (I, D) float32 `features` dataset of a features file, to fill in row blocks
 * with `writeRows`, chunked by whole rows of about 64 KiB.
 * @param file The features file, open for writing.
 * @param rows I.
 * @param dim D.
 *
 * @example
 * ```ts
 * import { createFeatures } from "./caption_file.ts";
 * import { H5File } from "../io/h5.ts";
 * const f = await H5File.open(await Deno.makeTempFile(), "w");
 * createFeatures(f, 10, 2048);
 * console.log(f.info("features").chunks); // [8, 2048]
 * f.close();
 * ```
 */
export function createFeatures(file: H5File, rows: number, dim: number): void {
  const chunkRows = Math.max(1, Math.floor((64 << 10) / (dim * 4)));
  file.createDataset("features", "float32", [rows, dim], { chunks: [chunkRows, dim] });
}
