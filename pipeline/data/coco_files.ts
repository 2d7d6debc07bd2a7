/**
 * Opening a COCO captioning dataset: the vocabulary read and the HDF5 files of the wanted
 * splits opened and validated, in one fixed order, so that every loader (in memory, for a
 * streamed run, and the streaming worker's reader) checks the same things and a broken dataset
 * gets the same message whichever opened it.
 *
 * Dimension letters: N caption rows, I images, D feature dimension.
 * @module
 */
import { H5File } from "../io/h5.ts";
import type { Split } from "./caption_data.ts";
import {
  CAPTIONS_FILE,
  featuresFile,
  loadVocab,
  requireFile,
  validateCaptions,
  validateFeatures,
  type Vocab,
} from "./coco_layout.ts";

/** A dataset's files, open and validated; close them with {@linkcode CocoFiles.close}. */
export interface CocoFiles {
  /** The vocabulary. */
  vocab: Vocab;
  /** The open features file of each split opened. */
  features: Partial<Record<Split, H5File>>;
  /** I, the feature rows of each split opened. */
  numImages: Partial<Record<Split, number>>;
  /** N, the caption rows of each split opened. */
  numCaptions: Partial<Record<Split, number>>;
  /** D, the feature dimension (512 with PCA features, 4096 without). */
  featureDim: number;
  /** The open captions file (both splits). */
  captions: H5File;
  /** Closes every file (idempotent). */
  close(): void;
}

/**
 * Reads the vocabulary and opens the features files of the splits, then the captions file,
 * checking each as it goes: shapes, dtypes, word ids inside the vocabulary, rows starting
 * with `<START>`, image indices inside the feature rows (captions scanned in bounded blocks).
 * @param baseDir The dataset directory.
 * @param pcaFeatures The 512-d `_pca` features (true) or the 4096-d ones.
 * @param splits The splits to open, in order (default train, then val).
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
  splits: readonly Split[] = ["train", "val"],
): Promise<CocoFiles> {
  const vocab = await loadVocab(baseDir);
  const opened: H5File[] = [];
  const open = async (path: string) => {
    await requireFile(path);
    const f = await H5File.open(path);
    opened.push(f);
    return f;
  };
  try {
    const features: CocoFiles["features"] = {}, numImages: CocoFiles["numImages"] = {};
    let featureDim = pcaFeatures ? 512 : 4096;
    for (const split of splits) {
      const f = await open(`${baseDir}/${featuresFile(split, pcaFeatures)}`);
      const { rows, dim } = validateFeatures(f, pcaFeatures);
      features[split] = f;
      numImages[split] = rows;
      featureDim = dim;
    }
    const captions = await open(`${baseDir}/${CAPTIONS_FILE}`);
    const numCaptions: CocoFiles["numCaptions"] = {};
    for (const split of splits) {
      numCaptions[split] =
        validateCaptions(captions, split, vocab.idx_to_word.length, numImages[split]!).rows;
    }
    let closed = false;
    return {
      vocab,
      features,
      numImages,
      numCaptions,
      featureDim,
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
