/**
 * The worker pool: data-parallel training steps across module Web Workers that share the
 * model's parameters, the shard gradients, the reduced gradient, the optimizer moments and the
 * batch through SharedArrayBuffers. Buffers are handed over once; per step the main thread
 * copies the minibatch into the shared batch buffer and coordinates the three phases with
 * Atomics only (it waits with `Atomics.waitAsync`, so it stays responsive to worker errors):
 *
 * 1. loss: each worker computes loss + gradients of its fixed shards into the shard buffers;
 * 2. reduce: each worker sums its fixed gradient blocks over the shards in shard order, with
 *    each block's Σ g²; the main thread adds those in block order (the norm), checks that loss
 *    and norm are finite and computes the clip factor;
 * 3. update: each worker clips and applies the optimizer to its blocks.
 *
 * Shards, blocks and the order of every sum are the same as {@linkcode LocalEngine}'s, so the
 * results are bitwise the same for any number of workers.
 *
 * A step that spans processes splits in two (`GradientEngine`): `gradients()` runs the loss
 * job on a range of the shards, then a reduce job for each piece of the gradient, adding the
 * shards onto the running sum another process handed over into `gradient`; `apply()` runs
 * the update.
 * @module
 */
import { backendNames, kernels, selectKernels } from "../layers/kernels/mod.ts";
import { sharedWorkspaceMemory } from "../layers/kernels/elementwise_wasm.ts";
import { sharedWasmArray, wasmMemoryOf } from "../layers/kernels/wasm_arrays.ts";
import { accepts, checkOptions, type OptionRule } from "../layers/options.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { allocArray, type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import type { CaptioningModel } from "../model/captioning_model.ts";
import { captionsPerImage } from "../model/decode_options.ts";
import { checkSampleArgs, type SampleOptions, type SampleResult } from "../model/sampling.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { OPTIM_HYPERPARAMS, type Optimizer, type UpdateRule } from "../layers/optim.ts";
import {
  addShardLosses,
  checkGradientsOptions,
  checkShardRange,
  checkWeights,
  defaultShards,
  foldPieces,
  GRAD_BLOCKS,
  type GradientEngine,
  type GradientsOptions,
  LocalEngine,
  type RunningSum,
  type StepResult,
} from "./engine.ts";
import {
  CMD,
  CTRL,
  PHASE_NAMES,
  SC,
  type WorkerBuffers,
  type WorkerInit,
  type WorkerReply,
  writeDecodeOptions,
} from "./pool_protocol.ts";
import { clipFactor, type Range, writesDirectly } from "./sharding.ts";

/** How long one `Atomics.waitAsync` lasts before the main thread re-checks (ms). */
const WAIT_MS = 1000;
/** How long workers may take to load their modules and kernels (ms). */
const START_TIMEOUT_MS = 120_000;
/** How long workers may take to acknowledge new buffers (ms). */
const ACK_TIMEOUT_MS = 30_000;

/** Options of {@linkcode PoolEngine}. */
export interface PoolOptions {
  /** The number of compute workers (default `navigator.hardwareConcurrency`). */
  workers?: number;
  /** The kernel backend of the workers (default: the one this thread uses now). */
  backend?: BackendName;
  /** The fixed shards per batch (default {@linkcode defaultShards}; independent of workers). */
  shards?: number;
  /**
   * The longest a worker may take over one job — a phase of a training step, or a captioning
   * call — in seconds, before the pool decides it is stuck, stops, and reports it (default
   * 900; generous: a job normally takes milliseconds to seconds).
   */
  workerTimeout?: number;
  /**
   * How the workers share a step: "steps" — every shard's step is computed by all the workers
   * together, as a team (`model/step_team.ts`), so more workers than shards still help — or
   * "shards" — each worker computes whole shards of its own, with no barrier inside a step; or
   * "auto" (the default): "shards" when the shards divide evenly among the workers (each then
   * gets the same number), else "steps". All give the same bits; models whose step cannot run
   * as a team (the Transformer) always use "shards".
   */
  split?: "auto" | "steps" | "shards";
  /**
   * The compute worker module (default: `compute_worker.ts` beside this module). A module
   * that wraps it — to trace jobs or, in tests, to inject faults — calls its
   * `serveComputeWorker()` with a subclass of `ComputeWorker`.
   */
  workerUrl?: string | URL;
}

/**
 * A {@linkcode TrainEngine} that runs each step on a pool of compute workers sharing the
 * model's parameters through SharedArrayBuffers. Results are bitwise identical to
 * {@linkcode LocalEngine} with the same shard count, for any number of workers.
 *
 * The workers start in the constructor; the first call waits for them. If a worker throws,
 * the call rejects with the worker's message and stack, and the pool shuts down (all workers
 * terminated). A failure in the loss or reduce phase leaves the parameters and the optimizer
 * untouched; one in the update phase may leave a partial update.
 *
 * @example Train one step on two workers
 * ```ts
 * import { PoolEngine } from "./pool.ts";
 * import { CaptioningRNN } from "../model/captioning_rnn.ts";
 * import { Optimizer } from "../layers/optim.ts";
 * import { Tensor } from "../layers/tensor.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 4, wordvecDim: 3, hiddenDim: 5 });
 * const pool = new PoolEngine(model, { workers: 2 });
 * const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
 * const batch = {
 *   captions: Tensor.fromValues([1, 3, 2, 0, 1, 3, 3, 2], [2, 4], "int32"),
 *   features: Tensor.randn([2, 4], 0, "float32"),
 *   imageIdxs: new Int32Array([0, 1]),
 * };
 * const { loss } = await pool.step(batch, opt, 0);
 * console.log(loss > 0); // true
 * await pool.close();
 * ```
 */
export class PoolEngine<D extends FloatDType = FloatDType> implements GradientEngine {
  /** The number of compute workers. */
  readonly workers: number;
  /** The fixed shards per batch. */
  readonly shards: number;
  /**
   * How the workers share a step of the whole batch ({@linkcode PoolOptions.split}), as
   * decided for this model; a job over fewer shards (an MPI rank's) decides for its own.
   */
  readonly split: "steps" | "shards";
  /** The kernel backend the workers use. */
  readonly backend: BackendName;
  readonly #model: CaptioningModel<D>;
  readonly #workers: Worker[] = [];
  readonly #control: Int32Array;
  readonly #shardGrads: FloatArray[];
  readonly #grad: FloatArray;
  readonly #shardLoss: Float64Array;
  readonly #blockSq: Float64Array;
  readonly #finished: Int32Array;
  readonly #teamWaiting: Int32Array;
  readonly #splitOption: "auto" | "steps" | "shards";
  readonly #canTeam: boolean;
  readonly #timeoutMs: number;
  readonly #scalars: Float64Array;
  readonly #ready: Promise<void>;
  #captions: Int32Array = new Int32Array(0);
  #features: FloatArray = new Float32Array(0);
  #weights: Float64Array = new Float64Array(0);
  #sampleCaptions: Int32Array = new Int32Array(0);
  #sampleLogProbs: Float64Array = new Float64Array(0);
  #rule: UpdateRule | null = null;
  #moments: FloatArray[] | null = null;
  #timings = { load: 0, loss: 0, reduce: 0, update: 0 };
  #busy = false;
  #closed = false;
  #failure: Error | null = null;
  #replies = 0;
  #wake: () => void = () => {};
  #stopped!: Promise<void>;
  #stop!: () => void;

  /**
   * Starts the workers and hands them the shared buffers.
   * @param model The model; its `flat` parameters must be SharedArrayBuffer-backed (they are
   * unless the model was built over a non-shared `paramBuffer`).
   * @param options See {@linkcode PoolOptions}.
   */
  constructor(model: CaptioningModel<D>, options: PoolOptions = {}) {
    checkOptions("PoolEngine options", options, ENGINE_OPTION_RULES);
    const workers = options.workers ?? navigator.hardwareConcurrency;
    const shards = options.shards ?? defaultShards(model.config.cellType);
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`Invalid workers: expected a positive integer, got ${workers}`);
    }
    if (!Number.isInteger(shards) || shards < 1) {
      throw new RangeError(`Invalid shards: expected a positive integer, got ${shards}`);
    }
    if (!(model.flat.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(
        "Cannot share parameters: model.flat is not SharedArrayBuffer-backed; build the model without a paramBuffer or over a shared one",
      );
    }
    this.workers = workers;
    this.shards = shards;
    this.split = stepSplit(model.useStepTeam !== undefined, workers, shards, options.split);
    // A job's split follows its own shards (an MPI rank's pool computes only the rank's), so
    // any pool that could team up gets the shared memory.
    this.#splitOption = options.split ?? "auto";
    this.#canTeam = stepSplit(model.useStepTeam !== undefined, workers, 1, this.#splitOption) ===
        "steps" || this.split === "steps";
    const workspace = this.#canTeam ? sharedWorkspaceMemory() : undefined;
    this.backend = options.backend ?? kernels().name;
    this.#model = model;
    const total = model.layout.total, dtype = model.dtype;
    this.#control = allocArray("int32", CTRL.WORDS, true);
    this.#shardGrads = Array.from({ length: shards }, () => allocArray(dtype, total, true));
    this.#grad = sharedWasmArray(dtype, total);
    this.#shardLoss = allocArray("float64", shards, true);
    this.#blockSq = allocArray("float64", GRAD_BLOCKS, true);
    this.#finished = allocArray("int32", workers, true);
    this.#teamWaiting = allocArray("int32", workers, true);
    this.#timeoutMs = (options.workerTimeout ?? DEFAULT_WORKER_TIMEOUT_S) * 1000;
    this.#scalars = allocArray("float64", SC.WORDS, true);
    this.#stopped = new Promise<void>((resolve) => (this.#stop = resolve));
    const workerUrl = options.workerUrl ?? new URL("./compute_worker.ts", import.meta.url);
    try {
      for (let i = 0; i < workers; i++) {
        const w = new Worker(workerUrl, { type: "module" });
        w.onmessage = (e: MessageEvent<WorkerReply>) => this.#onReply(e.data);
        w.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          const where = e.filename ? ` (${e.filename}:${e.lineno}:${e.colno})` : "";
          this.#fail(new WorkerFailure(`Compute worker ${i} failed: ${e.message}${where}`, i, "?"));
        };
        w.onmessageerror = () => {
          this.#fail(new Error(`Compute worker ${i} failed: a message could not be deserialized`));
        };
        this.#workers.push(w);
      }
      this.#workers.forEach((w, index) => {
        const init: WorkerInit = {
          type: "init",
          index,
          workers,
          shards,
          backend: this.backend,
          config: model.config,
          wordToIdx: model.wordToIdx,
          params: model.flat,
          shardGrads: this.#shardGrads,
          grad: this.#grad,
          control: this.#control,
          shardLoss: this.#shardLoss,
          blockSq: this.#blockSq,
          finished: this.#finished,
          teamWaiting: this.#teamWaiting,
          scalars: this.#scalars,
          ...(workspace ? { workspace } : {}),
          memories: { params: wasmMemoryOf(model.flat), grad: wasmMemoryOf(this.#grad) },
        };
        w.postMessage(init);
      });
    } catch (e) {
      // E.g. no permission to load the worker module, or a buffer that cannot be posted.
      for (const w of this.#workers) w.terminate();
      throw new Error(`Cannot start the compute workers: ${(e as Error)?.message ?? e}`, {
        cause: e,
      });
    }
    this.#ready = this.#waitReplies(workers, START_TIMEOUT_MS, "start");
    // A failed start is reported by the first call; don't let it go unhandled meanwhile.
    this.#ready.catch(() => {});
  }

  /** The reduced gradient of the last step (after clipping), shared with the workers. */
  get gradient(): FloatArray {
    return this.#grad;
  }

  /**
   * Where the last training step's time went, in milliseconds (wall clock, main thread):
   * `load` (checking and copying the batch), `loss` (forward + backward of every shard),
   * `reduce` (shard sums and the blocks' sums of squares), `update` (clipping and the
   * optimizer; 0 when the step was not applied).
   */
  get timings(): { load: number; loss: number; reduce: number; update: number } {
    return { ...this.#timings };
  }

  /** Resolves once every worker has loaded the model and its kernels (rejects if one failed). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * One training step on the workers: loss and gradients of the batch, reduced, clipped to
   * `gradClip` (0 = off) and applied — unless the loss or gradient norm is not finite.
   * @param batch The minibatch.
   * @param optimizer The optimizer; its moments must be SharedArrayBuffer-backed.
   * @param gradClip The bound of the global gradient norm (0 = no clipping).
   * @returns The loss, the norm before clipping, and whether the update was applied.
   */
  step(batch: Minibatch, optimizer: Optimizer, gradClip: number): Promise<StepResult> {
    return this.#exclusive(async () => {
      this.#bindOptimizer(optimizer);
      const all = { start: 0, end: this.shards };
      const sum = await this.#gradients(batch, { step: optimizer.t }, all, 1);
      return await this.#apply(optimizer, gradClip, sum);
    });
  }

  /**
   * Sums shards [a, b) onto the incoming partial on the workers, piece by piece (see
   * {@linkcode GradientEngine.gradients}): a loss job for the shards, then a reduce job per
   * piece; the same bits as `step()`'s sum when the pieces together cover every shard.
   * @param batch The whole minibatch.
   * @param options The step count, the shards, the partial and the pieces.
   * @returns The running loss and the norm of the running gradient.
   */
  async gradients(batch: Minibatch, options: GradientsOptions): Promise<RunningSum> {
    const { range, pieces } = checkGradientsOptions(options, this.shards);
    return await this.#exclusive(() => this.#gradients(batch, options, range, pieces));
  }

  /**
   * Clips the reduced gradient by `sum.gradNorm` and applies the optimizer on the workers
   * (see {@linkcode GradientEngine.apply}).
   * @param optimizer The optimizer; its moments must be SharedArrayBuffer-backed.
   * @param gradClip The bound of the global gradient norm (0 = no clipping).
   * @param sum The complete sums: every shard's loss and the global gradient norm.
   * @returns The loss, the norm before clipping, and whether the update was applied.
   */
  apply(optimizer: Optimizer, gradClip: number, sum: RunningSum): Promise<StepResult> {
    return this.#exclusive(() => this.#apply(optimizer, gradClip, sum));
  }

  async #gradients(
    batch: Minibatch,
    options: GradientsOptions,
    range: Range,
    pieces: number,
  ): Promise<RunningSum> {
    const tm = this.#timings;
    tm.loss = tm.reduce = tm.update = 0;
    let t0 = performance.now();
    await this.#loadBatch(batch);
    const c = this.#control, n = batch.captions.shape[0];
    Atomics.store(c, CTRL.TRAINING, 1);
    Atomics.store(c, CTRL.STEP, options.step);
    this.#setShards(range);
    const onto = options.partial !== undefined;
    Atomics.store(c, CTRL.ONTO, onto ? 1 : 0);
    Atomics.store(c, CTRL.DIRECT, writesDirectly(range, onto) ? 1 : 0);
    const t1 = performance.now();
    tm.load = t1 - t0;
    await this.#job(CMD.LOSS);
    tm.loss = performance.now() - t1;
    const gradNorm = await foldPieces(this.#grad.length, options, pieces, async (blocks) => {
      Atomics.store(c, CTRL.BLOCK_FROM, blocks.start);
      Atomics.store(c, CTRL.BLOCK_TO, blocks.end);
      t0 = performance.now();
      await this.#job(CMD.REDUCE);
      tm.reduce += performance.now() - t0;
    }, this.#blockSq);
    const running = onto ? await options.partial!.loss : 0;
    const losses = this.#shardLoss.subarray(range.start, range.end);
    return { loss: addShardLosses(running, losses, n, this.shards, range), gradNorm };
  }

  async #apply(optimizer: Optimizer, gradClip: number, sum: RunningSum): Promise<StepResult> {
    const { loss, gradNorm } = sum;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      return { loss, gradNorm, applied: false };
    }
    this.#bindOptimizer(optimizer);
    await this.#sendBuffers({ type: "buffers" });
    const t0 = performance.now();
    const factor = clipFactor(gradNorm, gradClip);
    optimizer.beginStep();
    const sc = this.#scalars;
    sc[SC.T] = optimizer.t;
    sc[SC.FACTOR] = factor;
    OPTIM_HYPERPARAMS.forEach((key, i) => sc[SC.OPTIM + i] = optimizer.config[key]);
    await this.#job(CMD.UPDATE);
    this.#timings.update = performance.now() - t0;
    return { loss, gradNorm, applied: true };
  }

  /**
   * The loss of a batch on the workers, changing no parameters (for validation).
   * @param batch The minibatch.
   * @returns The loss, bitwise equal to {@linkcode LocalEngine.evalLoss}'s.
   */
  evalLoss(batch: Minibatch): Promise<number> {
    return this.#exclusive(async () => {
      const all = { start: 0, end: this.shards };
      const losses = await this.#shardLosses(batch, all);
      return addShardLosses(0, losses, batch.captions.shape[0], this.shards, all);
    });
  }

  /**
   * The validation loss of each of shards [a, b) on the workers (0 for an empty shard).
   * @param batch The whole minibatch.
   * @param shards The shards (default: all).
   * @returns One loss per shard of the range, bitwise equal to LocalEngine's.
   */
  async shardLosses(batch: Minibatch, shards?: Range): Promise<Float64Array> {
    const range = checkShardRange(shards, this.shards);
    return await this.#exclusive(() => this.#shardLosses(batch, range));
  }

  async #shardLosses(batch: Minibatch, range: Range): Promise<Float64Array> {
    await this.#loadBatch(batch);
    Atomics.store(this.#control, CTRL.TRAINING, 0);
    this.#setShards(range);
    await this.#job(CMD.LOSS);
    return this.#shardLoss.slice(range.start, range.end);
  }

  /** The shards of the next loss or reduce jobs, and whether the workers team up on them. */
  #setShards(range: Range): void {
    Atomics.store(this.#control, CTRL.SHARD_FROM, range.start);
    Atomics.store(this.#control, CTRL.SHARD_TO, range.end);
    const team = this.#canTeam &&
      stepSplit(true, this.workers, range.end - range.start, this.#splitOption) === "steps";
    Atomics.store(this.#control, CTRL.TEAM_JOB, team ? 1 : 0);
  }

  /**
   * Captions images on the workers: each free worker takes the next whole chunk of images
   * (`SAMPLE_CHUNK`), so a slowed worker decodes fewer; the same result as
   * `model.sampleWithScores(features, options)`, bit for bit.
   * @param features Image features, (N, D).
   * @param options The decoding strategy and its controls (see `SampleOptions`).
   * @returns `{ captions, logProbs }`, m captions per image.
   */
  sample(features: Tensor<FloatDType>, options: SampleOptions = {}): Promise<SampleResult> {
    return this.#exclusive(async () => {
      const opts = checkSampleArgs(this.#model, features, options);
      const n = features.shape[0], rows = n * captionsPerImage(opts), l = opts.maxLength;
      const msg: WorkerBuffers = { type: "buffers" };
      this.#ensureFeatures(n, msg);
      if (this.#sampleCaptions.length < rows * l) {
        msg.sampleCaptions = this.#sampleCaptions = allocArray("int32", rows * l, true);
      }
      if (this.#sampleLogProbs.length < rows) {
        msg.sampleLogProbs = this.#sampleLogProbs = allocArray("float64", rows, true);
      }
      await this.#sendBuffers(msg);
      this.#features.set(features.data);
      const c = this.#control;
      Atomics.store(c, CTRL.N, n);
      writeDecodeOptions(this.#scalars, opts);
      Atomics.store(c, CTRL.TRAINING, 0);
      Atomics.store(c, CTRL.NEXT_CHUNK, 0);
      await this.#job(CMD.SAMPLE);
      return {
        captions: new Tensor(this.#sampleCaptions.slice(0, rows * l), [rows, l]),
        logProbs: this.#sampleLogProbs.slice(0, rows),
      };
    });
  }

  /**
   * Stops and terminates the workers (idempotent). The shared buffers stay valid.
   * @returns Resolves once the workers are terminated.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (!this.#failure) this.#shutdown();
    }
    return Promise.resolve();
  }

  /** Runs one call at a time, after the workers are ready, failing fast once shut down. */
  async #exclusive<T>(body: () => Promise<T>): Promise<T> {
    if (this.#busy) {
      throw new Error(
        "Cannot start a pool call: the previous one has not finished; await it first",
      );
    }
    this.#busy = true;
    try {
      this.#checkOpen();
      await this.#ready;
      this.#checkOpen();
      return await body();
    } finally {
      this.#busy = false;
    }
  }

  /** During a call: throws the failure itself (or a closed error) once the pool has stopped. */
  #checkRunning(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error("Cannot finish the pool call: the pool was closed meanwhile");
  }

  #checkOpen(): void {
    if (this.#failure) {
      throw new Error(
        `Cannot use the worker pool: it shut down after a failure: ${this.#failure.message}`,
        {
          cause: this.#failure,
        },
      );
    }
    if (this.#closed) throw new Error("Cannot use the worker pool: it is closed");
  }

  /** Hands the optimizer's rule and moment buffers to the workers when they change. */
  #bindOptimizer(optimizer: Optimizer): void {
    const same = this.#rule === optimizer.rule && this.#moments !== null &&
      this.#moments.length === optimizer.moments.length &&
      this.#moments.every((m, i) => m === optimizer.moments[i]);
    if (same) return;
    for (const m of optimizer.moments) {
      if (!(m.buffer instanceof SharedArrayBuffer) || m.length !== this.#grad.length) {
        throw new TypeError(
          "Cannot share optimizer state: its moments must be SharedArrayBuffer-backed arrays of the parameter layout (use the Optimizer class)",
        );
      }
    }
    this.#pending.rule = optimizer.rule;
    this.#pending.moments = optimizer.moments;
    this.#pending.momentMemories = optimizer.moments.map((m) => wasmMemoryOf(m));
    this.#rule = optimizer.rule;
    this.#moments = [...optimizer.moments];
  }

  /** Buffer changes not yet sent to the workers. */
  #pending: WorkerBuffers = { type: "buffers" };

  /** Validates a minibatch and copies it into the shared batch buffer (growing it if needed). */
  async #loadBatch(batch: Minibatch): Promise<void> {
    const { captions, features } = batch;
    const d = this.#model.config.inputDim;
    if (captions.dtype !== "int32" || captions.shape.length !== 2 || captions.shape[1] < 2) {
      throw new RangeError(
        `Invalid captions: expected int32 (N, T+1) with T >= 1, got ${captions.dtype} [${captions.shape}]`,
      );
    }
    const [n, t1] = captions.shape;
    if (features.shape.length !== 2 || features.shape[0] !== n || features.shape[1] !== d) {
      throw new RangeError(`Invalid features: expected [${n}, ${d}], got [${features.shape}]`);
    }
    checkWeights(batch);
    const msg = this.#pending;
    if (this.#captions.length < n * t1) {
      msg.captions = this.#captions = allocArray("int32", n * t1, true);
    }
    if (batch.weights && this.#weights.length < n) {
      msg.weights = this.#weights = allocArray("float64", n, true);
    }
    this.#ensureFeatures(n, msg);
    await this.#sendBuffers(msg);
    this.#captions.set(captions.data);
    this.#features.set(features.data);
    if (batch.weights) this.#weights.set(batch.weights);
    Atomics.store(this.#control, CTRL.N, n);
    Atomics.store(this.#control, CTRL.T1, t1);
    Atomics.store(this.#control, CTRL.WEIGHTED, batch.weights ? 1 : 0);
  }

  #ensureFeatures(n: number, msg: WorkerBuffers): void {
    const need = n * this.#model.config.inputDim;
    if (this.#features.length < need) {
      msg.features = this.#features = allocArray(this.#model.dtype, need, true);
    }
  }

  /** Sends buffer changes (if any) to every worker and waits for all to acknowledge. */
  async #sendBuffers(msg: WorkerBuffers): Promise<void> {
    const pending = { ...this.#pending, ...msg };
    this.#pending = { type: "buffers" };
    if (Object.keys(pending).length === 1) return;
    this.#replies = 0;
    for (const w of this.#workers) w.postMessage(pending);
    this.#signal(CMD.YIELD);
    await this.#waitReplies(this.workers, ACK_TIMEOUT_MS, "take new buffers");
  }

  /** Starts a job on every worker. */
  #signal(cmd: number): void {
    const c = this.#control;
    Atomics.store(c, CTRL.DONE, 0);
    Atomics.store(c, CTRL.CMD, cmd);
    Atomics.add(c, CTRL.GEN, 1);
    Atomics.notify(c, CTRL.GEN);
  }

  /** Runs a job on every worker and waits until all are done (or one fails). */
  async #job(cmd: number): Promise<void> {
    this.#signal(cmd);
    const c = this.#control, gen = Atomics.load(c, CTRL.GEN);
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      this.#checkRunning();
      const done = Atomics.load(c, CTRL.DONE);
      if (done >= this.workers) return;
      if (performance.now() > deadline) this.#stuck(cmd, gen);
      const r = Atomics.waitAsync(c, CTRL.DONE, done, WAIT_MS);
      // Not raced against #stopped: every race would add a reaction to that never-settling
      // promise (a leak of ~0.7 kB per step); shutdown notifies CTRL.DONE and the wait is bounded.
      if (r.async) await r.value;
    }
  }

  /** The watchdog: names the workers that have not finished job `gen`, stops the pool, throws. */
  #stuck(cmd: number, gen: number): never {
    const late = Array.from(this.#finished.keys()).filter((i) =>
      Atomics.load(this.#finished, i) !== gen
    );
    // Workers waiting at a team step's barrier wait for the others: those are the stuck ones.
    const waiting = late.filter((i) => Atomics.load(this.#teamWaiting, i) === 1);
    const stuck = waiting.length < late.length ? late.filter((i) => !waiting.includes(i)) : late;
    const waiters = waiting.length < late.length && waiting.length > 0
      ? ` (worker${waiting.length > 1 ? "s" : ""} ${waiting.join(", ")} ${
        waiting.length > 1 ? "wait" : "waits"
      } for it at the team step's barrier)`
      : "";
    const phase = PHASE_NAMES[cmd] ?? `command ${cmd}`;
    const err = new WorkerFailure(
      `Compute worker${stuck.length > 1 ? "s" : ""} ${stuck.join(", ")} did not finish the ` +
        `${phase} phase within ${this.#timeoutMs / 1000} s and ${
          stuck.length > 1 ? "seem" : "seems"
        } stuck${waiters}; the pool was stopped (raise train.workerTimeout if a job really takes this long)`,
      stuck[0] ?? -1,
      phase,
    );
    this.#fail(err);
    throw err;
  }

  #onReply(m: WorkerReply): void {
    if (m.type === "error") {
      const cause = new Error(m.message);
      cause.name = m.name;
      cause.stack = m.stack;
      const err = new WorkerFailure(
        `Compute worker ${m.index} failed in the ${m.phase} phase: ${m.name}: ${m.message}`,
        m.index,
        m.phase,
        { cause },
      );
      err.stack = `${err.stack}\nWorker ${m.index} stack:\n${m.stack}`;
      this.#fail(err);
      return;
    }
    this.#replies++;
    this.#wake();
  }

  /** Waits until `count` replies arrived since the last reset, the pool stops, or a timeout. */
  async #waitReplies(count: number, ms: number, what: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, ms);
    });
    try {
      while (this.#replies < count) {
        this.#checkRunning();
        if (timedOut) {
          const err = new Error(
            `Compute workers did not ${what} within ${
              ms / 1000
            } s (${this.#replies} of ${count} replied)`,
          );
          this.#fail(err);
          throw err;
        }
        await Promise.race([
          new Promise<void>((resolve) => (this.#wake = resolve)),
          this.#stopped,
          timeout,
        ]);
      }
    } finally {
      clearTimeout(timer);
      this.#wake = () => {};
    }
  }

  /** Records the first failure and shuts the pool down. */
  #fail(err: Error): void {
    if (this.#failure || this.#closed) return;
    this.#failure = err;
    this.#shutdown();
  }

  /** Terminates every worker and wakes every wait of the main thread. */
  #shutdown(): void {
    const c = this.#control;
    // A worker waiting at a team step's barrier for a teammate that is gone leaves it.
    Atomics.store(c, CTRL.TEAM_ABORT, 1);
    Atomics.notify(c, CTRL.TEAM_GEN);
    Atomics.store(c, CTRL.CMD, CMD.STOP);
    Atomics.add(c, CTRL.GEN, 1);
    Atomics.notify(c, CTRL.GEN);
    for (const w of this.#workers) w.terminate();
    Atomics.notify(c, CTRL.DONE);
    this.#stop();
    this.#wake();
  }
}

/**
 * How a pool's workers share a step ({@linkcode PoolOptions.split}): "steps" (as a team) when
 * the model's step can run as one, there is more than one worker, and `split` asks for it —
 * "steps", or "auto" with shards that do not divide evenly among the workers; else "shards".
 * @param canTeam Whether the model's step can run as a team (`model.useStepTeam` exists).
 * @param workers The workers.
 * @param shards The fixed shards per batch.
 * @param split The option (default "auto").
 * @returns The split the pool uses.
 *
 * @example
 * ```ts
 * import { stepSplit } from "./pool.ts";
 * console.log(stepSplit(true, 2, 1), stepSplit(true, 2, 4), stepSplit(false, 2, 1)); // steps shards shards
 * ```
 */
export function stepSplit(
  canTeam: boolean,
  workers: number,
  shards: number,
  split: "auto" | "steps" | "shards" = "auto",
): "steps" | "shards" {
  const teams = split === "steps" || (split === "auto" && shards % workers !== 0);
  return canTeam && workers > 1 && teams ? "steps" : "shards";
}

/** What each option of {@linkcode createEngine} accepts. */
const ENGINE_OPTION_RULES: Record<keyof EngineOptions, OptionRule> = {
  workers: accepts.positiveIntOrAuto,
  backend: accepts.oneOf(backendNames()),
  shards: accepts.positiveInt,
  workerTimeout: accepts.positiveNumber,
  split: accepts.oneOf(["auto", "steps", "shards"]),
  workerUrl: {
    expected: "a string or URL",
    type: "any",
    test: (v) => typeof v === "string" || v instanceof URL,
  },
};

/**
 * A compute worker failed (threw, crashed, or got stuck), with the phase it was in: a failure
 * in the `loss` or `reduce` phase left the parameters and the optimizer untouched.
 */
export class WorkerFailure extends Error {
  /**
   * @param message What happened.
   * @param worker The worker (-1 when unknown).
   * @param phase "loss", "reduce", "update", "sample", "init", … .
   * @param options The cause.
   */
  constructor(
    message: string,
    readonly worker: number,
    readonly phase: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "WorkerFailure";
  }
}

/** How long a worker may take over one job before the pool reports it stuck (seconds). */
export const DEFAULT_WORKER_TIMEOUT_S = 900;

/** Options of {@linkcode createEngine}. */
export interface EngineOptions extends Omit<PoolOptions, "workers"> {
  /**
   * Compute workers: 1 for the single-thread engine (the default), "auto" for one per core
   * (at most `shards` when the workers take whole shards: the Transformer, or split "shards").
   */
  workers?: number | "auto";
}

/**
 * The training engine for a worker count: {@linkcode LocalEngine} (this thread) for 1 worker,
 * a {@linkcode PoolEngine} otherwise. Both give bitwise the same results for the same `shards`.
 * @param model The model to train.
 * @param options `workers` (default 1; "auto" = `navigator.hardwareConcurrency`), `backend`
 * (selected on this thread too, so both engines use it), `shards`, and `split`, `workerTimeout`
 * and `workerUrl` (pool only).
 * @returns The engine; pass it as `engine` to `CaptioningSolver`, and close it when done
 * (`solver.close()` does).
 *
 * @example
 * ```ts
 * import { createEngine } from "./pool.ts";
 * import { CaptioningRNN } from "../model/captioning_rnn.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const engine = createEngine(model, { workers: 2 });
 * await engine.close();
 * ```
 */
export function createEngine<D extends FloatDType>(
  model: CaptioningModel<D>,
  options: EngineOptions = {},
): LocalEngine<D> | PoolEngine<D> {
  checkOptions("createEngine options", options, ENGINE_OPTION_RULES);
  const shards = options.shards ?? defaultShards(model.config.cellType);
  // "auto": one worker per core; when the workers can only take whole shards, no more than there
  // are.
  const teams = model.useStepTeam !== undefined && options.split !== "shards";
  const cores = navigator.hardwareConcurrency;
  const workers = options.workers === "auto"
    ? (teams ? cores : Math.min(cores, shards))
    : options.workers ?? 1;
  if (options.backend !== undefined) selectKernels(options.backend);
  if (workers === 1) return new LocalEngine(model, shards);
  return new PoolEngine(model, { ...options, workers });
}
