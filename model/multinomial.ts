/**
 * Multinomial sampling over a `StepDecoder`: each caption draws its words from the model's
 * distribution, sharpened or flattened by a temperature and optionally cut to the top k words
 * or to the smallest set of likeliest words whose probabilities add up to p (nucleus
 * sampling, Holtzman et al. 2019). `<NULL>` and `<START>` are never drawn: they are never a
 * training target, so the captions can be trained on as they are (self-critical training).
 *
 * Each caption has its own seeded stream, numbered by (seed, image, sample): its draws do not
 * depend on which other images are decoded with it, nor on how a pool splits them. Captions
 * that wrote `<END>` leave the block (their rows are compacted away), so later steps compute
 * only the captions still running.
 *
 * Dimension legend: C images of a chunk, k samples per image, D image feature, V vocabulary,
 * L maxLength.
 * @module
 */
import { Rng } from "../layers/random.ts";
import type { FloatArray } from "../layers/tensor.ts";
import type { DecodeOptions } from "./decode_options.ts";
import type { StepDecoder } from "./decoder.ts";
import { topWords, trigramRepeats, withBanned } from "./next_words.ts";

/** A chunk of images to sample, and where the captions go. */
export interface SampleChunk {
  /** Image features, (C, D). */
  feats: FloatArray;
  /** C */
  n: number;
  /** The number of the chunk's first image, in the count of the seed's streams. */
  firstImage: number;
  /** Where the captions go, (C k, L): image i's j-th is row i k + j. */
  captions: Int32Array;
  /** Where their log-probabilities go (the model's, at temperature 1), (C k,). */
  logProbs: Float64Array;
}

/** A 32-bit integer hash (murmur3's finaliser): nearby inputs give unrelated outputs. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The seed of one caption's stream: a hash of (seed, image, sample).
 * @param seed The decoding seed (a non-negative integer, up to 2^53).
 * @param image The image's number.
 * @param sample The sample's number among the image's.
 * @returns A 32-bit seed for {@linkcode Rng}.
 *
 * @example
 * ```ts
 * import { streamSeed } from "./multinomial.ts";
 * console.log(streamSeed(0, 1, 0) !== streamSeed(0, 0, 1)); // true
 * ```
 */
export function streamSeed(seed: number, image: number, sample: number): number {
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 4294967296) + 0x9e3779b9));
  h = mix32(h ^ mix32(image + 0x7f4a7c15));
  return mix32(h ^ mix32(sample + 0x94d049bb));
}

/**
 * Draws one word from a row of scores: softmax(scores / T) over the allowed words, cut to the
 * top k and then to the nucleus of probability p when asked.
 */
class WordDraw {
  readonly #p: Float64Array;
  readonly #order: number[] = [];
  readonly #options: DecodeOptions;

  constructor(vocabSize: number, options: DecodeOptions) {
    this.#p = new Float64Array(vocabSize);
    this.#options = options;
  }

  /** The drawn word of row `o` (-1 when every word is banned). */
  draw(sc: FloatArray, o: number, v: number, banned: Uint8Array, rng: Rng): number {
    const { temperature, topK, topP } = this.#options, p = this.#p;
    let max = -Infinity;
    for (let j = 0; j < v; j++) if (!banned[j] && sc[o + j] > max) max = sc[o + j];
    if (max === -Infinity) return -1;
    let total = 0;
    for (let j = 0; j < v; j++) {
      p[j] = banned[j] ? 0 : Math.exp((sc[o + j] - max) / temperature);
      total += p[j];
    }
    // The candidates, in the order the draw walks them: all words by index, or the likeliest
    // first when cut (ties: the lower index first).
    let order: number[] | null = null;
    if (topK > 0 && topK < v) order = topWords(p, 0, v, topK, banned);
    if (topP < 1) {
      if (order === null) {
        order = this.#order;
        order.length = 0;
        for (let j = 0; j < v; j++) if (!banned[j]) order.push(j);
        order.sort((a, b) => p[b] - p[a] || a - b);
      }
      let kept = 0, mass = 0;
      const all = order.reduce((s, j) => s + p[j], 0);
      while (kept < order.length && mass < topP * all) mass += p[order[kept++]];
      order = order.slice(0, kept);
    }
    if (order !== null) total = order.reduce((s, j) => s + p[j], 0);
    const u = rng.random() * total;
    let acc = 0, word = -1;
    if (order === null) {
      for (let j = 0; j < v; j++) {
        if (banned[j] || p[j] === 0) continue;
        word = j;
        acc += p[j];
        if (acc > u) break;
      }
    } else {
      for (const j of order) {
        word = j;
        acc += p[j];
        if (acc > u) break;
      }
    }
    return word;
  }
}

/**
 * Samples `options.samples` captions for each image of a chunk. Rows whose caption ended are
 * compacted away between steps; every caption's words after its `<END>` are `<NULL>`.
 * @param dec The model's step decoder.
 * @param chunk The images; the captions go into it.
 * @param options Resolved decoding options (method "sample").
 * @param banned The (V,) mask of words never written (`<NULL>` and `<START>` among them).
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { resolveDecodeOptions } from "./decode_options.ts";
 * import { sampleChunk } from "./multinomial.ts";
 * import { bannedWords } from "./next_words.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 }, inputDim: 2 });
 * const chunk = { feats: new Float32Array(2), n: 1, firstImage: 0, captions: new Int32Array(3 * 4), logProbs: new Float64Array(3) };
 * sampleChunk(model.decoder, chunk, resolveDecodeOptions({ method: "sample", samples: 3, maxLength: 4 }), bannedWords(4, [0, 1]));
 * console.log(chunk.captions.every((w) => w !== 1)); // true: <START> is never drawn
 * ```
 */
export function sampleChunk(
  dec: StepDecoder,
  chunk: SampleChunk,
  options: DecodeOptions,
  banned: Uint8Array,
): void {
  const { n, feats, captions, logProbs } = chunk, k = options.samples, l = options.maxLength;
  const { vocabSize: v, endIdx, startIdx, nullIdx } = dec.model;
  const d = feats.length / Math.max(n, 1), rows = n * k;
  captions.fill(nullIdx, 0, rows * l);
  logProbs.fill(0, 0, rows);
  // Each image's features once per sample: row r = i k + j starts from image i.
  const start = new (feats.constructor as new (len: number) => FloatArray)(rows * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) start.set(feats.subarray(i * d, (i + 1) * d), (i * k + j) * d);
  }
  dec.reserve(rows);
  dec.start(start, rows);
  const out = Int32Array.from({ length: rows }, (_, r) => r); // the caption of each live row
  const rngs = Array.from(
    { length: rows },
    (_, r) => new Rng(streamSeed(options.seed, chunk.firstImage + Math.floor(r / k), r % k)),
  );
  const words = new Int32Array(rows).fill(startIdx);
  const wordDraw = new WordDraw(v, options), repeats: number[] = [];
  let live = rows;
  for (let t = 0; t < l && live > 0; t++) {
    dec.step(words, live);
    const sc = dec.scores;
    let next = 0;
    for (let r = 0; r < live; r++) {
      const c = out[r], o = r * v;
      if (options.blockTrigrams) trigramRepeats(captions, c * l, t, repeats);
      const word = withBanned(
        banned,
        options.blockTrigrams ? repeats : [],
        () => wordDraw.draw(sc, o, v, banned, rngs[r]),
      );
      if (word < 0) continue; // nothing may be written: the caption stops here
      captions[c * l + t] = word;
      logProbs[c] += sc[o + word] - dec.lse[r];
      if (word === endIdx) continue;
      // The caption goes on: its state moves to the next free row.
      dec.keep(r, next);
      out[next] = c;
      rngs[next] = rngs[r];
      words[next] = word;
      next++;
    }
    live = next;
  }
}
