/**
 * The COCO captioning file layout (file and dataset names, dtypes, special tokens) and its
 * up-front validation, shared by the in-memory loader ({@link ./coco.ts}) and the streaming
 * loader's worker. Imports no HDF5 code itself, so the main thread of a stream stays light.
 * @module
 */
import type { Split } from "./caption_data.ts";
import { InputError } from "../errors.ts";
import { checkRegularFile, readTextFileChecked, UnreadableFile } from "../io/files.ts";
import { parseJson } from "../io/json.ts";
import type { H5File } from "../io/h5.ts";

/** The captions file (both splits). */
export const CAPTIONS_FILE = "coco2014_captions.h5";
/** The vocabulary file. */
export const VOCAB_FILE = "coco2014_vocab.json";
/** Tokens per caption row. */
export const CAPTION_LENGTH = 17;
/** The special tokens, at ids 0-3 of every vocabulary. */
export const SPECIAL_TOKENS = ["<NULL>", "<START>", "<END>", "<UNK>"] as const;
/** `<NULL>` (padding) id. */
export const NULL_ID = 0;
/** `<START>` id. */
export const START_ID = 1;
/** `<END>` id. */
export const END_ID = 2;
/** `<UNK>` id. */
export const UNK_ID = 3;

/**
 * The features file of a split.
 * @param split `"train"` or `"val"`.
 * @param pca The 512-d PCA features (`_pca` file) rather than the 4096-d ones.
 * @returns The file name, e.g. `train2014_vgg16_fc7_pca.h5`.
 *
 * @example
 * ```ts
 * import { featuresFile } from "./coco_layout.ts";
 * console.assert(featuresFile("val", false) === "val2014_vgg16_fc7.h5");
 * ```
 */
export function featuresFile(split: Split, pca: boolean): string {
  return `${split}2014_vgg16_fc7${pca ? "_pca" : ""}.h5`;
}

/**
 * The URL file of a split.
 * @param split `"train"` or `"val"`.
 * @returns The file name, e.g. `train2014_urls.txt`.
 *
 * @example
 * ```ts
 * import { urlsFile } from "./coco_layout.ts";
 * console.assert(urlsFile("train") === "train2014_urls.txt");
 * ```
 */
export function urlsFile(split: Split): string {
  return `${split}2014_urls.txt`;
}

/** The vocabulary, as in `coco2014_vocab.json`. */
export interface Vocab {
  /** Word of each id. */
  idx_to_word: string[];
  /** Id of each word. */
  word_to_idx: Record<string, number>;
}

/**
 * Reads and checks `coco2014_vocab.json`: both maps present and consistent, and the four
 * special tokens at ids 0-3.
 * @param baseDir The dataset directory.
 * @returns The vocabulary.
 * @throws InputError naming the file and what is wrong.
 *
 * @example
 * ```ts
 * import { loadVocab } from "./coco_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * console.assert((await loadVocab(dir)).idx_to_word[1] === "<START>");
 * ```
 */
export async function loadVocab(baseDir: string): Promise<Vocab> {
  const path = `${baseDir}/${VOCAB_FILE}`;
  const text = await readDataFile(path, MAX_VOCAB_BYTES);
  let v: Partial<Vocab>;
  try {
    v = parseJson(text) as Partial<Vocab>;
  } catch (e) {
    throw new InputError(
      `Cannot load COCO data: ${path}: invalid JSON at ${(e as Error).message}`,
    );
  }
  if (!v || !Array.isArray(v.idx_to_word) || typeof v.word_to_idx !== "object" || !v.word_to_idx) {
    throw new InputError(
      `Cannot load COCO data: ${path}: expected an object with "idx_to_word" (array) and "word_to_idx" (object)`,
    );
  }
  const { idx_to_word, word_to_idx } = v as Vocab;
  idx_to_word.forEach((w, i) => {
    if (typeof w !== "string" || w === "") {
      throw new InputError(
        `Cannot load COCO data: ${path}: idx_to_word[${i}] is ${
          JSON.stringify(w)
        }; every word must be a non-empty string`,
      );
    }
  });
  SPECIAL_TOKENS.forEach((tok, i) => {
    if (idx_to_word[i] !== tok) {
      throw new InputError(
        `Cannot load COCO data: ${path}: idx_to_word[${i}] is ${
          JSON.stringify(idx_to_word[i])
        }, expected "${tok}"`,
      );
    }
  });
  if (Object.keys(word_to_idx).length !== idx_to_word.length) {
    throw new InputError(
      `Cannot load COCO data: ${path}: word_to_idx has ${
        Object.keys(word_to_idx).length
      } words but idx_to_word has ${idx_to_word.length}; the vocabulary file is inconsistent`,
    );
  }
  idx_to_word.forEach((w, i) => {
    if (word_to_idx[w] !== i) {
      throw new InputError(
        `Cannot load COCO data: ${path}: word_to_idx[${JSON.stringify(w)}] is ${
          word_to_idx[w]
        }, but idx_to_word[${i}] is that word`,
      );
    }
  });
  return { idx_to_word, word_to_idx };
}

/**
 * Reads a split's URL file and checks it has one line per feature row.
 * @param baseDir The dataset directory.
 * @param split The split.
 * @param numImages The number of feature rows the URLs must match.
 * @returns One URL (or relative path) per image.
 * @throws InputError when the file is missing or its length differs.
 *
 * @example
 * ```ts
 * import { loadUrls } from "./coco_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * console.assert((await loadUrls(dir, "val", 3)).length === 3);
 * ```
 */
export async function loadUrls(
  baseDir: string,
  split: Split,
  numImages: number,
): Promise<string[]> {
  const path = `${baseDir}/${urlsFile(split)}`;
  const text = await readDataFile(path, MAX_URLS_BYTES);
  const urls = text.split(/\r?\n/);
  while (urls.length && urls[urls.length - 1] === "") urls.pop();
  if (urls.length !== numImages) {
    throw new InputError(
      `Cannot load COCO data: ${path} has ${urls.length} lines but ${
        featuresFile(split, true).replace("_pca", "*")
      } has ${numImages} feature rows; the URL file must have one line per image`,
    );
  }
  return urls;
}

/** The largest vocabulary file read (COCO's is 20 kB; a 100k-word one about 3 MB). */
const MAX_VOCAB_BYTES = 64e6;
/** The largest URL file read (COCO train's is 5 MB). */
const MAX_URLS_BYTES = 512e6;

/** Reads a small data file whole, refusing anything but a regular file of a sane size. */
async function readDataFile(path: string, maxBytes: number): Promise<string> {
  try {
    return await readTextFileChecked(path, maxBytes);
  } catch (e) {
    throw e instanceof UnreadableFile ? unusable(e) : e;
  }
}

/** The loader's message for a data file that is missing, not a file, or too large. */
function unusable(e: UnreadableFile): InputError {
  return new InputError(
    e.problem === "missing"
      ? `Cannot load COCO data: ${e.path} does not exist; download the COCO captioning files ` +
        `there, or write a synthetic dataset with: deno task dataset synth --dir <dir>`
      : `Cannot load COCO data: ${e.path}: ${e.detail}; point data.dir at the dataset's files`,
  );
}

/**
 * Checks that a data file exists and is a regular file before opening it, with the loader's
 * message.
 * @param path The file path.
 * @throws InputError when it is missing or not a regular file.
 *
 * @example
 * ```ts
 * import { requireFile } from "./coco_layout.ts";
 * await requireFile(await Deno.makeTempFile());
 * ```
 */
export async function requireFile(path: string): Promise<void> {
  try {
    await checkRegularFile(path);
  } catch (e) {
    throw e instanceof UnreadableFile ? unusable(e) : e;
  }
}

/** Rows scanned per block when validating (bounded memory). */
const SCAN_ROWS = 65536;

/** What {@linkcode validateCaptions} found. */
export interface CaptionsCheck {
  /** Caption rows of the split. */
  rows: number;
  /** Smallest and largest image index. */
  minImageIdx: number;
  /** Largest image index. */
  maxImageIdx: number;
}

/**
 * Checks a split's caption datasets in bounded blocks: dtype int32, shapes (N, 17) and (N,),
 * every id inside the vocabulary, every row starting with `<START>`, and image indices
 * non-negative and below `numImages`.
 * @param file The open captions file.
 * @param split The split.
 * @param vocabSize The vocabulary size.
 * @param numImages The number of feature rows of the split.
 * @returns The row count and image index range.
 * @throws InputError naming the file, dataset and what to do.
 *
 * @example
 * ```ts
 * import { CAPTIONS_FILE, validateCaptions } from "./coco_layout.ts";
 * import { H5File } from "../io/h5.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * const s = await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const f = await H5File.open(`${dir}/${CAPTIONS_FILE}`);
 * console.assert(validateCaptions(f, "val", s.vocabSize, 3).rows === 15);
 * f.close();
 * ```
 */
export function validateCaptions(
  file: H5File,
  split: Split,
  vocabSize: number,
  numImages: number,
): CaptionsCheck {
  const capName = `${split}_captions`, idxName = `${split}_image_idxs`;
  const rows = file.expect(capName, "int32", [-1, CAPTION_LENGTH]).shape[0];
  file.expect(idxName, "int32", [rows]);
  const where = `Cannot load COCO data: ${file.path}: dataset`;
  const caps = new Int32Array(Math.min(rows, SCAN_ROWS) * CAPTION_LENGTH);
  for (let r = 0; r < rows; r += SCAN_ROWS) {
    const r1 = Math.min(rows, r + SCAN_ROWS);
    file.readRowsInto(capName, r, r1, caps);
    const n = (r1 - r) * CAPTION_LENGTH;
    for (let i = 0; i < n; i++) {
      const id = caps[i];
      if (id < 0 || id >= vocabSize) {
        const row = r + Math.floor(i / CAPTION_LENGTH);
        throw new InputError(
          `${where} "${capName}" holds word id ${id} at row ${row}, outside the vocabulary of ${vocabSize} words in ${VOCAB_FILE}; use the vocabulary file that came with the captions`,
        );
      }
      if (i % CAPTION_LENGTH === 0 && id !== START_ID) {
        const row = r + i / CAPTION_LENGTH;
        throw new InputError(
          `${where} "${capName}" row ${row} starts with id ${id}, not <START> (${START_ID}); the vocabulary ${VOCAB_FILE} does not match the captions`,
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
    throw new InputError(
      `${where} "${idxName}" holds image index ${bad}, outside the ${numImages} rows of ${split}2014 features; use the features file that matches the captions`,
    );
  }
  return { rows, minImageIdx: rows ? min : 0, maxImageIdx: rows ? max : -1 };
}

/**
 * Checks a features file: dataset `features`, float32, 2-d, with the expected width.
 * @param file The open features file.
 * @param pca Whether it is a `_pca` file (512 wide) or not (4096 wide).
 * @returns The number of rows and the feature dimension.
 * @throws InputError naming the file and what is wrong.
 *
 * @example
 * ```ts
 * import { featuresFile, validateFeatures } from "./coco_layout.ts";
 * import { H5File } from "../io/h5.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const f = await H5File.open(`${dir}/${featuresFile("train", true)}`);
 * console.assert(validateFeatures(f, true).dim === 512);
 * f.close();
 * ```
 */
export function validateFeatures(file: H5File, pca: boolean): { rows: number; dim: number } {
  const info = file.expect("features", "float32", [-1, pca ? 512 : 4096]);
  return { rows: info.shape[0], dim: info.shape[1] };
}

/**
 * Checks that feature rows hold only finite numbers: a NaN or infinite feature would make
 * every loss and caption of its image NaN far from where it came from.
 * @param data The rows, (R, D), row-major.
 * @param dim D.
 * @param path The features file, for the message.
 * @param rowOf The row of the file that row r of `data` is (default: r itself).
 * @throws InputError naming the file, the row and the value.
 *
 * @example
 * ```ts
 * import { checkFiniteFeatures } from "./coco_layout.ts";
 * checkFiniteFeatures(new Float32Array([0.5, 1, 2, 3]), 2, "features.h5"); // fine
 * ```
 */
export function checkFiniteFeatures(
  data: ArrayLike<number>,
  dim: number,
  path: string,
  rowOf: (r: number) => number = (r) => r,
): void {
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    const row = rowOf(Math.floor(i / dim));
    throw new InputError(
      `Cannot load COCO data: ${path}: dataset "features" row ${row} holds ${data[i]} ` +
        `(column ${i % dim}); fix that image's features or leave the image out`,
    );
  }
}
