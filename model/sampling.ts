/**
 * Caption generation: the exercise's greedy decoding and beam search.
 *
 * Dimension legend: N batch, D image feature, W word vector, H hidden, V vocabulary,
 * B beams (≤ beamSize), L maxLength.
 * @module
 */
import type { ElementwiseKernels, FloatArena } from "../layers/kernels/elementwise.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { kernels } from "../layers/kernels/mod.ts";
import { type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import type { CaptioningRNN } from "./captioning_rnn.ts";

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

/**
 * Checks sampling arguments, with the messages sampling gives (the worker pool checks on the
 * main thread with it, so a bad call is an error, not a failed worker).
 * @param model The model.
 * @param features Image features, (N, D).
 * @param maxLength L, a positive integer.
 * @param beamSize A positive integer.
 */
export function checkSampleArgs<D extends FloatDType>(
  model: CaptioningRNN<D>,
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
 * @param model The model.
 * @param features Image features, (N, D).
 * @param options `maxLength` and `beamSize`.
 * @returns The captions and their log-probabilities.
 */
export function sampleCaptions<D extends FloatDType>(
  model: CaptioningRNN<D>,
  features: Tensor<FloatDType>,
  options: SampleOptions = {},
): SampleResult {
  const maxLength = options.maxLength ?? 30, beamSize = options.beamSize ?? 1;
  checkSampleArgs(model, features, maxLength, beamSize);
  const feats =
    (features.dtype === model.dtype ? features : features.astype(model.dtype)) as Tensor<D>;
  const greedy = greedySample(model, feats, maxLength);
  if (beamSize === 1) return greedy;
  const n = feats.shape[0];
  const captions = Tensor.zeros([n, maxLength], "int32");
  const logProbs = new Float64Array(n);
  const d = feats.shape[1];
  // All images' beams step together, a chunk of images at a time (bounded work arrays).
  for (let i0 = 0; i0 < n; i0 += BEAM_CHUNK) {
    const i1 = Math.min(n, i0 + BEAM_CHUNK);
    const chunk = feats.data.subarray(i0 * d, i1 * d) as FloatArray;
    const bests = beamSearch(model, chunk, i1 - i0, beamSize, maxLength);
    for (let i = i0; i < i1; i++) {
      const best = bests[i - i0];
      // Beam search is not monotone in the beam size; the greedy caption is one of its
      // candidates too, so a wider beam never returns a less likely caption than greedy.
      if (greedy.logProbs[i] > best.logProb) {
        captions.data.set(
          greedy.captions.data.subarray(i * maxLength, (i + 1) * maxLength),
          i * maxLength,
        );
        logProbs[i] = greedy.logProbs[i];
      } else {
        captions.data.set(best.words, i * maxLength);
        logProbs[i] = best.logProb;
      }
    }
  }
  return { captions, logProbs };
}

/**
 * The decoder's work arrays for up to B rows (reused across steps and calls, grown on demand):
 * the state (h, c) of every row, the next state, the gates, and the vocabulary scores.
 */
class Decoder<D extends FloatDType> {
  readonly #model: CaptioningRNN<D>;
  readonly #ew: ElementwiseKernels;
  readonly #arena: FloatArena;
  #rows = -1;
  /** (B, H) the state the next step reads; `hNext`, `cNext` the state it writes. */
  h!: FloatArray;
  c!: FloatArray;
  hNext!: FloatArray;
  cNext!: FloatArray;
  /** (B, W) word vectors, (B, G) gates, (B, V) scores and a scratch copy, (B, 2) row stats. */
  x!: FloatArray;
  gates!: FloatArray;
  tanhC!: FloatArray;
  scores!: FloatArray;
  scratch!: FloatArray;
  stats!: FloatArray;
  /** Each row's log Σ exp(scores): log p[j] = scores[j] - lse. */
  lse = new Float64Array(0);

  constructor(model: CaptioningRNN<D>) {
    this.#model = model;
    const { kernels, arena } = selectElementwise(model.dtype);
    this.#ew = kernels;
    this.#arena = arena;
  }

  /** Makes room for `rows` rows; the state is kept only when no growth was needed. */
  reserve(rows: number): void {
    if (rows <= this.#rows) return;
    const { wordvecDim: w, hiddenDim: hd, cellType } = this.#model.config;
    const g = cellType === "lstm" ? 4 * hd : hd, v = this.#model.vocabSize;
    [
      this.h,
      this.c,
      this.hNext,
      this.cNext,
      this.x,
      this.gates,
      this.tanhC,
      this.scores,
      this.scratch,
      this.stats,
    ] = this.#arena.carve([
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * w,
      rows * g,
      rows * hd,
      rows * v,
      rows * v,
      2 * rows,
    ]);
    this.lse = new Float64Array(rows);
    this.#rows = rows;
  }

  /** h = features · W_proj + b_proj, c = 0 for `rows` images. */
  start(feats: FloatArray, rows: number): void {
    const p = this.#model.params, { inputDim: d, hiddenDim: hd } = this.#model.config;
    this.reserve(rows);
    for (let i = 0; i < rows; i++) this.h.set(p.b_proj.data, i * hd);
    this.c.fill(0, 0, rows * hd);
    kernels().gemm(
      false,
      false,
      rows,
      hd,
      d,
      1,
      feats,
      0,
      d,
      p.W_proj.data,
      0,
      hd,
      1,
      this.h,
      0,
      hd,
    );
  }

  /** Swaps the state buffers: the state just written becomes the one read next. */
  advance(): void {
    [this.h, this.hNext] = [this.hNext, this.h];
    [this.c, this.cNext] = [this.cNext, this.c];
  }

  /**
   * One step of the language model for `rows` words: reads (h, c), writes (hNext, cNext),
   * the scores and each row's log-sum-exp.
   */
  step(words: ArrayLike<number>, rows: number): void {
    const m = this.#model, p = m.params, k = kernels(), ew = this.#ew;
    const { wordvecDim: w, hiddenDim: hd, cellType, activation } = m.config;
    const g = cellType === "lstm" ? 4 * hd : hd, v = m.vocabSize;
    for (let i = 0; i < rows; i++) {
      this.x.set(p.W_embed.data.subarray(words[i] * w, (words[i] + 1) * w), i * w);
      this.gates.set(p.b.data, i * g);
    }
    k.gemm(false, false, rows, g, w, 1, this.x, 0, w, p.Wx.data, 0, g, 1, this.gates, 0, g);
    k.gemm(false, false, rows, g, hd, 1, this.h, 0, hd, p.Wh.data, 0, g, 1, this.gates, 0, g);
    if (cellType === "lstm") {
      ew.lstmCell(this.gates, 0, this.c, 0, this.cNext, this.tanhC, this.hNext, 0, rows, hd);
    } else {
      if (activation === "tanh") ew.tanh(this.gates, 0, rows * hd);
      else ew.sigmoid(this.gates, 0, rows * hd);
      this.hNext.set(this.gates.subarray(0, rows * hd));
    }
    for (let i = 0; i < rows; i++) this.scores.set(p.b_vocab.data, i * v);
    k.gemm(
      false,
      false,
      rows,
      v,
      hd,
      1,
      this.hNext,
      0,
      hd,
      p.W_vocab.data,
      0,
      v,
      1,
      this.scores,
      0,
      v,
    );
    // log Σ exp = max + log Σ exp(s - max), from the softmax of a scratch copy.
    this.scratch.set(this.scores.subarray(0, rows * v));
    ew.softmaxRows(this.scratch, 0, rows, v, this.stats, 0, 1);
    for (let i = 0; i < rows; i++) {
      this.lse[i] = this.stats[2 * i] + Math.log(this.stats[2 * i + 1]);
    }
  }
}

/** Each model's decoder, made at its first sampling. */
const decoders = new WeakMap<CaptioningRNN<FloatDType>, Decoder<FloatDType>>();

function decoderOf<D extends FloatDType>(model: CaptioningRNN<D>): Decoder<D> {
  let dec = decoders.get(model as CaptioningRNN<FloatDType>);
  if (!dec) {
    dec = new Decoder(model as CaptioningRNN<FloatDType>);
    decoders.set(model as CaptioningRNN<FloatDType>, dec);
  }
  return dec as Decoder<D>;
}

function greedySample<D extends FloatDType>(
  model: CaptioningRNN<D>,
  feats: Tensor<D>,
  maxLength: number,
): SampleResult {
  const n = feats.shape[0], v = model.vocabSize;
  const captions = Tensor.zeros([n, maxLength], "int32");
  const logProbs = new Float64Array(n);
  const ended = new Uint8Array(n);
  const dec = decoderOf(model);
  dec.start(feats.data, n);
  const words = new Int32Array(n).fill(model.startIdx);
  for (let t = 0; t < maxLength; t++) {
    dec.step(words, n);
    dec.advance();
    const sc = dec.scores;
    for (let i = 0; i < n; i++) {
      const o = i * v;
      let best = 0;
      for (let j = 1; j < v; j++) if (sc[o + j] > sc[o + best]) best = j;
      words[i] = best;
      captions.data[i * maxLength + t] = best;
      if (!ended[i]) {
        logProbs[i] += sc[o + best] - dec.lse[i];
        if (best === model.endIdx) ended[i] = 1;
      }
    }
  }
  return { captions, logProbs };
}

interface Hypothesis {
  words: number[];
  logProb: number;
}

/** How many images' beams are decoded together. */
const BEAM_CHUNK = 64;

/**
 * Beam search for `n` images at once (each image's search is independent; their live beams
 * share each step's GEMMs). Returns each image's best hypothesis, `<END>`-terminated when it
 * ended.
 */
function beamSearch<D extends FloatDType>(
  model: CaptioningRNN<D>,
  feats: FloatArray,
  n: number,
  beamSize: number,
  maxLength: number,
): Array<{ words: Int32Array; logProb: number }> {
  const v = model.vocabSize, hd = model.config.hiddenDim;
  const dec = decoderOf(model);
  dec.reserve(n * beamSize);
  dec.start(feats, n); // row i is image i's single initial beam
  const beams: Hypothesis[][] = Array.from({ length: n }, () => [{ words: [], logProb: 0 }]);
  const finished: Hypothesis[][] = Array.from({ length: n }, () => []);
  const firstRow = new Int32Array(n).map((_, i) => i);
  const last = new Int32Array(n * beamSize);
  for (let t = 0; t < maxLength; t++) {
    // The live beams of all images, image by image, in the order of the state's rows.
    let rows = 0;
    for (let i = 0; i < n; i++) {
      firstRow[i] = rows;
      for (const b of beams[i]) {
        last[rows++] = b.words.length ? b.words[b.words.length - 1] : model.startIdx;
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
        if (cand.word === model.endIdx) {
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
      for (const cand of live) {
        const from = (r0 + cand.beam) * hd;
        dec.h.set(dec.hNext.subarray(from, from + hd), next * hd);
        dec.c.set(dec.cNext.subarray(from, from + hd), next * hd);
        next++;
      }
      beams[i] = live.map((cand) => ({
        words: [...beams[i][cand.beam].words, cand.word],
        logProb: cand.logProb,
      }));
    }
  }
  return finished.map((done) => {
    done.sort((a, b) => b.logProb - a.logProb);
    const best = done[0];
    const words = new Int32Array(maxLength).fill(model.nullIdx);
    words.set(best.words.slice(0, maxLength));
    return { words, logProb: best.logProb };
  });
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
