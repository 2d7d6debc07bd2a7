/**
 * The per-step decoder that greedy decoding and beam search drive: the language model's step
 * (`lm_step.ts`) for a block of rows (images or beams) in reused work arrays, with each row's
 * log-sum-exp for log-probabilities.
 *
 * A decoded word's input projection b + W_embed[word] · Wx depends on the word alone, so the
 * decoder computes it once for the whole vocabulary (a (V, G) table, remade when W_embed, Wx
 * or b change) and a step copies the rows of its words instead of multiplying: at the COCO
 * sizes that is a quarter of a step's multiply-adds. Every decoder makes the table with the
 * same product over all V words, so each worker's table has the same bits as this thread's.
 *
 * Dimension legend: R rows, D image feature, W word vector, H hidden,
 * G gate width (H for the RNN, 4H for the LSTM, 3H for the GRU), V vocabulary.
 * @module
 */
import type { ElementwiseKernels, FloatArena } from "../layers/kernels/elementwise.ts";
import { type Kernels, kernels } from "../layers/kernels/mod.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { allocArray, type FloatArray, type FloatDType, type Tensor } from "../layers/tensor.ts";
import {
  embedWords,
  gateWidth,
  initialHidden,
  type LmShape,
  type LmState,
  recurrentStep,
  vocabScores,
} from "./lm_step.ts";
import type { ModelConfig } from "./model_config.ts";
import type { ParamName } from "./params.ts";

/**
 * What decoding needs to know of a model: its vocabulary's size and special tokens, and the
 * size and element type of the image features it reads.
 */
export interface DecodedModel {
  /** The feature size D and the element type. */
  readonly config: { readonly inputDim: number; readonly dtype: FloatDType };
  /** V */
  readonly vocabSize: number;
  /** The index of `<START>`, or -1 when the vocabulary has none. */
  readonly startIdx: number;
  /** The index of `<END>`, or -1. */
  readonly endIdx: number;
  /** The index of `<NULL>`, the padding after `<END>`. */
  readonly nullIdx: number;
  /** The index of `<UNK>` (what `suppressUnk` bans), or -1. */
  readonly unkIdx: number;
}

/**
 * What greedy decoding, beam search and sampling drive: one step of a language model for a
 * block of R rows (images, or beams of images), with each row's state kept between steps.
 * The recurrent models' {@linkcode Decoder} implements it; any captioning model's decoder
 * (e.g. one with cached keys and values) can, and then every decoding strategy works for it.
 */
export interface StepDecoder {
  /** The model decoded. */
  readonly model: DecodedModel;
  /** The scores of the last step, (R, V): log p[j] = scores[j] - lse[row]. */
  readonly scores: FloatArray;
  /** Each row's log Σ exp(scores) after a step, (R,). */
  readonly lse: Float64Array;
  /** Makes room for R rows (keeping the state only when no growth was needed). */
  reserve(rows: number): void;
  /** Starts R rows from their images' features, (R, D), of the model's dtype. */
  start(feats: FloatArray, rows: number): void;
  /** One step: row r reads `words[r]`; writes the scores and the next state of R rows. */
  step(words: ArrayLike<number>, rows: number): void;
  /** Makes the state the last step wrote the one the next step reads, row for row. */
  advance(): void;
  /** Makes row `from` of the state just written row `to` of the next step's (beam search). */
  keep(from: number, to: number): void;
}

/** What the recurrent decoder reads of a model (a `CaptioningRNN` is one). */
export interface DecoderModel {
  /** The parameter views. */
  readonly params: Readonly<Record<ParamName, Tensor<FloatDType>>>;
  /** The sizes, cell and element type. */
  readonly config: ModelConfig;
  /** V */
  readonly vocabSize: number;
  /** The index of `<START>`, or -1 when the vocabulary has none. */
  readonly startIdx: number;
  /** The index of `<END>`, or -1. */
  readonly endIdx: number;
  /** The index of `<NULL>`, the padding after `<END>`. */
  readonly nullIdx: number;
  /** The index of `<UNK>` (what `suppressUnk` bans), or -1. */
  readonly unkIdx: number;
}

/**
 * One step of the language model for up to R rows at a time, in work arrays reused across
 * steps and calls (grown on demand). A step reads the current state of each row and writes
 * the next one; {@linkcode Decoder.advance} makes the next state current.
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { Decoder } from "./decoder.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const dec = new Decoder(model);
 * dec.start(new Float32Array(2 * 4), 2); // two images
 * dec.step([1, 1], 2); // both read <START>
 * dec.advance();
 * const logP = dec.scores[2] - dec.lse[0]; // log p(<END>) of image 0's first word
 * console.log(logP < 0); // true
 * ```
 */
export class Decoder implements StepDecoder {
  /** The model decoded. */
  readonly model: DecoderModel;
  readonly #shape: LmShape;
  readonly #ew: ElementwiseKernels;
  readonly #arena: FloatArena;
  #rows = -1;
  /** The state the next step reads: h and c, (R, H). */
  #state!: LmState;
  /** The state a step writes, (R, H). */
  #next!: LmState;
  /** Gates, (R, G). */
  #gates!: FloatArray;
  /** Each row's max and Σ exp(score - max), (R, 2). */
  #stats!: FloatArray;
  /** Every word's input projection b + W_embed[w] · Wx, (V, G) (made at the first start). */
  #wordGates: FloatArray | null = null;
  /** The bits of W_embed, Wx and b that `#wordGates` was made from. */
  #madeFrom: Uint32Array[] = [];
  /** The GEMM kernels that made `#wordGates` (another backend rounds differently). */
  #madeWith: Kernels | null = null;
  /** The scores of the last step, (R, V). */
  scores: FloatArray = new Float32Array(0);
  /** Each row's log Σ exp(scores) after a step: log p[j] = scores[j] - lse. */
  lse: Float64Array = new Float64Array(0);

  /**
   * A decoder for a model (work arrays are allocated at the first start).
   * @param model The parameter views, sizes and special tokens.
   */
  constructor(model: DecoderModel) {
    this.model = model;
    this.#shape = { ...model.config, vocabSize: model.vocabSize };
    const { kernels, arena } = selectElementwise(model.config.dtype);
    this.#ew = kernels;
    this.#arena = arena;
  }

  /**
   * Makes room for `rows` rows; the state is kept only when no growth was needed.
   * @param rows R.
   */
  reserve(rows: number): void {
    if (rows <= this.#rows) return;
    const { hiddenDim: hd, vocabSize: v } = this.#shape, g = gateWidth(this.#shape);
    const gru = this.#shape.cellType === "gru";
    const [h, c, hNext, cNext, gates, tanhC, ah, scores, stats] = this.#arena.carve([
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * g,
      rows * hd,
      gru ? rows * g : 0,
      rows * v,
      2 * rows,
    ]);
    // tanh(c) and the GRU's ah are not read across steps: both states share them.
    this.#state = { h, c, tanhC, ah };
    this.#next = { h: hNext, c: cNext, tanhC, ah };
    this.#gates = gates;
    this.scores = scores;
    this.#stats = stats;
    this.lse = new Float64Array(rows);
    this.#rows = rows;
  }

  /**
   * Starts `rows` rows from their images: h = feats · W_proj + b_proj, c = 0.
   * @param feats Image features, (R, D), of the model's dtype.
   * @param rows R.
   */
  start(feats: FloatArray, rows: number): void {
    this.reserve(rows);
    this.#ensureWordGates();
    this.#state.c.fill(0, 0, rows * this.#shape.hiddenDim);
    initialHidden(this.model.params, this.#shape, feats, rows, this.#state.h);
  }

  /**
   * One step for `rows` words: reads the current state, writes the next one, the scores and
   * each row's log-sum-exp.
   * @param words The word each row reads, (R,).
   * @param rows R.
   */
  step(words: ArrayLike<number>, rows: number): void {
    const p = this.model.params, shape = this.#shape, ew = this.#ew, v = shape.vocabSize;
    const g = gateWidth(shape), table = this.#wordGates!, gates = this.#gates;
    for (let r = 0; r < rows; r++) {
      gates.set(table.subarray(words[r] * g, (words[r] + 1) * g), r * g);
    }
    const { h, c } = this.#state;
    recurrentStep(p, shape, ew, rows, this.#gates, 0, h, c, 0, this.#next, 0);
    vocabScores(p, shape, this.#next.h, rows, this.scores);
    // log Σ exp = max + log Σ exp(s - max), from each row's max and sum (the softmax's).
    ew.rowStats(this.scores, 0, rows, v, this.#stats, 0);
    for (let i = 0; i < rows; i++) {
      this.lse[i] = this.#stats[2 * i] + Math.log(this.#stats[2 * i + 1]);
    }
  }

  /**
   * Makes the table of every word's input projection, unless it was made from the same bits
   * of W_embed, Wx and b (training between two decoding calls changes them) by the kernels in
   * use: so a step's result never depends on what the decoder did before.
   */
  #ensureWordGates(): void {
    const p = this.model.params, shape = this.#shape;
    const inputs = [p.W_embed, p.Wx, shape.cellType === "gru" ? p.bx : p.b].map((t) =>
      new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)
    );
    const made = this.#wordGates !== null && this.#madeWith === kernels();
    if (made && inputs.every((bits, i) => sameBits(bits, this.#madeFrom[i]))) return;
    const { vocabSize: v, wordvecDim: w } = shape, dtype = this.model.config.dtype;
    const table = allocArray(dtype, v * gateWidth(shape));
    const words = Int32Array.from({ length: v }, (_, j) => j);
    embedWords(p, shape, words, v, allocArray(dtype, v * w), table);
    this.#wordGates = table;
    this.#madeFrom = inputs.map((bits) => bits.slice());
    this.#madeWith = kernels();
  }

  /** Makes the state just written the one the next step reads (swapping the buffers). */
  advance(): void {
    [this.#state, this.#next] = [this.#next, this.#state];
  }

  /**
   * Makes row `from` of the state just written row `to` of the state the next step reads:
   * how beam search keeps the surviving beams (instead of {@linkcode Decoder.advance}).
   * @param from A row of the last step.
   * @param to A row of the next step.
   */
  keep(from: number, to: number): void {
    const hd = this.#shape.hiddenDim, a = from * hd, b = a + hd;
    this.#state.h.set(this.#next.h.subarray(a, b), to * hd);
    this.#state.c.set(this.#next.c.subarray(a, b), to * hd);
  }
}

/** Whether two arrays hold the same values. */
function sameBits(a: Uint32Array, b: Uint32Array | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
