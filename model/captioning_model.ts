/**
 * What every captioning model offers the rest of recap: the engines, the solver, the worker
 * pool, checkpoints and the pipeline see a model only through {@linkcode CaptioningModel}, so
 * the recurrent models (`CaptioningRNN`: rnn, lstm, gru) and the Transformer captioner
 * (`CaptioningTransformer`) train on the same pool, save to the same checkpoints and decode
 * with the same greedy and beam search. `createCaptioningModel` (models.ts) builds either from
 * one options object.
 *
 * Dimension legend: N batch, T + 1 caption length, D image feature, V vocabulary.
 * @module
 */
import type { ArrayOf, FloatDType, Tensor } from "../layers/tensor.ts";
import type { StepDecoder } from "./decoder.ts";
import type { LossOptions, ModelConfig } from "./model_config.ts";
import type { ParamLayout, ParamName } from "./params.ts";
import type { SampleOptions, SampleResult } from "./sampling.ts";
import type { StepTeam } from "./step_team.ts";
import type { TransformerConfig } from "./transformer_config.ts";

/** A model's resolved constructor arguments, as saved in checkpoints; `cellType` tells which. */
export type CaptioningModelConfig = ModelConfig | TransformerConfig;

/** The language models recap trains: the three recurrent cells and the Transformer. */
export type ModelKind = CaptioningModelConfig["cellType"];

/** What a model's `loss` returns. */
export interface LossResult<D extends FloatDType> {
  /** The loss: masked cross-entropy summed over time, divided by N (or the normalizer). */
  loss: number;
  /** The gradient of every parameter, as views into `gradFlat`. */
  grads: Record<ParamName, Tensor<D>>;
  /** All gradients in one flat buffer of the parameter layout. */
  gradFlat: ArrayOf<D>;
}

/**
 * A captioning model: its vocabulary, its parameters in one flat (shared) buffer with named
 * views, the loss with its gradients, and decoding.
 */
export interface CaptioningModel<D extends FloatDType = FloatDType> {
  /** The resolved constructor arguments. */
  readonly config: CaptioningModelConfig;
  /** The vocabulary: word → index. */
  readonly wordToIdx: Record<string, number>;
  /** The vocabulary: index → word. */
  readonly idxToWord: string[];
  /** V */
  readonly vocabSize: number;
  /** The index of `<NULL>`, the padding the loss masks out. */
  readonly nullIdx: number;
  /** The index of `<START>`, or -1 when the vocabulary has none. */
  readonly startIdx: number;
  /** The index of `<END>`, or -1 when the vocabulary has none. */
  readonly endIdx: number;
  /** The index of `<UNK>`, or -1 when the vocabulary has none. */
  readonly unkIdx: number;
  /** Where each parameter lives in `flat`. */
  readonly layout: ParamLayout;
  /** All parameters in one (SharedArrayBuffer-backed) buffer. */
  readonly flat: ArrayOf<D>;
  /** Named parameter views into `flat`. */
  readonly params: Record<ParamName, Tensor<D>>;
  /** The element type of parameters and gradients. */
  readonly dtype: D;
  /** The per-step decoder that greedy and beam search drive. */
  readonly decoder: StepDecoder;
  /**
   * The loss of a batch and the gradient of every parameter (the fused, preallocated path).
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param options A normalizer for sharded batches, a gradient buffer to fill, a dropout seed.
   * @returns `{ loss, grads, gradFlat }`.
   */
  loss(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options?: LossOptions<D>,
  ): LossResult<D>;
  /**
   * The same loss computed by composing the layer functions: the readable reference.
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param options As for `loss`.
   * @returns `{ loss, grads, gradFlat }`.
   */
  lossReference(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    options?: LossOptions<D>,
  ): LossResult<D>;
  /**
   * The loss alone, without gradients or dropout (for validation).
   * @param features Image features, (N, D).
   * @param captions Word indices, (N, T + 1), int32.
   * @param normalizer What the summed loss is divided by (default N).
   * @param weights Each caption's weight, (N,) (default 1 each; see `LossOptions.weights`).
   * @returns The loss.
   */
  lossValue(
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    normalizer?: number,
    weights?: ArrayLike<number>,
  ): number;
  /**
   * Captions images: greedy (beamSize 1) or beam search.
   * @param features Image features, (N, D).
   * @param options `maxLength` and `beamSize`.
   * @returns Word indices, (N, maxLength), int32.
   */
  sample(features: Tensor<FloatDType>, options?: SampleOptions): Tensor<"int32">;
  /**
   * Like `sample`, with each caption's log-probability.
   * @param features Image features, (N, D).
   * @param options `maxLength` and `beamSize`.
   * @returns `{ captions, logProbs }`.
   */
  sampleWithScores(features: Tensor<FloatDType>, options?: SampleOptions): SampleResult;
  /**
   * Copies another model's parameters into this one's buffer.
   * @param other A model of the same layout (e.g. a checkpoint's).
   */
  copyParamsFrom(other: CaptioningModel<FloatDType>): void;
  /**
   * Makes `loss` and `lossValue` run each step as one member of a team of workers
   * (`step_team.ts`), on work arrays in the team's shared memory, or with null in this thread
   * alone again (the same bits either way). Models whose step cannot be split this way leave it
   * undefined (the pool then gives each worker whole shards).
   * @param team This worker's view of the team, or null.
   * @param workspace The memory every member was given (`sharedWorkspaceMemory`).
   */
  useStepTeam?(team: StepTeam | null, workspace?: WebAssembly.Memory): void;
}
