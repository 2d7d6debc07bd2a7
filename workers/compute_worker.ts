/**
 * The compute worker of the pool (pool.ts): rebuilds the model over the shared parameter
 * buffer, then loops on the shared control array. Each job is one phase of a training step
 * (loss + gradients of its fixed shards; reduction of its fixed gradient blocks; the clipped
 * optimizer update of those blocks) or a sampling job over its rows of the shared features.
 *
 * Between jobs it blocks in `Atomics.wait` (bounded, re-checked). A `CMD.YIELD` job sends it
 * back to the event loop to read one `buffers` message; it replies `ack` and resumes waiting.
 * An exception is posted as `{ type: "error" }` with its stack; the worker then stops taking
 * jobs and waits to be terminated.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { adoptWasmMemory } from "../layers/kernels/wasm_arrays.ts";
import type { FloatArray, FloatDType } from "../layers/tensor.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CaptioningModel } from "../model/captioning_model.ts";
import { createCaptioningModel } from "../model/models.ts";
import { captionsPerImage } from "../model/decode_options.ts";
import { imagesPerChunk } from "../model/sampling.ts";
import {
  applyUpdate,
  OPTIM_HYPERPARAMS,
  type OptimConfig,
  type UpdateRule,
} from "../layers/optim.ts";
import { GRAD_BLOCKS } from "./engine.ts";
import {
  CMD,
  CTRL,
  PHASE_NAMES,
  readDecodeOptions,
  SC,
  type WorkerBuffers,
  type WorkerInit,
  type WorkerReply,
} from "./pool_protocol.ts";
import { ownedItems, scaleRange, shardDropoutSeed, splitRange } from "./sharding.ts";
import { blockSumsOfSquares } from "../layers/kernels/sum_squares_wasm.ts";
import { reduceBlock, reduceBlockOnto } from "./reduce.ts";
import { SharedTeam, TeamAborted } from "./team_barrier.ts";

/** How long one blocking wait lasts before the worker re-checks the control words (ms). */
const WAIT_MS = 1000;

/** The shards of the job's range [SHARD_FROM, SHARD_TO) that this worker computes. */
function ownedShards(init: WorkerInit): { start: number; end: number } {
  const from = Atomics.load(init.control, CTRL.SHARD_FROM);
  const own = ownedItems(
    Atomics.load(init.control, CTRL.SHARD_TO) - from,
    init.workers,
    init.index,
  );
  return { start: from + own.start, end: from + own.end };
}

function post(msg: WorkerReply): void {
  (globalThis as unknown as { postMessage(m: WorkerReply): void }).postMessage(msg);
}

/**
 * A compute worker's state — the init message, the model over the shared parameters, the
 * shared buffers — and its jobs. Exported so that a wrapping worker module can extend it
 * (see {@linkcode serveComputeWorker}).
 */
export class ComputeWorker {
  /** The init message: index, sizes, shared buffers. */
  readonly init: WorkerInit;
  /** The model, over the shared parameter buffer. */
  readonly model: CaptioningModel;
  /** The optimizer's update rule. */
  rule: UpdateRule = "sgd";
  /** The optimizer's moment buffers. */
  moments: FloatArray[] = [];
  /** The shared batch captions. */
  captions: Int32Array = new Int32Array(0);
  /** The shared batch (or sampling) features. */
  features: FloatArray = new Float32Array(0);
  /** The shared batch's per-caption weights (read when `CTRL.WEIGHTED` is 1). */
  weights: Float64Array = new Float64Array(0);
  /** Sampling output: captions. */
  sampleCaptions: Int32Array = new Int32Array(0);
  /** Sampling output: log-probabilities. */
  sampleLogProbs: Float64Array = new Float64Array(0);
  /** The last job generation seen. */
  seenGen: number;
  /** Set once a job failed: the worker takes no more jobs. */
  failed = false;
  /** This worker's view of the team barrier, when the model's steps run as a team. */
  readonly team: SharedTeam | null = null;

  /**
   * Selects the kernels and builds the model the init message's config names (any
   * `cellType`) over the shared parameters.
   * @param init The pool's init message.
   */
  constructor(init: WorkerInit) {
    this.init = init;
    selectKernels(init.backend);
    if (init.memories?.params) adoptWasmMemory(init.params, init.memories.params);
    if (init.memories?.grad) adoptWasmMemory(init.grad, init.memories.grad);
    this.model = createCaptioningModel({
      ...init.config,
      wordToIdx: init.wordToIdx,
      paramBuffer: init.params as never,
    });
    if (init.workspace) {
      if (!this.model.useStepTeam) {
        throw new TypeError(`A ${init.config.cellType} model's step cannot run as a team`);
      }
      this.team = new SharedTeam(init.control, init.index, init.workers, init.teamWaiting);
    }
    this.seenGen = Atomics.load(init.control, CTRL.GEN);
  }

  /**
   * Takes new shared buffers from a `buffers` message.
   * @param m The message; absent fields keep their buffers.
   */
  setBuffers(m: WorkerBuffers): void {
    if (m.rule !== undefined) this.rule = m.rule;
    if (m.moments !== undefined) this.moments = m.moments;
    m.momentMemories?.forEach((memory, i) => {
      if (memory) adoptWasmMemory(this.moments[i], memory);
    });
    if (m.captions !== undefined) this.captions = m.captions;
    if (m.features !== undefined) this.features = m.features;
    if (m.weights !== undefined) this.weights = m.weights;
    if (m.sampleCaptions !== undefined) this.sampleCaptions = m.sampleCaptions;
    if (m.sampleLogProbs !== undefined) this.sampleLogProbs = m.sampleLogProbs;
  }

  /** Runs jobs until told to yield or stop, or until a job fails. */
  loop(): void {
    const c = this.init.control;
    while (!this.failed) {
      // STOP is final, so it is checked before the generation: a worker that started after
      // the pool shut down (its init was already queued) saw the last generation at start,
      // and Deno's terminate() does not end a worker that is not running JavaScript yet.
      if (Atomics.load(c, CTRL.CMD) === CMD.STOP) {
        (globalThis as unknown as { close(): void }).close();
        return;
      }
      const gen = Atomics.load(c, CTRL.GEN);
      if (gen === this.seenGen) {
        Atomics.wait(c, CTRL.GEN, gen, WAIT_MS);
        continue;
      }
      this.seenGen = gen;
      const cmd = Atomics.load(c, CTRL.CMD);
      if (cmd === CMD.YIELD) return;
      if (cmd === CMD.STOP) continue;
      this.runJob(cmd);
    }
  }

  /**
   * Runs one job and counts it done; a job that throws is reported to the pool as an `error`
   * message (with its phase and stack), and the worker takes no more jobs.
   * @param cmd The job's command.
   */
  runJob(cmd: number): void {
    const c = this.init.control;
    try {
      this.run(cmd);
    } catch (e) {
      this.failed = true;
      // A teammate's failure, already reported by that teammate: nothing to add.
      if (e instanceof TeamAborted) return;
      const err = e instanceof Error ? e : new Error(String(e));
      post({
        type: "error",
        index: this.init.index,
        phase: PHASE_NAMES[cmd] ?? `command ${cmd}`,
        name: err.name,
        message: err.message,
        stack: err.stack ?? "",
      });
      this.team?.abort();
      return;
    }
    Atomics.store(this.init.finished, this.init.index, this.seenGen);
    if (Atomics.add(c, CTRL.DONE, 1) === this.init.workers - 1) Atomics.notify(c, CTRL.DONE);
  }

  /**
   * Runs one job: one phase of a training step, or a sampling job.
   * @param cmd The job's command.
   */
  run(cmd: number): void {
    switch (cmd) {
      case CMD.LOSS:
        return this.loss();
      case CMD.REDUCE:
        return this.reduce();
      case CMD.UPDATE:
        return this.update();
      case CMD.SAMPLE:
        return this.sample();
      default:
        throw new RangeError(`Unknown pool command ${cmd}`);
    }
  }

  /**
   * Loss and gradients of each owned shard (an empty shard gets a zero gradient); in a team,
   * of every shard of the job, each computed together with the other workers.
   */
  loss(): void {
    const { init, model } = this;
    const n = Atomics.load(init.control, CTRL.N), t1 = Atomics.load(init.control, CTRL.T1);
    const d = model.config.inputDim;
    const ranges = splitRange(n, init.shards);
    const team = this.team !== null && Atomics.load(init.control, CTRL.TEAM_JOB) === 1;
    const own = team
      ? {
        start: Atomics.load(init.control, CTRL.SHARD_FROM),
        end: Atomics.load(init.control, CTRL.SHARD_TO),
      }
      : ownedShards(init);
    const writer = !team || this.team!.index === 0;
    const training = Atomics.load(init.control, CTRL.TRAINING) === 1;
    const direct = training && Atomics.load(init.control, CTRL.DIRECT) === 1;
    if (this.team) model.useStepTeam!(team ? this.team : null, init.workspace);
    for (let s = own.start; s < own.end; s++) {
      const r = ranges[s], into = direct ? init.grad : init.shardGrads[s];
      if (r.end === r.start) {
        if (writer) {
          into.fill(0);
          init.shardLoss[s] = 0;
        }
        continue;
      }
      const rows = r.end - r.start;
      const captions = new Tensor<"int32">(this.captions.subarray(r.start * t1, r.end * t1), [
        rows,
        t1,
      ]);
      const features = new Tensor<FloatDType>(this.features.subarray(r.start * d, r.end * d), [
        rows,
        d,
      ]);
      const weights = Atomics.load(init.control, CTRL.WEIGHTED) === 1
        ? this.weights.subarray(r.start, r.end)
        : undefined;
      // A training step needs gradients (and its shard's dropout); validation (evalLoss) only
      // the loss, at ~40% of the cost.
      const loss = training
        ? model.loss(features, captions, {
          normalizer: n,
          gradBuffer: into as never,
          ...(weights ? { weights } : {}),
          dropoutSeed: shardDropoutSeed(Atomics.load(init.control, CTRL.STEP), s, init.shards),
        }).loss
        : model.lossValue(features, captions, n, weights);
      if (writer) init.shardLoss[s] = loss;
    }
  }

  /**
   * Sums the owned gradient blocks of the job's blocks over its shards in shard order (onto
   * the running sum in `grad` when the job says so), with their Σ g² — only the Σ g² when the
   * loss job wrote its one shard straight into `grad` (`CTRL.DIRECT`).
   */
  reduce(): void {
    const { init } = this, c = init.control;
    const blocks = splitRange(init.grad.length, GRAD_BLOCKS);
    const from = Atomics.load(c, CTRL.BLOCK_FROM), to = Atomics.load(c, CTRL.BLOCK_TO);
    const own = ownedItems(to - from, init.workers, init.index);
    const shards = init.shardGrads.slice(
      Atomics.load(c, CTRL.SHARD_FROM),
      Atomics.load(c, CTRL.SHARD_TO),
    );
    const onto = Atomics.load(c, CTRL.ONTO) === 1, first = from + own.start;
    if (Atomics.load(c, CTRL.DIRECT) === 1) {
      const mine = blocks.slice(first, from + own.end);
      return blockSumsOfSquares(init.grad, mine, init.blockSq, first);
    }
    for (let k = first; k < from + own.end; k++) {
      const b = blocks[k];
      init.blockSq[k] = onto
        ? reduceBlockOnto(shards, init.grad, b.start, b.end)
        : reduceBlock(shards, init.grad, b.start, b.end);
    }
  }

  /** Clips (when the factor is not 1) and updates the owned blocks of the parameters. */
  update(): void {
    const { init } = this;
    const sc = init.scalars;
    const config = Object.fromEntries(
      OPTIM_HYPERPARAMS.map((key, i) => [key, sc[SC.OPTIM + i]]),
    ) as OptimConfig;
    const t = sc[SC.T], factor = sc[SC.FACTOR];
    const blocks = splitRange(init.grad.length, GRAD_BLOCKS);
    const own = ownedItems(GRAD_BLOCKS, init.workers, init.index);
    for (let k = own.start; k < own.end; k++) {
      const b = blocks[k];
      if (factor !== 1) scaleRange(init.grad, factor, b.start, b.end);
      applyUpdate(this.rule, config, t, this.moments, init.params, init.grad, b.start, b.end);
    }
  }

  /**
   * Captions chunks of the shared features into the shared outputs until none is left. Images
   * are decoded in fixed chunks from image 0 (`imagesPerChunk`), and a worker takes the next
   * undecoded chunk from the shared counter `CTRL.NEXT_CHUNK` whenever it is free: a worker
   * that the machine slows down (another process on its core, a beam search whose beams
   * live longer) takes fewer, instead of the others waiting for its fixed share. Each chunk
   * is decoded exactly as one call over all images decodes it, and sampled captions draw from
   * the streams of their images' numbers, so the result is the same whoever decodes a chunk.
   */
  sample(): void {
    const { init, model } = this;
    const n = Atomics.load(init.control, CTRL.N), d = model.config.inputDim;
    const options = readDecodeOptions(init.scalars);
    const c = imagesPerChunk(options), m = captionsPerImage(options), l = options.maxLength;
    const chunks = Math.ceil(n / c), sampled = options.method === "sample";
    for (let k = this.takeChunk(); k < chunks; k = this.takeChunk()) {
      const start = k * c, end = Math.min(n, start + c);
      const features = new Tensor<FloatDType>(this.features.subarray(start * d, end * d), [
        end - start,
        d,
      ]);
      const out = model.sampleWithScores(features, {
        ...options,
        ...(sampled ? { firstImage: options.firstImage + start } : {}),
      });
      this.sampleCaptions.set(out.captions.data, start * m * l);
      this.sampleLogProbs.set(out.logProbs, start * m);
    }
  }

  /**
   * Takes the next chunk of the current sampling job.
   * @returns Its index (≥ the job's chunk count when none is left).
   */
  takeChunk(): number {
    return Atomics.add(this.init.control, CTRL.NEXT_CHUNK, 1);
  }
}

/**
 * Makes this worker serve the pool: the first message (`init`) builds the worker with
 * `create`, later ones (`buffers`) hand it new shared buffers; after each it runs jobs.
 * The pool's worker module calls it with the default; a module given as the pool's
 * `workerUrl` may call it with a subclass of {@linkcode ComputeWorker} (to trace jobs, or, in
 * tests, to inject faults).
 * @param create Builds the worker from the init message.
 *
 * @example A worker module that logs every job it runs (passed as `workerUrl`)
 * ```ts ignore
 * import { ComputeWorker, serveComputeWorker } from "./compute_worker.ts";
 * class TracingWorker extends ComputeWorker {
 *   override run(cmd: number): void {
 *     console.error(`worker ${this.init.index}: job ${cmd}`);
 *     super.run(cmd);
 *   }
 * }
 * serveComputeWorker((init) => new TracingWorker(init));
 * ```
 */
export function serveComputeWorker(
  create: (init: WorkerInit) => ComputeWorker = (init) => new ComputeWorker(init),
): void {
  let worker: ComputeWorker | null = null;
  globalThis.addEventListener("message", (e) => {
    const m = (e as MessageEvent<WorkerInit | WorkerBuffers>).data;
    if (m.type === "init") {
      try {
        worker = create(m);
      } catch (err) {
        const x = err instanceof Error ? err : new Error(String(err));
        post({
          type: "error",
          index: m.index,
          phase: "init",
          name: x.name,
          message: x.message,
          stack: x.stack ?? "",
        });
        return;
      }
      post({ type: "ready", index: m.index });
    } else {
      if (!worker) return;
      worker.setBuffers(m);
      post({ type: "ack", index: worker.init.index });
    }
    worker.loop();
  });
}

if (import.meta.main) serveComputeWorker();
