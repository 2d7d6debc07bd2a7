/**
 * CaptioningTransformer: the course's Transformer captioner (CS231n assignment 3,
 * `Transformer_Captioning.ipynb`) with every backward pass written by hand. The image feature is
 * projected to the model width and read as a memory of one token; the caption's words, embedded
 * with sinusoidal positional encoding, pass through L post-norm decoder layers — causal
 * multi-head self-attention, attention to the memory, a feed-forward block, each with a
 * residual connection and layer norm — and a final affine layer scores the next word.
 *
 * Dimension legend: N batch, T time, D image feature, W width, F feed-forward size,
 * V vocabulary, L layers, P positions.
 * @module
 */
import { affineBackward, affineForward } from "../layers/affine.ts";
import {
  type AttentionCache,
  causalMask,
  multiHeadAttentionBackward,
  multiHeadAttentionForward,
} from "../layers/attention.ts";
import {
  deriveSeed,
  dropoutBackward,
  type DropoutCache,
  dropoutForward,
} from "../layers/dropout.ts";
import {
  feedForwardBackward,
  type FeedForwardCache,
  feedForwardForward,
} from "../layers/feed_forward.ts";
import { layerNormBackward, type LayerNormCache, layerNormForward } from "../layers/layer_norm.ts";
import { positionalEncoding, positionalEncodingForward } from "../layers/positional_encoding.ts";
import { allocArray, type ArrayOf, type FloatDType, Tensor } from "../layers/tensor.ts";
import { temporalAffineBackward, temporalAffineForward } from "../layers/temporal_affine.ts";
import {
  temporalSoftmaxLoss,
  weightedTemporalSoftmaxLoss,
} from "../layers/temporal_softmax_loss.ts";
import { wordEmbeddingBackward, wordEmbeddingForward } from "../layers/word_embedding.ts";
import { CaptioningModelBase } from "./captioning_base.ts";
import type { CaptioningModel, LossResult } from "./captioning_model.ts";
import { checkCaptionWeights, checkLossOptions, type LossOptions } from "./model_config.ts";
import { gradientViews, type ParamBuffer, viewParams } from "./params.ts";
import { checkBatch, splitCaptions } from "./captions.ts";
import { TransformerDecoder } from "./transformer_decoder.ts";
import {
  type CaptioningTransformerOptions,
  resolveTransformerConfig,
  type TransformerConfig,
} from "./transformer_config.ts";
import {
  decoderLayer,
  type DecoderLayerParams,
  initTransformerParams,
  transformerParamShapes,
} from "./transformer_params.ts";
import {
  DROPOUT_SITES,
  dropoutSiteSeed,
  type StepDropout,
  TransformerStep,
} from "./transformer_step.ts";

export type { CaptioningTransformerOptions, TransformerConfig } from "./transformer_config.ts";

/**
 * The course's Transformer captioner, with all parameters in one flat buffer.
 *
 * @example Compute the loss and gradients of a tiny model, and caption with it
 * ```ts
 * import { CaptioningTransformer } from "./captioning_transformer.ts";
 * import { Tensor } from "../layers/tensor.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningTransformer({ wordToIdx, inputDim: 4, wordvecDim: 8, numHeads: 2, ffDim: 16 });
 * const captions = Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32");
 * const { loss, grads } = model.loss(Tensor.randn([1, 4], 0, "float32"), captions);
 * console.log(loss > 0, grads["layer0/self_attn/Wq"].shape); // true [8, 8]
 * console.log(model.sample(Tensor.randn([2, 4], 1, "float32"), { maxLength: 5 }).shape); // [2, 5]
 * ```
 */
export class CaptioningTransformer<D extends FloatDType = FloatDType>
  extends CaptioningModelBase<D, TransformerConfig>
  implements CaptioningModel<D> {
  #step: TransformerStep | undefined;
  #gradViews: ParamBuffer<D> | undefined;
  #decoder: TransformerDecoder | undefined;
  #pe: Tensor<D> | undefined;

  /**
   * Builds the model and initialises its parameters as the course does.
   * @param options The vocabulary and sizes; see {@linkcode CaptioningTransformerOptions}.
   * @throws {TypeError} For an unknown option name or a value of the wrong type.
   * @throws {RangeError} For a value out of range or an invalid vocabulary.
   */
  constructor(options: CaptioningTransformerOptions<D>) {
    const config = resolveTransformerConfig(options);
    super(
      config,
      options.wordToIdx,
      (vocabSize) => transformerParamShapes({ ...config, vocabSize }),
      options.paramBuffer,
    );
    if (!options.paramBuffer) initTransformerParams(this.params, config.seed);
  }

  /** The per-step decoder with cached keys and values (made at its first use, then reused). */
  get decoder(): TransformerDecoder {
    return this.#decoder ??= new TransformerDecoder(this);
  }

  /** The seed of a training call's dropout masks: the model's seed with the caller's. */
  #dropout(options: LossOptions<D>): StepDropout | null {
    if (options.dropoutSeed === undefined || this.config.dropout === 0) return null;
    return { p: this.config.dropout, seed: deriveSeed(this.config.seed, options.dropoutSeed) };
  }

  /**
   * The training loss and the gradient of every parameter: captions_in = captions[:, :-1] is
   * read, captions_out = captions[:, 1:] is predicted, `<NULL>` targets are masked out (the
   * exercise's temporal softmax loss). Runs the fused, preallocated step
   * ({@linkcode TransformerStep}); {@linkcode CaptioningTransformer.lossReference} computes the
   * same by composing the layers. Dropout applies only when `options.dropoutSeed` is given.
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32, T ≤ maxLength.
   * @param options A normalizer for sharded batches, a gradient buffer to fill, a dropout seed.
   * @returns `{ loss, grads, gradFlat }`.
   * @throws {TypeError} For an unknown option or a gradient buffer of the wrong type.
   * @throws {RangeError} For bad shapes, word indices, normalizer, buffer length or captions
   * longer than maxLength.
   */
  loss(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options: LossOptions<D> = {},
  ): LossResult<D> {
    this.#checkBatch(features, captions, options);
    const views = gradientViews(this.layout, this.dtype, options.gradBuffer, this.#gradViews);
    this.#gradViews = views;
    const { flat: gradFlat, views: grads } = views;
    const normalizer = options.normalizer ?? captions.shape[0];
    const dropout = this.#dropout(options);
    const loss = this.#trainStep().run(
      this.params,
      features,
      captions,
      normalizer,
      grads,
      dropout,
      options.weights ?? null,
    );
    return { loss, grads, gradFlat };
  }

  /**
   * The loss alone, without gradients or dropout (for validation).
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param normalizer What the summed loss is divided by (default N).
   * @param weights Each caption's weight, (N,) (default 1 each; see `LossOptions.weights`).
   * @returns The same value as `loss(features, captions, { normalizer, weights }).loss`.
   */
  lossValue(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    normalizer?: number,
    weights?: ArrayLike<number>,
  ): number {
    this.#checkBatch(features, captions, { normalizer, weights });
    const divisor = normalizer ?? captions.shape[0];
    return this.#trainStep().run(
      this.params,
      features,
      captions,
      divisor,
      null,
      null,
      weights ?? null,
    );
  }

  #trainStep(): TransformerStep {
    return this.#step ??= new TransformerStep({
      ...this.config,
      vocabSize: this.vocabSize,
      nullIdx: this.nullIdx,
    });
  }

  #checkBatch(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options: LossOptions<D>,
  ): void {
    checkLossOptions(options, this.dtype, this.layout.total);
    checkBatch(features, captions, this.config.inputDim);
    if (options.weights !== undefined) checkCaptionWeights(options.weights, captions.shape[0]);
    const t1 = captions.shape[1];
    if (t1 - 1 > this.config.maxLength) {
      throw new RangeError(
        `Invalid captions: they have ${t1 - 1} positions, the model reads at most ` +
          `${this.config.maxLength} (its maxLength)`,
      );
    }
  }

  /**
   * {@linkcode CaptioningTransformer.loss} computed by composing the layer functions, as the
   * course's `forward` composes its modules: the readable reference that the fused step is
   * tested against. It computes every position of every caption (padding included) and draws
   * the same dropout masks as the fused step.
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param options A normalizer for sharded batches, a gradient buffer to fill, a dropout seed.
   * @returns `{ loss, grads, gradFlat }`.
   * @throws {TypeError} For an unknown option or a gradient buffer of the wrong type.
   * @throws {RangeError} For bad shapes, word indices, normalizer or buffer length.
   */
  lossReference(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options: LossOptions<D> = {},
  ): LossResult<D> {
    this.#checkBatch(features, captions, options);
    const n = captions.shape[0], cfg = this.config, w = cfg.wordvecDim;
    const feats =
      (features.dtype === this.dtype ? features : features.astype(this.dtype)) as Tensor<D>;
    const { capIn, capOut, mask } = splitCaptions(captions, this.nullIdx);
    const { scores, caches, projCache, embedCache, embDrop, vocabCache } = this.#forward(
      feats,
      capIn,
      this.#dropout(options),
    );
    const [rawLoss, dscores] = options.weights
      ? weightedTemporalSoftmaxLoss(scores, capOut, mask, options.weights)
      : temporalSoftmaxLoss(scores, capOut, mask);
    // Rescale from "divided by N" to "divided by normalizer" for shards of a larger batch.
    const scale = n / (options.normalizer ?? n);
    if (scale !== 1) { for (let i = 0; i < dscores.size; i++) dscores.data[i] *= scale; }

    // Backward, layer by layer in reverse; each residual's gradient adds to its branch's.
    const gradFlat = options.gradBuffer ?? allocArray(this.dtype, this.layout.total) as ArrayOf<D>;
    const { views: grads } = viewParams(this.layout, this.dtype, gradFlat);
    const set = (view: Tensor<D>, g: Tensor<D>) => view.data.set(g.data);
    const vocab = temporalAffineBackward(dscores, vocabCache);
    set(grads.W_vocab, vocab.dw);
    set(grads.b_vocab, vocab.db);
    let dx = vocab.dx;
    const dmem = Tensor.zeros([n, 1, w], this.dtype);
    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      const c = caches[l], g = decoderLayer(grads, l);
      const n3 = layerNormBackward(dx, c.norm3);
      setNorm(g, 2, n3);
      const ff = feedForwardBackward(dropoutBackward(n3.dx, c.drop3), c.ffn);
      for (const k of ["W1", "b1", "W2", "b2"] as const) set(g.ffn[k], ff[`d${k}`]);
      const n2 = layerNormBackward(add(n3.dx, ff.dx), c.norm2);
      setNorm(g, 1, n2);
      const ca = multiHeadAttentionBackward(dropoutBackward(n2.dx, c.drop2), c.crossAttn);
      setAttention(g.crossAttn, ca);
      for (let i = 0; i < dmem.size; i++) dmem.data[i] += ca.dkey.data[i] + ca.dvalue.data[i];
      const n1 = layerNormBackward(add(n2.dx, ca.dquery), c.norm1);
      setNorm(g, 0, n1);
      const sa = multiHeadAttentionBackward(dropoutBackward(n1.dx, c.drop1), c.selfAttn);
      setAttention(g.selfAttn, sa);
      dx = add(add(add(n1.dx, sa.dquery), sa.dkey), sa.dvalue);
    }
    // The positional encoding passes the gradient through; the embedding scatters it.
    const dEmb = dropoutBackward(dx, embDrop);
    set(grads.W_embed, wordEmbeddingBackward(dEmb, embedCache).dW);
    const proj = affineBackward(dmem.reshape([n, w]), projCache);
    set(grads.W_proj, proj.dw);
    set(grads.b_proj, proj.db);
    return { loss: rawLoss * scale, grads, gradFlat };
  }

  /**
   * The scores of every position of every caption, as the course's `forward` returns them: the
   * layer-composed forward pass, without dropout.
   * @param features Image features, (N, D).
   * @param captionsIn The words read, (N, T), int32 (a caption without its last word), T ≤
   * maxLength.
   * @returns The scores, (N, T, V): position t scores the word after captionsIn[:, t].
   * @throws {RangeError} For bad shapes or word indices.
   *
   * @example
   * ```ts
   * import { CaptioningTransformer } from "./captioning_transformer.ts";
   * import { Tensor } from "../layers/tensor.ts";
   * const model = new CaptioningTransformer({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4, wordvecDim: 8, numHeads: 2, ffDim: 16 });
   * console.log(model.scores(Tensor.randn([2, 4], 0), Tensor.fromValues([1, 2, 1, 1], [2, 2], "int32")).shape); // [2, 2, 3]
   * ```
   */
  scores(features: Tensor<FloatDType>, captionsIn: Tensor<"int32">): Tensor<D> {
    const [n, t] = captionsIn.shape;
    if (captionsIn.dtype !== "int32" || captionsIn.shape.length !== 2 || t < 1) {
      throw new RangeError(
        `Invalid captionsIn: expected int32 (N, T) with T >= 1, got ${captionsIn.dtype} [${captionsIn.shape}]`,
      );
    }
    // The checks of a batch whose targets would follow these words.
    this.#checkBatch(features, Tensor.zeros([n, t + 1], "int32"), {});
    const feats =
      (features.dtype === this.dtype ? features : features.astype(this.dtype)) as Tensor<D>;
    return this.#forward(feats, captionsIn, null).scores;
  }

  /** The layer-composed forward pass, keeping every layer's cache for the backward pass. */
  #forward(feats: Tensor<D>, capIn: Tensor<"int32">, drop: StepDropout | null) {
    const [n, t] = capIn.shape, cfg = this.config, w = cfg.wordvecDim, p = this.params;
    const dropout = (layer: number, site: number) =>
      drop ? { p: drop.p, seed: dropoutSiteSeed(drop.seed, layer, site) } : undefined;
    const dropped = (x: Tensor<D>, layer: number, site: number): [Tensor<D>, DropoutCache<D>] => {
      const o = dropout(layer, site);
      return o ? dropoutForward(x, o) : [x, { mask: null }];
    };
    // Forward: memory, embedded words, the layers, the scores.
    const [memFlat, projCache] = affineForward(feats, p.W_proj, p.b_proj);
    const mem = memFlat.reshape([n, 1, w]);
    const [emb, embedCache] = wordEmbeddingForward(capIn, p.W_embed);
    this.#pe ??= positionalEncoding(cfg.maxLength, w, this.dtype) as Tensor<D>;
    const [x0, embDrop] = dropped(
      positionalEncodingForward(emb, this.#pe)[0],
      -1,
      DROPOUT_SITES.embed,
    );
    const causal = causalMask(t);
    const caches: LayerCaches<D>[] = [];
    let x = x0;
    for (let l = 0; l < cfg.numLayers; l++) {
      const lp = decoderLayer(p, l);
      const [a, selfAttn] = multiHeadAttentionForward(x, x, x, lp.selfAttn, {
        numHeads: cfg.numHeads,
        mask: causal,
        dropout: dropout(l, DROPOUT_SITES.selfAttn),
      });
      const [ad, drop1] = dropped(a, l, DROPOUT_SITES.selfOut);
      const [x1, norm1] = layerNormForward(add(x, ad), lp.norms[0].gamma, lp.norms[0].beta);
      const [c, crossAttn] = multiHeadAttentionForward(x1, mem, mem, lp.crossAttn, {
        numHeads: cfg.numHeads,
        dropout: dropout(l, DROPOUT_SITES.crossAttn),
      });
      const [cd, drop2] = dropped(c, l, DROPOUT_SITES.crossOut);
      const [x2, norm2] = layerNormForward(add(x1, cd), lp.norms[1].gamma, lp.norms[1].beta);
      const { W1, b1, W2, b2 } = lp.ffn;
      const [f, ffn] = feedForwardForward(x2, W1, b1, W2, b2, dropout(l, DROPOUT_SITES.ffnHidden));
      const [fd, drop3] = dropped(f, l, DROPOUT_SITES.ffnOut);
      const [x3, norm3] = layerNormForward(add(x2, fd), lp.norms[2].gamma, lp.norms[2].beta);
      caches.push({ selfAttn, drop1, norm1, crossAttn, drop2, norm2, ffn, drop3, norm3 });
      x = x3;
    }
    const [scores, vocabCache] = temporalAffineForward(x, p.W_vocab, p.b_vocab);
    return { scores, caches, projCache, embedCache, embDrop, vocabCache };
  }
}

/** a + b, elementwise (a residual connection, or two gradients of one tensor). */
function add<D extends FloatDType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  const out = a.clone();
  for (let i = 0; i < out.size; i++) out.data[i] += b.data[i];
  return out;
}

/** What the reference keeps per layer. */
interface LayerCaches<D extends FloatDType> {
  selfAttn: AttentionCache<D>;
  drop1: DropoutCache<D>;
  norm1: LayerNormCache<D>;
  crossAttn: AttentionCache<D>;
  drop2: DropoutCache<D>;
  norm2: LayerNormCache<D>;
  ffn: FeedForwardCache<D>;
  drop3: DropoutCache<D>;
  norm3: LayerNormCache<D>;
}

function setNorm<D extends FloatDType>(
  g: DecoderLayerParams<D>,
  k: number,
  n: { dgamma: Tensor<D>; dbeta: Tensor<D> },
): void {
  g.norms[k].gamma.data.set(n.dgamma.data);
  g.norms[k].beta.data.set(n.dbeta.data);
}

function setAttention<D extends FloatDType>(
  g: DecoderLayerParams<D>["selfAttn"],
  a: Record<`d${"Wq" | "bq" | "Wk" | "bk" | "Wv" | "bv" | "Wo" | "bo"}`, Tensor<D>>,
): void {
  for (const k of ["Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo"] as const) {
    g[k].data.set(a[`d${k}`].data);
  }
}
