/**
 * The Transformer captioner's per-step decoder, with cached keys and values: each step embeds
 * one new word per row at the next position, runs it through every layer — its query attends
 * to the keys and values of all earlier positions, kept from the steps before — and scores the
 * next word. A word costs one position, not a re-run of the prefix. It implements
 * `StepDecoder`, so greedy decoding and beam search (`sampling.ts`) drive it unchanged.
 *
 * The image's cross-attention is the same at every position (one memory token, weight 1, no
 * dropout when decoding): it is computed once per row at `start`.
 *
 * Dimension legend: R rows (images or beams), D image feature, W width, H heads, dh = W/H,
 * F feed-forward size, V vocabulary, L layers, P positions (model.maxLength), t the step.
 * @module
 */
import { affineRows } from "../layers/affine.ts";
import { attendForward } from "../layers/attention.ts";
import type { ElementwiseKernels, FloatArena } from "../layers/kernels/elementwise.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { feedForwardRows } from "../layers/feed_forward.ts";
import { mat } from "../layers/kernels/matmul.ts";
import { layerNormRows } from "../layers/layer_norm.ts";
import { positionalEncoding } from "../layers/positional_encoding.ts";
import { allocFloat, type FloatArray, type FloatDType, type Tensor } from "../layers/tensor.ts";
import type { DecodedModel, StepDecoder } from "./decoder.ts";
import type { ParamName } from "./params.ts";
import type { TransformerConfig } from "./transformer_config.ts";
import { type LayerArrays, layerArrays } from "./transformer_params.ts";

/** What the decoder reads of a model (a `CaptioningTransformer` is one). */
export interface TransformerDecoderModel extends DecodedModel {
  /** The parameter views. */
  readonly params: Readonly<Record<ParamName, Tensor<FloatDType>>>;
  /** The sizes and element type. */
  readonly config: TransformerConfig;
}

/**
 * The cached state of R rows: per layer, the keys and values of positions 0 … t-1, (P', R', W)
 * position-major (P' positions allocated so far, R' rows of capacity), and each row's
 * cross-attention output, (R', W).
 */
interface KvState {
  k: FloatArray[];
  v: FloatArray[];
  cross: FloatArray[];
  positions: number;
}

/**
 * One step of the Transformer captioner for up to R rows at a time, with each row's keys and
 * values cached across steps.
 *
 * @example
 * ```ts
 * import { CaptioningTransformer } from "./captioning_transformer.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
 * const model = new CaptioningTransformer({ wordToIdx, inputDim: 4, wordvecDim: 8, numHeads: 2, ffDim: 16 });
 * const dec = model.decoder;
 * dec.start(new Float32Array(2 * 4), 2); // two images
 * dec.step([1, 1], 2); // both read <START> at position 0
 * dec.advance();
 * console.log(dec.scores[2] - dec.lse[0] < 0); // log p(<END>) of image 0's first word
 * ```
 */
export class TransformerDecoder implements StepDecoder {
  /** The model decoded. */
  readonly model: TransformerDecoderModel;
  readonly #layers: LayerArrays[];
  readonly #pe: FloatArray;
  readonly #ew: ElementwiseKernels;
  readonly #arena: FloatArena;
  #rows = -1;
  /** The next step's position. */
  #t = 0;
  /** The state the next step reads (and extends). */
  #cur!: KvState;
  /** The state `keep` fills, made current at the next step; allocated at the first keep. */
  #alt: KvState | null = null;
  #kept = false;
  #x!: FloatArray;
  #q!: FloatArray;
  #y!: FloatArray;
  #a!: FloatArray;
  #xhat!: FloatArray;
  #rstd!: FloatArray;
  #hidden!: FloatArray;
  #p!: FloatArray;
  #stats!: FloatArray;
  /** The scores of the last step, (R, V). */
  scores: FloatArray = new Float32Array(0);
  /** Each row's log Σ exp(scores) after a step: log p[j] = scores[j] - lse. */
  lse: Float64Array = new Float64Array(0);

  /**
   * A decoder for a model (work arrays are allocated at the first start).
   * @param model The parameter views, sizes and special tokens.
   */
  constructor(model: TransformerDecoderModel) {
    this.model = model;
    const { numLayers, maxLength, wordvecDim, dtype } = model.config;
    this.#layers = Array.from({ length: numLayers }, (_, l) => layerArrays(model.params, l));
    this.#pe = positionalEncoding(maxLength, wordvecDim, dtype).data;
    const { kernels, arena } = selectElementwise(dtype);
    this.#ew = kernels;
    this.#arena = arena;
  }

  /**
   * Makes room for `rows` rows; the state is kept only when no growth was needed.
   * @param rows R.
   */
  reserve(rows: number): void {
    if (rows <= this.#rows) return;
    const { wordvecDim: w, ffDim: f, maxLength: pMax } = this.model.config,
      v = this.model.vocabSize;
    [
      this.#x,
      this.#q,
      this.#y,
      this.#a,
      this.#xhat,
      this.#rstd,
      this.#hidden,
      this.#p,
      this.scores,
      this.#stats,
    ] = this.#arena.carve([
      rows * w,
      rows * w,
      rows * w,
      rows * w,
      rows * w,
      rows,
      rows * f,
      pMax,
      rows * v,
      2 * rows,
    ]);
    this.lse = new Float64Array(rows);
    this.#rows = rows;
    this.#cur = this.#state(Math.min(pMax, 8));
    this.#alt = null;
  }

  /** A state of `positions` positions for the reserved rows. */
  #state(positions: number): KvState {
    const { wordvecDim: w, numLayers, dtype } = this.model.config, r = this.#rows;
    const make = (n: number) => Array.from({ length: numLayers }, () => allocFloat(dtype, n));
    return {
      k: make(positions * r * w),
      v: make(positions * r * w),
      cross: make(r * w),
      positions,
    };
  }

  /**
   * Starts `rows` rows from their images: the memory m = feats · W_proj + b_proj, and each
   * layer's cross-attention output (m · Wv + bv) · Wo + bo, the same at every position.
   * @param feats Image features, (R, D), of the model's dtype.
   * @param rows R.
   */
  start(feats: FloatArray, rows: number): void {
    this.reserve(rows);
    this.#t = 0;
    this.#kept = false;
    const { inputDim: d, wordvecDim: w } = this.model.config, p = this.model.params;
    affineRows(feats, rows, d, p.W_proj.data, p.b_proj.data, this.#a, w);
    this.#layers.forEach((lp, l) => {
      const ca = lp.crossAttn;
      affineRows(this.#a, rows, w, ca.Wv, ca.bv, this.#y, w);
      affineRows(this.#y, rows, w, ca.Wo, ca.bo, this.#cur.cross[l], w);
    });
  }

  /**
   * One step for `rows` words at the next position: caches each row's keys and values, writes
   * the scores and each row's log-sum-exp.
   * @param words The word each row reads, (R,).
   * @param rows R.
   * @throws {RangeError} Past the model's last position (its maxLength).
   */
  step(words: ArrayLike<number>, rows: number): void {
    if (this.#kept) {
      [this.#cur, this.#alt] = [this.#alt!, this.#cur];
      this.#kept = false;
    }
    const cfg = this.model.config, { wordvecDim: w, numHeads: heads, ffDim: f } = cfg;
    const t = this.#t, dh = w / heads, ld = this.#rows * w;
    if (t >= cfg.maxLength) {
      throw new RangeError(
        `Cannot decode word ${t + 1}: the Transformer reads at most maxLength = ` +
          `${cfg.maxLength} positions; decode fewer words or train with a larger model.maxLength`,
      );
    }
    if (t >= this.#cur.positions) this.#grow(Math.min(cfg.maxLength, 2 * this.#cur.positions));
    const p = this.model.params, x = this.#x, emb = p.W_embed.data, pe = this.#pe;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < w; j++) x[r * w + j] = emb[words[r] * w + j] + pe[t * w + j];
    }
    this.#layers.forEach((lp, l) => {
      const sa = lp.selfAttn, K = this.#cur.k[l], V = this.#cur.v[l];
      affineRows(x, rows, w, sa.Wq, sa.bq, this.#q, w);
      // This position's keys and values go straight into the cache (rows of position t).
      affineRows(x, rows, w, sa.Wk, sa.bk, K, w, t * ld);
      affineRows(x, rows, w, sa.Wv, sa.bv, V, w, t * ld);
      for (let r = 0; r < rows; r++) {
        for (let h = 0; h < heads; h++) {
          const o = r * w + h * dh;
          attendForward(
            {
              q: mat(this.#q, 1, dh, o, w),
              k: mat(K, t + 1, dh, o, ld),
              v: mat(V, t + 1, dh, o, ld),
              p: mat(this.#p, 1, t + 1),
              pd: null,
              out: mat(this.#y, 1, dh, o, w),
            },
            null,
            null,
          );
        }
      }
      affineRows(this.#y, rows, w, sa.Wo, sa.bo, this.#a, w);
      this.#addNorm(x, this.#a, lp.norms[0], rows);
      const cross = this.#cur.cross[l];
      for (let k = 0; k < rows * w; k++) this.#a[k] = cross[k];
      this.#addNorm(x, this.#a, lp.norms[1], rows);
      const work = { hidden: this.#hidden, keep: null, dropped: null };
      feedForwardRows(x, rows, w, f, lp.ffn, work, this.#a);
      this.#addNorm(x, this.#a, lp.norms[2], rows);
    });
    const v = this.model.vocabSize;
    affineRows(x, rows, w, p.W_vocab.data, p.b_vocab.data, this.scores, v);
    // log Σ exp = max + log Σ exp(s - max), from each row's max and sum (the softmax's).
    this.#ew.rowStats(this.scores, 0, rows, v, this.#stats, 0);
    for (let i = 0; i < rows; i++) {
      this.lse[i] = this.#stats[2 * i] + Math.log(this.#stats[2 * i + 1]);
    }
    this.#t = t + 1;
  }

  /** x = LayerNorm(x + a), over the first `rows` rows. */
  #addNorm(
    x: FloatArray,
    a: FloatArray,
    norm: { gamma: FloatArray; beta: FloatArray },
    rows: number,
  ): void {
    const w = this.model.config.wordvecDim;
    for (let k = 0; k < rows * w; k++) a[k] += x[k];
    layerNormRows(a, norm.gamma, norm.beta, x, this.#xhat, this.#rstd, 0, rows, w);
  }

  /** Room for more positions: the current state's are copied; the other state is dropped. */
  #grow(positions: number): void {
    const old = this.#cur,
      next = this.#state(positions),
      n = old.positions * this.#rows * this.model.config.wordvecDim;
    for (let l = 0; l < old.k.length; l++) {
      next.k[l].set(old.k[l].subarray(0, n));
      next.v[l].set(old.v[l].subarray(0, n));
      next.cross[l].set(old.cross[l]);
    }
    this.#cur = next;
    this.#alt = null;
  }

  /** Makes the state the last step wrote the one the next step reads (it already is). */
  advance(): void {
    this.#kept = false;
  }

  /**
   * Makes row `from` of the state just written row `to` of the state the next step reads: its
   * keys and values at every position so far, and its cross-attention output.
   * @param from A row of the last step.
   * @param to A row of the next step.
   */
  keep(from: number, to: number): void {
    const cur = this.#cur, w = this.model.config.wordvecDim, ld = this.#rows * w;
    if (!this.#alt || this.#alt.positions !== cur.positions) this.#alt = this.#state(cur.positions);
    const alt = this.#alt;
    for (let l = 0; l < cur.k.length; l++) {
      for (let s = 0; s < this.#t; s++) {
        const a = s * ld + from * w, b = s * ld + to * w;
        alt.k[l].set(cur.k[l].subarray(a, a + w), b);
        alt.v[l].set(cur.v[l].subarray(a, a + w), b);
      }
      alt.cross[l].set(cur.cross[l].subarray(from * w, (from + 1) * w), to * w);
    }
    this.#kept = true;
  }
}
