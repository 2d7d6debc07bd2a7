/**
 * The up-front validation every loader runs, for either dataset format (see
 * dataset_layout.ts): the vocabulary, the image lists, the caption rows (scanned in bounded
 * blocks) and the features' shape. Imports no HDF5 code itself (it checks files the caller
 * opened), so the main thread of a stream stays light.
 *
 * Dimension letters: N caption rows, T+1 ids per row, I images, D feature dimension.
 * @module
 */
import { basename } from "node:path";
import { InputError } from "../errors.ts";
import { checkRegularFile, readTextFileChecked, UnreadableFile } from "../io/files.ts";
import { parseJson } from "../io/json.ts";
import type { H5File } from "../io/h5.ts";
import type { ImageId, Split } from "./caption_data.ts";
import { featuresFile, SPECIAL_TOKENS, START_ID, type Vocab } from "./coco_layout.ts";
import type { DatasetLayout } from "./dataset_layout.ts";
import { readImageList } from "./image_list.ts";

/** The images of one split: a URL for each, and for an imported dataset ids and references. */
export interface SplitImages {
  /** URL or path relative to the dataset directory, per image. */
  urls: string[];
  /** The image ids (imported datasets; CS231n images are known by their row). */
  ids?: ImageId[];
  /** Every raw human caption of each image (imported datasets). */
  references?: string[][];
}

function missing(layout: DatasetLayout, path: string): InputError {
  return new InputError(`Cannot load ${layout.label}: ${path} does not exist; ${layout.remedy}`);
}

/** The largest vocabulary file read (COCO's is 20 kB; a 100k-word one about 3 MB). */
const MAX_VOCAB_BYTES = 64e6;
/** The largest URL file read (COCO train's is 5 MB). */
const MAX_URLS_BYTES = 512e6;

/** The loader's message for a data file that is missing, not a regular file, or too large. */
function unusable(layout: DatasetLayout, e: UnreadableFile): InputError {
  return e.problem === "missing" ? missing(layout, e.path) : new InputError(
    `Cannot load ${layout.label}: ${e.path}: ${e.detail}; point data.dir at the dataset's files`,
  );
}

/** Reads a small data file whole, refusing anything but a regular file of a sane size. */
async function readDataFile(
  layout: DatasetLayout,
  path: string,
  maxBytes: number,
): Promise<string> {
  try {
    return await readTextFileChecked(path, maxBytes);
  } catch (e) {
    throw e instanceof UnreadableFile ? unusable(layout, e) : e;
  }
}

/**
 * Reads and checks a dataset's vocabulary: both maps present and consistent, and the four
 * special tokens at ids 0-3.
 * @param layout The dataset's layout.
 * @returns The vocabulary.
 * @throws InputError naming the file and what is wrong.
 *
 * @example
 * ```ts
 * import { loadVocab } from "./dataset_checks.ts";
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * console.assert((await loadVocab(await datasetLayout(dir, true))).idx_to_word[1] === "<START>");
 * ```
 */
export async function loadVocab(layout: DatasetLayout): Promise<Vocab> {
  const path = layout.vocabFile, where = `Cannot load ${layout.label}: ${path}`;
  const text = await readDataFile(layout, path, MAX_VOCAB_BYTES);
  let v: Partial<Vocab>;
  try {
    v = parseJson(text) as Partial<Vocab>;
  } catch (e) {
    throw new InputError(`${where}: invalid JSON at ${(e as Error).message}`);
  }
  if (!v || !Array.isArray(v.idx_to_word) || typeof v.word_to_idx !== "object" || !v.word_to_idx) {
    throw new InputError(
      `${where}: expected an object with "idx_to_word" (array) and "word_to_idx" (object)`,
    );
  }
  const { idx_to_word, word_to_idx } = v as Vocab;
  idx_to_word.forEach((w, i) => {
    if (typeof w !== "string" || w === "") {
      throw new InputError(
        `${where}: idx_to_word[${i}] is ${
          JSON.stringify(w)
        }; every word must be a non-empty string`,
      );
    }
  });
  SPECIAL_TOKENS.forEach((tok, i) => {
    if (idx_to_word[i] !== tok) {
      throw new InputError(
        `${where}: idx_to_word[${i}] is ${JSON.stringify(idx_to_word[i])}, expected "${tok}"`,
      );
    }
  });
  if (Object.keys(word_to_idx).length !== idx_to_word.length) {
    throw new InputError(
      `${where}: word_to_idx has ${
        Object.keys(word_to_idx).length
      } words but idx_to_word has ${idx_to_word.length}; the vocabulary file is inconsistent`,
    );
  }
  idx_to_word.forEach((w, i) => {
    if (word_to_idx[w] !== i) {
      throw new InputError(
        `${where}: word_to_idx[${JSON.stringify(w)}] is ${
          word_to_idx[w]
        }, but idx_to_word[${i}] is that word`,
      );
    }
  });
  return { idx_to_word, word_to_idx };
}

/**
 * The images of a split: one URL for each (and, for an imported dataset, ids and raw
 * references), checked to number `numImages` — one per feature row.
 * @param layout The dataset's layout.
 * @param split The split.
 * @param numImages I, the split's feature rows.
 * @param rows Keep only these (distinct) rows, in this order (default: all); bounds memory.
 * @returns The images' URLs, and ids and references when the dataset has them.
 * @throws InputError when the file is missing or lists another number of images.
 *
 * @example
 * ```ts
 * import { loadSplitImages } from "./dataset_checks.ts";
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const images = await loadSplitImages(await datasetLayout(dir, true), "val", 3);
 * console.log(images.urls[2], images.ids); // images/val/000002.svg undefined
 * ```
 */
export async function loadSplitImages(
  layout: DatasetLayout,
  split: Split,
  numImages: number,
  rows?: ArrayLike<number>,
): Promise<SplitImages> {
  const path = layout.imagesFiles[split]!;
  if (layout.format === "imported") {
    await requireFile(layout, path);
    const records = await readImageList(path, numImages, rows, layout);
    return {
      urls: records.map((r) => r.url),
      ids: records.map((r) => r.id),
      references: records.map((r) => r.references),
    };
  }
  const text = await readDataFile(layout, path, MAX_URLS_BYTES);
  const urls = text.split(/\r?\n/);
  while (urls.length && urls[urls.length - 1] === "") urls.pop();
  if (urls.length !== numImages) {
    throw new InputError(
      `Cannot load ${layout.label}: ${path} has ${urls.length} lines but ${
        featuresFile(split, true).replace("_pca", "*")
      } has ${numImages} feature rows; the URL file must have one line per image`,
    );
  }
  return { urls: rows ? Array.from(rows, (r) => urls[r]) : urls };
}

/**
 * Checks that a data file exists and is a regular file before opening it (a FIFO would hang
 * a read), with the loader's message.
 * @param layout The dataset's layout (for the message).
 * @param path The file path.
 * @throws InputError when it is missing or not a regular file.
 *
 * @example
 * ```ts
 * import { requireFile } from "./dataset_checks.ts";
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const layout = await datasetLayout(dir, true);
 * await requireFile(layout, layout.captionsFile);
 * ```
 */
export async function requireFile(layout: DatasetLayout, path: string): Promise<void> {
  try {
    await checkRegularFile(path);
  } catch (e) {
    throw e instanceof UnreadableFile ? unusable(layout, e) : e;
  }
}

/**
 * Checks that feature rows hold only finite numbers: a NaN or infinite feature would make
 * every loss and caption of its image NaN far from where it came from. Every reader of
 * features (the loaders, the streaming reader, the import) checks with it.
 * @param data The rows, (R, D), row-major.
 * @param dim D.
 * @param where The source, for the message, e.g. `f.h5 (dataset "features")` or `f.npy`.
 * @param rowOf The row of the source that row r of `data` is (default: r itself).
 * @throws InputError naming the source, the row and the column.
 *
 * @example
 * ```ts
 * import { checkFiniteFeatures } from "./dataset_checks.ts";
 * checkFiniteFeatures(new Float32Array([0.5, 1, 2, 3]), 2, "features.npy"); // fine
 * ```
 */
export function checkFiniteFeatures(
  data: ArrayLike<number>,
  dim: number,
  where: string,
  rowOf: (r: number) => number = (r) => r,
): void {
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    throw new InputError(
      `${where}: row ${rowOf(Math.floor(i / dim))} holds ${data[i]} at column ${i % dim}; ` +
        `features must be finite numbers (fix or drop that image's features)`,
    );
  }
}

/**
 * How messages name the features dataset of an HDF5 file.
 * @param path The file.
 * @returns E.g. `val2014_vgg16_fc7_pca.h5 (dataset "features")`.
 */
export function featuresDatasetName(path: string): string {
  return `${path} (dataset "features")`;
}

/** Rows scanned per block when validating (bounded memory). */
const SCAN_ROWS = 65536;

/** What {@linkcode validateCaptions} found. */
export interface CaptionsCheck {
  /** Caption rows of the split. */
  rows: number;
  /** Smallest image index. */
  minImageIdx: number;
  /** Largest image index. */
  maxImageIdx: number;
}

/**
 * Checks a split's caption datasets in bounded blocks: dtype int32, shapes (N, T+1) and (N,),
 * every id inside the vocabulary, every row starting with `<START>`, and image indices
 * non-negative and below `numImages`.
 * @param file The open captions file.
 * @param layout The dataset's layout (T+1, and the file names for messages).
 * @param split The split.
 * @param vocabSize The vocabulary size.
 * @param numImages The number of feature rows of the split.
 * @returns The row count and image index range.
 * @throws InputError naming the file, dataset and what to do.
 *
 * @example
 * ```ts
 * import { validateCaptions } from "./dataset_checks.ts";
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { H5File } from "../io/h5.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * const s = await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const layout = await datasetLayout(dir, true);
 * const f = await H5File.open(layout.captionsFile);
 * console.assert(validateCaptions(f, layout, "val", s.vocabSize, 3).rows === 15);
 * f.close();
 * ```
 */
export function validateCaptions(
  file: H5File,
  layout: DatasetLayout,
  split: Split,
  vocabSize: number,
  numImages: number,
): CaptionsCheck {
  const T1 = layout.captionLength, vocabName = basename(layout.vocabFile);
  const capName = `${split}_captions`, idxName = `${split}_image_idxs`;
  const rows = file.expect(capName, "int32", [-1, T1]).shape[0];
  file.expect(idxName, "int32", [rows]);
  const where = `Cannot load ${layout.label}: ${file.path}: dataset`;
  const caps = new Int32Array(Math.min(rows, SCAN_ROWS) * T1);
  for (let r = 0; r < rows; r += SCAN_ROWS) {
    const r1 = Math.min(rows, r + SCAN_ROWS);
    file.readRowsInto(capName, r, r1, caps);
    const n = (r1 - r) * T1;
    for (let i = 0; i < n; i++) {
      const id = caps[i];
      if (id < 0 || id >= vocabSize) {
        const row = r + Math.floor(i / T1);
        throw new InputError(
          `${where} "${capName}" holds word id ${id} at row ${row}, outside the vocabulary of ${vocabSize} words in ${vocabName}; use the vocabulary file that came with the captions`,
        );
      }
      if (i % T1 === 0 && id !== START_ID) {
        const row = r + i / T1;
        throw new InputError(
          `${where} "${capName}" row ${row} starts with id ${id}, not <START> (${START_ID}); the vocabulary ${vocabName} does not match the captions`,
        );
      }
    }
  }
  let min = Infinity, max = -Infinity;
  const idx = new Int32Array(Math.min(rows, SCAN_ROWS * 4));
  for (let r = 0; r < rows; r += idx.length) {
    const r1 = Math.min(rows, r + idx.length);
    file.readRowsInto(idxName, r, r1, idx);
    for (let i = 0; i < r1 - r; i++) {
      const v = idx[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (rows > 0 && (min < 0 || max >= numImages)) {
    const bad = min < 0 ? min : max;
    const features = layout.format === "cs231n"
      ? `${split}2014 features`
      : basename(layout.featuresFiles[split]!);
    throw new InputError(
      `${where} "${idxName}" holds image index ${bad}, outside the ${numImages} rows of ${features}; use the features file that matches the captions`,
    );
  }
  return { rows, minImageIdx: rows ? min : 0, maxImageIdx: rows ? max : -1 };
}

/**
 * Checks a features file: dataset `features`, float32, 2-d, with the layout's width.
 * @param file The open features file.
 * @param layout The dataset's layout (its D).
 * @returns The number of rows and the feature dimension.
 * @throws InputError naming the file and what is wrong.
 *
 * @example
 * ```ts
 * import { validateFeatures } from "./dataset_checks.ts";
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { H5File } from "../io/h5.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const layout = await datasetLayout(dir, true);
 * const f = await H5File.open(layout.featuresFiles.train!);
 * console.assert(validateFeatures(f, layout).dim === 512);
 * f.close();
 * ```
 */
export function validateFeatures(
  file: H5File,
  layout: DatasetLayout,
): { rows: number; dim: number } {
  const info = file.expect("features", "float32", [-1, layout.featureDim]);
  return { rows: info.shape[0], dim: info.shape[1] };
}
