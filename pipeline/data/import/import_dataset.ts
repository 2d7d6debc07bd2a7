/**
 * `dataset import`: a captioning dataset (annotation files in the Karpathy or COCO format)
 * and its image features (a `.npy` matrix, an HDF5 dataset, or a directory of per-image
 * `.npy`) turned into an imported dataset recap trains on (the format of dataset_layout.ts).
 *
 * 1. The annotations are read (annotations.ts) and each feature row matched to its image: the
 *    annotations' image order, or the `ids` file's.
 * 2. The vocabulary is built from the train split only: words seen at least `minCount` times;
 *    every other word is `<UNK>`. Caption rows keep the first `maxLength` words.
 * 3. Everything is written into `<dir>.partial-<pid>`: the vocabulary, the caption rows, each
 *    split's image list with every raw caption (the references evaluation scores against),
 *    each split's features — streamed from the source in blocks of rows, never held whole —
 *    and last the manifest with the summary. Then it is moved into place
 *    (`installDirectory`): an interrupted or failed import leaves no dataset behind, and an
 *    existing one is replaced only with `force`.
 *
 * Memory stays bounded by the annotations (held as compact strings) and one block of
 * feature rows per split, whatever the number of images: see bench/import_memory.ts.
 *
 * Dimension letters: I images (feature rows), N caption rows, T+1 ids per row, D features.
 * @module
 */
import { join } from "node:path";
import { accepts, checkOptions, type OptionRule } from "../../../layers/options.ts";
import { InputError } from "../../errors.ts";
import { installDirectory, partialDir, removeStalePartials } from "../../io/atomic.ts";
import { H5File } from "../../io/h5.ts";
import { type Split, SPLITS } from "../caption_data.ts";
import { createFeatures, DATASET_LIBVER, writeCaptionSplit } from "../caption_file.ts";
import { UNK_ID } from "../coco_layout.ts";
import {
  DATASET_MARKERS,
  datasetEntriesIn,
  type DatasetManifest,
  IMPORTED_FILES,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
} from "../dataset_layout.ts";
import { featureFileNames, type FeatureSource, openFeatures } from "../features/feature_source.ts";
import { writeImageList } from "../image_list.ts";
import { buildVocabulary, encodeCaptionRow } from "../vocabulary.ts";
import { type AnnotatedImage, readAnnotations } from "./annotations.ts";
import { imagesOfIds, readIdList } from "../image_ids.ts";

/** Options of {@linkcode importDataset}. */
export interface ImportOptions {
  /** The annotation files (Karpathy split files, or COCO captions files). */
  annotations: readonly string[];
  /** The features: a `.npy` file, an HDF5 file, or a directory of per-image `.npy`. */
  features: string;
  /** Where to write the dataset. */
  dir: string;
  /** For COCO captions files: the split of each file (default: from the file names). */
  splits?: readonly Split[];
  /** The dataset of an HDF5 features file (default: its only 2-D one, or `features`). */
  featuresDataset?: string;
  /** A file naming the image (id or file name) of each feature row (default: annotation order). */
  ids?: string;
  /** Words seen fewer times in the train captions become `<UNK>` (default 5). */
  minCount?: number;
  /** Words kept per caption row (default 16). */
  maxLength?: number;
  /** Replace the dataset already in `dir` (refused otherwise). */
  force?: boolean;
  /** Called with progress messages. */
  onProgress?: (message: string) => void;
}

/** What one split of an import holds. */
export interface SplitSummary {
  /** Images (feature rows). */
  images: number;
  /** Images without captions (kept for captioning; not trained on or scored). */
  uncaptioned: number;
  /** Caption rows. */
  captions: number;
  /** Words in the caption rows. */
  words: number;
  /** Of them, `<UNK>`. */
  unknownWords: number;
  /** Captions longer than the row, cut to `maxLength` words. */
  truncated: number;
}

/** What {@linkcode importDataset} wrote (also stored in the manifest). */
export interface ImportSummary {
  /** The dataset directory. */
  dir: string;
  /** The annotation files, and the format found in each. */
  annotations: { file: string; format: "karpathy" | "coco" }[];
  /** The features read (and the HDF5 dataset). */
  features: string;
  /** D. */
  featureDim: number;
  /** Words kept per caption. */
  maxLength: number;
  /** The vocabulary's count threshold. */
  minCount: number;
  /** Each split. */
  splits: Partial<Record<Split, SplitSummary>>;
  /** Vocabulary size, special tokens included. */
  vocabSize: number;
  /** Fraction of caption words (all splits) that are `<UNK>`. */
  unkRate: number;
  /** Captions (all splits) cut to `maxLength` words. */
  truncated: number;
  /** Captions dropped because they have no words. */
  emptyCaptions: number;
  /** Images of the Karpathy `restval` split, trained on with train. */
  restval: number;
  /** Seconds taken. */
  seconds: number;
}

const RULES: Record<keyof ImportOptions, OptionRule> = {
  annotations: {
    expected: "a non-empty list of file paths",
    type: "object",
    test: (v) => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === "string"),
  },
  features: { expected: "a path", type: "string", test: (v) => v !== "" },
  dir: { expected: "a path", type: "string", test: (v) => v !== "" },
  splits: {
    expected: `a list of ${SPLITS.join(", ")}`,
    type: "object",
    test: (v) => Array.isArray(v) && v.every((s) => (SPLITS as readonly string[]).includes(s)),
  },
  featuresDataset: { expected: "a dataset name", type: "string", test: (v) => v !== "" },
  ids: { expected: "a path", type: "string", test: (v) => v !== "" },
  minCount: accepts.positiveInt,
  maxLength: accepts.positiveInt,
  force: accepts.boolean,
  onProgress: accepts.function,
};

/** Bytes of feature rows read (and buffered per split) at a time. */
const BLOCK_BYTES = 8 << 20;

/**
 * Imports a captioning dataset and its features into `options.dir`.
 * @param options The annotations, the features and where to write; see {@linkcode ImportOptions}.
 * @returns The summary of what was written.
 * @throws InputError (one line naming the file and the field or row) for bad input; nothing
 *   is written then. TypeError or RangeError for bad options.
 *
 * @example
 * ```ts
 * import { importDataset } from "./import_dataset.ts";
 * import { H5File } from "../../io/h5.ts";
 * import { Tensor } from "../../../layers/tensor.ts";
 * const tmp = await Deno.makeTempDir();
 * const sentences = (words: string) => [{ tokens: words.split(" "), raw: words }];
 * await Deno.writeTextFile(`${tmp}/ann.json`, JSON.stringify({ images: [
 *   { filename: "a.jpg", imgid: 0, split: "train", sentences: sentences("a dog runs") },
 *   { filename: "b.jpg", imgid: 1, split: "val", sentences: sentences("a dog sits") },
 * ] }));
 * const f = await H5File.open(`${tmp}/feats.h5`, "w");
 * f.write("features", Tensor.zeros([2, 8], "float32"));
 * f.close();
 * const s = await importDataset({
 *   annotations: [`${tmp}/ann.json`], features: `${tmp}/feats.h5`, dir: `${tmp}/data`, minCount: 1,
 * });
 * console.log(s.vocabSize, s.splits.train?.captions); // 7 1
 * ```
 */
export async function importDataset(options: ImportOptions): Promise<ImportSummary> {
  checkOptions("importDataset options", options, RULES);
  const t0 = performance.now();
  const { minCount = 5, maxLength = 16, force = false } = options;
  const progress = options.onProgress ?? (() => {});
  const dir = options.dir.replace(/(.)\/+$/, "$1");
  // 1. The destination is checked before any work.
  const existing = await datasetEntriesIn(dir, "dataset import: --dir");
  if (existing.length > 0 && !force) {
    throw new InputError(
      `dataset import: ${dir} already holds a dataset (${existing.join(", ")}); choose another ` +
        `--dir, or pass --force to replace it`,
    );
  }
  // 2. The annotations, and the image of each feature row.
  progress(`reading ${options.annotations.join(", ")}`);
  const annotations = await readAnnotations(options.annotations, options.splits, "--split");
  const { images } = annotations;
  progress(`${images.length} images, ${annotations.words.ids.length} caption words read`);
  const ids = options.ids === undefined ? undefined : await readIdList(options.ids, "--ids");
  // A directory's files are named by image (the --ids line, else the image's id or file).
  const isDir = await Deno.stat(options.features).then((s) => s.isDirectory, () => false);
  const features = await openFeatures(options.features, {
    ...(options.featuresDataset !== undefined ? { dataset: options.featuresDataset } : {}),
    datasetOption: "--featuresDataset",
    ...(isDir
      ? {
        rowNames: ids
          ? ids.map((line) => featureFileNames(line))
          : images.map((im) => featureFileNames(im.id, im.file)),
      }
      : {}),
  });
  try {
    const rowImages = imagesOfRows(features, images, ids, options.ids);
    const plan = planSplits(rowImages, images, options.annotations.join(", "));
    // 3. The vocabulary, from the train captions only.
    const { lexicon, ids: wordIds } = annotations.words;
    const seen = new Int32Array(lexicon.length);
    for (const i of plan.images.train) {
      for (const c of images[i].captions) {
        for (let t = c.start; t < c.start + c.length; t++) seen[wordIds[t]]++;
      }
    }
    const vocab = buildVocabulary(new Map(lexicon.map((w, i) => [w, seen[i]])), minCount);
    // The vocabulary id of each lexicon word.
    const toVocab = Int32Array.from(
      lexicon,
      (w) => Object.hasOwn(vocab.word_to_idx, w) ? vocab.word_to_idx[w] : UNK_ID,
    );
    if (vocab.idx_to_word.length === 4) {
      throw new InputError(
        `${options.annotations.join(", ")}: no word of the train captions is seen ${minCount} ` +
          `times, so the vocabulary would be empty; lower --minCount`,
      );
    }
    // 4. Everything into a partial directory, then into place.
    await removeStalePartials(dir);
    const partial = partialDir(dir);
    await Deno.mkdir(partial, { recursive: true });
    try {
      const summary: ImportSummary = {
        dir,
        annotations: options.annotations.map((file, i) => ({
          file,
          format: annotations.formats[i],
        })),
        features: features.name,
        featureDim: features.dim,
        maxLength,
        minCount,
        splits: {},
        vocabSize: vocab.idx_to_word.length,
        unkRate: 0,
        truncated: 0,
        emptyCaptions: annotations.emptyCaptions,
        restval: annotations.restval,
        seconds: 0,
      };
      await Deno.writeTextFile(join(partial, IMPORTED_FILES.vocab), JSON.stringify(vocab));
      const cf = await H5File.open(join(partial, IMPORTED_FILES.captions), "w", {
        libver: DATASET_LIBVER,
      });
      try {
        for (const split of plan.splits) {
          const enc = encodeSplit(
            plan.images[split],
            images,
            (t) => toVocab[wordIds[t]],
            maxLength + 2,
          );
          writeCaptionSplit(cf, split, enc.captions, enc.imageIdxs, maxLength + 2);
          summary.splits[split] = enc.summary;
        }
      } finally {
        cf.close();
      }
      for (const split of plan.splits) {
        await writeImageList(
          join(partial, IMPORTED_FILES.images(split)),
          plan.images[split].map((i) => {
            const { id, file, url, captions } = images[i];
            return { id, file, url, references: captions.map((c) => c.raw) };
          }),
        );
      }
      await copyFeatures(features, plan, partial, progress);
      const all = Object.values(summary.splits);
      const words = all.reduce((n, s) => n + s.words, 0);
      summary.unkRate = words ? all.reduce((n, s) => n + s.unknownWords, 0) / words : 0;
      summary.truncated = all.reduce((n, s) => n + s.truncated, 0);
      summary.seconds = (performance.now() - t0) / 1000;
      const manifest: DatasetManifest = {
        format: MANIFEST_FORMAT,
        version: MANIFEST_VERSION,
        featureDim: features.dim,
        captionLength: maxLength + 2,
        splits: Object.fromEntries(
          plan.splits.map((s) => [s, {
            images: summary.splits[s]!.images,
            captions: summary.splits[s]!.captions,
          }]),
        ),
        summary: { ...summary },
        source: {
          annotations: options.annotations,
          features: options.features,
          ...(options.featuresDataset !== undefined
            ? { featuresDataset: options.featuresDataset }
            : {}),
          ...(options.ids !== undefined ? { ids: options.ids } : {}),
          minCount,
          maxLength,
          importedAt: new Date().toISOString(),
        },
      };
      await Deno.writeTextFile(
        join(partial, MANIFEST_FILE),
        JSON.stringify(manifest, null, 2) + "\n",
      );
      await installDirectory(partial, dir, existing, DATASET_MARKERS);
      return summary;
    } catch (e) {
      await Deno.remove(partial, { recursive: true }).catch(() => {});
      throw e;
    }
  } finally {
    features.close();
  }
}

/**
 * The image of each feature row: the annotations' order, or the `ids` file's; every image
 * must have exactly one row.
 */
function imagesOfRows(
  features: FeatureSource,
  images: readonly AnnotatedImage[],
  ids: string[] | undefined,
  idsFile: string | undefined,
): Int32Array {
  if (ids === undefined) {
    if (features.rows !== images.length) {
      throw new InputError(
        `${features.name}: ${features.rows} feature rows but the annotations list ${images.length} ` +
          `images; rows follow the annotations' image order, or pass --ids FILE naming each row's image`,
      );
    }
    return Int32Array.from(images, (_, i) => i);
  }
  if (ids.length !== features.rows) {
    throw new InputError(
      `${idsFile}: ${ids.length} lines but ${features.name} has ${features.rows} rows; ` +
        `--ids names the image of each feature row, one line per row`,
    );
  }
  const rows = imagesOfIds(ids, images, idsFile!);
  if (rows.length < images.length) {
    const named = new Uint8Array(images.length);
    for (const i of rows) named[i] = 1;
    const first = images[named.indexOf(0)];
    throw new InputError(
      `${idsFile}: ${images.length - rows.length} images of the annotations have no feature row ` +
        `(first: ${first.where}, id ${JSON.stringify(first.id)}); extract their features, or ` +
        `leave them out of the annotations`,
    );
  }
  return rows;
}

/** Each split's images in feature row order, and where each row goes. */
interface SplitPlan {
  /** The splits written: train and val, and test when it has images. */
  splits: Split[];
  /** The image indices of each split, in feature row order. */
  images: Record<Split, number[]>;
  /** The split (its index in SPLITS) of each feature row. */
  splitOfRow: Uint8Array;
}

function planSplits(
  rowImages: Int32Array,
  images: readonly AnnotatedImage[],
  files: string,
): SplitPlan {
  const plan: SplitPlan = {
    splits: [],
    images: { train: [], val: [], test: [] },
    splitOfRow: new Uint8Array(rowImages.length),
  };
  rowImages.forEach((img, r) => {
    const split = images[img].split;
    plan.splitOfRow[r] = SPLITS.indexOf(split);
    plan.images[split].push(img);
  });
  for (const split of ["train", "val"] as const) {
    if (!plan.images[split].some((i) => images[i].captions.length > 0)) {
      throw new InputError(
        `${files}: no ${split} image has a caption; recap trains on train and validates on val ` +
          `(a Karpathy file names each image's split; give COCO captions files of both)`,
      );
    }
  }
  plan.splits = SPLITS.filter((s) => plan.images[s].length > 0);
  return plan;
}

/**
 * The caption rows of a split's images, in order, and what encoding them found.
 * `vocabId(t)` is the vocabulary id of word `t` of the annotations' words.
 */
function encodeSplit(
  split: readonly number[],
  images: readonly AnnotatedImage[],
  vocabId: (t: number) => number,
  rowLength: number,
): { captions: Int32Array; imageIdxs: Int32Array; summary: SplitSummary } {
  let n = 0;
  for (const i of split) n += images[i].captions.length;
  const captions = new Int32Array(n * rowLength), imageIdxs = new Int32Array(n);
  const summary: SplitSummary = {
    images: split.length,
    uncaptioned: 0,
    captions: n,
    words: 0,
    unknownWords: 0,
    truncated: 0,
  };
  let row = 0;
  split.forEach((img, pos) => {
    const caps = images[img].captions;
    if (caps.length === 0) summary.uncaptioned++;
    for (const c of caps) {
      const r = encodeCaptionRow(
        c.length,
        (t) => vocabId(c.start + t),
        captions,
        row * rowLength,
        rowLength,
      );
      imageIdxs[row++] = pos;
      summary.words += r.words;
      summary.unknownWords += r.unknown;
      if (r.truncated) summary.truncated++;
    }
  });
  return { captions, imageIdxs, summary };
}

/**
 * Copies the feature rows into each split's features file, a block of rows at a time: within a
 * block a split's rows are consecutive rows of its file, so each split buffers its share and
 * writes it when the buffer is full.
 */
async function copyFeatures(
  source: FeatureSource,
  plan: SplitPlan,
  dir: string,
  progress: (message: string) => void,
): Promise<void> {
  const D = source.dim, block = Math.max(1, Math.floor(BLOCK_BYTES / (D * 4)));
  const input = new Float32Array(block * D);
  const files = new Map<number, H5File>();
  const buffers = new Map<number, { data: Float32Array; start: number; count: number }>();
  try {
    for (const split of plan.splits) {
      const s = SPLITS.indexOf(split);
      const f = await H5File.open(join(dir, IMPORTED_FILES.features(split)), "w", {
        libver: DATASET_LIBVER,
      });
      files.set(s, f);
      createFeatures(f, plan.images[split].length, D);
      buffers.set(s, { data: new Float32Array(block * D), start: 0, count: 0 });
    }
    const flush = (s: number) => {
      const b = buffers.get(s)!;
      files.get(s)!.writeRows("features", b.start, b.data.subarray(0, b.count * D));
      b.start += b.count;
      b.count = 0;
    };
    let reported = 0;
    for (let r0 = 0; r0 < source.rows; r0 += block) {
      const r1 = Math.min(source.rows, r0 + block);
      await source.readRows(r0, r1, input);
      for (let r = r0; r < r1; r++) {
        const s = plan.splitOfRow[r], b = buffers.get(s)!;
        b.data.set(input.subarray((r - r0) * D, (r - r0 + 1) * D), b.count * D);
        if (++b.count === block) flush(s);
      }
      if (r1 - reported >= source.rows / 10 || r1 === source.rows) {
        progress(`features ${r1}/${source.rows}`);
        reported = r1;
      }
    }
    for (const s of buffers.keys()) flush(s);
  } finally {
    for (const f of files.values()) f.close();
  }
}

/**
 * The summary of an import as the command prints it.
 * @param s The summary.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { formatImportSummary } from "./import_dataset.ts";
 * const split = { images: 2, uncaptioned: 0, captions: 10, words: 80, unknownWords: 2, truncated: 1 };
 * console.log(formatImportSummary({
 *   dir: "datasets/mine", annotations: [{ file: "a.json", format: "karpathy" }],
 *   features: "f.npy", featureDim: 512, maxLength: 16, minCount: 5,
 *   splits: { train: split, val: split }, vocabSize: 40, unkRate: 0.025, truncated: 2,
 *   emptyCaptions: 0, restval: 0, seconds: 1.5,
 * }).join("\n"));
 * ```
 */
export function formatImportSummary(s: ImportSummary): string[] {
  const splits = SPLITS.filter((name) => s.splits[name]);
  const width = Math.max(...splits.map((name) => String(s.splits[name]!.images).length));
  const lines = [
    `Imported ${s.dir} in ${s.seconds.toFixed(1)} s from`,
    `  annotations ${s.annotations.map((a) => `${a.file} (${a.format})`).join(", ")}`,
    `  features    ${s.features}: ${s.featureDim}-d`,
    ...splits.map((name) => {
      const sp = s.splits[name]!;
      return `  ${name.padEnd(5)} ${String(sp.images).padStart(width)} images, ${sp.captions} ` +
        `captions${sp.uncaptioned ? `, ${sp.uncaptioned} images without captions` : ""}`;
    }),
    `  vocabulary ${s.vocabSize} words (seen ${s.minCount}+ times in train), ` +
    `<UNK> ${(s.unkRate * 100).toFixed(2)}% of caption words, ${s.truncated} captions ` +
    `truncated to ${s.maxLength} words`,
  ];
  if (s.restval) lines.push(`  ${s.restval} restval images trained on with train`);
  if (s.emptyCaptions) lines.push(`  ${s.emptyCaptions} captions without words left out`);
  const uncaptioned = splits.reduce((n, name) => n + s.splits[name]!.uncaptioned, 0);
  if (uncaptioned) {
    lines.push(
      `  ${uncaptioned} images without captions: kept for captioning, not trained on or scored`,
    );
  }
  return lines;
}
