/**
 * CaptioningRNN: the exercise's image-captioning model. An image feature vector sets the
 * initial hidden state through an affine projection; a vanilla RNN, LSTM or GRU then reads the
 * caption word by word and scores the next word over the vocabulary.
 *
 * Dimension legend: N batch, T time, D image feature, W word vector, H hidden, V vocabulary.
 * @module
 */
import { affineBackward, affineForward } from "../layers/affine.ts";
import { gruBackward, gruForward } from "../layers/gru.ts";
import { lstmBackward, lstmForward } from "../layers/lstm.ts";
import { Rng } from "../layers/random.ts";
import { rnnBackward, rnnForward } from "../layers/rnn.ts";
import { allocArray, type ArrayOf, type FloatDType, type Tensor } from "../layers/tensor.ts";
import { temporalAffineBackward, temporalAffineForward } from "../layers/temporal_affine.ts";
import {
  temporalSoftmaxLoss,
  weightedTemporalSoftmaxLoss,
} from "../layers/temporal_softmax_loss.ts";
import { wordEmbeddingBackward, wordEmbeddingForward } from "../layers/word_embedding.ts";
import {
  gradientViews,
  GRU_PARAM_NAMES,
  PARAM_NAMES,
  type ParamBuffer,
  type ParamName,
  viewParams,
} from "./params.ts";
import type { CaptioningModel, LossResult } from "./captioning_model.ts";
import { checkBatch, splitCaptions } from "./captions.ts";
import { Decoder } from "./decoder.ts";
import { CaptioningModelBase } from "./captioning_base.ts";
import {
  type CaptioningRNNOptions,
  type CellType,
  checkCaptionWeights,
  checkLossOptions,
  type LossOptions,
  type ModelConfig,
  resolveModelConfig,
} from "./model_config.ts";
import { TrainStep } from "./train_step.ts";
import type { StepTeam } from "./step_team.ts";

export type { CaptioningRNNOptions, CellType, LossOptions, ModelConfig } from "./model_config.ts";
export type { LossResult } from "./captioning_model.ts";

/** The parameter gradients a recurrent layer's backward pass returns (b, or the GRU's bx, bh). */
type CellGrads<D extends FloatDType> = {
  dWx: Tensor<D>;
  dWh: Tensor<D>;
  db?: Tensor<D>;
  dbx?: Tensor<D>;
  dbh?: Tensor<D>;
};

/**
 * The image-captioning RNN of the exercise, with all parameters in one flat buffer.
 *
 * @example Compute the loss and gradients of a tiny model
 * ```ts
 * import { CaptioningRNN, Tensor } from "../mod.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 4, wordvecDim: 3, hiddenDim: 5, cellType: "lstm" });
 * const captions = Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32");
 * const { loss, grads } = model.loss(Tensor.randn([1, 4], 0, "float32"), captions);
 * console.log(loss > 0, grads.Wx.shape); // true [3, 20]
 * ```
 */
export class CaptioningRNN<D extends FloatDType = FloatDType>
  extends CaptioningModelBase<D, ModelConfig>
  implements CaptioningModel<D> {
  /** The fused training step, made at the first loss. */
  #step: TrainStep | undefined;
  #teamStep: { team: StepTeam; workspace: WebAssembly.Memory; step: TrainStep } | undefined;
  #teamed = false;
  /** The gradient views of the last gradient buffer. */
  #gradViews: ParamBuffer<D> | undefined;
  /** The per-step decoder, made at the first sampling. */
  #decoder: Decoder | undefined;

  /**
   * Builds the model and initialises its parameters as the exercise does.
   * @param options The vocabulary and sizes; see {@linkcode CaptioningRNNOptions}.
   * @throws {TypeError} For an unknown option name or a value of the wrong type.
   * @throws {RangeError} For a value out of range or an invalid vocabulary.
   */
  constructor(options: CaptioningRNNOptions<D>) {
    const config = resolveModelConfig(options);
    const { inputDim: d, wordvecDim: w, hiddenDim: h } = config;
    const g = { rnn: 1, lstm: 4, gru: 3 }[config.cellType] * h;
    // The GRU keeps a bias per projection (bx, bh), as nn.GRU: see layers/gru.ts.
    const biases: Record<string, number[]> = config.cellType === "gru"
      ? { bx: [g], bh: [g] }
      : { b: [g] };
    super(config, options.wordToIdx, (v) => ({
      W_proj: [d, h],
      b_proj: [h],
      W_embed: [v, w],
      Wx: [w, g],
      Wh: [h, g],
      ...biases,
      W_vocab: [h, v],
      b_vocab: [v],
    }), options.paramBuffer);
    if (!options.paramBuffer) this.#initParams(new Rng(config.seed));
  }

  /** The per-step decoder that sampling drives (made at its first use, then reused). */
  get decoder(): Decoder {
    return this.#decoder ??= new Decoder(this);
  }

  /**
   * The exercise's initialisation: randn scaled by 1/100 or 1/√fan-in, zero biases (the GRU's
   * too, rather than nn.GRU's uniform ±1/√H, so the three cells start alike).
   */
  #initParams(rng: Rng): void {
    const { inputDim: d, wordvecDim: w, hiddenDim: h } = this.config;
    const scale: Record<string, number> = {
      W_proj: 1 / Math.sqrt(d),
      W_embed: 1 / 100,
      Wx: 1 / Math.sqrt(w),
      Wh: 1 / Math.sqrt(h),
      W_vocab: 1 / Math.sqrt(h),
    };
    // Draw in a fixed order so a seed always gives the same model.
    for (const name of ["W_embed", "W_proj", "Wx", "Wh", "W_vocab"] as const) {
      const v = this.params[name].data;
      for (let i = 0; i < v.length; i++) v[i] = rng.randn() * scale[name];
    }
  }

  /**
   * The training loss and the gradient of every parameter, as the exercise computes them:
   * captions_in = captions[:, :-1] is read, captions_out = captions[:, 1:] is predicted,
   * `<NULL>` targets are masked out, and h0 is the projection of the image features.
   * Runs the fused, preallocated step ({@linkcode TrainStep}); {@linkcode
   * CaptioningRNN.lossReference} computes the same by composing the layers.
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param options A normalizer for sharded batches and a gradient buffer to fill.
   * @returns `{ loss, grads, gradFlat }`.
   * @throws {TypeError} For an unknown option or a gradient buffer of the wrong type.
   * @throws {RangeError} For bad shapes, word indices, normalizer or buffer length.
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
    const step = this.#trainStep();
    const loss = step.run(
      this.params,
      features,
      captions,
      normalizer,
      grads,
      options.weights ?? null,
    );
    return { loss, grads, gradFlat };
  }

  /**
   * The loss alone, without gradients (the forward pass of {@linkcode CaptioningRNN.loss}, at
   * about 40% of its cost): for validation.
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
    return this.#trainStep().run(this.params, features, captions, divisor, null, weights ?? null);
  }

  /**
   * Makes `loss` and `lossValue` run as one member of a team of workers, on work arrays in the
   * team's shared memory, or, with null, in this thread alone again; the results are the same
   * either way (see `step_team.ts`). Each kind of step keeps its workspaces between calls.
   * @param team This worker's view of the team, or null for this thread alone.
   * @param workspace The memory every member was given (`sharedWorkspaceMemory`).
   * @throws {TypeError} For a team without a workspace.
   */
  useStepTeam(team: StepTeam | null, workspace?: WebAssembly.Memory): void {
    if (team === null) {
      this.#teamed = false;
      return;
    }
    if (!workspace) {
      throw new TypeError("Cannot run the step as a team: give the team's workspace memory");
    }
    if (this.#teamStep?.team !== team || this.#teamStep.workspace !== workspace) {
      this.#teamStep = { team, workspace, step: this.#newStep(team, workspace) };
    }
    this.#teamed = true;
  }

  #trainStep(): TrainStep {
    if (this.#teamed) return this.#teamStep!.step;
    return this.#step ??= this.#newStep();
  }

  #newStep(team?: StepTeam, workspace?: WebAssembly.Memory): TrainStep {
    return new TrainStep({
      ...this.config,
      vocabSize: this.vocabSize,
      nullIdx: this.nullIdx,
      ...(team ? { team, workspace } : {}),
    });
  }

  /** Checks the shapes and dtypes of a batch, and the options of the loss. */
  #checkBatch(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options: LossOptions<D>,
  ): void {
    checkLossOptions(options, this.dtype, this.layout.total);
    checkBatch(features, captions, this.config.inputDim);
    if (options.weights !== undefined) checkCaptionWeights(options.weights, captions.shape[0]);
  }

  /**
   * {@linkcode CaptioningRNN.loss} computed by composing the layer functions, as the exercise's
   * notebook does: the readable reference that the fused step is tested against.
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param options A normalizer for sharded batches and a gradient buffer to fill.
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
    const n = captions.shape[0];
    const p = this.params;
    const feats =
      (features.dtype === this.dtype ? features : features.astype(this.dtype)) as Tensor<D>;
    const { capIn, capOut, mask } = splitCaptions(captions, this.nullIdx);
    // Forward.
    const [h0, projCache] = affineForward(feats, p.W_proj, p.b_proj);
    const [x, embedCache] = wordEmbeddingForward(capIn, p.W_embed);
    // Each cell's backward pass returns dx, dh0 and its parameters' gradients by name.
    let backwardCell: (dh: Tensor<D>) => { dx: Tensor<D>; dh0: Tensor<D> } & CellGrads<D>;
    let h: Tensor<D>;
    if (this.config.cellType === "rnn") {
      const [hh, cache] = rnnForward(x, h0, p.Wx, p.Wh, p.b, this.config.activation);
      h = hh;
      backwardCell = (dh) => rnnBackward(dh, cache);
    } else if (this.config.cellType === "gru") {
      const [hh, cache] = gruForward(x, h0, p.Wx, p.Wh, p.bx, p.bh);
      h = hh;
      backwardCell = (dh) => gruBackward(dh, cache);
    } else {
      const [hh, cache] = lstmForward(x, h0, p.Wx, p.Wh, p.b);
      h = hh;
      backwardCell = (dh) => lstmBackward(dh, cache);
    }
    const [scores, vocabCache] = temporalAffineForward(h, p.W_vocab, p.b_vocab);
    const normalizer = options.normalizer ?? n;
    const [rawLoss, dscores] = options.weights
      ? weightedTemporalSoftmaxLoss(scores, capOut, mask, options.weights)
      : temporalSoftmaxLoss(scores, capOut, mask);
    // Rescale from "divided by N" to "divided by normalizer" for shards of a larger batch.
    const scale = n / normalizer;
    if (scale !== 1) { for (let i = 0; i < dscores.size; i++) dscores.data[i] *= scale; }
    // Backward.
    const gradFlat = options.gradBuffer ?? allocArray(this.dtype, this.layout.total) as ArrayOf<D>;
    const { views: grads } = viewParams(this.layout, this.dtype, gradFlat);
    const vocab = temporalAffineBackward(dscores, vocabCache);
    grads.W_vocab.data.set(vocab.dw.data);
    grads.b_vocab.data.set(vocab.db.data);
    const cell = backwardCell(vocab.dx);
    for (const name of ["Wx", "Wh", "b", "bx", "bh"] as const) {
      const g = cell[`d${name}`];
      if (g) grads[name].data.set(g.data);
    }
    grads.W_embed.data.set(wordEmbeddingBackward(cell.dx, embedCache).dW.data);
    const proj = affineBackward(cell.dh0, projCache);
    grads.W_proj.data.set(proj.dw.data);
    grads.b_proj.data.set(proj.db.data);
    return { loss: rawLoss * scale, grads, gradFlat };
  }

  /** The parameter names of the rnn and lstm, in layout order (the gru's: `GRU_PARAM_NAMES`). */
  static readonly paramNames: readonly ParamName[] = PARAM_NAMES;

  /**
   * The parameter names of a recurrent cell's model, in layout order.
   * @param cellType "rnn", "lstm" or "gru".
   * @returns {@linkcode PARAM_NAMES}, or `GRU_PARAM_NAMES` for the GRU.
   */
  static paramNamesOf(cellType: CellType): readonly ParamName[] {
    return cellType === "gru" ? GRU_PARAM_NAMES : PARAM_NAMES;
  }
}
