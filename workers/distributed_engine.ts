/**
 * Data-parallel training across the processes of an MPI job, bit for bit the same as one
 * process with the same `shards`. Each rank r of P computes a contiguous run of the batch's S
 * fixed shards (`splitRange(S, P)[r]`, so S ≥ P) on its own engine (this thread or its worker
 * pool), and the sum keeps the one-process order exactly:
 *
 * 1. chained sum: rank r receives the running sum of shards 0 … a−1 from rank r − 1, piece by
 *    piece (runs of whole gradient blocks), folds its own shards onto each piece in shard
 *    order — the left fold `((g0 + g1) + g2) + g3` of workers/reduce.ts, rounded at each add —
 *    and passes the piece on to rank r + 1 while it folds the next (the ranks overlap);
 * 2. broadcast: the last rank, which holds the sum of every shard, broadcasts it with the loss,
 *    the global norm and whether any rank asked to stop;
 * 3. update: every rank clips and applies the same update to the same parameters, so
 *    parameters and optimizer state stay identical on every rank — checked every
 *    `checkEvery` steps with a checksum of the parameters, failing loudly on a difference.
 *
 * `MPI_Allreduce` is not used: its pairing of ranks (and so its rounding) depends on the rank
 * count and the algorithm MPI picks, while this order is the one-process order for any P.
 * @module
 */
import { type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import type { Optimizer } from "../layers/optim.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { captionsPerImage, resolveDecodeOptions } from "../model/decode_options.ts";
import { imagesPerChunk, type SampleOptions, type SampleResult } from "../model/sampling.ts";
import { accepts, checkOptions, type OptionRule } from "../layers/options.ts";
import {
  addShardLosses,
  GRAD_BLOCKS,
  type GradientEngine,
  gradientPieces,
  type IncomingSum,
  type StepResult,
  type TrainEngine,
} from "./engine.ts";
import type { Communicator, MpiRequest } from "./mpi/communicator.ts";
import { type Range, splitRange } from "./sharding.ts";

/** Options of a {@linkcode DistributedEngine}. */
export interface DistributedEngineOptions {
  /** The pieces the running sum is passed on in (1 … GRAD_BLOCKS; default 8). */
  pieces?: number;
  /** Compare the ranks' parameter checksums every this many steps (0 = never; default 100). */
  checkEvery?: number;
}

const OPTION_RULES: Record<keyof DistributedEngineOptions, OptionRule> = {
  pieces: accepts.intIn(1, GRAD_BLOCKS),
  checkEvery: accepts.nonNegativeInt,
};

/** The message tags: piece k of the running sum is tagged PIECE_TAG + k. */
const PIECE_TAG = 100, SCALARS_TAG = 1, LOSS_TAG = 2;

/** The ranks' parameters differ: they no longer train one model. */
export class RankDriftError extends Error {
  /**
   * Creates the error.
   * @param message What differs, and what to check.
   */
  constructor(message: string) {
    super(message);
    this.name = "RankDriftError";
  }
}

/**
 * A checksum of a parameter buffer's bits (FNV-1a over its 32-bit words), cheap enough to
 * compute every few steps: equal on two ranks exactly when (but for a 2⁻³² chance) the bits are.
 * @param values The parameters.
 * @returns A number in [0, 2³²).
 *
 * @example
 * ```ts
 * import { bitsChecksum } from "./distributed_engine.ts";
 * const a = new Float32Array([1, 2, 3]), b = new Float32Array([1, 2, 3 + 2 ** -22]);
 * console.log(bitsChecksum(a) === bitsChecksum(a.slice()), bitsChecksum(a) === bitsChecksum(b)); // true false
 * ```
 */
export function bitsChecksum(values: FloatArray): number {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength / 4);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return h >>> 0;
}

/**
 * The fixed shards a rank computes: a contiguous run of `splitRange(shards, size)`.
 * @param shards S, the fixed shards per batch.
 * @param size P, the processes of the job.
 * @param rank This process's rank.
 * @returns The shards [start, end).
 * @throws {RangeError} When there are fewer shards than processes.
 *
 * @example
 * ```ts
 * import { rankShards } from "./distributed_engine.ts";
 * console.log(rankShards(4, 2, 1), rankShards(6, 4, 0)); // { start: 2, end: 4 } { start: 0, end: 2 }
 * ```
 */
export function rankShards(shards: number, size: number, rank: number): Range {
  if (shards < size) {
    throw new RangeError(
      `Invalid shards: ${shards} shards cannot be split over ${size} processes; set ` +
        `train.shards to at least ${size} (a multiple of it balances the ranks)`,
    );
  }
  return splitRange(shards, size)[rank];
}

/**
 * The rows of an N-row batch that a run of its fixed shards covers: all a rank reads.
 * @param n N, rows in the batch.
 * @param shards S, the fixed shards per batch.
 * @param range The shards [a, b).
 * @returns The rows [start, end).
 *
 * @example
 * ```ts
 * import { shardRows } from "./distributed_engine.ts";
 * console.log(shardRows(10, 4, { start: 2, end: 4 })); // { start: 6, end: 10 }
 * ```
 */
export function shardRows(n: number, shards: number, range: Range): Range {
  const rows = splitRange(n, shards);
  return { start: rows[range.start].start, end: rows[range.end - 1].end };
}

/**
 * Captions images over the ranks of a job (a collective: every rank calls it with the same
 * images): each rank decodes a contiguous run of whole chunks of images (`imagesPerChunk`,
 * counted from image 0, so each chunk decodes as it would in one call; sampled with its
 * `firstImage` offset), then each rank's captions are broadcast to all: the result of
 * `model.sampleWithScores(features, options)`, bit for bit, on every rank.
 * @param sampler This rank's captioner (its engine).
 * @param comm The job's communicator.
 * @param features Image features, (N, D).
 * @param options The decoding strategy and its controls.
 * @returns `{ captions, logProbs }`, m captions per image.
 *
 * @example
 * ```ts ignore
 * // Under mpiexec.mpich -n 2, on both ranks:
 * import { sampleOverRanks } from "./distributed_engine.ts";
 * const { captions } = await sampleOverRanks(engine, comm, features, { beamSize: 2 });
 * ```
 */
export async function sampleOverRanks(
  sampler: Pick<TrainEngine, "sample">,
  comm: Communicator,
  features: Tensor<FloatDType>,
  options: SampleOptions = {},
): Promise<SampleResult> {
  const opts = resolveDecodeOptions(options);
  const [n, d] = features.shape, m = captionsPerImage(opts), l = opts.maxLength;
  const perChunk = imagesPerChunk(opts), chunks = Math.ceil(n / perChunk);
  const images = splitRange(chunks, comm.size).map((c) => ({
    start: Math.min(n, c.start * perChunk),
    end: Math.min(n, c.end * perChunk),
  }));
  const captions = new Int32Array(new SharedArrayBuffer(n * m * l * 4));
  const logProbs = new Float64Array(new SharedArrayBuffer(n * m * 8));
  const mine = images[comm.rank];
  if (mine.end > mine.start) {
    const part = await sampler.sample(
      new Tensor(features.data.slice(mine.start * d, mine.end * d), [mine.end - mine.start, d]),
      opts.method === "sample" ? { ...options, firstImage: opts.firstImage + mine.start } : options,
    );
    captions.set(part.captions.data, mine.start * m * l);
    logProbs.set(part.logProbs, mine.start * m);
  }
  for (const [r, { start, end }] of images.entries()) {
    const words = new Uint8Array(captions.buffer, start * m * l * 4, (end - start) * m * l * 4);
    await comm.bcast(words, r).wait(`rank ${r}'s captions`);
    await comm.bcast(logProbs.subarray(start * m, end * m), r).wait(`rank ${r}'s captions`);
  }
  return { captions: new Tensor(captions.slice(), [n * m, l]), logProbs: logProbs.slice() };
}

/**
 * A training engine over the processes of an MPI job: see the module's documentation.
 *
 * @example
 * ```ts ignore
 * // Under mpiexec.mpich -n 2: both ranks train the same model, bit for bit one process's.
 * import { DistributedEngine } from "./distributed_engine.ts";
 * import { MpiCommunicator } from "./mpi/communicator.ts";
 * import { createEngine } from "./pool.ts";
 * const engine = new DistributedEngine(createEngine(model, { shards: 4 }), new MpiCommunicator(), model.flat);
 * ```
 */
export class DistributedEngine implements TrainEngine {
  /** The shards this rank computes. */
  readonly shards: Range;
  readonly #engine: GradientEngine;
  readonly #comm: Communicator;
  readonly #params: FloatArray;
  readonly #pieces: number;
  readonly #checkEvery: number;
  /** [loss, global norm, stop] as passed on and broadcast. */
  readonly #scalars = new Float64Array(new SharedArrayBuffer(3 * 8));
  readonly #check = new Float64Array(new SharedArrayBuffer(2 * 8));
  #steps = 0;
  #stopWanted = false;
  #onStop: (() => void) | null = null;
  /** Seconds spent waiting for other ranks and transfers, since the last `takeMpiSeconds()`. */
  #mpiSeconds = 0;

  /**
   * Wraps this process's engine; checks that there are at least as many shards as processes.
   * @param engine This process's engine (a `LocalEngine` or a `PoolEngine`).
   * @param comm The job's communicator.
   * @param params The model's parameters (`model.flat`), for the drift check.
   * @param options The pieces and the drift check's period.
   */
  constructor(
    engine: GradientEngine,
    comm: Communicator,
    params: FloatArray,
    options: DistributedEngineOptions = {},
  ) {
    checkOptions("DistributedEngine options", options, OPTION_RULES);
    this.#engine = engine;
    this.#comm = comm;
    this.#params = params;
    this.#pieces = options.pieces ?? 8;
    this.#checkEvery = options.checkEvery ?? 100;
    this.shards = rankShards(engine.shards, comm.size, comm.rank);
  }

  /**
   * Asks every rank to stop after the same step: the wish travels with the step's sums, and
   * the step that carries it calls the `onStop` of {@linkcode DistributedEngine.whenStopped}
   * on every rank.
   */
  requestStop(): void {
    this.#stopWanted = true;
  }

  /**
   * Sets what a step that ends with a rank's stop wish calls, on every rank.
   * @param onStop What stops training (the solver's `requestStop`).
   */
  whenStopped(onStop: () => void): void {
    this.#onStop = onStop;
  }

  /**
   * The seconds this rank spent waiting for transfers and other ranks since the last call.
   * @returns The seconds.
   */
  takeMpiSeconds(): number {
    const s = this.#mpiSeconds;
    this.#mpiSeconds = 0;
    return s;
  }

  async step(batch: Minibatch, optimizer: Optimizer, gradClip: number): Promise<StepResult> {
    const { rank, size } = this.#comm, comm = this.#comm;
    const grad = this.#engine.gradient as Float32Array | Float64Array;
    const scalars = this.#scalars;
    let partial: IncomingSum | undefined;
    let scalarsIn: MpiRequest | null = null;
    if (rank > 0) {
      // Posted before computing: the previous rank's pieces land in `gradient` as they come.
      // A step that throws leaves them posted into `gradient`: the job must end (the run's
      // abortJob does), not step this engine again.
      const pieces = this.#pieceRequests(grad, rank - 1);
      const incoming = scalarsIn = comm.recv(scalars, rank - 1, SCALARS_TAG);
      partial = {
        loss: this.#later(() => this.#wait(incoming, "the running loss").then(() => scalars[0])),
        piece: (_, k) => this.#wait(pieces[k], `piece ${k} of the running gradient sum`),
      };
    }
    const sends: MpiRequest[] = [];
    const last = rank === size - 1;
    const sum = await this.#engine.gradients(batch, {
      step: optimizer.t,
      shards: this.shards,
      pieces: this.#pieces,
      ...(partial ? { partial } : {}),
      ...(last ? {} : {
        onPiece: (e: Range, k: number) => {
          sends.push(comm.send(grad.subarray(e.start, e.end), rank + 1, PIECE_TAG + k));
        },
      }),
    });
    // Complete before `scalars` is reused (the engine has awaited it for the loss already).
    if (scalarsIn) await this.#wait(scalarsIn, "the running loss");
    const stop = Math.max(rank > 0 ? scalars[2] : 0, this.#stopWanted ? 1 : 0);
    scalars[0] = sum.loss;
    scalars[1] = sum.gradNorm;
    scalars[2] = stop;
    if (!last) {
      sends.push(comm.send(scalars, rank + 1, SCALARS_TAG));
      for (const s of sends) await this.#wait(s, "the next rank to take the running sum");
    }
    // The last rank holds every shard's sum: the same bits reach every rank.
    const sums = comm.bcast(scalars, size - 1), gradient = comm.bcast(grad, size - 1);
    await this.#wait(sums, "the step's loss and norm");
    await this.#wait(gradient, "the step's gradient");
    const result = await this.#engine.apply(optimizer, gradClip, {
      loss: scalars[0],
      gradNorm: scalars[1],
    });
    if (scalars[2] !== 0) this.#onStop?.();
    if (this.#checkEvery > 0 && ++this.#steps % this.#checkEvery === 0) {
      await this.checkInSync(optimizer);
    }
    return result;
  }

  /**
   * Compares the ranks' checksums of the parameters, the optimizer's moments and step count,
   * and its learning rate (a collective: every rank calls it together).
   * @param optimizer The optimizer.
   * @throws {RankDriftError} On every rank, when the checksums differ.
   */
  async checkInSync(optimizer: Optimizer): Promise<void> {
    let h = bitsChecksum(this.#params);
    for (const m of optimizer.moments) h = (h * 31 + bitsChecksum(m)) % 2 ** 32;
    h = h * 31 + bitsChecksum(new Float64Array([optimizer.t, optimizer.config.learningRate]));
    h %= 2 ** 32;
    const check = this.#check;
    check[0] = h;
    check[1] = -h;
    await this.#wait(this.#comm.max(check), "the parameter checksums");
    if (check[0] !== -check[1]) {
      throw new RankDriftError(
        `The ranks' parameters or optimizer state differ after step ${optimizer.t} ` +
          `(checksums from ${-check[1]} to ${check[0]}; rank ${this.#comm.rank}: ${h}): every ` +
          `host must run the same recap, Deno, data and BLAS library (see docs/distributed.md)`,
      );
    }
  }

  async evalLoss(batch: Minibatch): Promise<number> {
    const { rank, size } = this.#comm, comm = this.#comm, scalars = this.#scalars;
    const incoming = rank > 0 ? comm.recv(scalars.subarray(0, 1), rank - 1, LOSS_TAG) : null;
    const losses = await this.#engine.shardLosses(batch, this.shards);
    if (incoming) await this.#wait(incoming, "the running validation loss");
    const running = rank > 0 ? scalars[0] : 0;
    scalars[0] = addShardLosses(
      running,
      losses,
      batch.captions.shape[0],
      this.#engine.shards,
      this.shards,
    );
    if (rank < size - 1) {
      await this.#wait(comm.send(scalars.subarray(0, 1), rank + 1, LOSS_TAG), "the next rank");
    }
    await this.#wait(comm.bcast(scalars.subarray(0, 1), size - 1), "the validation loss");
    return scalars[0];
  }

  /**
   * Captions images over the ranks (a collective: see {@linkcode sampleOverRanks}).
   * @param features Image features, (N, D).
   * @param options The decoding strategy and its controls.
   * @returns `{ captions, logProbs }`, m captions per image, on every rank.
   */
  sample(features: Tensor<FloatDType>, options: SampleOptions = {}): Promise<SampleResult> {
    return sampleOverRanks(this.#engine, this.#comm, features, options);
  }

  close(): void | Promise<void> {
    return this.#engine.close();
  }

  /** The receives of the previous rank's pieces, into `grad`. */
  #pieceRequests(grad: Float32Array | Float64Array, source: number): MpiRequest[] {
    return gradientPieces(grad.length, this.#pieces).map(({ elements: e }, k) =>
      this.#comm.recv(grad.subarray(e.start, e.end), source, PIECE_TAG + k)
    );
  }

  /** A promise-like that starts `run` only when awaited (no unhandled rejection before). */
  #later(run: () => Promise<number>): PromiseLike<number> {
    return { then: (resolve, reject) => run().then(resolve, reject) };
  }

  async #wait(request: MpiRequest, what: string): Promise<void> {
    const t0 = performance.now();
    try {
      await request.wait(what);
    } finally {
      this.#mpiSeconds += (performance.now() - t0) / 1000;
    }
  }
}
