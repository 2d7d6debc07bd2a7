/**
 * The synthetic dataset writer: samples scenes, writes five captions per image, builds the
 * vocabulary (words under a frequency cut become `<UNK>`), and writes the exact COCO
 * captioning layout the loaders read:
 *
 * ```
 * coco2014_captions.h5          int32 train_captions (N, 17), train_image_idxs (N,),
 *                               val_captions (M, 17), val_image_idxs (M,)
 * train2014_vgg16_fc7_pca.h5    float32 features (train images, 512)
 * val2014_vgg16_fc7_pca.h5      float32 features (val images, 512)
 * train2014_vgg16_fc7.h5        float32 features (train images, 4096)  [fullFeatures]
 * val2014_vgg16_fc7.h5          float32 features (val images, 4096)    [fullFeatures]
 * coco2014_vocab.json           { idx_to_word, word_to_idx }, <NULL> 0 <START> 1 <END> 2 <UNK> 3
 * train2014_urls.txt            one line per train image: its SVG, e.g. images/train/000123.svg
 * val2014_urls.txt              one line per val image
 * images/{train,val}/NNNNNN.svg the drawings
 * ```
 *
 * URL lines are file paths relative to the dataset directory (not file:// URLs): a report
 * resolves them against the directory it loaded the data from.
 * @module
 */
import { Rng } from "../../../layers/random.ts";
import { H5File } from "../../io/h5.ts";
import { createFeatures, DATASET_LIBVER, writeCaptionSplit } from "../caption_file.ts";
import {
  CAPTION_LENGTH,
  CAPTIONS_FILE,
  featuresFile,
  UNK_ID,
  urlsFile,
  VOCAB_FILE,
} from "../coco_layout.ts";
import { buildVocabulary, encodeCaptionRow } from "../vocabulary.ts";
import { writeCaption } from "./captions.ts";
import { FeatureProjector, FULL_DIM, type NoiseOptions, PCA_DIM } from "./features.ts";
import { packScene, sampleScene, SCENE_WORDS, unpackScene } from "./scene.ts";
import { drawScene } from "./svg.ts";

/** Options of {@linkcode writeSyntheticDataset}. */
export interface SynthOptions {
  /** The dataset directory (created if missing; existing files are replaced). */
  dir: string;
  /** Train images (default 82783, COCO's). */
  numTrain?: number;
  /** Validation images (default 40504, COCO's). */
  numVal?: number;
  /** The seed: the same seed and sizes give the same datasets (default 231). */
  seed?: number;
  /** Also write the 4096-d `train2014_vgg16_fc7.h5` / `val2014_vgg16_fc7.h5` (default false). */
  fullFeatures?: boolean;
  /** Write the SVG drawings under `images/` (default true). */
  images?: boolean;
  /** Captions per image (default 5). */
  captionsPerImage?: number;
  /** Words seen fewer times than this in train captions become `<UNK>` (default 5). */
  minWordCount?: number;
  /** Feature noise levels. */
  noise?: NoiseOptions;
  /** Called with progress messages (e.g. to print them). */
  onProgress?: (message: string) => void;
}

/** What {@linkcode writeSyntheticDataset} wrote. */
export interface SynthSummary {
  /** The dataset directory. */
  dir: string;
  /** The files written (relative to `dir`, drawings not listed). */
  files: string[];
  /** Train images. */
  numTrain: number;
  /** Validation images. */
  numVal: number;
  /** Train caption rows. */
  trainCaptions: number;
  /** Validation caption rows. */
  valCaptions: number;
  /** Vocabulary size including the four special tokens. */
  vocabSize: number;
  /** Fraction of caption words (train and val) that became `<UNK>`. */
  unkRate: number;
  /** Wall-clock seconds taken. */
  seconds: number;
}

interface SplitText {
  /** Word ids into the inventory, CAPTION_LENGTH - 2 per caption, -1 padded. */
  words: Int32Array;
  /** Image index of each caption, in file order. */
  imageIdxs: Int32Array;
  /** Packed scenes, SCENE_WORDS per image. */
  scenes: Int16Array;
}

const WORDS_PER_ROW = CAPTION_LENGTH - 2;

function makeSplit(
  n: number,
  perImage: number,
  rng: Rng,
  inventory: Map<string, number>,
  counts: number[] | null,
): SplitText {
  const scenes = new Int16Array(n * SCENE_WORDS);
  const rows = n * perImage;
  const words = new Int32Array(rows * WORDS_PER_ROW).fill(-1);
  const order = rng.shuffle(Array.from({ length: rows }, (_, i) => i));
  const imageIdxs = new Int32Array(rows);
  for (let i = 0; i < n; i++) {
    const scene = sampleScene(rng);
    packScene(scene, scenes, i * SCENE_WORDS);
    for (let c = 0; c < perImage; c++) {
      const row = order[i * perImage + c];
      imageIdxs[row] = i;
      const caption = writeCaption(rng, scene);
      for (let t = 0; t < caption.length; t++) {
        let id = inventory.get(caption[t]);
        if (id === undefined) {
          id = inventory.size;
          inventory.set(caption[t], id);
        }
        if (counts) counts[id] = (counts[id] ?? 0) + 1;
        words[row * WORDS_PER_ROW + t] = id;
      }
    }
  }
  return { words, imageIdxs, scenes };
}

function encode(
  split: SplitText,
  toVocab: Int32Array,
): { captions: Int32Array; unk: number; total: number } {
  const rows = split.imageIdxs.length;
  const captions = new Int32Array(rows * CAPTION_LENGTH);
  let unk = 0, total = 0;
  for (let r = 0; r < rows; r++) {
    const words = split.words.subarray(r * WORDS_PER_ROW, (r + 1) * WORDS_PER_ROW);
    const end = words.indexOf(-1);
    const row = encodeCaptionRow(
      end < 0 ? WORDS_PER_ROW : end,
      (t) => toVocab[words[t]],
      captions,
      r * CAPTION_LENGTH,
      CAPTION_LENGTH,
    );
    unk += row.unknown;
    total += row.words;
  }
  return { captions, unk, total };
}

/**
 * Writes a synthetic COCO captioning dataset (the exact file layout of the real one).
 * Memory stays bounded at any size: features are computed and written in row blocks.
 * @param options Where, how big, which seed, and what to include.
 * @returns A summary of what was written.
 *
 * @example Write a tiny dataset for a test
 * ```ts
 * import { writeSyntheticDataset } from "./writer.ts";
 * const dir = await Deno.makeTempDir();
 * const s = await writeSyntheticDataset({ dir, numTrain: 20, numVal: 5, seed: 1, images: false });
 * console.assert(s.trainCaptions === 100);
 * ```
 */
export async function writeSyntheticDataset(options: SynthOptions): Promise<SynthSummary> {
  const t0 = performance.now();
  const {
    dir,
    numTrain = 82783,
    numVal = 40504,
    seed = 231,
    fullFeatures = false,
    images = true,
    captionsPerImage = 5,
    minWordCount = 5,
  } = options;
  for (
    const [k, v] of [["numTrain", numTrain], ["numVal", numVal], [
      "captionsPerImage",
      captionsPerImage,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Cannot write dataset: ${k} must be a positive integer, got ${v}`);
    }
  }
  const progress = options.onProgress ?? (() => {});
  await Deno.mkdir(dir, { recursive: true });

  // 1. Scenes and captions, as inventory word ids; frequencies from train captions.
  const inventory = new Map<string, number>();
  const counts: number[] = [];
  const textRng = new Rng(seed);
  const train = makeSplit(numTrain, captionsPerImage, textRng, inventory, counts);
  const val = makeSplit(numVal, captionsPerImage, textRng, inventory, null);
  progress(`captions written for ${numTrain} train and ${numVal} val images`);

  // 2. Vocabulary: special tokens, then words by falling frequency (ties alphabetical).
  const words = [...inventory.keys()];
  const vocab = buildVocabulary(new Map(words.map((w, i) => [w, counts[i] ?? 0])), minWordCount);
  const toVocab = new Int32Array(words.length).fill(UNK_ID);
  words.forEach((w, i) => {
    if (Object.hasOwn(vocab.word_to_idx, w)) toVocab[i] = vocab.word_to_idx[w];
  });
  const trainEnc = encode(train, toVocab), valEnc = encode(val, toVocab);
  await Deno.writeTextFile(
    `${dir}/${VOCAB_FILE}`,
    JSON.stringify(vocab),
  );

  // 3. Captions file.
  const captionsPath = `${dir}/${CAPTIONS_FILE}`;
  const cf = await H5File.open(captionsPath, "w", { libver: DATASET_LIBVER });
  try {
    writeCaptionSplit(cf, "train", trainEnc.captions, train.imageIdxs, CAPTION_LENGTH);
    writeCaptionSplit(cf, "val", valEnc.captions, val.imageIdxs, CAPTION_LENGTH);
  } finally {
    cf.close();
  }
  progress(`wrote ${captionsPath}`);

  // 4. Features, in row blocks; 5. drawings and URL files.
  const projector = new FeatureProjector(seed, { full: fullFeatures, ...options.noise });
  const files: string[] = [CAPTIONS_FILE, VOCAB_FILE];
  for (const [name, split] of [["train", train], ["val", val]] as const) {
    const n = split.scenes.length / SCENE_WORDS;
    const noiseRng = new Rng(seed * 31 + (name === "train" ? 1 : 2));
    const pcaName = featuresFile(name, true), fullName = featuresFile(name, false);
    const pf = await H5File.open(`${dir}/${pcaName}`, "w", { libver: DATASET_LIBVER });
    const ff = fullFeatures
      ? await H5File.open(`${dir}/${fullName}`, "w", { libver: DATASET_LIBVER })
      : null;
    try {
      createFeatures(pf, n, PCA_DIM);
      if (ff) createFeatures(ff, n, FULL_DIM);
      const block = 1024;
      const pca = new Float32Array(block * PCA_DIM);
      const full = ff ? new Float32Array(block * FULL_DIM) : null;
      for (let b = 0; b < n; b += block) {
        const rows = Math.min(block, n - b);
        for (let i = 0; i < rows; i++) {
          const scene = unpackScene(split.scenes, (b + i) * SCENE_WORDS);
          projector.project(scene, noiseRng, pca, i * PCA_DIM, full, i * FULL_DIM);
        }
        pf.writeRows("features", b, pca.subarray(0, rows * PCA_DIM));
        if (ff && full) ff.writeRows("features", b, full.subarray(0, rows * FULL_DIM));
        if ((b / block) % 16 === 15) progress(`${name} features ${b + rows}/${n}`);
      }
    } finally {
      pf.close();
      ff?.close();
    }
    files.push(pcaName, ...(fullFeatures ? [fullName] : []));
    const urls: string[] = [];
    if (images) await Deno.mkdir(`${dir}/images/${name}`, { recursive: true });
    for (let i = 0; i < n; i++) {
      const rel = `images/${name}/${String(i).padStart(6, "0")}.svg`;
      urls.push(rel);
      if (images) {
        Deno.writeTextFileSync(
          `${dir}/${rel}`,
          drawScene(unpackScene(split.scenes, i * SCENE_WORDS)),
        );
      }
    }
    await Deno.writeTextFile(`${dir}/${urlsFile(name)}`, urls.join("\n") + "\n");
    files.push(urlsFile(name));
    progress(`wrote ${name} features${images ? ", drawings" : ""} and URLs`);
  }
  return {
    dir,
    files,
    numTrain,
    numVal,
    trainCaptions: train.imageIdxs.length,
    valCaptions: val.imageIdxs.length,
    vocabSize: vocab.idx_to_word.length,
    unkRate: (trainEnc.unk + valEnc.unk) / Math.max(1, trainEnc.total + valEnc.total),
    seconds: (performance.now() - t0) / 1000,
  };
}
