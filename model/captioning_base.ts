/**
 * What every captioning model shares, whatever its language model: the vocabulary and its
 * special tokens, the parameters in one flat buffer with named views, and decoding and copying
 * through the model's decoder. `CaptioningRNN` and `CaptioningTransformer` extend it.
 *
 * Dimension legend: N batch, D image feature, V vocabulary.
 * @module
 */
import type { ArrayOf, FloatDType, Tensor } from "../layers/tensor.ts";
import type { CaptioningModel, CaptioningModelConfig } from "./captioning_model.ts";
import type { StepDecoder } from "./decoder.ts";
import { makeLayout, type ParamLayout, type ParamName, viewParams } from "./params.ts";
import { sampleCaptions, type SampleOptions, type SampleResult } from "./sampling.ts";
import { resolveVocabulary } from "./vocabulary.ts";

/**
 * The members every captioning model has in common; a model adds its loss and its decoder,
 * and so implements {@linkcode CaptioningModel}.
 *
 * @example A model's shared members (here a CaptioningRNN's)
 * ```ts
 * import { CaptioningModelBase, CaptioningRNN } from "../mod.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * console.log(model instanceof CaptioningModelBase, model.vocabSize, model.endIdx); // true 3 2
 * ```
 */
export abstract class CaptioningModelBase<
  D extends FloatDType,
  C extends CaptioningModelConfig,
> {
  /** The resolved constructor arguments. */
  readonly config: C;
  /** The vocabulary: word → index. */
  readonly wordToIdx: Record<string, number>;
  /** The vocabulary: index → word. */
  readonly idxToWord: string[];
  /** Where each parameter lives in {@linkcode CaptioningModelBase.flat}. */
  readonly layout: ParamLayout;
  /** All parameters in one (SharedArrayBuffer-backed) buffer. */
  readonly flat: ArrayOf<D>;
  /** Named parameter views into {@linkcode CaptioningModelBase.flat}: `params.W_embed` etc. */
  readonly params: Record<ParamName, Tensor<D>>;
  /** The index of `<NULL>`, the padding that the loss masks out. */
  readonly nullIdx: number;
  /** The index of `<START>`, or -1 when the vocabulary has none. */
  readonly startIdx: number;
  /** The index of `<END>`, or -1 when the vocabulary has none. */
  readonly endIdx: number;
  /** The index of `<UNK>`, or -1 when the vocabulary has none. */
  readonly unkIdx: number;

  /**
   * Resolves the vocabulary and lays out the parameters (uninitialised unless `paramBuffer`
   * holds them: the subclass initialises them).
   * @param config The model's resolved options.
   * @param wordToIdx The vocabulary.
   * @param shapes Each parameter's shape, in layout order, given V.
   * @param paramBuffer An existing buffer to view instead of a new one.
   */
  protected constructor(
    config: C,
    wordToIdx: Record<string, number>,
    shapes: (vocabSize: number) => Record<ParamName, readonly number[]>,
    paramBuffer: ArrayOf<D> | undefined,
  ) {
    this.config = config;
    this.wordToIdx = wordToIdx;
    const vocab = resolveVocabulary(wordToIdx);
    this.idxToWord = vocab.idxToWord;
    this.nullIdx = vocab.nullIdx;
    this.startIdx = vocab.startIdx;
    this.endIdx = vocab.endIdx;
    this.unkIdx = vocab.unkIdx;
    this.layout = makeLayout(shapes(vocab.idxToWord.length));
    const { flat, views } = viewParams(this.layout, config.dtype as D, paramBuffer);
    this.flat = flat;
    this.params = views;
  }

  /** V, the vocabulary size. */
  get vocabSize(): number {
    return this.idxToWord.length;
  }

  /** The element type of parameters and gradients. */
  get dtype(): D {
    return this.config.dtype as D;
  }

  /** The per-step decoder that sampling drives (made at its first use, then reused). */
  abstract get decoder(): StepDecoder;

  /**
   * Generates captions for images: greedy decoding (the exercise's, the default), beam search
   * or sampling, with their controls (see `SampleOptions`).
   * @param features Image features, (N, D).
   * @param options The strategy and its controls, e.g. `{ beamSize: 3, blockTrigrams: true }`.
   * @returns Word indices, (N m, maxLength), int32: m captions per image (1 unless `nBest` or
   * `samples` asks for more).
   */
  sample(features: Tensor<FloatDType>, options: SampleOptions = {}): Tensor<"int32"> {
    return sampleCaptions(this, features, options).captions;
  }

  /**
   * Like {@linkcode CaptioningModelBase.sample}, with each caption's total log-probability
   * (summed up to and including its first `<END>`).
   * @param features Image features, (N, D).
   * @param options The strategy and its controls (see `SampleOptions`).
   * @returns `{ captions, logProbs }`.
   */
  sampleWithScores(features: Tensor<FloatDType>, options: SampleOptions = {}): SampleResult {
    return sampleCaptions(this, features, options);
  }

  /**
   * Copies all parameters from another model with the same layout (e.g. a checkpoint's).
   * @param other The model to copy from.
   * @throws {RangeError} When the layouts differ in size.
   */
  copyParamsFrom(other: CaptioningModel<FloatDType>): void {
    if (other.layout.total !== this.layout.total) {
      throw new RangeError(`Cannot copy parameters: layouts differ in size`);
    }
    this.flat.set(other.flat);
  }
}
