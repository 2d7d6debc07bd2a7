/**
 * The fused training step of the captioning model: loss and all gradients in preallocated
 * workspaces, the same math as composing the layers (`CaptioningRNN.lossReference`).
 *
 * Dimension legend: N batch, T time, D image feature, W word vector, H hidden,
 * G gate width (H for the RNN, 4H for the LSTM, 3H for the GRU), V vocabulary, R packed rows.
 *
 * How it is laid out:
 * - Rows are packed time-major, like a packed sequence: captions are ordered by length (the
 *   step after their last unmasked target), and step s holds the n_s captions still running,
 *   rows stepOff[s] … stepOff[s] + n_s. Steps after a caption's last target contribute
 *   exactly zero to the loss and to every gradient, so they are not computed at all.
 * - One GEMM for the input projection of all steps (R × W by W × G), one recurrent GEMM per
 *   step on a contiguous block (forward h_prev · Wh, backward dA · Whᵀ) — cut into fixed
 *   column blocks when the step has few rows (`columnBlockWidth`, a function of the shape
 *   alone: OpenBLAS multiplies such blocks without packing all of Wh on every call, 1.3–4.6×
 *   faster for the LSTM at 25 to 6 rows), one vocabulary GEMM over all rows, the fused softmax + masked
 *   loss + gradient, and the weight gradients as one GEMM over all steps each
 *   (dWx = Xᵀ dA, dWh = H_prevᵀ dA, dW_vocab = Hᵀ dScores, biases as onesᵀ · d). The GRU's
 *   input and recurrent projections have gradients of their own (dAx in `dA`, and `dAh`):
 *   dWh = H_prevᵀ dAh, dbx = onesᵀ dA, dbh = onesᵀ dAh.
 * - The forward pass is the language model's step (`lm_step.ts`, shared with the decoder) on
 *   these packed rows; the backward pass is written out here.
 * - A caption may carry a weight (self-critical training's reward minus baseline): its loss and
 *   its scores' gradient are multiplied by it, so the backward pass is unchanged past the scores.
 * - The elementwise parts run on the arena's kernels: WebAssembly SIMD for float32, `Math` for
 *   float64 (exact, for gradient checks). Nothing is allocated per step or per call except when
 *   a larger batch needs larger workspaces.
 * @module
 */
import {
  type ElementwiseKernels,
  type FloatArena,
  tsElementwise,
  typedArena,
} from "../layers/kernels/elementwise.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { columnBlockWidth, mat, matmul, matmulColumnBlocks, T } from "../layers/kernels/matmul.ts";
import type { FloatArray, FloatDType, Tensor } from "../layers/tensor.ts";
import { captionLengths } from "./captions.ts";
import { packedSoftmaxLoss } from "./scores_loss.ts";
import {
  embedWords,
  gateWidth,
  initialHidden,
  type LmParams,
  type LmShape,
  type LmState,
  recurrentStep,
  vocabScores,
} from "./lm_step.ts";
import type { ParamName } from "./params.ts";

/** The sizes and cell of a model, as the step needs them. */
export interface TrainStepConfig extends LmShape {
  /** The element type. */
  dtype: FloatDType;
  /** The index of `<NULL>`, whose targets are masked out. */
  nullIdx: number;
  /** "auto" (default: WebAssembly SIMD for float32 when available) or "ts" (plain Math). */
  elementwise?: "auto" | "ts";
}

/**
 * The work arrays, views of the arena; re-carved only when a batch needs more room. Rows of
 * (R, ·) are packed rows, of (N, ·) captions in packed order; h, c, tanhC, ah are the step's
 * state (for the RNN, h is the activated gates; arrays a cell does not use are empty).
 */
interface Work extends LmState {
  x: FloatArray; // (R, W) word vectors, then their gradient
  gates: FloatArray; // (R, G)
  hPrev: FloatArray; // (R, H) the state each row starts from
  scores: FloatArray; // (R, V) scores, then their gradient
  dh: FloatArray; // (R, H)
  dA: FloatArray; // (R, G)
  dAh: FloatArray; // (R, G) the GRU's recurrent-projection gradient
  h0: FloatArray; // (N, H)
  dh0: FloatArray; // (N, H)
  dc: FloatArray; // (N, H) dnext_c → dprev_c, carried from step to step
  feats: FloatArray; // (N, D)
  ones: FloatArray; // (max(R, N),) for the bias gradients
  stats: FloatArray; // (R, 2) softmax max and sum
}

/**
 * Loss and gradients of the captioning model with preallocated, reused workspaces.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, Tensor } from "../mod.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 4, wordvecDim: 3, hiddenDim: 5 });
 * // model.loss runs a TrainStep; lossReference composes the layers. They agree:
 * const feats = Tensor.randn([1, 4], 0, "float32");
 * const caps = Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32");
 * console.log(Math.abs(model.loss(feats, caps).loss - model.lossReference(feats, caps).loss) < 1e-5);
 * ```
 */
export class TrainStep {
  readonly #cfg: TrainStepConfig;
  #arena: FloatArena;
  #ew: ElementwiseKernels;
  #capRows = -1;
  #capN = -1;
  #work!: Work;
  // Small integer bookkeeping, grown with the batch.
  #len = new Int32Array(0);
  #perm = new Int32Array(0);
  #count = new Int32Array(0);
  #stepOff = new Int32Array(0);
  #words = new Int32Array(0);
  #targets = new Int32Array(0);
  #xt = new Float64Array(0);
  #rowWeights = new Float64Array(0);

  /**
   * Prepares a step for one model shape (workspaces are allocated at the first call).
   * @param config The model's sizes, cell, dtype and `<NULL>` index.
   */
  constructor(config: TrainStepConfig) {
    this.#cfg = config;
    const { kernels, arena } = selectElementwise(config.dtype, config.elementwise);
    this.#arena = arena;
    this.#ew = kernels;
  }

  /** Which elementwise kernels the step uses: "wasm" or "ts". */
  get elementwise(): "ts" | "wasm" {
    return this.#ew.name;
  }

  /** Makes sure the workspaces hold R ≤ rows packed rows and N ≤ n captions. */
  #reserve(rows: number, n: number): void {
    if (rows <= this.#capRows && n <= this.#capN) return;
    const { inputDim: d, wordvecDim: w, hiddenDim: hd, vocabSize: v, cellType } = this.#cfg;
    rows = Math.max(rows, this.#capRows);
    n = Math.max(n, this.#capN);
    const g = gateWidth(this.#cfg), lstm = cellType === "lstm", gru = cellType === "gru";
    const names: (keyof Work)[] = [
      "x",
      "gates",
      "h",
      "c",
      "tanhC",
      "ah",
      "hPrev",
      "scores",
      "dh",
      "dA",
      "dAh",
      "h0",
      "dh0",
      "dc",
      "feats",
      "ones",
      "stats",
    ];
    const sizes = [
      rows * w,
      rows * g,
      lstm || gru ? rows * hd : 0, // the RNN's hidden states are its activated gates
      lstm ? rows * hd : 0,
      lstm ? rows * hd : 0,
      gru ? rows * g : 0,
      rows * hd,
      rows * v,
      rows * hd,
      rows * g,
      gru ? rows * g : 0,
      n * hd,
      n * hd,
      lstm ? n * hd : 0,
      n * d,
      Math.max(rows, n),
      2 * rows,
    ];
    let arrays: FloatArray[];
    try {
      arrays = this.#arena.carve(sizes);
    } catch (e) {
      if (this.#ew === tsElementwise) throw e;
      // WebAssembly memory could not grow this far (it stops at 4 GiB): plain arrays instead.
      this.#arena = typedArena(this.#cfg.dtype);
      this.#ew = tsElementwise;
      arrays = this.#arena.carve(sizes);
    }
    const work = {} as Work;
    names.forEach((name, i) => work[name] = arrays[i]);
    if (cellType === "rnn") work.h = work.gates;
    work.ones.fill(1);
    this.#work = work;
    this.#capRows = rows;
    this.#capN = n;
    this.#len = new Int32Array(n);
    this.#perm = new Int32Array(n);
    this.#words = new Int32Array(rows);
    this.#targets = new Int32Array(rows);
    this.#xt = new Float64Array(rows);
    this.#rowWeights = new Float64Array(rows);
  }

  /**
   * The loss of a batch and the gradient of every parameter.
   * @param params The parameter views.
   * @param features Image features, (N, D), of any float dtype.
   * @param captions Word indices, (N, T + 1), int32 (already checked for shape).
   * @param normalizer What the summed loss is divided by.
   * @param grads The gradient views to write (every element is overwritten), or null for
   * the loss alone (the forward pass only).
   * @param weights Each caption's weight, (N,), or null for 1 each: the loss is then
   * Σ_i weights[i] · (−Σ_t log p(target)) / normalizer, and each caption's score gradient is
   * scaled by its weight (self-critical training's −(r − b) · Σ_t log p(w_t)).
   * @returns The loss.
   */
  run(
    params: Record<ParamName, Tensor<FloatDType>>,
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    normalizer: number,
    grads: Record<ParamName, Tensor<FloatDType>> | null,
    weights: ArrayLike<number> | null = null,
  ): number {
    const cfg = this.#cfg, lstm = cfg.cellType === "lstm", gru = cfg.cellType === "gru";
    const g = gateWidth(cfg);
    const { inputDim: d, wordvecDim: w, hiddenDim: hd, vocabSize: v, nullIdx } = cfg;
    const [n, t1] = captions.shape, t = t1 - 1, cap = captions.data;
    this.#reserve(n * t, n);
    // Each caption's length: one past its last unmasked target (0 when all are masked).
    const len = this.#len;
    captionLengths(cap, n, t1, v, nullIdx, len);
    // Order captions by length, longest first (a stable counting sort), and count the
    // captions n_s still running at each step.
    if (this.#count.length < t + 2) {
      this.#count = new Int32Array(t + 2);
      this.#stepOff = new Int32Array(t + 2);
    }
    const count = this.#count.fill(0), perm = this.#perm, stepOff = this.#stepOff;
    for (let i = 0; i < n; i++) count[len[i]]++;
    let at = 0;
    for (let l = t; l >= 0; l--) {
      const c = count[l];
      count[l] = at;
      at += c;
    }
    for (let i = 0; i < n; i++) perm[count[len[i]]++] = i;
    const tEff = n > 0 ? len[perm[0]] : 0;
    let n0 = 0;
    while (n0 < n && len[perm[n0]] > 0) n0++;
    const running = (s: number) => stepOff[s + 1] - stepOff[s];
    stepOff[0] = 0;
    for (let s = 0, i = n0; s < tEff; s++) {
      while (i > 0 && len[perm[i - 1]] <= s) i--;
      stepOff[s + 1] = stepOff[s] + i;
    }
    const rows = stepOff[tEff];
    const p: LmParams = params, gr = grads;
    if (rows === 0) {
      if (gr) { for (const name in gr) gr[name as ParamName].data.fill(0); }
      return 0;
    }
    const wk = this.#work, ew = this.#ew;
    const words = this.#words, targets = this.#targets, rowWeights = this.#rowWeights;
    for (let s = 0; s < tEff; s++) {
      for (let i = 0, ns = running(s); i < ns; i++) {
        const r = stepOff[s] + i, o = perm[i] * t1 + s;
        words[r] = cap[o];
        targets[r] = cap[o + 1];
        if (weights !== null) rowWeights[r] = weights[perm[i]];
      }
    }

    // Forward. h0 = features · W_proj + b_proj, for the running captions in packed order.
    const feats = features.data;
    for (let i = 0; i < n0; i++) {
      wk.feats.set(feats.subarray(perm[i] * d, (perm[i] + 1) * d), i * d);
    }
    initialHidden(p, cfg, wk.feats, n0, wk.h0);
    // Word vectors, then the input projection of every step at once: gates = b + x · Wx.
    embedWords(p, cfg, words, rows, wk.x, wk.gates);
    for (let s = 0; s < tEff; s++) {
      // gates[s] += h_prev · Wh, h_prev = h0 or the previous step's first n_s rows (the
      // captions still running are the longest ones, first); then the cell (c0 = 0).
      const hPrev = s === 0 ? wk.h0 : wk.h, cPrev = s === 0 ? null : wk.c;
      const prevOff = s === 0 ? 0 : stepOff[s - 1] * hd, off = stepOff[s];
      const ns = running(s), width = columnBlockWidth(ns, g, hd, false);
      recurrentStep(p, cfg, ew, ns, wk.gates, off * g, hPrev, cPrev, prevOff, wk, off * hd, width);
    }
    // Scores of every row at once, then softmax + masked loss + gradient, in place.
    const sc = wk.scores;
    vocabScores(p, cfg, wk.h, rows, sc);
    const loss = packedSoftmaxLoss(ew, {
      scores: sc,
      rows,
      vocabSize: v,
      targets,
      nullIdx,
      targetScores: this.#xt,
      stats: wk.stats,
      rowWeights: weights === null ? null : rowWeights,
    }, normalizer);

    if (gr === null) return loss;

    // Backward. dh = dScores · W_vocabᵀ; dW_vocab = hᵀ · dScores; db_vocab = onesᵀ · dScores.
    const dScores = mat(sc, rows, v), h = mat(wk.h, rows, hd), ones = mat(wk.ones, 1, rows);
    matmul(mat(wk.dh, rows, hd), dScores, T(mat(p.W_vocab.data, hd, v)));
    matmul(mat(gr.W_vocab.data, hd, v), T(h), dScores);
    matmul(mat(gr.b_vocab.data, 1, v), ones, dScores);
    if (lstm) wk.dc.fill(0, 0, n0 * hd);
    const whT = T(mat(p.Wh.data, hd, g));
    for (let s = tEff - 1; s >= 0; s--) {
      const ns = running(s), off = stepOff[s], prevOff = s === 0 ? 0 : stepOff[s - 1] * hd;
      // dA[s]: the cell's backward (dc carries dnext_c → dprev_c), or dh ⊙ act'(a) from h;
      // the GRU's also writes dAh[s] and adds the direct part of dh[s-1], dh[s] ⊙ z.
      if (lstm) {
        const { gates, dh, dc, tanhC, dA } = wk, cPrev = s === 0 ? null : wk.c;
        ew.lstmCellBackward(gates, off * g, dh, dc, 0, cPrev, prevOff, tanhC, off * hd, dA, ns, hd);
      } else if (gru) {
        const hPrev = s === 0 ? wk.h0 : wk.h, dPrev = s === 0 ? wk.dh0 : wk.dh;
        if (s === 0) wk.dh0.fill(0, 0, ns * hd);
        const { gates, ah, dA, dAh, dh } = wk;
        ew.gruCellBackward(
          gates,
          ah,
          dA,
          dAh,
          off * g,
          dh,
          off * hd,
          hPrev,
          prevOff,
          dPrev,
          prevOff,
          ns,
          hd,
        );
      } else {
        const at = off * hd;
        ew.activationBackward(wk.dh, at, wk.h, at, wk.dA, at, ns * hd, cfg.activation);
      }
      // The recurrent gradient: dh[s-1] += dA[s] · Whᵀ (or dh0 = dA[0] · Whᵀ), dAh for the GRU.
      const dAs = mat(gru ? wk.dAh : wk.dA, ns, g, off * g),
        width = columnBlockWidth(ns, hd, g, true);
      if (s > 0) matmulColumnBlocks(mat(wk.dh, ns, hd, prevOff), dAs, whT, width, 1);
      else matmulColumnBlocks(mat(wk.dh0, ns, hd), dAs, whT, width, gru ? 1 : 0);
    }
    // Weight gradients over all steps at once.
    const dA = mat(wk.dA, rows, g), x = mat(wk.x, rows, w);
    matmul(mat(gr.Wx.data, w, g), T(x), dA);
    wk.hPrev.set(wk.h0.subarray(0, n0 * hd), 0);
    for (let s = 1; s < tEff; s++) {
      const from = stepOff[s - 1] * hd;
      wk.hPrev.set(wk.h.subarray(from, from + running(s) * hd), stepOff[s] * hd);
    }
    const dAh = gru ? mat(wk.dAh, rows, g) : dA;
    matmul(mat(gr.Wh.data, hd, g), T(mat(wk.hPrev, rows, hd)), dAh);
    if (gru) {
      matmul(mat(gr.bx.data, 1, g), ones, dA);
      matmul(mat(gr.bh.data, 1, g), ones, dAh);
    } else matmul(mat(gr.b.data, 1, g), ones, dA);
    // dx = dA · Wxᵀ (into x, no longer needed), scattered into the word vectors' gradient.
    matmul(x, dA, T(mat(p.Wx.data, w, g)));
    const dEmb = gr.W_embed.data, dx = wk.x;
    dEmb.fill(0);
    for (let r = 0; r < rows; r++) {
      const o = words[r] * w, x0 = r * w;
      for (let j = 0; j < w; j++) dEmb[o + j] += dx[x0 + j];
    }
    const feats0 = mat(wk.feats, n0, d), dh0 = mat(wk.dh0, n0, hd);
    matmul(mat(gr.W_proj.data, d, hd), T(feats0), dh0);
    matmul(mat(gr.b_proj.data, 1, hd), mat(wk.ones, 1, n0), dh0);
    return loss;
  }
}
