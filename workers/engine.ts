/**
 * The training-step engine: loss and gradients of a minibatch, reduced and applied to the
 * parameters. The single-thread engine here and the worker pool share the same fixed shards,
 * blocks and summation order, so they give bitwise-identical results.
 * @module
 */
import { allocArray, type FloatArray, type FloatDType } from "../layers/tensor.ts";
import { sharedWasmArray } from "../layers/kernels/wasm_arrays.ts";
import type { CaptioningModel, ModelKind } from "../model/captioning_model.ts";
import type { Optimizer } from "../layers/optim.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { checkCaptionWeights } from "../model/model_config.ts";
import { captionsPerImage, resolveDecodeOptions } from "../model/decode_options.ts";
import { imagesPerChunk, type SampleOptions, type SampleResult } from "../model/sampling.ts";
import { accepts, checkOptions, type OptionRule } from "../layers/options.ts";
import {
  clipFactor,
  type Range,
  scaleRange,
  shardDropoutSeed,
  splitRange,
  writesDirectly,
} from "./sharding.ts";
import { blockSumsOfSquares } from "../layers/kernels/sum_squares_wasm.ts";
import { reduceBlock, reduceBlockOnto } from "./reduce.ts";
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

/**
 * The running sums of shards 0 … a−1 that a {@linkcode GradientEngine.gradients} call for
 * shards a … b−1 continues: another process's, handed over piece by piece into the engine's
 * own `gradient` buffer (see workers/distributed_engine.ts).
 */
export interface IncomingSum {
  /** The loss of shards 0 … a−1, added in shard order; it may be known only after the gradient. */
  loss: number | PromiseLike<number>;
  /**
   * Waits until `gradient` over `elements` holds the gradient sum of shards 0 … a−1: called
   * once for each piece, in order, just before the piece is folded.
   * @param elements The piece's elements (a run of whole gradient blocks).
   * @param index The piece's number.
   */
  piece(elements: Range, index: number): void | Promise<void>;
}

/** Options of {@linkcode GradientEngine.gradients}. */
export interface GradientsOptions {
  /** The optimizer's step count before this step (`optimizer.t`): seeds each shard's dropout. */
  step: number;
  /** The fixed shards to compute, [start, end) of the engine's `shards` (default: all). */
  shards?: Range;
  /**
   * The sums of the shards before `shards.start` to continue (default: none, the sums start
   * at shard `shards.start`).
   */
  partial?: IncomingSum;
  /**
   * The pieces the sum is folded in, in order: `pieces` contiguous runs of whole gradient
   * blocks (1 … {@linkcode GRAD_BLOCKS}; default 1), so that each can be passed on while the
   * next is summed.
   */
  pieces?: number;
  /**
   * Called once a piece of `gradient` holds the running sum through shard `shards.end` − 1.
   * @param elements The piece's elements.
   * @param index The piece's number.
   */
  onPiece?: (elements: Range, index: number) => void | Promise<void>;
}

/** The running sums a {@linkcode GradientEngine.gradients} call leaves. */
export interface RunningSum {
  /** The loss: the incoming partial's, then each computed shard's, added in shard order. */
  loss: number;
  /**
   * The L2 norm of the running gradient sum now in `gradient` (block squares added in block
   * order): the global gradient norm once the sum covers every shard.
   */
  gradNorm: number;
}

/**
 * An engine whose training step is two calls, so that a step can span processes: the sum of
 * some shards' losses and gradients continuing another process's running sum (a left fold in
 * shard order, rounded to the element type at each add, as the one-process reduction), then
 * the update from the complete sum. `step()` is both, with the same bits.
 */
export interface GradientEngine extends TrainEngine {
  /** The fixed shards per batch. */
  readonly shards: number;
  /** The reduced gradient buffer (SharedArrayBuffer-backed in the pool): the running sum. */
  readonly gradient: FloatArray;
  /**
   * Sums shards [a, b)'s losses and gradients onto the incoming partial into `gradient`.
   * @param batch The whole minibatch (rows of other shards are not read).
   * @param options The step count, the shards, the partial and the pieces.
   * @returns The running loss and the norm of the running gradient.
   */
  gradients(batch: Minibatch, options: GradientsOptions): Promise<RunningSum>;
  /**
   * Clips `gradient` to `gradClip` (0 = off) by `sum.gradNorm` and applies the optimizer,
   * unless the loss or the norm is not finite (then nothing changes).
   * @param optimizer The optimizer.
   * @param gradClip The bound of the global gradient norm (0 = no clipping).
   * @param sum The complete sums: every shard's loss and the global gradient norm.
   * @returns What the step reports.
   */
  apply(optimizer: Optimizer, gradClip: number, sum: RunningSum): StepResult | Promise<StepResult>;
  /**
   * The validation loss of each of shards [a, b) (0 for an empty shard), unchanged parameters.
   * @param batch The whole minibatch.
   * @param shards The shards (default: all).
   * @returns One loss per shard of the range.
   */
  shardLosses(batch: Minibatch, shards?: Range): Float64Array | Promise<Float64Array>;
}

/**
 * How many fixed shards a batch is split into by default, by model: 1 for the recurrent models,
 * whose workers compute each shard's step together (`model/step_team.ts`), so any worker count
 * helps and the GEMMs keep the batch's rows (a batch of 25 in 4 shards ran 1.3× slower); 4 for
 * the Transformer, whose workers take whole shards (a multiple of 1, 2 and 4 workers). An MPI
 * job's processes take whole shards too, so it needs at least one per process.
 * @param kind The model's `cellType`.
 * @returns The shard count.
 *
 * @example
 * ```ts
 * import { defaultShards } from "./engine.ts";
 * console.log(defaultShards("lstm"), defaultShards("transformer")); // 1 4
 * ```
 */
export function defaultShards(kind: ModelKind): number {
  return kind === "transformer" ? 4 : 1;
}
/** How many fixed blocks the flat gradient is split into for reduction and norms. */
export const GRAD_BLOCKS = 64;

/** One piece of a running gradient sum: whole gradient blocks, and the elements they cover. */
export interface GradientPiece {
  /** The blocks, of {@linkcode GRAD_BLOCKS}. */
  blocks: Range;
  /** Their elements of the flat gradient. */
  elements: Range;
}

/**
 * The pieces a gradient of `total` elements is summed and handed over in: `pieces`
 * contiguous runs of whole blocks (the same for every engine and every process).
 * @param total The gradient's length.
 * @param pieces How many pieces (1 … {@linkcode GRAD_BLOCKS}).
 * @returns The pieces, in order.
 *
 * @example
 * ```ts
 * import { gradientPieces } from "./engine.ts";
 * const [first, second] = gradientPieces(6400, 2);
 * console.log(first.blocks, second.elements); // { start: 0, end: 32 } { start: 3200, end: 6400 }
 * ```
 */
export function gradientPieces(total: number, pieces: number): GradientPiece[] {
  const blocks = splitRange(total, GRAD_BLOCKS);
  return splitRange(GRAD_BLOCKS, pieces).map((b) => ({
    blocks: b,
    elements: { start: blocks[b.start].start, end: blocks[b.end - 1].end },
  }));
}

/**
 * Adds the losses of shards [range.start, range.end) to a running loss in shard order,
 * skipping empty shards, as every engine sums a batch's loss.
 * @param running The loss of the shards before the range (0 for none).
 * @param losses The loss of each shard of the range, in order.
 * @param n N, rows in the batch.
 * @param shards The fixed shards per batch.
 * @param range The shards the losses belong to.
 * @returns The running loss through the range.
 *
 * @example
 * ```ts
 * import { addShardLosses } from "./engine.ts";
 * // A batch of 3 rows in 4 shards: shard 3 is empty, its loss not added.
 * console.log(addShardLosses(1, new Float64Array([0.5, 0.25, 9]), 3, 4, { start: 1, end: 4 })); // 1.75
 * ```
 */
export function addShardLosses(
  running: number,
  losses: ArrayLike<number>,
  n: number,
  shards: number,
  range: Range,
): number {
  const rows = splitRange(n, shards);
  let loss = running;
  for (let s = range.start; s < range.end; s++) {
    if (rows[s].end > rows[s].start) loss += losses[s - range.start];
  }
  return loss;
}

const GRADIENTS_OPTION_RULES: Record<keyof GradientsOptions, OptionRule> = {
  step: accepts.nonNegativeInt,
  shards: accepts.object,
  partial: accepts.object,
  pieces: accepts.intIn(1, GRAD_BLOCKS),
  onPiece: accepts.function,
};

/**
 * Checks a shard range against an engine's shards.
 * @param range The range given (undefined: all shards).
 * @param shards The engine's fixed shards per batch.
 * @returns The range.
 * @throws {RangeError} When it is not a non-empty range of whole shards of the batch.
 */
export function checkShardRange(range: Range | undefined, shards: number): Range {
  if (range === undefined) return { start: 0, end: shards };
  const { start, end } = range;
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > shards || start >= end
  ) {
    throw new RangeError(
      `Invalid shards: expected a range [start, end) within the ${shards} shards of a batch, got [${start}, ${end})`,
    );
  }
  return { start, end };
}

/**
 * Checks the options of a `gradients` call.
 * @param options The options given.
 * @param shards The engine's fixed shards per batch.
 * @returns The shard range and the number of pieces.
 */
export function checkGradientsOptions(
  options: GradientsOptions,
  shards: number,
): { range: Range; pieces: number } {
  checkOptions("gradients options", options, GRADIENTS_OPTION_RULES);
  if (options.step === undefined) {
    throw new TypeError("Invalid gradients options: step: expected the optimizer's step count");
  }
  return { range: checkShardRange(options.shards, shards), pieces: options.pieces ?? 1 };
}

/**
 * Runs the fold of a `gradients` call piece by piece: waits for each incoming piece, sums its
 * blocks with `fold` (which leaves each block's sum of squares in `squares`), hands it on.
 * @param total The gradient's length.
 * @param options The call's options (`partial.piece` and `onPiece` are called here).
 * @param pieces The number of pieces.
 * @param fold Sums the given blocks (onto the partial when there is one).
 * @param squares Each block's sum of squares, (GRAD_BLOCKS,), as `fold` leaves them.
 * @returns The norm of the running sum: the squares added in block order.
 *
 * @example
 * ```ts
 * import { foldPieces, GRAD_BLOCKS } from "./engine.ts";
 * const squares = new Float64Array(GRAD_BLOCKS);
 * const norm = await foldPieces(640, { step: 0, onPiece: (e) => console.log(e) }, 2, (blocks) => {
 *   for (let k = blocks.start; k < blocks.end; k++) squares[k] = 1;
 * }, squares); // { start: 0, end: 320 } then { start: 320, end: 640 }
 * console.log(norm); // 8
 * ```
 */
export async function foldPieces(
  total: number,
  options: GradientsOptions,
  pieces: number,
  fold: (blocks: Range) => void | Promise<void>,
  squares: Float64Array,
): Promise<number> {
  for (const [k, piece] of gradientPieces(total, pieces).entries()) {
    await options.partial?.piece(piece.elements, k);
    await fold(piece.blocks);
    await options.onPiece?.(piece.elements, k);
  }
  let sq = 0;
  for (let k = 0; k < GRAD_BLOCKS; k++) sq += squares[k];
  return Math.sqrt(sq);
}

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
export class LocalEngine<D extends FloatDType> implements GradientEngine {
  /** The fixed shards per batch. */
  readonly shards: number;
  readonly #model: CaptioningModel<D>;
  readonly #shardGrads: FloatArray[];
  readonly #grad: FloatArray;
  readonly #blockSq = new Float64Array(GRAD_BLOCKS);

  /**
   * Allocates one gradient buffer per shard and the reduced gradient.
   * @param model The model whose parameters are trained.
   * @param shards The number of fixed shards per batch (default {@linkcode defaultShards}).
   */
  constructor(model: CaptioningModel<D>, shards: number = defaultShards(model.config.cellType)) {
    this.#model = model;
    this.shards = shards;
    const total = model.layout.total;
    this.#shardGrads = Array.from({ length: shards }, () => allocArray(model.dtype, total));
    // In a WebAssembly memory, like the parameters and moments: Adam then runs as SIMD.
    this.#grad = sharedWasmArray(model.dtype, total);
  }

  /** The reduced gradient of the last step (after clipping). */
  get gradient(): FloatArray {
    return this.#grad;
  }

  step(batch: Minibatch, optimizer: Optimizer, gradClip: number): StepResult {
    checkWeights(batch);
    const all = { start: 0, end: this.shards };
    const losses = this.#shardGradients(batch, optimizer.t, all, false);
    this.#fold(all, { start: 0, end: GRAD_BLOCKS }, false);
    let sq = 0;
    for (let k = 0; k < GRAD_BLOCKS; k++) sq += this.#blockSq[k];
    const n = batch.captions.shape[0];
    const loss = addShardLosses(0, losses, n, this.shards, all);
    return this.apply(optimizer, gradClip, { loss, gradNorm: Math.sqrt(sq) });
  }

  /**
   * Sums shards [a, b) onto the incoming partial, piece by piece (see
   * {@linkcode GradientEngine.gradients}); the same bits as `step()`'s sum when the pieces
   * together cover every shard.
   * @param batch The whole minibatch.
   * @param options The step count, the shards, the partial and the pieces.
   * @returns The running loss and the norm of the running gradient.
   */
  async gradients(batch: Minibatch, options: GradientsOptions): Promise<RunningSum> {
    const { range, pieces } = checkGradientsOptions(options, this.shards);
    checkWeights(batch);
    const onto = options.partial !== undefined;
    const losses = this.#shardGradients(batch, options.step, range, onto);
    const gradNorm = await foldPieces(this.#grad.length, options, pieces, (blocks) => {
      this.#fold(range, blocks, onto);
    }, this.#blockSq);
    const running = onto ? await options.partial!.loss : 0;
    return {
      loss: addShardLosses(running, losses, batch.captions.shape[0], this.shards, range),
      gradNorm,
    };
  }

  apply(optimizer: Optimizer, gradClip: number, sum: RunningSum): StepResult {
    const { loss, gradNorm } = sum;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      return { loss, gradNorm, applied: false };
    }
    const factor = clipFactor(gradNorm, gradClip);
    optimizer.beginStep();
    for (const b of splitRange(this.#grad.length, GRAD_BLOCKS)) {
      if (factor !== 1) scaleRange(this.#grad, factor, b.start, b.end);
      optimizer.update(this.#model.flat, this.#grad, b.start, b.end);
    }
    return { loss, gradNorm, applied: true };
  }

  /**
   * Loss and gradients of each shard of the range into its buffer (of a range of one shard,
   * not added onto a partial sum, straight into the gradient); returns their losses.
   */
  #shardGradients(batch: Minibatch, step: number, range: Range, onto: boolean): Float64Array {
    const n = batch.captions.shape[0], rows = splitRange(n, this.shards);
    const losses = new Float64Array(range.end - range.start);
    const direct = writesDirectly(range, onto);
    for (let s = range.start; s < range.end; s++) {
      const r = rows[s], into = direct ? this.#grad : this.#shardGrads[s];
      if (r.end === r.start) {
        into.fill(0);
        continue;
      }
      const shard = shardOf(batch, r.start, r.end);
      losses[s - range.start] = this.#model.loss(shard.features, shard.captions, {
        normalizer: n,
        gradBuffer: into as never,
        ...(shard.weights ? { weights: shard.weights } : {}),
        dropoutSeed: shardDropoutSeed(step, s, this.shards),
      }).loss;
    }
    return losses;
  }

  /**
   * Sums the shards of the range over the given blocks, onto `gradient` when `onto` (a range
   * of one shard that is not added onto anything is the gradient already: just Σ g²).
   */
  #fold(range: Range, blocks: Range, onto: boolean): void {
    const grads = this.#shardGrads.slice(range.start, range.end);
    const all = splitRange(this.#grad.length, GRAD_BLOCKS);
    if (writesDirectly(range, onto)) {
      const mine = all.slice(blocks.start, blocks.end);
      return blockSumsOfSquares(this.#grad, mine, this.#blockSq, blocks.start);
    }
    for (let k = blocks.start; k < blocks.end; k++) {
      const b = all[k];
      this.#blockSq[k] = onto
        ? reduceBlockOnto(grads, this.#grad, b.start, b.end)
        : reduceBlock(grads, this.#grad, b.start, b.end);
    }
  }

  evalLoss(batch: Minibatch): number {
    const losses = this.shardLosses(batch);
    return addShardLosses(0, losses, batch.captions.shape[0], this.shards, {
      start: 0,
      end: this.shards,
    });
  }

  shardLosses(batch: Minibatch, shards?: Range): Float64Array {
    const range = checkShardRange(shards, this.shards);
    checkWeights(batch);
    const n = batch.captions.shape[0], rows = splitRange(n, this.shards);
    const losses = new Float64Array(range.end - range.start);
    for (let s = range.start; s < range.end; s++) {
      const r = rows[s];
      if (r.end === r.start) continue;
      const shard = shardOf(batch, r.start, r.end);
      losses[s - range.start] = this.#model.lossValue(
        shard.features,
        shard.captions,
        n,
        shard.weights,
      );
    }
    return losses;
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
