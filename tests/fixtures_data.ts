/**
 * Small captioning datasets made in memory for tests: random features and random captions in
 * the COCO row layout (<START> words <END> <NULL>…).
 * @module
 */
import { Rng } from "../layers/random.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CaptionData } from "../pipeline/data/caption_data.ts";

/** A vocabulary of `size` words with the four special tokens first. */
export function makeVocab(
  size: number,
): { idxToWord: string[]; wordToIdx: Record<string, number> } {
  const idxToWord = ["<NULL>", "<START>", "<END>", "<UNK>"];
  for (let i = idxToWord.length; i < size; i++) idxToWord.push(`w${i}`);
  return { idxToWord, wordToIdx: Object.fromEntries(idxToWord.map((w, i) => [w, i])) };
}

/** 6 to 15 words drawn uniformly from the vocabulary (no special tokens). */
function randomWords(rng: Rng, vocab: number): number[] {
  return Array.from({ length: 6 + rng.randint(10) }, () => 4 + rng.randint(vocab - 4));
}

/**
 * A sentence shaped like COCO's: words of each slot come from their own part of the
 * vocabulary ("a" is shared), so captions share structure as real ones do.
 */
function templateCaption(rng: Rng, vocab: number): number[] {
  const slot = (from: number, count: number) => Math.min(vocab - 1, from + rng.randint(count));
  const s = (f: number) => Math.floor(f * (vocab - 4)) + 4; // a fraction of the vocabulary
  const adj = () => slot(s(0.01), s(0.1) - s(0.01)), noun = () => slot(s(0.1), s(0.4) - s(0.1));
  const words = [
    4,
    adj(),
    noun(),
    slot(s(0.4), s(0.6) - s(0.4)),
    slot(s(0.6), 20),
    4,
    adj(),
    noun(),
  ];
  if (rng.random() < 0.5) words.push(slot(s(0.62), 20), slot(s(0.65), s(0.95) - s(0.65)));
  return words;
}

/** Random captions (one image each) and features, in the exercise's data dictionary. */
export function randomCaptionData(
  options: {
    numTrain: number;
    numVal?: number;
    vocab?: number;
    inputDim?: number;
    seed?: number;
    /** COCO-like sentences from a template ("a <adj> <noun> <verb> <prep> a <adj> <noun> …"). */
    structured?: boolean;
  },
): CaptionData {
  const { numTrain, numVal = 0, vocab = 1004, inputDim = 512, seed = 0, structured = false } =
    options;
  const rng = new Rng(seed);
  const { idxToWord, wordToIdx } = makeVocab(vocab);
  const split = (n: number) => {
    const captions = Tensor.zeros([n, 17], "int32");
    for (let i = 0; i < n; i++) {
      const words = structured ? templateCaption(rng, vocab) : randomWords(rng, vocab);
      captions.data[i * 17] = 1;
      captions.data.set(words, i * 17 + 1);
      captions.data[i * 17 + words.length + 1] = 2;
    }
    const imageIdxs = Tensor.fromValues(Array.from({ length: n }, (_, i) => i), [n], "int32");
    return { captions, imageIdxs, features: Tensor.randn([n, inputDim], rng, "float32") };
  };
  const train = split(numTrain), val = split(numVal);
  return {
    train_captions: train.captions,
    train_image_idxs: train.imageIdxs,
    train_features: train.features,
    ...(numVal > 0
      ? { val_captions: val.captions, val_image_idxs: val.imageIdxs, val_features: val.features }
      : {}),
    idx_to_word: idxToWord,
    word_to_idx: wordToIdx,
  };
}
