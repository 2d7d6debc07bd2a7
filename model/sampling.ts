/**
 * Caption generation: the exercise's greedy decoding and beam search, driving a model's
 * step decoder (`StepDecoder`: the recurrent models' `Decoder`, or any other model's).
 *
 * Images are decoded in fixed chunks of {@linkcode SAMPLE_CHUNK}, counted from image 0: every
 * GEMM of a chunk has the same rows whether the chunk is decoded in one call with all images
 * or alone, so a split of the images into runs of whole chunks (as the worker pool makes) gives
 * the same bits as one call, on every backend (BLAS rounding depends on the row count).
 *
 * Dimension legend: N images, C images of a chunk, D image feature, V vocabulary,
 * B beams (≤ beamSize), L maxLength.
 * @module
 */
import { checkOptionNames } from "../layers/options.ts";
import { type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import type { DecodedModel, StepDecoder } from "./decoder.ts";

/** Options of sampling. */
export interface SampleOptions {
  /** L, the number of words to generate at most (default 30). */
  maxLength?: number;
  /** 1 (default) for greedy decoding, more for beam search. */
  beamSize?: number;
}

/** Captions and their scores. */
export interface SampleResult {
  /** Word indices, (N, L), int32. */
  captions: Tensor<"int32">;
  /** Each caption's total log-probability up to and including its first `<END>`. */
  logProbs: Float64Array;
}

/** A model that owns a decoder, as a `CaptioningRNN` does. */
export interface SamplingModel {
  /** The model's decoder (made at its first use). */
  readonly decoder: StepDecoder;
}

/**
 * C, the number of images decoded together. Decoding any run of whole chunks (from a multiple
 * of C) on its own gives exactly the result of those images in a call with all of them.
 * 128 rows (128·B beams) keep a GEMM near the speed of a large one (BLAS packs the weights
 * once per call, whatever the row count), and 500 images still make 4 chunks, one for each of
 * the default 4 workers.
 */
export const SAMPLE_CHUNK = 128;

const SAMPLE_OPTIONS = ["maxLength", "beamSize"];

/**
 * Checks sampling arguments, with the messages sampling gives (the worker pool checks on the
 * main thread with it, so a bad call is an error, not a failed worker).
 * @param model The model (its `<START>` index and feature size).
 * @param features Image features, (N, D).
 * @param maxLength L, a positive integer.
 * @param beamSize A positive integer.
 * @throws {RangeError} When an argument is out of range, or the vocabulary has no `<START>`.
 *
 * @example
 * ```ts
 * import { Tensor } from "../mod.ts";
 * import { checkSampleArgs } from "./sampling.ts";
 * const model = { startIdx: 1, config: { inputDim: 4 } };
 * checkSampleArgs(model, Tensor.zeros([2, 4]), 16, 3); // fine
 * ```
 */
export function checkSampleArgs(
  model: Pick<DecodedModel, "startIdx"> & { readonly config: { readonly inputDim: number } },
  features: Tensor<FloatDType>,
  maxLength: number,
  beamSize: number,
): void {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`Invalid maxLength: expected a positive integer, got ${maxLength}`);
  }
  if (!Number.isInteger(beamSize) || beamSize < 1) {
    throw new RangeError(`Invalid beamSize: expected a positive integer, got ${beamSize}`);
  }
  if (model.startIdx < 0) throw new RangeError(`Cannot sample: the vocabulary has no "<START>"`);
  if (features.shape.length !== 2 || features.shape[1] !== model.config.inputDim) {
    throw new RangeError(
      `Invalid features: expected [N, ${model.config.inputDim}], got [${features.shape}]`,
    );
  }
}

/**
 * Generates captions: greedy at beamSize 1 (argmax, fed back, from `<START>`; like the
 * exercise it keeps generating after `<END>`), beam search otherwise.
 * @param model The model, e.g. a `CaptioningRNN`.
 * @param features Image features, (N, D).
 * @param options `maxLength` and `beamSize`.
 * @returns The captions and their log-probabilities.
 * @throws {TypeError} When an option name is unknown.
 * @throws {RangeError} When an option or the features are out of range.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, sampleCaptions, Tensor } from "../mod.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const { captions } = sampleCaptions(model, Tensor.randn([3, 4], 0), { maxLength: 5, beamSize: 2 });
 * console.log(captions.shape); // [3, 5]
 * ```
 */
export function sampleCaptions(
  model: SamplingModel,
  features: Tensor<FloatDType>,
  options: SampleOptions = {},
): SampleResult {
  checkOptionNames("sample options", options, SAMPLE_OPTIONS);
  const maxLength = options.maxLength ?? 30, beamSize = options.beamSize ?? 1;
  const dec = model.decoder, { dtype, inputDim: d } = dec.model.config;
  checkSampleArgs(dec.model, features, maxLength, beamSize);
  const feats = (features.dtype === dtype ? features : features.astype(dtype)).data;
  const n = features.shape[0];
  const captions = Tensor.zeros([n, maxLength], "int32");
  const logProbs = new Float64Array(n);
  for (let i0 = 0; i0 < n; i0 += SAMPLE_CHUNK) {
    const i1 = Math.min(n, i0 + SAMPLE_CHUNK);
    const chunk: Chunk = {
      feats: feats.subarray(i0 * d, i1 * d),
      n: i1 - i0,
      captions: captions.data.subarray(i0 * maxLength, i1 * maxLength),
      logProbs: logProbs.subarray(i0, i1),
    };
    greedySample(dec, chunk, maxLength);
    if (beamSize > 1) beamSearch(dec, chunk, beamSize, maxLength);
  }
  return { captions, logProbs };
}

/** A chunk of C images and where its results go. */
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

/** Greedy decoding of a chunk, all images in step. */
function greedySample(dec: StepDecoder, chunk: Chunk, maxLength: number): void {
  const { n, captions, logProbs } = chunk, { vocabSize: v, startIdx, endIdx } = dec.model;
  const ended = new Uint8Array(n);
  dec.start(chunk.feats, n);
  const words = new Int32Array(n).fill(startIdx);
  for (let t = 0; t < maxLength; t++) {
    dec.step(words, n);
    dec.advance();
    const sc = dec.scores;
    for (let i = 0; i < n; i++) {
      const o = i * v;
      let best = 0;
      for (let j = 1; j < v; j++) if (sc[o + j] > sc[o + best]) best = j;
      words[i] = best;
      captions[i * maxLength + t] = best;
      if (!ended[i]) {
        logProbs[i] += sc[o + best] - dec.lse[i];
        if (best === endIdx) ended[i] = 1;
      }
    }
  }
}

interface Hypothesis {
  words: number[];
  logProb: number;
}

/**
 * Beam search of a chunk (each image's search is independent; their live beams share each
 * step's GEMMs). An image's best hypothesis replaces its greedy caption (already in the chunk)
 * unless greedy's is more likely: beam search is not monotone in the beam size, and greedy's
 * caption is one of its candidates too, so a wider beam never returns a less likely caption.
 */
function beamSearch(dec: StepDecoder, chunk: Chunk, beamSize: number, maxLength: number): void {
  const { n } = chunk, { vocabSize: v, startIdx, endIdx, nullIdx } = dec.model;
  dec.reserve(n * beamSize);
  dec.start(chunk.feats, n); // row i is image i's single initial beam
  const beams: Hypothesis[][] = Array.from({ length: n }, () => [{ words: [], logProb: 0 }]);
  const finished: Hypothesis[][] = Array.from({ length: n }, () => []);
  const firstRow = new Int32Array(n);
  const last = new Int32Array(n * beamSize);
  for (let t = 0; t < maxLength; t++) {
    // The live beams of all images, image by image, in the order of the state's rows.
    let rows = 0;
    for (let i = 0; i < n; i++) {
      firstRow[i] = rows;
      for (const b of beams[i]) {
        last[rows++] = b.words.length ? b.words[b.words.length - 1] : startIdx;
      }
    }
    if (rows === 0) break;
    dec.step(last, rows);
    const sc = dec.scores;
    let next = 0;
    for (let i = 0; i < n; i++) {
      if (beams[i].length === 0) continue;
      const r0 = firstRow[i];
      // Each beam's best beamSize words are enough to find the best beamSize continuations.
      const candidates: Array<{ beam: number; word: number; logProb: number }> = [];
      for (let b = 0; b < beams[i].length; b++) {
        const o = (r0 + b) * v;
        for (const word of topK(sc, o, v, beamSize)) {
          const logProb = beams[i][b].logProb + (sc[o + word] - dec.lse[r0 + b]);
          candidates.push({ beam: b, word, logProb });
        }
      }
      candidates.sort((a, b) => b.logProb - a.logProb || a.beam - b.beam || a.word - b.word);
      const kept: Array<{ beam: number; word: number; logProb: number }> = [];
      for (const cand of candidates) {
        if (kept.length === beamSize) break;
        if (cand.word === endIdx) {
          finished[i].push({
            words: [...beams[i][cand.beam].words, cand.word],
            logProb: cand.logProb,
          });
        } else kept.push(cand);
      }
      const bestFinished = Math.max(-Infinity, ...finished[i].map((f) => f.logProb));
      // Log-probabilities only fall as words are added: no live beam can beat a better finished one.
      const live = kept.filter((c) => c.logProb > bestFinished);
      if (t === maxLength - 1) {
        for (const c of live) {
          finished[i].push({ words: [...beams[i][c.beam].words, c.word], logProb: c.logProb });
        }
        beams[i] = [];
        continue;
      }
      // The surviving beams' states, gathered from the state just written.
      for (const cand of live) dec.keep(r0 + cand.beam, next++);
      beams[i] = live.map((cand) => ({
        words: [...beams[i][cand.beam].words, cand.word],
        logProb: cand.logProb,
      }));
    }
  }
  for (let i = 0; i < n; i++) {
    const best = finished[i].sort((a, b) => b.logProb - a.logProb)[0];
    if (chunk.logProbs[i] > best.logProb) continue; // greedy's caption is more likely
    const row = chunk.captions.subarray(i * maxLength, (i + 1) * maxLength).fill(nullIdx);
    row.set(best.words.slice(0, maxLength));
    chunk.logProbs[i] = best.logProb;
  }
}

/** The indices of the k largest values of a[offset … offset+len), largest first. */
function topK(a: FloatArray, offset: number, len: number, k: number): number[] {
  const best: number[] = [];
  for (let j = 0; j < len; j++) {
    const val = a[offset + j];
    if (best.length < k || val > a[offset + best[best.length - 1]]) {
      let pos = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push(j);
      while (pos > 0 && a[offset + best[pos - 1]] < val) {
        best[pos] = best[pos - 1];
        pos--;
      }
      best[pos] = j;
    }
  }
  return best;
}
