/**
 * Caption generation: greedy decoding, beam search (`beam_search.ts`) and multinomial
 * sampling (`multinomial.ts`), with their controls (`decode_options.ts`), all driving a
 * model's step decoder (`StepDecoder`: the recurrent models' `Decoder`, or any other model's).
 *
 * Images are decoded in fixed chunks, counted from image 0 ({@linkcode SAMPLE_CHUNK} images,
 * or fewer when each image has several sampled captions, see {@linkcode imagesPerChunk}):
 * every GEMM of a chunk has the same rows whether the chunk is decoded in one call with all
 * images or alone, so a split of the images into runs of whole chunks (as the worker pool
 * makes) gives the same bits as one call, on every backend (BLAS rounding depends on the row
 * count). Sampled captions draw from streams numbered by image, so they split the same way.
 *
 * Dimension legend: N images, C images of a chunk, D image feature, V vocabulary,
 * L maxLength, m captions per image (1, nBest or samples).
 * @module
 */
import { type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import { beamSearch } from "./beam_search.ts";
import {
  captionsPerImage,
  type DecodeOptions,
  resolveDecodeOptions,
  type SampleOptions,
} from "./decode_options.ts";
import type { DecodedModel, StepDecoder } from "./decoder.ts";
import { sampleChunk } from "./multinomial.ts";
import { argmaxAllowed, bannedWords, trigramRepeats, withBanned } from "./next_words.ts";

export { resolveDecodeOptions } from "./decode_options.ts";
export type {
  DecodeMethod,
  DecodeOptions,
  LengthPenalty,
  SampleOptions,
} from "./decode_options.ts";

/** Captions and their scores. */
export interface SampleResult {
  /**
   * Word indices, (N m, L), int32: image i's j-th caption is row i m + j (m = 1 unless
   * `nBest` or `samples` asks for more).
   */
  captions: Tensor<"int32">;
  /**
   * Each caption's total log-probability up to and including its first `<END>` (the model's,
   * whatever the temperature); -Infinity for an n-best entry that beam search did not find.
   */
  logProbs: Float64Array;
}

/** A model that owns a decoder, as a `CaptioningRNN` does. */
export interface SamplingModel {
  /** The model's decoder (made at its first use). */
  readonly decoder: StepDecoder;
}

/**
 * The number of decoder rows a chunk aims at: C images for greedy decoding and beam search.
 * Decoding any run of whole chunks (from a multiple of C) on its own gives exactly the result
 * of those images in a call with all of them. 128 rows (128·B beams) keep a GEMM near the
 * speed of a large one (BLAS packs the weights once per call, whatever the row count), and
 * 500 images still make 4 chunks, one for each of the default 4 workers.
 */
export const SAMPLE_CHUNK = 128;

/**
 * C, the images of a chunk: {@linkcode SAMPLE_CHUNK}, divided by the samples per image when
 * sampling (so the rows of a chunk stay near SAMPLE_CHUNK, and a batch of self-critical
 * training spreads over the workers).
 * @param options Resolved decoding options.
 * @returns C ≥ 1.
 *
 * @example
 * ```ts
 * import { imagesPerChunk, resolveDecodeOptions } from "./sampling.ts";
 * console.log(imagesPerChunk(resolveDecodeOptions({ method: "sample", samples: 5 }))); // 25
 * ```
 */
export function imagesPerChunk(options: DecodeOptions): number {
  return options.method === "sample"
    ? Math.max(1, Math.floor(SAMPLE_CHUNK / options.samples))
    : SAMPLE_CHUNK;
}

/**
 * Checks sampling arguments and resolves the options, with the messages sampling gives (the
 * worker pool checks on the main thread with it, so a bad call is an error, not a failed
 * worker).
 * @param model The model (its special tokens and feature size).
 * @param features Image features, (N, D).
 * @param options The decoding options.
 * @returns The resolved options.
 * @throws {TypeError} When an option name is unknown or a value has the wrong type.
 * @throws {RangeError} When an option or the features are out of range, or the vocabulary
 * lacks a token decoding needs.
 *
 * @example
 * ```ts
 * import { Tensor } from "../mod.ts";
 * import { checkSampleArgs } from "./sampling.ts";
 * const model = { startIdx: 1, endIdx: 2, nullIdx: 0, unkIdx: -1, config: { inputDim: 4 } };
 * console.log(checkSampleArgs(model, Tensor.zeros([2, 4]), { maxLength: 16, beamSize: 3 }).method); // beam
 * ```
 */
export function checkSampleArgs(
  model: Pick<DecodedModel, "startIdx" | "unkIdx"> & {
    readonly config: { readonly inputDim: number };
  },
  features: Tensor<FloatDType>,
  options: SampleOptions = {},
): DecodeOptions {
  const resolved = resolveDecodeOptions(options);
  if (model.startIdx < 0) throw new RangeError(`Cannot sample: the vocabulary has no "<START>"`);
  if (resolved.suppressUnk && model.unkIdx < 0) {
    throw new RangeError(`Invalid suppressUnk: the vocabulary has no "<UNK>" to suppress`);
  }
  if (features.shape.length !== 2 || features.shape[1] !== model.config.inputDim) {
    throw new RangeError(
      `Invalid features: expected [N, ${model.config.inputDim}], got [${features.shape}]`,
    );
  }
  // A NaN would decode to nothing (every score NaN): name the image instead.
  const { data } = features, d = features.shape[1];
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new RangeError(
        `Invalid features: row ${Math.floor(i / d)} has a non-finite value (${data[i]}) at ` +
          `column ${i % d}; caption finite features`,
      );
    }
  }
  return resolved;
}

/**
 * Generates captions: greedy decoding (argmax, fed back, from `<START>`), beam search, or
 * sampling — see {@linkcode SampleOptions}. Every caption is padded with `<NULL>` after its
 * `<END>`: a caption that ended is no longer decoded.
 * @param model The model, e.g. a `CaptioningRNN`.
 * @param features Image features, (N, D).
 * @param options The strategy and its controls.
 * @returns The captions (m per image) and their log-probabilities.
 * @throws {TypeError} When an option name is unknown.
 * @throws {RangeError} When an option or the features are out of range.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, sampleCaptions, Tensor } from "../mod.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const { captions } = sampleCaptions(model, Tensor.randn([3, 4], 0), { maxLength: 5, beamSize: 2 });
 * console.log(captions.shape); // [3, 5]
 * const sampled = sampleCaptions(model, Tensor.randn([3, 4], 0), { method: "sample", samples: 2, seed: 7 });
 * console.log(sampled.captions.shape); // [6, 30]
 * ```
 */
export function sampleCaptions(
  model: SamplingModel,
  features: Tensor<FloatDType>,
  options: SampleOptions = {},
): SampleResult {
  const dec = model.decoder, { dtype, inputDim: d } = dec.model.config;
  const opts = checkSampleArgs(dec.model, features, options);
  const feats = (features.dtype === dtype ? features : features.astype(dtype)).data;
  const n = features.shape[0], l = opts.maxLength, m = captionsPerImage(opts);
  const captions = Tensor.zeros([n * m, l], "int32");
  const logProbs = new Float64Array(n * m);
  const { unkIdx, nullIdx, startIdx } = dec.model;
  const banned = bannedWords(dec.model.vocabSize, [
    ...(opts.suppressUnk ? [unkIdx] : []),
    ...(opts.method === "sample" ? [nullIdx, startIdx] : []),
  ]);
  const c = imagesPerChunk(opts);
  for (let i0 = 0; i0 < n; i0 += c) {
    const i1 = Math.min(n, i0 + c), chunkFeats = feats.subarray(i0 * d, i1 * d);
    const out = {
      captions: captions.data.subarray(i0 * m * l, i1 * m * l),
      logProbs: logProbs.subarray(i0 * m, i1 * m),
    };
    if (opts.method === "sample") {
      sampleChunk(
        dec,
        { feats: chunkFeats, n: i1 - i0, firstImage: opts.firstImage + i0, ...out },
        opts,
        banned,
      );
      continue;
    }
    const chunk = { feats: chunkFeats, n: i1 - i0, ...out };
    if (opts.method === "beam") beamSearch(dec, chunk, opts, banned);
    else greedySample(dec, chunk, opts, banned);
  }
  return { captions, logProbs };
}

/** A chunk of C images and where its greedy captions go. */
interface Chunk {
  /** Image features, (C, D). */
  feats: FloatArray;
  /** C */
  n: number;
  /** The chunk's rows of the captions, (C, L). */
  captions: Int32Array;
  /** The chunk's log-probabilities, (C,). */
  logProbs: Float64Array;
}

/**
 * Greedy decoding of a chunk, all images in step, never writing a banned word. A caption that
 * wrote `<END>` leaves the block (the live rows are compacted, as sampling does), so later
 * steps compute only the captions still running; its words after `<END>` are `<NULL>`.
 */
function greedySample(
  dec: StepDecoder,
  chunk: Chunk,
  options: DecodeOptions,
  banned: Uint8Array,
): void {
  const { n, captions, logProbs } = chunk;
  const { vocabSize: v, startIdx, endIdx, nullIdx } = dec.model;
  const l = options.maxLength, repeats: number[] = [];
  captions.fill(nullIdx, 0, n * l);
  logProbs.fill(0, 0, n);
  dec.start(chunk.feats, n);
  const words = new Int32Array(n).fill(startIdx);
  const image = Int32Array.from({ length: n }, (_, r) => r); // the image of each live row
  const from = new Int32Array(n); // the row of the last step each running caption was on
  let live = n;
  for (let t = 0; t < l && live > 0; t++) {
    dec.step(words, live);
    const sc = dec.scores;
    let next = 0;
    for (let r = 0; r < live; r++) {
      const i = image[r], o = r * v;
      if (options.blockTrigrams) trigramRepeats(captions, i * l, t, repeats);
      let best = withBanned(
        banned,
        options.blockTrigrams ? repeats : [],
        () => argmaxAllowed(sc, o, v, banned),
      );
      if (best < 0) best = endIdx >= 0 ? endIdx : 0; // every word banned: end the caption
      captions[i * l + t] = best;
      logProbs[i] += sc[o + best] - dec.lse[r];
      if (best === endIdx) continue;
      from[next] = r;
      image[next] = i;
      words[next] = best;
      next++;
    }
    if (next === live) dec.advance(); // no caption ended: every row stays where it is
    else for (let j = 0; j < next; j++) dec.keep(from[j], j); // the running ones move up
    live = next;
  }
}
