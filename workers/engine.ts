/**
 * The training-step engine: loss and gradients of a minibatch, reduced and applied to the
 * parameters. The single-thread engine here and the worker pool share the same fixed shards,
 * blocks and summation order, so they give bitwise-identical results.
 * @module
 */
import { allocArray, type FloatArray, type FloatDType } from "../layers/tensor.ts";
import type { CaptioningModel } from "../model/captioning_model.ts";
import type { Optimizer } from "../layers/optim.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { checkCaptionWeights } from "../model/model_config.ts";
import { captionsPerImage, resolveDecodeOptions } from "../model/decode_options.ts";
import { imagesPerChunk, type SampleOptions, type SampleResult } from "../model/sampling.ts";
import { clipFactor, scaleRange, shardDropoutSeed, splitRange } from "./sharding.ts";
import { reduceBlock } from "./reduce.ts";
import { Tensor } from "../layers/tensor.ts";

/** What one training step reports. */
export interface StepResult {
  /** The minibatch loss. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** Whether the parameters were updated (false when loss or gradient was not finite). */
  applied: boolean;
}

/** Something that runs training steps on a model's shared parameters. */
export interface TrainEngine {
  /**
   * Computes the batch's loss and gradient, clips it to `gradClip` (0 = off), and applies the
   * optimizer — unless the loss or gradient is not finite, in which case nothing changes.
   */
  step(batch: Minibatch, optimizer: Optimizer, gradClip: number): StepResult | Promise<StepResult>;
  /** The loss of a batch without changing anything (for validation). */
  evalLoss(batch: Minibatch): number | Promise<number>;
  /**
   * Captions images as `model.sampleWithScores(features, options)` does, with the same result
   * (the pool splits the images across its workers).
   * @param features Image features, (N, D).
   * @param options The decoding strategy and its controls (see `SampleOptions`).
   * @returns `{ captions, logProbs }`.
   */
  sample(
    features: Tensor<FloatDType>,
    options?: SampleOptions,
  ): SampleResult | Promise<SampleResult>;
  /** Releases workers and buffers. */
  close(): void | Promise<void>;
}

/** How many fixed shards a batch is split into by default (a multiple of 1, 2 and 4 workers). */
export const DEFAULT_SHARDS = 4;
/** How many fixed blocks the flat gradient is split into for reduction and norms. */
export const GRAD_BLOCKS = 64;

/**
 * Rows [start, end) of a minibatch as its own minibatch (copies).
 * @param batch The minibatch.
 * @param start The first row.
 * @param end One past the last row.
 * @returns The shard.
 */
export function shardOf(batch: Minibatch, start: number, end: number): Minibatch {
  const t1 = batch.captions.shape[1], d = batch.features.shape[1];
  return {
    captions: new Tensor(batch.captions.data.slice(start * t1, end * t1), [end - start, t1]),
    features: new Tensor(batch.features.data.slice(start * d, end * d), [end - start, d]),
    imageIdxs: batch.imageIdxs.slice(start, end),
    ...(batch.weights ? { weights: batch.weights.slice(start, end) } : {}),
  };
}

/**
 * Checks a minibatch's per-caption weights: one finite number per caption, when present.
 * @param batch The minibatch.
 * @throws {TypeError} When the weights are not an array of numbers.
 * @throws {RangeError} When there are not N weights, or one is not finite.
 *
 * @example
 * ```ts
 * import { checkWeights } from "./engine.ts";
 * import { Tensor } from "../layers/tensor.ts";
 * const batch = { captions: Tensor.zeros([2, 3], "int32"), features: Tensor.zeros([2, 4]), imageIdxs: new Int32Array(2) };
 * checkWeights({ ...batch, weights: new Float64Array([0.5, -1]) }); // fine
 * ```
 */
export function checkWeights(batch: Minibatch): void {
  if (batch.weights !== undefined) checkCaptionWeights(batch.weights, batch.captions.shape[0]);
}

/**
 * The single-thread engine: runs the shards one after another in this thread. A training step
 * gives each shard its dropout seed (`shardDropoutSeed`: the step and the shard), as the pool
 * does; validation losses have no dropout.
 *
 * @example
 * ```ts
 * import { LocalEngine } from "./engine.ts";
 * import { CaptioningRNN } from "../model/captioning_rnn.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const engine = new LocalEngine(model);
 * engine.close();
 * ```
 */
export class LocalEngine<D extends FloatDType> implements TrainEngine {
  readonly #model: CaptioningModel<D>;
  readonly #shards: number;
  readonly #shardGrads: FloatArray[];
  readonly #grad: FloatArray;

  /**
   * Allocates one gradient buffer per shard and the reduced gradient.
   * @param model The model whose parameters are trained.
   * @param shards The number of fixed shards per batch (default {@linkcode DEFAULT_SHARDS}).
   */
  constructor(model: CaptioningModel<D>, shards = DEFAULT_SHARDS) {
    this.#model = model;
    this.#shards = shards;
    const total = model.layout.total;
    this.#shardGrads = Array.from({ length: shards }, () => allocArray(model.dtype, total));
    this.#grad = allocArray(model.dtype, total);
  }

  /** The reduced gradient of the last step (after clipping). */
  get gradient(): FloatArray {
    return this.#grad;
  }

  step(batch: Minibatch, optimizer: Optimizer, gradClip: number): StepResult {
    checkWeights(batch);
    const n = batch.captions.shape[0];
    let loss = 0;
    splitRange(n, this.#shards).forEach((r, s) => {
      const shard = shardOf(batch, r.start, r.end);
      if (r.end === r.start) this.#shardGrads[s].fill(0);
      else {
        loss += this.#model.loss(shard.features, shard.captions, {
          normalizer: n,
          gradBuffer: this.#shardGrads[s] as never,
          ...(shard.weights ? { weights: shard.weights } : {}),
          dropoutSeed: shardDropoutSeed(optimizer.t, s, this.#shards),
        }).loss;
      }
    });
    const blocks = splitRange(this.#grad.length, GRAD_BLOCKS);
    let sq = 0;
    for (const b of blocks) sq += reduceBlock(this.#shardGrads, this.#grad, b.start, b.end);
    const gradNorm = Math.sqrt(sq);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      return { loss, gradNorm, applied: false };
    }
    const factor = clipFactor(gradNorm, gradClip);
    optimizer.beginStep();
    for (const b of blocks) {
      if (factor !== 1) scaleRange(this.#grad, factor, b.start, b.end);
      optimizer.update(this.#model.flat, this.#grad, b.start, b.end);
    }
    return { loss, gradNorm, applied: true };
  }

  evalLoss(batch: Minibatch): number {
    checkWeights(batch);
    const n = batch.captions.shape[0];
    let loss = 0;
    for (const r of splitRange(n, this.#shards)) {
      if (r.end === r.start) continue;
      const shard = shardOf(batch, r.start, r.end);
      loss += this.#model.lossValue(shard.features, shard.captions, n, shard.weights);
    }
    return loss;
  }

  /**
   * Captions images on this thread, the same as `model.sampleWithScores(features, options)`:
   * a chunk of `SAMPLE_CHUNK` images at a time, returning to the event loop between chunks so
   * that signals (Ctrl-C) and timers are seen during a long evaluation.
   * @param features Image features, (N, D).
   * @param options The decoding strategy and its controls (see `SampleOptions`).
   * @returns `{ captions, logProbs }`.
   */
  async sample(features: Tensor<FloatDType>, options: SampleOptions = {}): Promise<SampleResult> {
    const [n, d] = features.shape, resolved = resolveDecodeOptions(options);
    const c = imagesPerChunk(resolved);
    if (n <= c) return this.#model.sampleWithScores(features, options);
    // Whole chunks, each decoded as the call over all images decodes it (sampling streams are
    // seeded per image: a chunk starts at its first image's).
    const m = captionsPerImage(resolved), l = resolved.maxLength;
    const captions = Tensor.zeros([n * m, l], "int32");
    const logProbs = new Float64Array(n * m);
    for (let i0 = 0; i0 < n; i0 += c) {
      const i1 = Math.min(n, i0 + c);
      const chunk = new Tensor<FloatDType>(features.data.subarray(i0 * d, i1 * d), [i1 - i0, d]);
      const part = this.#model.sampleWithScores(chunk, {
        ...options,
        ...(resolved.method === "sample" ? { firstImage: resolved.firstImage + i0 } : {}),
      });
      captions.data.set(part.captions.data, i0 * m * l);
      logProbs.set(part.logProbs, i0 * m);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return { captions, logProbs };
  }

  close(): void {}
}
