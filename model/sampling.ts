/**
 * Caption generation: the exercise's greedy decoding and beam search.
 *
 * Dimension legend: N batch, D image feature, W word vector, H hidden, V vocabulary,
 * B beams (≤ beamSize), L maxLength.
 * @module
 */
import { affineForward } from "../layers/affine.ts";
import { lstmStepForward } from "../layers/lstm.ts";
import { rnnStepForward } from "../layers/rnn.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
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

interface State<D extends FloatDType> {
  h: Tensor<D>;
  c: Tensor<D>;
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
  const feats =
    (features.dtype === model.dtype ? features : features.astype(model.dtype)) as Tensor<D>;
  const greedy = greedySample(model, feats, maxLength);
  if (beamSize === 1) return greedy;
  const n = feats.shape[0];
  const captions = Tensor.zeros([n, maxLength], "int32");
  const logProbs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = new Tensor(feats.data.slice(i * feats.shape[1], (i + 1) * feats.shape[1]), [
      1,
      feats.shape[1],
    ]);
    const best = beamSearch(model, row as Tensor<D>, beamSize, maxLength);
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
  return { captions, logProbs };
}

/** One step of the language model for a batch of words: returns log-softmax scores (B, V). */
function step<D extends FloatDType>(
  model: CaptioningRNN<D>,
  words: ArrayLike<number>,
  state: State<D>,
): { logp: Float64Array; state: State<D> } {
  const p = model.params;
  const b = words.length, w = model.config.wordvecDim, v = model.vocabSize;
  const x = Tensor.zeros([b, w], model.dtype);
  for (let i = 0; i < b; i++) {
    x.data.set(p.W_embed.data.subarray(words[i] * w, (words[i] + 1) * w), i * w);
  }
  let next: State<D>;
  if (model.config.cellType === "rnn") {
    const [h] = rnnStepForward(x, state.h, p.Wx, p.Wh, p.b, model.config.activation);
    next = { h, c: state.c };
  } else {
    const [h, c] = lstmStepForward(x, state.h, state.c, p.Wx, p.Wh, p.b);
    next = { h, c };
  }
  const [scores] = affineForward(next.h, p.W_vocab, p.b_vocab);
  const logp = new Float64Array(b * v);
  for (let i = 0; i < b; i++) {
    const o = i * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) max = Math.max(max, scores.data[o + j]);
    let sum = 0;
    for (let j = 0; j < v; j++) sum += Math.exp(scores.data[o + j] - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < v; j++) logp[o + j] = scores.data[o + j] - lse;
  }
  return { logp, state: next };
}

function initialState<D extends FloatDType>(model: CaptioningRNN<D>, feats: Tensor<D>): State<D> {
  const [h] = affineForward(feats, model.params.W_proj, model.params.b_proj);
  return { h, c: Tensor.zeros(h.shape, model.dtype) };
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
  let state = initialState(model, feats);
  let words = new Int32Array(n).fill(model.startIdx);
  for (let t = 0; t < maxLength; t++) {
    const out = step(model, words, state);
    state = out.state;
    words = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < v; j++) if (out.logp[i * v + j] > out.logp[i * v + best]) best = j;
      words[i] = best;
      captions.data[i * maxLength + t] = best;
      if (!ended[i]) {
        logProbs[i] += out.logp[i * v + best];
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

/** Beam search for one image; returns the best hypothesis, `<END>`-terminated when it ended. */
function beamSearch<D extends FloatDType>(
  model: CaptioningRNN<D>,
  feats: Tensor<D>,
  beamSize: number,
  maxLength: number,
): { words: Int32Array; logProb: number } {
  const v = model.vocabSize, hd = model.config.hiddenDim;
  let beams: Hypothesis[] = [{ words: [], logProb: 0 }];
  let state = initialState(model, feats);
  const finished: Hypothesis[] = [];
  for (let t = 0; t < maxLength && beams.length > 0; t++) {
    const last = beams.map((b) => (b.words.length ? b.words[b.words.length - 1] : model.startIdx));
    const out = step(model, last, state);
    // Each beam's best beamSize words are enough to find the best beamSize continuations.
    const candidates: Array<{ beam: number; word: number; logProb: number }> = [];
    for (let b = 0; b < beams.length; b++) {
      for (const word of topK(out.logp, b * v, v, beamSize)) {
        candidates.push({ beam: b, word, logProb: beams[b].logProb + out.logp[b * v + word] });
      }
    }
    candidates.sort((a, b) => b.logProb - a.logProb || a.beam - b.beam || a.word - b.word);
    const next: Array<{ beam: number; word: number; logProb: number }> = [];
    for (const cand of candidates) {
      if (next.length === beamSize) break;
      if (cand.word === model.endIdx) {
        finished.push({ words: [...beams[cand.beam].words, cand.word], logProb: cand.logProb });
      } else next.push(cand);
    }
    const bestFinished = Math.max(-Infinity, ...finished.map((f) => f.logProb));
    // Log-probabilities only fall as words are added: no live beam can beat a better finished one.
    const live = next.filter((c) => c.logProb > bestFinished);
    if (t === maxLength - 1) {
      for (const c of live) {
        finished.push({ words: [...beams[c.beam].words, c.word], logProb: c.logProb });
      }
      break;
    }
    const h = Tensor.zeros([live.length, hd], model.dtype),
      c = Tensor.zeros([live.length, hd], model.dtype);
    live.forEach((cand, i) => {
      h.data.set(out.state.h.data.subarray(cand.beam * hd, (cand.beam + 1) * hd), i * hd);
      c.data.set(out.state.c.data.subarray(cand.beam * hd, (cand.beam + 1) * hd), i * hd);
    });
    beams = live.map((cand) => ({
      words: [...beams[cand.beam].words, cand.word],
      logProb: cand.logProb,
    }));
    state = { h, c };
  }
  finished.sort((a, b) => b.logProb - a.logProb);
  const best = finished[0];
  const words = new Int32Array(maxLength).fill(model.nullIdx);
  words.set(best.words.slice(0, maxLength));
  return { words, logProb: best.logProb };
}

/** The indices of the k largest values of a[offset … offset+len), largest first. */
function topK(a: Float64Array, offset: number, len: number, k: number): number[] {
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
