/**
 * What the benchmarks share: the exercise's COCO sizes (W=256, H=512, V=1004, D=512, T=16),
 * the float32 model at those sizes (the Transformer with the defaults of `deno task train`:
 * 2 layers, 4 heads, F=2048), and the median they report.
 * @module
 */
import type { CaptioningModel, ModelKind } from "../model/captioning_model.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { createCaptioningModel } from "../model/models.ts";

/** Word-vector size. */
export const W = 256;
/** Hidden size. */
export const H = 512;
/** Vocabulary size. */
export const V = 1004;
/** Image feature size. */
export const D = 512;
/** Caption steps. */
export const T = 16;

/**
 * A float32 captioning model at the COCO sizes.
 * @param wordToIdx The vocabulary (V words).
 * @param cellType "rnn" or "lstm".
 * @returns The model, initialised from seed 0.
 */
export function cocoModel(
  wordToIdx: Record<string, number>,
  cellType: CellType,
): CaptioningRNN<"float32"> {
  return new CaptioningRNN({ wordToIdx, inputDim: D, wordvecDim: W, hiddenDim: H, cellType });
}

/**
 * A float32 model of any kind at the COCO sizes (the Transformer: W wide, 2 layers, 4 heads,
 * F=2048, dropout 0.1, as the experiment defaults).
 * @param wordToIdx The vocabulary (V words).
 * @param cellType "rnn", "lstm", "gru" or "transformer".
 * @returns The model, initialised from seed 0.
 */
export function cocoModelOf(
  wordToIdx: Record<string, number>,
  cellType: ModelKind,
): CaptioningModel<"float32"> {
  return createCaptioningModel({
    wordToIdx,
    cellType,
    inputDim: D,
    wordvecDim: W,
    hiddenDim: H,
    numLayers: 2,
    numHeads: 4,
    ffDim: 2048,
    dropout: 0.1,
    dtype: "float32",
  });
}

/**
 * The median of some timings.
 * @param xs The timings.
 * @returns Their median (the upper one of an even count).
 */
export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
