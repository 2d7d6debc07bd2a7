/**
 * The CS231n COCO captioning file layout: file names, the caption row length, and the special
 * tokens every vocabulary starts with (an imported dataset's too). How a dataset directory is
 * recognised and checked is in dataset_layout.ts and dataset_checks.ts.
 * @module
 */
import type { Split } from "./caption_data.ts";

/** The captions file (both splits). */
export const CAPTIONS_FILE = "coco2014_captions.h5";
/** The vocabulary file. */
export const VOCAB_FILE = "coco2014_vocab.json";
/** Tokens per caption row of the CS231n files (an imported dataset's manifest says its own). */
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
