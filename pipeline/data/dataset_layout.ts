/**
 * The two dataset formats recap reads, and how a directory's format is found. Every loader
 * (in memory, for a streamed run, the streaming worker's reader) opens a dataset through its
 * {@linkcode DatasetLayout}, so both formats get the same checks and messages.
 *
 * - **CS231n COCO files** (and the synthetic dataset, written in the same layout): fixed file
 *   names, train and val splits, 17-token caption rows, 512-d PCA or 4096-d fc7 features, one
 *   URL per image; see coco_layout.ts. Image ids are feature row numbers; evaluation's
 *   references are the encoded captions decoded (truncated, with `<UNK>`).
 * - **An imported dataset** (`deno task dataset import`), found by its manifest `dataset.json`:
 *
 * ```
 * dataset.json          the manifest: format, version, D, T+1, splits, import summary, sources
 * vocab.json            { idx_to_word, word_to_idx } (special tokens at ids 0-3)
 * captions.h5           int32 <split>_captions (N, T+1) and <split>_image_idxs (N,) per split
 * <split>_features.h5   float32 features (I, D), one row per image of the split
 * <split>_images.jsonl  one JSON line per feature row: {"id", "file", "url", "references"}
 * ```
 *
 *   with train and val splits, and test when the annotations had one; any D; references are
 *   every raw human caption of an image.
 *
 * Dimension letters: N caption rows, T+1 ids per row, I images, D feature dimension.
 * @module
 */
import { join } from "node:path";
import { InputError } from "../errors.ts";
import { type Split, SPLITS } from "./caption_data.ts";
import {
  CAPTION_LENGTH,
  CAPTIONS_FILE,
  featuresFile,
  urlsFile,
  VOCAB_FILE,
} from "./coco_layout.ts";
import { readTextFileChecked, UnreadableFile } from "../io/files.ts";
import { parseJson } from "../io/json.ts";

/** The largest dataset manifest read (a few hundred bytes). */
const MAX_MANIFEST_BYTES = 1_000_000;

/** The manifest of an imported dataset; its presence makes a directory one. */
export const MANIFEST_FILE = "dataset.json";
/** The manifest's `format` value. */
export const MANIFEST_FORMAT = "recap-dataset";
/** The manifest version this code writes and reads. */
export const MANIFEST_VERSION = 1;

/** The files of an imported dataset, relative to its directory. */
export const IMPORTED_FILES = {
  /** The vocabulary. */
  vocab: "vocab.json",
  /** Caption rows and image indices of every split. */
  captions: "captions.h5",
  /** The features of a split. */
  features: (split: Split): string => `${split}_features.h5`,
  /** The image list (ids, file names, URLs, raw references) of a split. */
  images: (split: Split): string => `${split}_images.jsonl`,
} as const;

/** The entries a dataset of either format may have in its directory (what `--force` replaces). */
export const DATASET_ENTRIES: readonly string[] = [
  CAPTIONS_FILE,
  VOCAB_FILE,
  ...(["train", "val"] as const).flatMap((s) => [
    featuresFile(s, true),
    featuresFile(s, false),
    urlsFile(s),
  ]),
  "images",
  MANIFEST_FILE,
  IMPORTED_FILES.vocab,
  IMPORTED_FILES.captions,
  ...SPLITS.flatMap((s) => [IMPORTED_FILES.features(s), IMPORTED_FILES.images(s)]),
];

/**
 * The entries that make a directory look like a dataset (see {@linkcode findDatasetFormat}):
 * a dataset being replaced loses them first and its successor gets them last.
 */
export const DATASET_MARKERS: readonly string[] = [MANIFEST_FILE, CAPTIONS_FILE];

/**
 * The dataset entries present in a directory (none when it does not exist).
 * @param dir The directory.
 * @param where What asked, for the message, e.g. `"dataset synth: --dir"`.
 * @returns The names of {@linkcode DATASET_ENTRIES} it holds.
 * @throws InputError when `dir` is a file.
 *
 * @example
 * ```ts
 * import { datasetEntriesIn } from "./dataset_layout.ts";
 * console.log(await datasetEntriesIn(await Deno.makeTempDir(), "--dir")); // []
 * ```
 */
export async function datasetEntriesIn(dir: string, where: string): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  if (!info.isDirectory) {
    throw new InputError(`${where}: ${dir} is a file, not a directory; choose a directory`);
  }
  const present: string[] = [];
  for (const name of DATASET_ENTRIES) {
    if (await Deno.lstat(join(dir, name)).then(() => true, () => false)) present.push(name);
  }
  return present;
}

/** How many images and captions a split of an imported dataset has. */
export interface ManifestSplit {
  /** I, the images (feature rows), captioned or not. */
  images: number;
  /** N, the caption rows. */
  captions: number;
}

/** The manifest of an imported dataset (`dataset.json`). */
export interface DatasetManifest {
  /** Always {@linkcode MANIFEST_FORMAT}. */
  format: typeof MANIFEST_FORMAT;
  /** Always {@linkcode MANIFEST_VERSION}. */
  version: number;
  /** D, the feature dimension. */
  featureDim: number;
  /** T+1, ids per caption row (`<START>`, up to T-1 words, `<END>`, padding). */
  captionLength: number;
  /** The splits, with their sizes (train and val always; test when imported). */
  splits: Partial<Record<Split, ManifestSplit>>;
  /** What the import found and did (as it printed it). */
  summary: Record<string, unknown>;
  /** Where the data came from and the import's options. */
  source: Record<string, unknown>;
}

/** A dataset directory's format. */
export type DatasetFormat = "cs231n" | "imported";

/** Where a dataset's files are and what they must hold. */
export interface DatasetLayout {
  /** The dataset directory. */
  dir: string;
  /** Its format. */
  format: DatasetFormat;
  /** What messages call the data: "COCO data" or "the dataset". */
  label: string;
  /** What to do about a missing file, for messages. */
  remedy: string;
  /** The splits it has, in order. */
  splits: readonly Split[];
  /** The vocabulary file. */
  vocabFile: string;
  /** The captions file (every split's caption rows and image indices). */
  captionsFile: string;
  /** The features file of each split. */
  featuresFiles: Partial<Record<Split, string>>;
  /** The image list of each split: URL lines (CS231n) or JSON lines (imported). */
  imagesFiles: Partial<Record<Split, string>>;
  /** D the features must have. */
  featureDim: number;
  /** T+1, the ids per caption row. */
  captionLength: number;
}

const CS231N_REMEDY = "download the CS231n COCO captioning files there, import a dataset with " +
  "deno task dataset import, or write a synthetic dataset with: deno task dataset synth --dir <dir>";
const IMPORTED_REMEDY = "import the dataset again with deno task dataset import … --force";

const isFile = (path: string) => Deno.stat(path).then((s) => s.isFile, () => false);

/**
 * The format of the dataset in a directory: `"imported"` when it holds `dataset.json`,
 * `"cs231n"` when it holds the CS231n captions or vocabulary file, else null (no dataset, or no
 * such directory).
 * @param dir The directory.
 * @returns The format, or null.
 *
 * @example
 * ```ts
 * import { findDatasetFormat } from "./dataset_layout.ts";
 * console.log(await findDatasetFormat(await Deno.makeTempDir())); // null
 * ```
 */
export async function findDatasetFormat(dir: string): Promise<DatasetFormat | null> {
  if (await isFile(join(dir, MANIFEST_FILE))) return "imported";
  if (await isFile(join(dir, CAPTIONS_FILE)) || await isFile(join(dir, VOCAB_FILE))) {
    return "cs231n";
  }
  return null;
}

/**
 * The layout of the dataset in a directory, its format found from the files (see
 * {@linkcode findDatasetFormat}); an imported dataset's manifest is read and checked.
 * @param dir The dataset directory.
 * @param pcaFeatures For the CS231n files: the 512-d `_pca` features (true) or the 4096-d ones.
 * @returns The layout.
 * @throws InputError when the directory holds no dataset, or the manifest is bad.
 *
 * @example
 * ```ts
 * import { datasetLayout } from "./dataset_layout.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const layout = await datasetLayout(dir, true);
 * console.log(layout.format, layout.splits, layout.featureDim); // cs231n ["train", "val"] 512
 * ```
 */
export async function datasetLayout(dir: string, pcaFeatures: boolean): Promise<DatasetLayout> {
  const format = await findDatasetFormat(dir);
  if (format === "imported") return importedLayout(dir, await readManifest(dir));
  if (format === null) {
    const there = await Deno.stat(dir).then((s) => s.isDirectory, () => null);
    throw new InputError(
      there === null
        ? `Cannot load COCO data: ${dir} does not exist; ${CS231N_REMEDY}`
        : there
        ? `Cannot load COCO data: ${dir} holds no dataset (no ${MANIFEST_FILE} of an imported ` +
          `dataset, no ${CAPTIONS_FILE} or ${VOCAB_FILE} of the CS231n files); ${CS231N_REMEDY}`
        : `Cannot load COCO data: ${dir} is a file, not a dataset directory; set data.dir to one`,
    );
  }
  const splits = ["train", "val"] as const;
  return {
    dir,
    format,
    label: "COCO data",
    remedy: CS231N_REMEDY,
    splits,
    vocabFile: join(dir, VOCAB_FILE),
    captionsFile: join(dir, CAPTIONS_FILE),
    featuresFiles: Object.fromEntries(
      splits.map((s) => [s, join(dir, featuresFile(s, pcaFeatures))]),
    ),
    imagesFiles: Object.fromEntries(splits.map((s) => [s, join(dir, urlsFile(s))])),
    featureDim: pcaFeatures ? 512 : 4096,
    captionLength: CAPTION_LENGTH,
  };
}

/** The layout an imported dataset's manifest describes. */
function importedLayout(dir: string, manifest: DatasetManifest): DatasetLayout {
  const splits = SPLITS.filter((s) => manifest.splits[s] !== undefined);
  return {
    dir,
    format: "imported",
    label: "the dataset",
    remedy: IMPORTED_REMEDY,
    splits,
    vocabFile: join(dir, IMPORTED_FILES.vocab),
    captionsFile: join(dir, IMPORTED_FILES.captions),
    featuresFiles: Object.fromEntries(
      splits.map((s) => [s, join(dir, IMPORTED_FILES.features(s))]),
    ),
    imagesFiles: Object.fromEntries(splits.map((s) => [s, join(dir, IMPORTED_FILES.images(s))])),
    featureDim: manifest.featureDim,
    captionLength: manifest.captionLength,
  };
}

/**
 * Reads and checks an imported dataset's manifest.
 * @param dir The dataset directory.
 * @returns The manifest.
 * @throws InputError naming the file and the field.
 *
 * @example
 * ```ts ignore
 * import { readManifest } from "./dataset_layout.ts";
 * console.log((await readManifest("datasets/flickr8k")).featureDim); // 2048
 * ```
 */
export async function readManifest(dir: string): Promise<DatasetManifest> {
  const path = join(dir, MANIFEST_FILE);
  let m: Record<string, unknown>;
  let text: string;
  try {
    text = await readTextFileChecked(path, MAX_MANIFEST_BYTES);
  } catch (e) {
    if (!(e instanceof UnreadableFile)) throw e;
    throw new InputError(`Cannot load the dataset: ${path}: ${e.detail}; ${IMPORTED_REMEDY}`);
  }
  try {
    m = parseJson(text) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(
      `Cannot load the dataset: ${path}: invalid JSON at ${(e as Error).message}; ` +
        IMPORTED_REMEDY,
    );
  }
  const bad = (field: string, expected: string, got: unknown) =>
    new InputError(
      `Cannot load the dataset: ${path}: ${field}: expected ${expected}, got ${
        JSON.stringify(got)
      }; ${IMPORTED_REMEDY}`,
    );
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad("(top)", "an object", m);
  if (m.format !== MANIFEST_FORMAT) throw bad("format", `"${MANIFEST_FORMAT}"`, m.format);
  if (m.version !== MANIFEST_VERSION) {
    throw bad("version", `${MANIFEST_VERSION} (written by this recap)`, m.version);
  }
  const positive = (x: unknown, min: number) => Number.isSafeInteger(x) && (x as number) >= min;
  if (!positive(m.featureDim, 1)) throw bad("featureDim", "a positive integer", m.featureDim);
  if (!positive(m.captionLength, 3)) {
    throw bad("captionLength", "an integer >= 3", m.captionLength);
  }
  const splits = m.splits as Record<string, unknown>;
  if (typeof splits !== "object" || splits === null) throw bad("splits", "an object", splits);
  for (const [name, s] of Object.entries(splits)) {
    if (!(SPLITS as readonly string[]).includes(name)) {
      throw bad("splits", `only ${SPLITS.join(", ")}`, name);
    }
    const { images, captions } = (s ?? {}) as Record<string, unknown>;
    if (!positive(images, 0)) throw bad(`splits.${name}.images`, "a count", images);
    if (!positive(captions, 0)) throw bad(`splits.${name}.captions`, "a count", captions);
  }
  for (const need of ["train", "val"]) {
    if (!(need in splits)) throw bad(`splits.${need}`, "a split", undefined);
  }
  return m as unknown as DatasetManifest;
}
