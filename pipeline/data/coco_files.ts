/**
 * Opening a captioning dataset (the CS231n COCO files or an imported dataset, see
 * dataset_layout.ts): the vocabulary read and the HDF5 files of the wanted splits opened and
 * validated, in one fixed order, so that every loader (in memory, for a streamed run, and the
 * streaming worker's reader) checks the same things and a broken dataset gets the same
 * message whichever opened it.
 *
 * Dimension letters: N caption rows, T+1 ids per row, I images, D feature dimension.
 * @module
 */
import { H5File } from "../io/h5.ts";
import { InputError } from "../errors.ts";
import type { Split } from "./caption_data.ts";
import type { Vocab } from "./coco_layout.ts";
import { loadVocab, requireFile, validateCaptions, validateFeatures } from "./dataset_checks.ts";
import { type DatasetLayout, datasetLayout } from "./dataset_layout.ts";

/** A dataset's files, open and validated; close them with {@linkcode CocoFiles.close}. */
export interface CocoFiles {
  /** Where the files are, and what they hold. */
  layout: DatasetLayout;
  /** The vocabulary. */
  vocab: Vocab;
  /** The open features file of each split opened. */
  features: Partial<Record<Split, H5File>>;
  /** I, the feature rows of each split opened. */
  numImages: Partial<Record<Split, number>>;
  /** N, the caption rows of each split opened. */
  numCaptions: Partial<Record<Split, number>>;
  /** D, the feature dimension (CS231n: 512 with PCA features, 4096 without). */
  featureDim: number;
  /** T+1, ids per caption row (17 in the CS231n files). */
  captionLength: number;
  /** The open captions file (every split). */
  captions: H5File;
  /** Closes every file (idempotent). */
  close(): void;
}

/**
 * Finds the dataset's format, reads the vocabulary and opens the features files of the
 * splits, then the captions file, checking each as it goes: shapes, dtypes, word ids inside
 * the vocabulary, rows starting with `<START>`, image indices inside the feature rows
 * (captions scanned in bounded blocks).
 * @param baseDir The dataset directory.
 * @param pcaFeatures For the CS231n files: the 512-d `_pca` features (true) or the 4096-d ones.
 * @param splits The splits to open, in order (default: every split the dataset has).
 * @returns The open files.
 * @throws InputError naming the file, the dataset and what to do (no file is left open).
 *
 * @example
 * ```ts
 * import { openCocoFiles } from "./coco_files.ts";
 * import { writeSyntheticDataset } from "./synth/writer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 10, numVal: 3, images: false });
 * const files = await openCocoFiles(dir, true, ["val"]);
 * console.log(files.numImages.val, files.numCaptions.val); // 3 15
 * files.close();
 * ```
 */
export async function openCocoFiles(
  baseDir: string,
  pcaFeatures: boolean,
  splits?: readonly Split[],
): Promise<CocoFiles> {
  const layout = await datasetLayout(baseDir, pcaFeatures);
  const absent = splits?.find((s) => !layout.splits.includes(s));
  if (absent !== undefined) {
    throw new InputError(
      `Cannot load ${layout.label}: ${baseDir} has no ${absent} split (it has ${
        layout.splits.join(", ")
      })`,
    );
  }
  const wanted = splits ?? layout.splits;
  const vocab = await loadVocab(layout);
  const opened: H5File[] = [];
  const open = async (path: string) => {
    await requireFile(layout, path);
    const f = await H5File.open(path);
    opened.push(f);
    return f;
  };
  try {
    const features: CocoFiles["features"] = {}, numImages: CocoFiles["numImages"] = {};
    for (const split of wanted) {
      const f = await open(layout.featuresFiles[split]!);
      features[split] = f;
      numImages[split] = validateFeatures(f, layout).rows;
    }
    const captions = await open(layout.captionsFile);
    const numCaptions: CocoFiles["numCaptions"] = {};
    for (const split of wanted) {
      numCaptions[split] = validateCaptions(
        captions,
        layout,
        split,
        vocab.idx_to_word.length,
        numImages[split]!,
      ).rows;
    }
    let closed = false;
    return {
      layout,
      vocab,
      features,
      numImages,
      numCaptions,
      featureDim: layout.featureDim,
      captionLength: layout.captionLength,
      captions,
      close() {
        if (closed) return;
        closed = true;
        closeAll(opened);
      },
    };
  } catch (e) {
    closeAll(opened);
    throw e;
  }
}

function closeAll(files: H5File[]): void {
  for (const f of files) {
    try {
      f.close();
    } catch {
      // closing after a failure: the first error is the one to report
    }
  }
}
