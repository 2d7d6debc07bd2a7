/**
 * The Transformer captioner's fused training step: loss and all gradients in preallocated
 * workspaces, the same math as composing the layers (`CaptioningTransformer.lossReference`),
 * on the same row and head kernels (`layers/attention.ts`, `layer_norm.ts`, `feed_forward.ts`).
 *
 * Dimension legend: N batch, T time (≤ P positions), D image feature, W width, H heads,
 * dh = W/H, F feed-forward size, V vocabulary, L layers, R packed rows.
 *
 * How it is laid out:
 * - Rows are packed caption by caption: caption i contributes its first len_i positions (one
 *   past its last target that is not `<NULL>`). Attention is causal, so a position never reads
 *   a later one: the positions after a caption's last target change nothing, and are skipped.
 * - Every projection is one GEMM over all R rows; attention is per caption and head, on views
 *   of the packed rows (len_i × len_i weights); the image is a memory of ONE token, so the
 *   cross-attention's softmax is exactly 1 (its query and key projections have no effect and
 *   a zero gradient) and its output is the image's value, dropped out per row and head.
 * - Dropout masks come from `dropoutMask` with each element's index in the padded (N, T, ·)
 *   tensors the reference uses, so both draw the same masks (see {@linkcode dropoutSiteSeed}).
 * - Nothing is allocated per call except when a larger batch needs larger workspaces.
 * @module
 */
import type { AttentionHead, AttentionMask } from "../layers/attention.ts";
import { affineRows, affineRowsBackward } from "../layers/affine.ts";
import { attendBackward, attendForward, causalMask } from "../layers/attention.ts";
import { deriveSeed, dropoutMask } from "../layers/dropout.ts";
import type { ElementwiseKernels, FloatArena } from "../layers/kernels/elementwise.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { feedForwardRows, feedForwardRowsBackward } from "../layers/feed_forward.ts";
import { mat } from "../layers/kernels/matmul.ts";
import { layerNormRows, layerNormRowsBackward } from "../layers/layer_norm.ts";
import { positionalEncoding } from "../layers/positional_encoding.ts";
import type { FloatArray, FloatDType, Tensor } from "../layers/tensor.ts";
import { captionLengths } from "./captions.ts";
import { packedSoftmaxLoss } from "./scores_loss.ts";
import type { ParamName } from "./params.ts";
import { type LayerArrays, layerArrays } from "./transformer_params.ts";

/** The sizes a step needs. */
export interface TransformerStepConfig {
  /** D */
  inputDim: number;
  /** W */
  wordvecDim: number;
  /** L */
  numLayers: number;
  /** H */
  numHeads: number;
  /** F */
  ffDim: number;
  /** P */
  maxLength: number;
  /** V */
  vocabSize: number;
  /** The index of `<NULL>`, whose targets are masked out. */
  nullIdx: number;
  /** The element type. */
  dtype: FloatDType;
}

/** A training step's dropout: the probability and the seed of this call's masks. */
export interface StepDropout {
  /** The drop probability, in (0, 1). */
  p: number;
  /** The seed the masks derive from (the model's seed with the step's; see the model). */
  seed: number;
}

/** The dropout sites of the model, each with masks of its own. */
export const DROPOUT_SITES = {
  /** The word vectors plus positional encoding (layer -1). */
  embed: 0,
  /** The self-attention weights. */
  selfAttn: 1,
  /** The self-attention's residual branch. */
  selfOut: 2,
  /** The cross-attention weights. */
  crossAttn: 3,
  /** The cross-attention's residual branch. */
  crossOut: 4,
  /** The feed-forward block's hidden units. */
  ffnHidden: 5,
  /** The feed-forward block's residual branch. */
  ffnOut: 6,
} as const;

/**
 * The seed of one dropout site's masks, from a call's seed: the fused step and the reference
 * derive their masks the same way.
 * @param seed The call's seed.
 * @param layer The decoder layer (-1 for the embedding).
 * @param site One of {@linkcode DROPOUT_SITES}.
 * @returns The site's seed.
 *
 * @example
 * ```ts
 * import { DROPOUT_SITES, dropoutSiteSeed } from "./transformer_step.ts";
 * console.log(dropoutSiteSeed(5, 0, DROPOUT_SITES.ffnOut) !== dropoutSiteSeed(5, 1, DROPOUT_SITES.ffnOut)); // true
 * ```
 */
export function dropoutSiteSeed(seed: number, layer: number, site: number): number {
  return deriveSeed(seed, layer, site);
}

/** What one decoder layer keeps for the backward pass (all (R, ·) rows packed). */
interface LayerWork {
  /** The layer's input, (R, W). */
  x: FloatArray;
  /** Self-attention queries, keys, values and merged head outputs, (R, W) each. */
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  y: FloatArray;
  /** Self-attention weights, before and after dropout, and the dropout multipliers, (A,). */
  p: FloatArray;
  pd: FloatArray;
  keepP: FloatArray;
  /** The residual branches' dropout multipliers, (R, W) each. */
  m1: FloatArray;
  m2: FloatArray;
  m3: FloatArray;
  /** The layer norms' normalized rows (R, W) and 1/std (R,). */
  xhat1: FloatArray;
  rstd1: FloatArray;
  xhat2: FloatArray;
  rstd2: FloatArray;
  xhat3: FloatArray;
  rstd3: FloatArray;
  /** Cross-attention: dropout multipliers of the weights (R, H) and merged outputs (R, W). */
  keepC: FloatArray;
  yc: FloatArray;
  /** The feed-forward block's input (R, W), hidden units, multipliers, dropped units (R, F). */
  x2: FloatArray;
  hidden: FloatArray;
  keepF: FloatArray;
  dropped: FloatArray;
}

/** Work arrays shared by the layers. */
interface SharedWork {
  /** The last layer's output, (R, W). */
  out: FloatArray;
  /** The embedding dropout multipliers, (R, W). */
  m0: FloatArray;
  /** Image features and memory of the captions with rows, (N, D) and (N, W). */
  feats: FloatArray;
  mem: FloatArray;
  dmem: FloatArray;
  /** The cross-attention values of the memory, (N, W); and their gradient. */
  vc: FloatArray;
  dvc: FloatArray;
  /** Scratch rows, (R, W) each, and (R, F). */
  a: FloatArray;
  s1: FloatArray;
  d1: FloatArray;
  d2: FloatArray;
  d3: FloatArray;
  dq: FloatArray;
  dk: FloatArray;
  dv: FloatArray;
  dHidden: FloatArray;
  /** Scratch attention weights' gradient, (P, P). */
  dp: FloatArray;
  /** Scores (R, V), softmax statistics (R, 2), ones for the bias gradients. */
  scores: FloatArray;
  stats: FloatArray;
  ones: FloatArray;
}

const LAYER_FIELDS: Array<[keyof LayerWork, "RW" | "A" | "R" | "RH" | "RF"]> = [
  ["x", "RW"],
  ["q", "RW"],
  ["k", "RW"],
  ["v", "RW"],
  ["y", "RW"],
  ["p", "A"],
  ["pd", "A"],
  ["keepP", "A"],
  ["m1", "RW"],
  ["m2", "RW"],
  ["m3", "RW"],
  ["xhat1", "RW"],
  ["rstd1", "R"],
  ["xhat2", "RW"],
  ["rstd2", "R"],
  ["xhat3", "RW"],
  ["rstd3", "R"],
  ["keepC", "RH"],
  ["yc", "RW"],
  ["x2", "RW"],
  ["hidden", "RF"],
  ["keepF", "RF"],
  ["dropped", "RF"],
];

/**
 * Loss and gradients of the Transformer captioner with preallocated, reused workspaces.
 *
 * @example
 * ```ts
 * import { CaptioningTransformer } from "./captioning_transformer.ts";
 * import { Tensor } from "../layers/tensor.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningTransformer({ wordToIdx, inputDim: 4, wordvecDim: 8, numHeads: 2, ffDim: 16 });
 * // model.loss runs a TransformerStep; lossReference composes the layers. They agree:
 * const feats = Tensor.randn([1, 4], 0, "float32");
 * const caps = Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32");
 * console.log(Math.abs(model.loss(feats, caps).loss - model.lossReference(feats, caps).loss) < 1e-5);
 * ```
 */
export class TransformerStep {
  readonly #cfg: TransformerStepConfig;
  readonly #pe: FloatArray;
  readonly #causal: AttentionMask;
  #arena: FloatArena;
  #ew: ElementwiseKernels;
  #cap = { rows: -1, n: -1, attn: -1 };
  #layers: LayerWork[] = [];
  #w!: SharedWork;
  #len = new Int32Array(0);
  #rowOff = new Int32Array(0);
  #attnOff = new Int32Array(0);
  #memRow = new Int32Array(0);
  #words = new Int32Array(0);
  #targets = new Int32Array(0);
  #xt = new Float64Array(0);
  #rowWeights = new Float64Array(0);

  /**
   * Prepares a step for one model shape (workspaces are allocated at the first call).
   * @param config The model's sizes, dtype and `<NULL>` index.
   */
  constructor(config: TransformerStepConfig) {
    this.#cfg = config;
    this.#pe = positionalEncoding(config.maxLength, config.wordvecDim, config.dtype).data;
    this.#causal = { data: causalMask(config.maxLength).data, offset: 0, ld: config.maxLength };
    const { kernels, arena } = selectElementwise(config.dtype);
    this.#arena = arena;
    this.#ew = kernels;
  }

  /** Makes sure the workspaces hold R ≤ rows rows, N ≤ n captions, `attn` attention weights. */
  #reserve(rows: number, n: number, attn: number): void {
    const c = this.#cap;
    if (rows <= c.rows && n <= c.n && attn <= c.attn) return;
    rows = Math.max(rows, c.rows);
    n = Math.max(n, c.n);
    attn = Math.max(attn, c.attn);
    const { inputDim: d, wordvecDim: w, ffDim: f, vocabSize: v, numHeads: h } = this.#cfg;
    const { numLayers: layers, maxLength: pMax } = this.#cfg;
    const size = { RW: rows * w, A: attn, R: rows, RH: rows * h, RF: rows * f };
    const shared: Array<[keyof SharedWork, number]> = [
      ["out", rows * w],
      ["m0", rows * w],
      ["feats", n * d],
      ["mem", n * w],
      ["dmem", n * w],
      ["vc", n * w],
      ["dvc", n * w],
      ["a", rows * w],
      ["s1", rows * w],
      ["d1", rows * w],
      ["d2", rows * w],
      ["d3", rows * w],
      ["dq", rows * w],
      ["dk", rows * w],
      ["dv", rows * w],
      ["dHidden", rows * f],
      ["dp", pMax * pMax],
      ["scores", rows * v],
      ["stats", 2 * rows],
      ["ones", Math.max(rows, n)],
    ];
    const lengths = [
      ...shared.map(([, len]) => len),
      ...Array.from({ length: layers }, () => LAYER_FIELDS.map(([, k]) => size[k])).flat(),
    ];
    let arrays: FloatArray[];
    try {
      arrays = this.#arena.carve(lengths);
    } catch (e) {
      if (this.#ew.name === "ts") throw e;
      // WebAssembly memory could not grow this far (it stops at 4 GiB): plain arrays instead.
      ({ kernels: this.#ew, arena: this.#arena } = selectElementwise(this.#cfg.dtype, "ts"));
      arrays = this.#arena.carve(lengths);
    }
    let at = 0;
    const sw = {} as SharedWork;
    for (const [name] of shared) sw[name] = arrays[at++];
    sw.ones.fill(1);
    this.#w = sw;
    this.#layers = Array.from({ length: layers }, () => {
      const lw = {} as LayerWork;
      for (const [name] of LAYER_FIELDS) lw[name] = arrays[at++];
      return lw;
    });
    this.#cap = { rows, n, attn };
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
   * @param dropout The dropout of a training step, or null for none.
   * @param weights Each caption's weight, (N,), or null for 1 each (see `LossOptions.weights`).
   * @returns The loss.
   */
  run(
    params: Readonly<Record<ParamName, Tensor<FloatDType>>>,
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    normalizer: number,
    grads: Readonly<Record<ParamName, Tensor<FloatDType>>> | null,
    dropout: StepDropout | null,
    weights: ArrayLike<number> | null = null,
  ): number {
    const cfg = this.#cfg;
    const { inputDim: d, wordvecDim: w, numHeads: heads, vocabSize: v, nullIdx } = cfg;
    const [n, t1] = captions.shape, t = t1 - 1, cap = captions.data;
    if (t > cfg.maxLength) {
      throw new RangeError(
        `Invalid captions: they have ${t} positions, the model reads at most ${cfg.maxLength} ` +
          `(its maxLength)`,
      );
    }
    if (this.#len.length < n) {
      this.#len = new Int32Array(n);
      this.#rowOff = new Int32Array(n + 1);
      this.#attnOff = new Int32Array(n + 1);
      this.#memRow = new Int32Array(n);
    }
    const len = this.#len, rowOff = this.#rowOff, attnOff = this.#attnOff, memRow = this.#memRow;
    captionLengths(cap, n, t1, v, nullIdx, len);
    // Caption i's rows are rowOff[i] … rowOff[i+1]; its weights start at attnOff[i]; the
    // captions with rows get memory rows 0 … n0-1.
    let n0 = 0;
    for (let i = 0; i < n; i++) {
      rowOff[i + 1] = rowOff[i] + len[i];
      attnOff[i + 1] = attnOff[i] + heads * len[i] * len[i];
      memRow[i] = len[i] > 0 ? n0++ : -1;
    }
    const rows = rowOff[n];
    if (rows === 0) {
      if (grads) { for (const name in grads) grads[name].data.fill(0); }
      return 0;
    }
    this.#reserve(rows, n0, attnOff[n]);
    const wk = this.#w, words = this.#words, targets = this.#targets;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < len[i]; s++) {
        words[rowOff[i] + s] = cap[i * t1 + s];
        targets[rowOff[i] + s] = cap[i * t1 + s + 1];
        if (weights !== null) this.#rowWeights[rowOff[i] + s] = weights[i];
      }
    }
    const drop = dropout && dropout.p > 0 ? dropout : null;
    const site = (layer: number, which: number) => dropoutSiteSeed(drop!.seed, layer, which);
    // Caption i's rows are elements (i·T + s)·width + j of a padded (N, T, width) tensor.
    const rowMask = (m: FloatArray, seed: number, width: number) => {
      for (let i = 0; i < n; i++) {
        if (len[i]) dropoutMask(seed, drop!.p, m, rowOff[i] * width, len[i] * width, i * t * width);
      }
    };

    // The image memory: mem = feats · W_proj + b_proj, one token per caption with rows.
    const feats = features.data;
    for (let i = 0; i < n; i++) {
      if (memRow[i] >= 0) wk.feats.set(feats.subarray(i * d, (i + 1) * d), memRow[i] * d);
    }
    affineRows(wk.feats, n0, d, params.W_proj.data, params.b_proj.data, wk.mem, w);
    // x = W_embed[word] + pe[position], dropped out.
    const x0 = this.#layers[0].x, emb = params.W_embed.data, pe = this.#pe;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < len[i]; s++) {
        const r = rowOff[i] + s, word = words[r];
        for (let j = 0; j < w; j++) x0[r * w + j] = emb[word * w + j] + pe[s * w + j];
      }
    }
    if (drop) {
      rowMask(wk.m0, site(-1, DROPOUT_SITES.embed), w);
      for (let k = 0; k < rows * w; k++) x0[k] *= wk.m0[k];
    }
    const layerParams = Array.from({ length: cfg.numLayers }, (_, l) => layerArrays(params, l));
    for (let l = 0; l < cfg.numLayers; l++) {
      const out = l + 1 < cfg.numLayers ? this.#layers[l + 1].x : wk.out;
      this.#layerForward(layerParams[l], this.#layers[l], out, l, n, t, n0, rows, drop);
    }

    // Scores of every row, then softmax + masked loss + gradient, in place.
    const sc = wk.scores;
    affineRows(wk.out, rows, w, params.W_vocab.data, params.b_vocab.data, sc, v);
    const loss = packedSoftmaxLoss(this.#ew, {
      scores: sc,
      rows,
      vocabSize: v,
      targets,
      nullIdx,
      targetScores: this.#xt,
      stats: wk.stats,
      rowWeights: weights === null ? null : this.#rowWeights,
    }, normalizer);
    if (grads === null) return loss;

    // Backward. Every gradient is written below; the ones that accumulate start at 0.
    for (const name in grads) grads[name].data.fill(0);
    affineRowsBackward(sc, wk.out, rows, w, params.W_vocab.data, v, {
      dx: wk.d1,
      dw: grads.W_vocab.data,
      db: grads.b_vocab.data,
    });
    wk.dmem.fill(0, 0, n0 * w);
    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      const gl = layerArrays(grads, l);
      this.#layerBackward(layerParams[l], gl, this.#layers[l], n, n0, rows, drop);
    }
    // The embedding: through its dropout, scattered into the rows of W_embed.
    const dEmb = grads.W_embed.data, dx = wk.d1;
    for (let r = 0; r < rows; r++) {
      const o = words[r] * w;
      for (let j = 0; j < w; j++) {
        dEmb[o + j] += drop ? dx[r * w + j] * wk.m0[r * w + j] : dx[r * w + j];
      }
    }
    affineRowsBackward(wk.dmem, wk.feats, n0, d, params.W_proj.data, w, {
      dx: null,
      dw: grads.W_proj.data,
      db: grads.b_proj.data,
    });
    return loss;
  }

  /** One decoder layer's forward pass: lw.x → out, keeping what the backward pass reads. */
  #layerForward(
    p: LayerArrays,
    lw: LayerWork,
    out: FloatArray,
    l: number,
    n: number,
    t: number,
    n0: number,
    rows: number,
    drop: StepDropout | null,
  ): void {
    const { wordvecDim: w, numHeads: heads, ffDim: f } = this.#cfg, dh = w / heads;
    const wk = this.#w, len = this.#len, rowOff = this.#rowOff, attnOff = this.#attnOff;
    const sa = p.selfAttn, x = lw.x;
    // Causal self-attention, per caption and head on its rows.
    affineRows(x, rows, w, sa.Wq, sa.bq, lw.q, w);
    affineRows(x, rows, w, sa.Wk, sa.bk, lw.k, w);
    affineRows(x, rows, w, sa.Wv, sa.bv, lw.v, w);
    const selfSeed = drop ? dropoutSiteSeed(drop.seed, l, DROPOUT_SITES.selfAttn) : 0;
    for (let i = 0; i < n; i++) {
      const li = len[i], r0 = rowOff[i];
      for (let h = 0; h < heads && li > 0; h++) {
        const pOff = attnOff[i] + h * li * li;
        if (drop) {
          // Weight (i, h, s, j) is element ((i·H + h)·T + s)·T + j of the padded weights.
          for (let s = 0; s < li; s++) {
            dropoutMask(
              selfSeed,
              drop.p,
              lw.keepP,
              pOff + s * li,
              li,
              ((i * heads + h) * t + s) * t,
            );
          }
        }
        attendForward(
          this.#selfHead(lw, r0, li, h, pOff, drop !== null),
          this.#causal,
          drop ? mat(lw.keepP, li, li, pOff) : null,
        );
      }
    }
    affineRows(lw.y, rows, w, sa.Wo, sa.bo, wk.a, w);
    this.#residualNorm(
      wk.a,
      x,
      lw.m1,
      l,
      DROPOUT_SITES.selfOut,
      p.norms[0],
      wk.s1,
      lw.xhat1,
      lw.rstd1,
      n,
      t,
      rows,
      drop,
    );
    // Cross-attention to the one-token memory: the weight is 1 (dropped out per row and head),
    // so each row's output is its image's value.
    const ca = p.crossAttn;
    affineRows(wk.mem, n0, w, ca.Wv, ca.bv, wk.vc, w);
    if (drop) {
      const seed = dropoutSiteSeed(drop.seed, l, DROPOUT_SITES.crossAttn);
      for (let i = 0; i < n; i++) {
        for (let h = 0; h < heads && len[i] > 0; h++) {
          // Weight (i, h, s, 0) is element (i·H + h)·T + s of the padded (N, H, T, 1) weights.
          dropoutMask(seed, drop.p, wk.dp, 0, len[i], (i * heads + h) * t);
          for (let s = 0; s < len[i]; s++) lw.keepC[(rowOff[i] + s) * heads + h] = wk.dp[s];
        }
      }
    }
    for (let i = 0; i < n; i++) {
      const m = this.#memRow[i] * w;
      for (let r = rowOff[i]; r < rowOff[i + 1]; r++) {
        for (let h = 0; h < heads; h++) {
          const keep = drop ? lw.keepC[r * heads + h] : 1;
          for (let j = h * dh; j < (h + 1) * dh; j++) lw.yc[r * w + j] = keep * wk.vc[m + j];
        }
      }
    }
    affineRows(lw.yc, rows, w, ca.Wo, ca.bo, wk.a, w);
    this.#residualNorm(
      wk.a,
      wk.s1,
      lw.m2,
      l,
      DROPOUT_SITES.crossOut,
      p.norms[1],
      lw.x2,
      lw.xhat2,
      lw.rstd2,
      n,
      t,
      rows,
      drop,
    );
    // The feed-forward block.
    if (drop) {
      const seed = dropoutSiteSeed(drop.seed, l, DROPOUT_SITES.ffnHidden);
      for (let i = 0; i < n; i++) {
        if (len[i]) dropoutMask(seed, drop.p, lw.keepF, rowOff[i] * f, len[i] * f, i * t * f);
      }
    }
    const work = { hidden: lw.hidden, keep: drop ? lw.keepF : null, dropped: lw.dropped };
    feedForwardRows(lw.x2, rows, w, f, p.ffn, work, wk.a);
    this.#residualNorm(
      wk.a,
      lw.x2,
      lw.m3,
      l,
      DROPOUT_SITES.ffnOut,
      p.norms[2],
      out,
      lw.xhat3,
      lw.rstd3,
      n,
      t,
      rows,
      drop,
    );
  }

  /** out = LayerNorm(x + dropout(a)), with the mask (drawn into m) and the norm's cache. */
  #residualNorm(
    a: FloatArray,
    x: FloatArray,
    m: FloatArray,
    l: number,
    site: number,
    norm: { gamma: FloatArray; beta: FloatArray },
    out: FloatArray,
    xhat: FloatArray,
    rstd: FloatArray,
    n: number,
    t: number,
    rows: number,
    drop: StepDropout | null,
  ): void {
    const w = this.#cfg.wordvecDim, len = this.#len, rowOff = this.#rowOff;
    if (drop) {
      const seed = dropoutSiteSeed(drop.seed, l, site);
      for (let i = 0; i < n; i++) {
        if (len[i]) dropoutMask(seed, drop.p, m, rowOff[i] * w, len[i] * w, i * t * w);
      }
      for (let k = 0; k < rows * w; k++) a[k] = x[k] + a[k] * m[k];
    } else for (let k = 0; k < rows * w; k++) a[k] = x[k] + a[k];
    layerNormRows(a, norm.gamma, norm.beta, out, xhat, rstd, 0, rows, w);
  }

  /** The views of head h of the caption whose li rows start at r0. */
  #selfHead(
    lw: LayerWork,
    r0: number,
    li: number,
    h: number,
    pOff: number,
    dropped: boolean,
  ): AttentionHead {
    const w = this.#cfg.wordvecDim, dh = w / this.#cfg.numHeads, o = r0 * w + h * dh;
    return {
      q: mat(lw.q, li, dh, o, w),
      k: mat(lw.k, li, dh, o, w),
      v: mat(lw.v, li, dh, o, w),
      p: mat(lw.p, li, li, pOff),
      pd: dropped ? mat(lw.pd, li, li, pOff) : null,
      out: mat(lw.y, li, dh, o, w),
    };
  }

  /**
   * One decoder layer's backward pass: d1 holds the gradient of the layer's output on entry and
   * of its input on exit; the layer's gradients are written into g, the memory's added to dmem.
   */
  #layerBackward(
    p: LayerArrays,
    g: LayerArrays,
    lw: LayerWork,
    n: number,
    n0: number,
    rows: number,
    drop: StepDropout | null,
  ): void {
    const { wordvecDim: w, numHeads: heads, ffDim: f } = this.#cfg, dh = w / heads;
    const wk = this.#w, len = this.#len, rowOff = this.#rowOff, attnOff = this.#attnOff;
    const { d1, d2, d3 } = wk, rw = rows * w;
    // d1 ← the gradient of a residual sum z = x + dropout(branch) through its layer norm k;
    // d2 ← the branch's gradient, d1 ⊙ the dropout mask (d1 itself is the residual input's).
    const throughNorm = (k: number, xhat: FloatArray, rstd: FloatArray, m: FloatArray) => {
      const gn = g.norms[k];
      layerNormRowsBackward(d1, xhat, rstd, p.norms[k].gamma, d1, gn.gamma, gn.beta, 0, rows, w);
      if (drop) { for (let k = 0; k < rw; k++) d2[k] = d1[k] * m[k]; }
      else d2.set(d1.subarray(0, rw));
    };
    // The feed-forward block: d(x2) = dz3 + ffn'(dz3 ⊙ m3).
    throughNorm(2, lw.xhat3, lw.rstd3, lw.m3);
    const work = { hidden: lw.hidden, keep: drop ? lw.keepF : null, dropped: lw.dropped };
    feedForwardRowsBackward(d2, lw.x2, rows, w, f, p.ffn, work, wk.dHidden, {
      dx: d2,
      dW1: g.ffn.W1,
      db1: g.ffn.b1,
      dW2: g.ffn.W2,
      db2: g.ffn.b2,
    });
    for (let k = 0; k < rw; k++) d1[k] += d2[k];
    // The cross-attention: d(x1) = dz2; its query and key projections pass nothing on (their
    // gradients stay 0). d(yc) → each image's value, through the weights' dropout.
    throughNorm(1, lw.xhat2, lw.rstd2, lw.m2);
    const ca = p.crossAttn, gc = g.crossAttn;
    affineRowsBackward(d2, lw.yc, rows, w, ca.Wo, w, { dx: d3, dw: gc.Wo, db: gc.bo });
    wk.dvc.fill(0, 0, n0 * w);
    for (let i = 0; i < n; i++) {
      const m = this.#memRow[i] * w;
      for (let r = rowOff[i]; r < rowOff[i + 1]; r++) {
        for (let h = 0; h < heads; h++) {
          const keep = drop ? lw.keepC[r * heads + h] : 1;
          for (let j = h * dh; j < (h + 1) * dh; j++) wk.dvc[m + j] += keep * d3[r * w + j];
        }
      }
    }
    const grads = { dx: wk.dmem, dw: gc.Wv, db: gc.bv };
    affineRowsBackward(wk.dvc, wk.mem, n0, w, ca.Wv, w, grads, true);
    // The self-attention: d(x) = dz1 + the query, key and value projections' input gradients.
    throughNorm(0, lw.xhat1, lw.rstd1, lw.m1);
    const sa = p.selfAttn, gs = g.selfAttn;
    affineRowsBackward(d2, lw.y, rows, w, sa.Wo, w, { dx: d3, dw: gs.Wo, db: gs.bo });
    for (let i = 0; i < n; i++) {
      const li = len[i], r0 = rowOff[i];
      for (let h = 0; h < heads && li > 0; h++) {
        const pOff = attnOff[i] + h * li * li, o = r0 * w + h * dh;
        attendBackward(
          this.#selfHead(lw, r0, li, h, pOff, drop !== null),
          mat(d3, li, dh, o, w),
          this.#causal,
          drop ? mat(lw.keepP, li, li, pOff) : null,
          {
            dq: mat(wk.dq, li, dh, o, w),
            dk: mat(wk.dk, li, dh, o, w),
            dv: mat(wk.dv, li, dh, o, w),
            dp: mat(wk.dp, li, li),
          },
        );
      }
    }
    affineRowsBackward(wk.dq, lw.x, rows, w, sa.Wq, w, { dx: d1, dw: gs.Wq, db: gs.bq }, true);
    affineRowsBackward(wk.dk, lw.x, rows, w, sa.Wk, w, { dx: d1, dw: gs.Wk, db: gs.bk }, true);
    affineRowsBackward(wk.dv, lw.x, rows, w, sa.Wv, w, { dx: d1, dw: gs.Wv, db: gs.bv }, true);
  }
}
