/**
 * The captioning language model's forward step on flat work arrays: the pieces that the fused
 * training step (`train_step.ts`, all rows of a packed batch) and the decoder (`decoder.ts`, one
 * step of live captions or beams) both run. The layer-composed `CaptioningRNN.lossReference`
 * is the readable reference of the same math.
 *
 *   h0     = feats · W_proj + b_proj                     initialHidden
 *   x      = W_embed[words],  gates = b + x · Wx         embedWords (b is bx for the GRU)
 *   gates += h_prev · Wh,  (h, c) = cell(gates, c_prev)  recurrentStep (RNN, LSTM)
 *   ah = bh + h_prev · Wh,  h = gru(gates, ah, h_prev)   recurrentStep (GRU)
 *   scores = b_vocab + h · W_vocab                       vocabScores
 *
 * Dimension legend: R rows (captions or beams), D image feature, W word vector, H hidden,
 * G gate width (H for the RNN, 4H for the LSTM, 3H for the GRU), V vocabulary.
 * @module
 */
import type { Activation } from "../layers/activations.ts";
import type { ElementwiseKernels } from "../layers/kernels/elementwise.ts";
import { mat, matmulAdd, matmulColumnBlocks } from "../layers/kernels/matmul.ts";
import type { FloatArray, FloatDType, Tensor } from "../layers/tensor.ts";
import type { CellType } from "./model_config.ts";
import type { ParamName } from "./params.ts";

/** The sizes and cell of the language model. */
export interface LmShape {
  /** D */
  inputDim: number;
  /** W */
  wordvecDim: number;
  /** H */
  hiddenDim: number;
  /** V */
  vocabSize: number;
  /** "rnn", "lstm" or "gru". */
  cellType: CellType;
  /** The vanilla RNN's nonlinearity. */
  activation: Activation;
}

/**
 * The parameter views: W_proj (D, H), b_proj (H,), W_embed (V, W), Wx (W, G), Wh (H, G),
 * b (G,) — for the GRU bx (G,) and bh (G,) instead —, W_vocab (H, V), b_vocab (V,).
 */
export type LmParams = Readonly<Record<ParamName, Tensor<FloatDType>>>;

/**
 * Where a step writes its state: rows of (R, H) each; `c` and `tanhC` are the LSTM's, `ah` the
 * GRU's (empty arrays for the other cells).
 */
export interface LmState {
  /** Hidden states. */
  h: FloatArray;
  /** Cell states (LSTM). */
  c: FloatArray;
  /** tanh of the cell states (LSTM), kept for the backward pass. */
  tanhC: FloatArray;
  /**
   * The recurrent projections bh + h_prev · Wh (GRU), (R, 3H) at the gates' offset, kept for
   * the backward pass.
   */
  ah: FloatArray;
}

/**
 * G, the width of the gates: H for the RNN, 4H (i, f, o, g) for the LSTM, 3H (r, z, n) for the
 * GRU.
 * @param shape The model's sizes.
 * @returns G.
 *
 * @example
 * ```ts
 * import { gateWidth } from "./lm_step.ts";
 * const shape = { inputDim: 4, wordvecDim: 3, hiddenDim: 5, vocabSize: 9, activation: "tanh" } as const;
 * console.log(gateWidth({ ...shape, cellType: "lstm" })); // 20
 * ```
 */
export function gateWidth(shape: LmShape): number {
  const k = { rnn: 1, lstm: 4, gru: 3 }[shape.cellType];
  return k * shape.hiddenDim;
}

/**
 * The initial hidden state from the image features: h0 = feats · W_proj + b_proj.
 * @param p The parameter views.
 * @param shape The model's sizes.
 * @param feats Image features, (R, D), packed from index 0.
 * @param rows R.
 * @param h0 Where h0 goes, (R, H) from index 0.
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { initialHidden } from "./lm_step.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0 }, inputDim: 4, hiddenDim: 3 });
 * const shape = { ...model.config, vocabSize: model.vocabSize };
 * const h0 = new Float32Array(2 * 3);
 * initialHidden(model.params, shape, new Float32Array(2 * 4).fill(1), 2, h0);
 * ```
 */
export function initialHidden(
  p: LmParams,
  shape: LmShape,
  feats: FloatArray,
  rows: number,
  h0: FloatArray,
): void {
  const { inputDim: d, hiddenDim: hd } = shape;
  for (let r = 0; r < rows; r++) h0.set(p.b_proj.data, r * hd);
  matmulAdd(mat(h0, rows, hd), mat(feats, rows, d), mat(p.W_proj.data, d, hd));
}

/**
 * The word vectors and their input projection: x = W_embed[words], gates = b + x · Wx (the
 * GRU's input-side bias is bx).
 * @param p The parameter views.
 * @param shape The model's sizes.
 * @param words Word indices, (R,), each in [0, V).
 * @param rows R.
 * @param x Where the word vectors go, (R, W) from index 0.
 * @param gates Where the gate pre-activations go, (R, G) from index 0.
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { embedWords } from "./lm_step.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, cat: 1 }, wordvecDim: 3, hiddenDim: 2 });
 * const shape = { ...model.config, vocabSize: model.vocabSize };
 * const x = new Float32Array(3), gates = new Float32Array(2);
 * embedWords(model.params, shape, [1], 1, x, gates);
 * console.log(x[0] === model.params.W_embed.data[3]); // true
 * ```
 */
export function embedWords(
  p: LmParams,
  shape: LmShape,
  words: ArrayLike<number>,
  rows: number,
  x: FloatArray,
  gates: FloatArray,
): void {
  const w = shape.wordvecDim, g = gateWidth(shape), emb = p.W_embed.data;
  const bias = (shape.cellType === "gru" ? p.bx : p.b).data;
  for (let r = 0; r < rows; r++) {
    x.set(emb.subarray(words[r] * w, (words[r] + 1) * w), r * w);
    gates.set(bias, r * g);
  }
  matmulAdd(mat(gates, rows, g), mat(x, rows, w), mat(p.Wx.data, w, g));
}

/**
 * The recurrent update and the cell: gates += h_prev · Wh, then the RNN's h = act(gates) or
 * the LSTM's cell (gates activated in place; c = f ⊙ c_prev + i ⊙ g, h = o ⊙ tanh(c)); for the
 * GRU, ah = bh + h_prev · Wh (into `next.ah` at `gOff`) and its cell (gates become r, z, n;
 * h = (1 - z) ⊙ n + z ⊙ h_prev).
 * @param p The parameter views.
 * @param shape The model's sizes.
 * @param ew The elementwise kernels to run the cell on.
 * @param rows R.
 * @param gates The gate pre-activations b + x · Wx, (R, G) at `gOff`; activated on return.
 * @param hPrev The previous hidden states, (R, H) at `prevOff`.
 * @param cPrev The previous cell states, (R, H) at `prevOff`, or null for c = 0 (LSTM; the
 * other cells ignore it).
 * @param prevOff Where the previous state's rows start.
 * @param gOff Where the gates' rows start.
 * @param next Where the new state goes, rows (R, H) at `outOff`. For the RNN, `next.h` may be
 * `gates` itself at the same offset (then nothing is copied).
 * @param outOff Where the new state's rows start.
 * @param blockWidth The recurrent GEMM runs as fixed blocks of this many gate columns
 * (`matmulColumnBlocks`; default G, one call). The training step cuts it by the rows' shape
 * (`columnBlockWidth`): few rows multiply faster in blocks OpenBLAS does not pack.
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { tsElementwise } from "../layers/kernels/elementwise.ts";
 * import { recurrentStep } from "./lm_step.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0 }, hiddenDim: 2, cellType: "lstm" });
 * const shape = { ...model.config, vocabSize: model.vocabSize };
 * const gates = new Float32Array(8), h = new Float32Array(2), c = new Float32Array(2);
 * const next = { h: new Float32Array(2), c: new Float32Array(2), tanhC: new Float32Array(2), ah: new Float32Array(0) };
 * recurrentStep(model.params, shape, tsElementwise, 1, gates, 0, h, c, 0, next, 0);
 * console.log(next.c[0]); // 0: i ⊙ g with zero gates, g = tanh(0)
 * ```
 */
export function recurrentStep(
  p: LmParams,
  shape: LmShape,
  ew: ElementwiseKernels,
  rows: number,
  gates: FloatArray,
  gOff: number,
  hPrev: FloatArray,
  cPrev: FloatArray | null,
  prevOff: number,
  next: LmState,
  outOff: number,
  blockWidth: number = gateWidth(shape),
): void {
  const hd = shape.hiddenDim, g = gateWidth(shape), wh = mat(p.Wh.data, hd, g);
  if (shape.cellType === "gru") {
    const ah = next.ah;
    for (let r = 0; r < rows; r++) ah.set(p.bh.data, gOff + r * g);
    matmulColumnBlocks(mat(ah, rows, g, gOff), mat(hPrev, rows, hd, prevOff), wh, blockWidth, 1);
    ew.gruCell(gates, ah, gOff, hPrev, prevOff, next.h, outOff, rows, hd);
    return;
  }
  matmulColumnBlocks(mat(gates, rows, g, gOff), mat(hPrev, rows, hd, prevOff), wh, blockWidth, 1);
  if (shape.cellType === "lstm") {
    ew.lstmCell(gates, gOff, cPrev, prevOff, next.c, next.tanhC, next.h, outOff, rows, hd);
    return;
  }
  ew.activate(gates, gOff, rows * hd, shape.activation);
  if (next.h !== gates || outOff !== gOff) {
    next.h.set(gates.subarray(gOff, gOff + rows * hd), outOff);
  }
}

/**
 * The vocabulary scores: scores = b_vocab + h · W_vocab.
 * @param p The parameter views.
 * @param shape The model's sizes.
 * @param h Hidden states, (R, H) from index 0.
 * @param rows R.
 * @param scores Where the scores go, (R, V) from index 0.
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { vocabScores } from "./lm_step.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, cat: 1 }, hiddenDim: 2 });
 * model.params.b_vocab.data.set([0.5, -0.5]);
 * const scores = new Float32Array(2);
 * vocabScores(model.params, { ...model.config, vocabSize: 2 }, new Float32Array(2), 1, scores);
 * console.log(scores); // [0.5, -0.5]
 * ```
 */
export function vocabScores(
  p: LmParams,
  shape: LmShape,
  h: FloatArray,
  rows: number,
  scores: FloatArray,
): void {
  const hd = shape.hiddenDim, v = shape.vocabSize;
  for (let r = 0; r < rows; r++) scores.set(p.b_vocab.data, r * v);
  matmulAdd(mat(scores, rows, v), mat(h, rows, hd), mat(p.W_vocab.data, hd, v));
}
