/**
 * The Transformer captioner's parameters: their names and shapes in the one flat buffer (in the
 * order of the course's modules), the views of each decoder layer, and the course's
 * initialisation. A name is also the parameter's dataset path in a checkpoint, e.g.
 * `f["layer0/self_attn/Wq"]` in h5py.
 *
 *   W_proj (D, W), b_proj (W,)                    visual projection of the image feature
 *   W_embed (V, W)                                word embedding
 *   layer{l}/self_attn/{Wq,bq,Wk,bk,Wv,bv,Wo,bo}  causal self-attention (W, W) and (W,) each
 *   layer{l}/cross_attn/{…}                       attention from the words to the image
 *   layer{l}/ffn/{W1 (W, F), b1 (F,), W2 (F, W), b2 (W,)}
 *   layer{l}/norm{1,2,3}/{gamma, beta} (W,)
 *   W_vocab (W, V), b_vocab (V,)                  output scores
 *
 * Dimension legend: D image feature, W width, F feed-forward size, V vocabulary, L layers.
 * @module
 */
import type { AttentionParams } from "../layers/attention.ts";
import type { FeedForwardWeights } from "../layers/feed_forward.ts";
import { Rng } from "../layers/random.ts";
import type { FloatArray, FloatDType, Tensor } from "../layers/tensor.ts";
import type { ParamName } from "./params.ts";

/** The names of one attention layer's projections, in layout order. */
export const ATTENTION_PARAM_NAMES = ["Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo"] as const;

/** One decoder layer's parameters (views into the flat buffer). */
export interface DecoderLayerParams<D extends FloatDType = FloatDType> {
  /** Causal self-attention. */
  selfAttn: AttentionParams<D>;
  /** Attention from the words to the image memory. */
  crossAttn: AttentionParams<D>;
  /** The feed-forward block: W1 (W, F), b1 (F,), W2 (F, W), b2 (W,). */
  ffn: { W1: Tensor<D>; b1: Tensor<D>; W2: Tensor<D>; b2: Tensor<D> };
  /** The layer norms after self-attention, cross-attention and the feed-forward block. */
  norms: [NormParams<D>, NormParams<D>, NormParams<D>];
}

/** A layer norm's scale and shift, (W,) each. */
export interface NormParams<D extends FloatDType = FloatDType> {
  /** (W,) */
  gamma: Tensor<D>;
  /** (W,) */
  beta: Tensor<D>;
}

/** The sizes the layout depends on. */
export interface TransformerShape {
  /** D */
  inputDim: number;
  /** W */
  wordvecDim: number;
  /** F */
  ffDim: number;
  /** L */
  numLayers: number;
  /** V */
  vocabSize: number;
}

/**
 * The parameters' shapes, in layout order (see the module doc).
 * @param s The sizes.
 * @returns Name → shape, in layout order.
 *
 * @example
 * ```ts
 * import { transformerParamShapes } from "./transformer_params.ts";
 * const shapes = transformerParamShapes({ inputDim: 6, wordvecDim: 4, ffDim: 8, numLayers: 1, vocabSize: 5 });
 * console.log(shapes["layer0/ffn/W1"], Object.keys(shapes).length); // [4, 8] 31
 * ```
 */
export function transformerParamShapes(s: TransformerShape): Record<ParamName, number[]> {
  const { inputDim: d, wordvecDim: w, ffDim: f, vocabSize: v } = s;
  const shapes: Record<ParamName, number[]> = { W_proj: [d, w], b_proj: [w], W_embed: [v, w] };
  for (let l = 0; l < s.numLayers; l++) {
    for (const attn of ["self_attn", "cross_attn"]) {
      for (const name of ATTENTION_PARAM_NAMES) {
        shapes[`layer${l}/${attn}/${name}`] = name.startsWith("W") ? [w, w] : [w];
      }
    }
    Object.assign(shapes, {
      [`layer${l}/ffn/W1`]: [w, f],
      [`layer${l}/ffn/b1`]: [f],
      [`layer${l}/ffn/W2`]: [f, w],
      [`layer${l}/ffn/b2`]: [w],
    });
    for (const norm of ["norm1", "norm2", "norm3"]) {
      shapes[`layer${l}/${norm}/gamma`] = [w];
      shapes[`layer${l}/${norm}/beta`] = [w];
    }
  }
  shapes.W_vocab = [w, v];
  shapes.b_vocab = [v];
  return shapes;
}

/**
 * The views of decoder layer l among a model's parameter (or gradient) views.
 * @param views Name → view, as `viewParams` makes them.
 * @param l The layer.
 * @returns The layer's parameters, grouped.
 *
 * @example
 * ```ts
 * import { makeLayout, viewParams } from "./params.ts";
 * import { decoderLayer, transformerParamShapes } from "./transformer_params.ts";
 * const layout = makeLayout(transformerParamShapes({ inputDim: 6, wordvecDim: 4, ffDim: 8, numLayers: 2, vocabSize: 5 }));
 * const { views } = viewParams(layout, "float64");
 * console.log(decoderLayer(views, 1).ffn.W2.shape); // [8, 4]
 * ```
 */
export function decoderLayer<D extends FloatDType>(
  views: Readonly<Record<ParamName, Tensor<D>>>,
  l: number,
): DecoderLayerParams<D> {
  const attn = (which: string) =>
    Object.fromEntries(
      ATTENTION_PARAM_NAMES.map((name) => [name, views[`layer${l}/${which}/${name}`]]),
    ) as unknown as AttentionParams<D>;
  const norm = (k: number): NormParams<D> => ({
    gamma: views[`layer${l}/norm${k}/gamma`],
    beta: views[`layer${l}/norm${k}/beta`],
  });
  return {
    selfAttn: attn("self_attn"),
    crossAttn: attn("cross_attn"),
    ffn: {
      W1: views[`layer${l}/ffn/W1`],
      b1: views[`layer${l}/ffn/b1`],
      W2: views[`layer${l}/ffn/W2`],
      b2: views[`layer${l}/ffn/b2`],
    },
    norms: [norm(1), norm(2), norm(3)],
  };
}

/** Flat views of one attention layer's projections (or their gradients). */
export interface AttentionArrays {
  /** (W, W) */
  Wq: FloatArray;
  /** (W,) */
  bq: FloatArray;
  /** (W, W) */
  Wk: FloatArray;
  /** (W,) */
  bk: FloatArray;
  /** (W, W) */
  Wv: FloatArray;
  /** (W,) */
  bv: FloatArray;
  /** (W, W) */
  Wo: FloatArray;
  /** (W,) */
  bo: FloatArray;
}

/** Flat views of one decoder layer's parameters (or gradients), as the fast paths use them. */
export interface LayerArrays {
  /** Causal self-attention. */
  selfAttn: AttentionArrays;
  /** Attention to the image memory. */
  crossAttn: AttentionArrays;
  /** The feed-forward block. */
  ffn: FeedForwardWeights;
  /** The three layer norms' gamma and beta, (W,) each. */
  norms: Array<{ gamma: FloatArray; beta: FloatArray }>;
}

/**
 * The flat arrays of decoder layer l among a model's parameter (or gradient) views.
 * @param views Name → view.
 * @param l The layer.
 * @returns The layer's arrays, grouped as {@linkcode decoderLayer} groups the views.
 *
 * @example
 * ```ts
 * import { makeLayout, viewParams } from "./params.ts";
 * import { layerArrays, transformerParamShapes } from "./transformer_params.ts";
 * const layout = makeLayout(transformerParamShapes({ inputDim: 6, wordvecDim: 4, ffDim: 8, numLayers: 1, vocabSize: 5 }));
 * const { flat, views } = viewParams(layout, "float32");
 * console.log(layerArrays(views, 0).ffn.W1.buffer === flat.buffer); // true: views, not copies
 * ```
 */
export function layerArrays(
  views: Readonly<Record<ParamName, Tensor<FloatDType>>>,
  l: number,
): LayerArrays {
  const p = decoderLayer(views, l);
  const attn = (a: AttentionParams<FloatDType>): AttentionArrays => ({
    Wq: a.Wq.data,
    bq: a.bq.data,
    Wk: a.Wk.data,
    bk: a.bk.data,
    Wv: a.Wv.data,
    bv: a.bv.data,
    Wo: a.Wo.data,
    bo: a.bo.data,
  });
  return {
    selfAttn: attn(p.selfAttn),
    crossAttn: attn(p.crossAttn),
    ffn: { W1: p.ffn.W1.data, b1: p.ffn.b1.data, W2: p.ffn.W2.data, b2: p.ffn.b2.data },
    norms: p.norms.map((n) => ({ gamma: n.gamma.data, beta: n.beta.data })),
  };
}

/** The standard deviation of the course's `_init_weights` normal initialisation. */
export const INIT_STD = 0.02;

/**
 * The course's initialisation: every Linear and Embedding weight normal(0, 0.02), drawn in
 * layout order; biases 0; LayerNorm weight (gamma) 1 and bias (beta) 0. (In the course the
 * output layer is created after `apply(_init_weights)` and keeps PyTorch's default; here it
 * follows the same rule as every other Linear layer, as the issue states it.)
 * @param views Name → view of a freshly allocated (zero) buffer.
 * @param seed The seed.
 *
 * @example
 * ```ts
 * import { makeLayout, viewParams } from "./params.ts";
 * import { initTransformerParams, transformerParamShapes } from "./transformer_params.ts";
 * const layout = makeLayout(transformerParamShapes({ inputDim: 6, wordvecDim: 4, ffDim: 8, numLayers: 1, vocabSize: 5 }));
 * const { views } = viewParams(layout, "float64");
 * initTransformerParams(views, 0);
 * console.log(views["layer0/norm1/gamma"].data[0], views["layer0/ffn/b1"].data[0]); // 1 0
 * ```
 */
export function initTransformerParams(
  views: Readonly<Record<ParamName, Tensor<FloatDType>>>,
  seed: number,
): void {
  const rng = new Rng(seed);
  for (const [name, view] of Object.entries(views)) {
    const leaf = name.slice(name.lastIndexOf("/") + 1);
    if (leaf === "gamma") view.data.fill(1);
    else if (leaf.startsWith("W")) {
      for (let i = 0; i < view.size; i++) view.data[i] = rng.randn() * INIT_STD;
    }
  }
}
