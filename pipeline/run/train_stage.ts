/**
 * The train stage of a run, in the order it happens:
 *
 * 1. the model — restored from checkpoint.h5 when resuming (after checking that it fits the
 *    experiment), read from `train.scst.from` for a self-critical run, else initialised;
 * 2. the cross-entropy phase (unless the run is self-critical only, or resumes its
 *    self-critical phase): the training minibatches (in memory, or streamed by a loader
 *    worker), the compute engine (this thread, or the worker pool), and a
 *    {@linkcode TrainingSession}: the solver, and what watches it — the progress bar,
 *    metrics.jsonl, checkpoint.h5 and best.h5 — with the policy of when each is written;
 * 3. the self-critical phase when `train.scst.numEpochs` > 0: from the cross-entropy best.h5
 *    (or `train.scst.from`), a session over {@linkcode ScstBatches} that keeps scst_best.h5;
 *    its iterations continue the run's count;
 * 4. training, stopped cleanly by Ctrl-C, SIGTERM or SIGHUP with a checkpoint; `resume`
 *    continues the phase the checkpoint is in.
 *
 * Nothing is written into the run directory until the first step has run: a run that cannot
 * start (bad data, a model or batch too large, a checkpoint that does not fit) leaves the
 * directory — an earlier run's checkpoints and log included — exactly as it was.
 * @module
 */
import { join } from "node:path";
import { kernels } from "../../layers/kernels/mod.ts";
import { type OptimConfig, pickOptimConfig } from "../../layers/optim.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { createCaptioningModel, describeModel } from "../../model/models.ts";
import { createEngine, type PoolOptions, stepSplit, WorkerFailure } from "../../workers/pool.ts";
import type { TrainEngine } from "../../workers/engine.ts";
import { DistributedEngine, rankShards, shardRows } from "../../workers/distributed_engine.ts";
import type { ExperimentConfig, TrainConfig } from "../config/config.ts";
import { type BatchSource, InMemoryBatches } from "../data/batches.ts";
import type { LoadedCaptionData } from "../data/caption_data.ts";
import { StreamBatches } from "../data/stream/stream_batches.ts";
import { InputError } from "../errors.ts";
import { evaluateSplit, formatScore } from "../eval/evaluate.ts";
import { removeStaleTemporaries } from "../io/atomic.ts";
import { exists } from "../io/files.ts";
import {
  type CheckpointExtras,
  loadCheckpoint,
  type LoadedCheckpoint,
  runIteration,
  saveCheckpoint,
  type ScstPhase,
} from "../train/checkpoint.ts";
import { ScstBatches } from "../train/scst.ts";
import { CiderReward } from "../train/scst_reward.ts";
import {
  CaptioningSolver,
  type EpochInfo,
  type IterationInfo,
  type SolverOptions,
  TrainingDivergedError,
} from "../train/solver.ts";
import { QUICK_EVAL_IMAGES } from "./data.ts";
import { RUN_FILES, startRunFiles } from "./files.ts";
import { checkTrainingMemory, estimateTrainingMemory, isAllocationFailure } from "./memory.ts";
import { type EvalRecord, MetricsLog, type MetricsRecord } from "./metrics_log.ts";
import { ProgressReporter } from "./progress.ts";
import { type Job, rankZeroFirst, SINGLE_PROCESS } from "./job.ts";

/** What the train stage needs from the run. */
export interface TrainStageContext {
  /** The resolved experiment. */
  config: ExperimentConfig;
  /** The run's data. */
  data: LoadedCaptionData;
  /** The old run's checkpoints that this fresh run replaces (`--force`), removed when it starts. */
  replaced: readonly string[];
  /** Where messages go. */
  log: (line: string) => void;
  /** Continue from checkpoint.h5. */
  resume: boolean;
  /** Stop on SIGINT, SIGTERM and SIGHUP with a checkpoint. */
  handleSignals: boolean;
  /** Where the progress bar or lines go (default stderr). */
  progressWrite?: (text: string) => void;
  /** Whether progress is drawn as a bar (default: stderr is a terminal). */
  isTTY?: boolean;
  /** The compute worker module of the pool (see `PoolOptions.workerUrl`). */
  workerUrl?: PoolOptions["workerUrl"];
  /** The MPI job this process trains in (default: alone); rank 0 alone writes. */
  job?: Job;
}

/** What the train stage produced. */
export interface TrainStageResult {
  /** The trained model (the latest parameters). */
  model: CaptioningModel<FloatDType>;
  /** Iterations trained in total. */
  iterations: number;
  /** Whether training was stopped by a signal (a checkpoint was written). */
  interrupted: boolean;
}

/** The longest training goes without returning to the event loop (ms), so signals get through. */
const YIELD_MS = 50;

/**
 * Runs the train stage: builds or restores the model, trains it (cross-entropy, then
 * self-critical when asked), and writes checkpoint.h5, best.h5, scst_best.h5 and
 * metrics.jsonl as it goes.
 * @param ctx The run's experiment, data and options.
 * @returns The model, the iterations done, and whether a signal stopped it.
 */
export async function trainStage(stage: TrainStageContext): Promise<TrainStageResult> {
  const { config, data } = stage;
  const runDir = config.output.dir, job = stage.job ?? SINGLE_PROCESS;
  if (config.train.shards < job.size) {
    throw new InputError(
      `train.shards: ${config.train.shards} shards cannot be split over the MPI job's ` +
        `${job.size} processes; set train.shards to at least ${job.size} (a multiple of it ` +
        `balances the ranks), or start fewer processes`,
    );
  }
  // Temporary files of writes cut short by a kill: never valid files, safe to drop.
  for (
    const name of [
      RUN_FILES.checkpoint,
      RUN_FILES.best,
      RUN_FILES.scstBest,
      RUN_FILES.config,
      RUN_FILES.metrics,
      RUN_FILES.ciderDf,
    ]
  ) {
    if (job.writes) await removeStaleTemporaries(join(runDir, name));
  }
  const words = data.train_captions.shape[1] - 1, m = config.model;
  if (m.cellType === "transformer" && words > m.maxLength) {
    throw new InputError(
      `model.maxLength: the captions have ${words} positions, more than the Transformer's ` +
        `${m.maxLength}; raise model.maxLength to at least ${words}`,
    );
  }
  const workers = usableWorkers(config, stage.log);
  checkMemory(config, data, workers);
  const resumed = stage.resume ? await checkpointToResume(config, data) : null;
  // Both phases share the run's first writes (made once, at the first step of either).
  const ctx: PhaseContext = {
    ...stage,
    job,
    runStart: new RunStart(config, stage.replaced, resumed ? runIteration(resumed) : null, job),
  };
  try {
    return await trainPhases(ctx, resumed, workers);
  } finally {
    await ctx.runStart.close();
  }
}

/** The phases a run trains: cross-entropy, self-critical, or one then the other. */
async function trainPhases(
  ctx: PhaseContext,
  resumed: LoadedCheckpoint | null,
  workers: number,
): Promise<TrainStageResult> {
  const { config, data } = ctx;
  const runDir = config.output.dir, scst = config.train.scst;
  if (resumed && !resumed.scst && scst.from !== null) {
    throw new InputError(
      `${resumed.path}: a cross-entropy checkpoint, but train.scst.from asks for self-critical ` +
        `training only; resume with --train.scst.from=null, or start a new run`,
    );
  }
  const from = resumed === null && scst.from !== null
    ? await loadCheckpoint(scst.from, { idxToWord: data.idx_to_word, model: config.model })
    : null;
  const model = resumed?.model ?? from?.model ?? createCaptioningModel({
    wordToIdx: data.word_to_idx,
    inputDim: data.train_features.shape[1],
    ...config.model,
  });
  if (resumed?.scst) return await selfCriticalPhase(ctx, model, workers, resumed.scst, resumed);
  if (from) {
    const start = { startIteration: runIteration(from), from: scst.from! };
    return await selfCriticalPhase(ctx, model, workers, start, null);
  }
  const trained = await crossEntropyPhase(ctx, model, workers, resumed);
  if (trained.interrupted || scst.numEpochs === 0) return trained;
  // Self-critical training starts from the cross-entropy best.h5, as Rennie et al. do.
  const best = join(runDir, RUN_FILES.best);
  const start = { startIteration: trained.iterations, from: best };
  // Rank 0 wrote it: the others read it after rank 0 is done.
  await rankZeroFirst(ctx.job, async () => {
    if (await exists(best)) {
      const ckpt = await loadCheckpoint(best, { idxToWord: data.idx_to_word, model: config.model });
      model.copyParamsFrom(ckpt.model);
    } else start.from = join(runDir, RUN_FILES.checkpoint); // no validation data: the latest
  });
  return await selfCriticalPhase(ctx, model, workers, start, null);
}

/** The cross-entropy phase: the exercise's training, resumed from checkpoint.h5 or fresh. */
async function crossEntropyPhase(
  ctx: PhaseContext,
  model: CaptioningModel<FloatDType>,
  workers: number,
  resumed: LoadedCheckpoint | null,
): Promise<TrainStageResult> {
  const { config, data, log } = ctx, t = config.train;
  const batches = await trainingBatches(config, data, ctx.job, log);
  const engine = await startEngine(ctx, model, workers, batches);
  const phase: Phase = {
    name: "cross-entropy",
    solver: {
      optimConfig: pickOptimConfig(t),
      batchSize: t.batchSize,
      numEpochs: t.numEpochs,
      ...(batches ? { batches } : {}),
    },
    captionsPerStep: t.batchSize,
    optimConfig: pickOptimConfig,
    optionPath: (key) => `train.${key}`,
    bestPath: join(config.output.dir, RUN_FILES.best),
    startIteration: 0,
    extras: {},
    record: (info, epoch, smoothedLoss) => ({
      kind: "train",
      iteration: info.iteration,
      epoch,
      loss: info.loss,
      smoothedLoss,
      learningRate: info.learningRate,
    }),
  };
  const session = await openSession(ctx, model, engine, resumed, phase, batches);
  log(
    `Training ${describeModel(model.config)} on ` +
      `${data.train_captions.shape[0]} captions: ${session.solver.numIterations} iterations, ` +
      `batch ${config.train.batchSize}, ${workers} worker(s)${sharing(model, workers, ctx)}` +
      processes(ctx),
  );
  return await session.run();
}

/**
 * The self-critical phase: from a cross-entropy checkpoint (or resumed from checkpoint.h5),
 * k sampled captions per image rewarded with CIDEr-D against the baseline; scst_best.h5 keeps
 * the best val CIDEr-D of the phase.
 */
async function selfCriticalPhase(
  ctx: PhaseContext,
  model: CaptioningModel<FloatDType>,
  workers: number,
  start: ScstPhase,
  resumed: LoadedCheckpoint | null,
): Promise<TrainStageResult> {
  const { config, data, log } = ctx, t = config.train, scst = t.scst, runDir = config.output.dir;
  const t0 = performance.now();
  // Rank 0 computes and caches the frequencies; the others read its cache.
  const { reward, cached } = await rankZeroFirst(
    ctx.job,
    () => CiderReward.fromData(data, "train", join(runDir, RUN_FILES.ciderDf)),
  );
  log(
    `CIDEr-D document frequencies of ${reward.references.size} training images ` +
      `(${reward.df.df.size} n-grams) ${cached ? "read from" : "computed and cached in"} ` +
      `${join(runDir, RUN_FILES.ciderDf)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const engine = await startEngine(ctx, model, workers, undefined);
  const batches = new ScstBatches(data, model.wordToIdx, model.idxToWord, {
    engine,
    reward,
    batchSize: scst.batchSize,
    samples: scst.samples,
    temperature: scst.temperature,
    maxLength: scst.maxLength,
    baseline: scst.baseline,
    seed: t.seed,
  });
  const optimConfig = (train: Partial<TrainConfig>) => {
    const lr = train.scst?.learningRate;
    return { ...pickOptimConfig(train), ...(lr === undefined ? {} : { learningRate: lr }) };
  };
  const phase: Phase = {
    name: "self-critical",
    solver: {
      optimConfig: optimConfig(t),
      batchSize: scst.batchSize,
      numEpochs: scst.numEpochs,
      batches,
      explodeFactor: 0, // the loss is −(r − b) log p: no positive cross-entropy to compare with
    },
    captionsPerStep: scst.batchSize * scst.samples,
    optimConfig,
    optionPath: (key) => key === "learningRate" ? "train.scst.learningRate" : `train.${key}`,
    bestPath: join(runDir, RUN_FILES.scstBest),
    startIteration: start.startIteration,
    extras: { scst: start },
    evalTag: { phase: "scst" },
    record: (info, epoch) => {
      const stats = batches.lastStats!;
      return {
        kind: "scst",
        iteration: start.startIteration + info.iteration,
        epoch,
        loss: info.loss,
        reward: stats.reward,
        baseline: stats.baseline,
        beatBaseline: stats.beatBaseline,
        ...(stats.greedyReward === null ? {} : { greedyReward: stats.greedyReward }),
        meanLength: stats.meanLength,
        learningRate: info.learningRate,
      };
    },
  };
  const session = await openSession(ctx, model, engine, resumed, phase, batches);
  log(
    `Self-critical training (CIDEr-D reward, ${scst.baseline} baseline) from ${start.from} ` +
      `(iteration ${start.startIteration}): ${session.solver.numIterations} iterations of ` +
      `${scst.batchSize} images x ${scst.samples} samples, ${workers} worker(s)${
        sharing(model, workers, ctx)
      }${processes(ctx)}`,
  );
  const result = await session.run();
  return { ...result, iterations: start.startIteration + result.iterations };
}

/** ", in each of P processes (shards per rank)" for a log line, or "" alone. */
function processes(ctx: PhaseContext): string {
  const { job, config } = ctx;
  if (job.size === 1) return "";
  const ranges = Array.from({ length: job.size }, (_, r) => {
    const { start, end } = rankShards(config.train.shards, job.size, r);
    return end - start === 1 ? `${start}` : `${start}-${end - 1}`;
  });
  return ` in each of ${job.size} processes (shards of ${config.train.shards} per rank: ` +
    `${ranges.join(", ")})`;
}

/**
 * " sharing each step" when the workers compute each shard's step together (in an MPI job,
 * of the shards of this rank), else "".
 */
function sharing(model: CaptioningModel<FloatDType>, workers: number, ctx: PhaseContext): string {
  const { start, end } = rankShards(ctx.config.train.shards, ctx.job.size, ctx.job.rank);
  const split = stepSplit(model.useStepTeam !== undefined, workers, end - start);
  return split === "steps" ? " sharing each step" : "";
}

/** The compute engine of a phase (closing the batch source when it cannot start). */
async function startEngine(
  ctx: PhaseContext,
  model: CaptioningModel<FloatDType>,
  workers: number,
  batches: BatchSource | undefined,
): Promise<TrainEngine> {
  try {
    const engine = createEngine(model, {
      workers,
      shards: ctx.config.train.shards,
      backend: kernels().name,
      workerTimeout: ctx.config.train.workerTimeout,
      ...(ctx.workerUrl ? { workerUrl: ctx.workerUrl } : {}),
    });
    if (ctx.job.size === 1) return engine;
    try {
      return new DistributedEngine(engine, ctx.job.comm!, model.flat, {
        checkEvery: ctx.config.train.distributed.checkEvery,
      });
    } catch (e) {
      await engine.close(); // its workers would keep the process alive
      throw e;
    }
  } catch (e) {
    await batches?.close?.();
    throw e;
  }
}

/** A phase's session, continued from a checkpoint when resuming. */
async function openSession(
  ctx: PhaseContext,
  model: CaptioningModel<FloatDType>,
  engine: TrainEngine,
  resumed: LoadedCheckpoint | null,
  phase: Phase,
  batches: BatchSource | undefined,
): Promise<TrainingSession> {
  try {
    const session = new TrainingSession(ctx, model, engine, resumed, phase);
    if (resumed) session.continueFrom(resumed);
    return session;
  } catch (e) {
    // Nothing else will close them: the workers would keep the process alive.
    await engine.close();
    await batches?.close?.();
    throw e;
  }
}

/** Loads checkpoint.h5 to resume, checking it fits the data, the model and the update rule. */
async function checkpointToResume(
  config: ExperimentConfig,
  data: LoadedCaptionData,
): Promise<LoadedCheckpoint> {
  const path = join(config.output.dir, RUN_FILES.checkpoint);
  const resumed = await loadCheckpoint(path, {
    idxToWord: data.idx_to_word,
    model: { ...config.model, inputDim: data.train_features.shape[1] },
  });
  const savedRule = resumed.solver?.optimizer.rule, rule = config.train.updateRule;
  if (savedRule !== undefined && savedRule !== rule) {
    throw new InputError(
      `Cannot resume from ${path}: it was trained with train.updateRule "${savedRule}" ` +
        `but the experiment asks for "${rule}"; resume with --train.updateRule=${savedRule}, ` +
        `or start a new run with deno task train`,
    );
  }
  return resumed;
}

/**
 * The workers that have work: any number for the recurrent models, whose workers compute each
 * shard's step together; no more than the fixed shards of a batch for the Transformer, whose
 * workers each take whole shards.
 */
function usableWorkers(config: ExperimentConfig, log: (line: string) => void): number {
  const t = config.train;
  const requested = t.workers === "auto" ? navigator.hardwareConcurrency : t.workers;
  if (config.model.cellType !== "transformer") return requested;
  const workers = Math.min(requested, t.shards);
  if (workers < requested) {
    log(
      `Using ${workers} workers: train.shards (${t.shards}) limits how many can compute a Transformer's step`,
    );
  }
  return workers;
}

/**
 * Streamed runs read training minibatches from the files in a loader worker (the batch order
 * is the in-memory sampler's for the same seed); others draw them from the loaded data (the
 * solver's own sampler, or in an MPI job one that gathers only the rank's rows).
 */
async function trainingBatches(
  config: ExperimentConfig,
  data: LoadedCaptionData,
  job: Job,
  log: (line: string) => void,
): Promise<BatchSource | undefined> {
  const t = config.train;
  // In an MPI job a rank gathers (or reads) only the rows of its own shards.
  const rows = job.size > 1
    ? shardRows(t.batchSize, t.shards, rankShards(t.shards, job.size, job.rank))
    : undefined;
  if (!config.data.stream) {
    return rows ? new InMemoryBatches(data, t.batchSize, t.seed, "train", rows) : undefined;
  }
  const batches = await StreamBatches.open({
    baseDir: config.data.dir,
    batchSize: t.batchSize,
    pcaFeatures: config.data.pcaFeatures,
    seed: t.seed,
    ...(rows ? { rows } : {}),
  });
  log(`Streaming training minibatches from ${config.data.dir} (loader worker)`);
  return batches;
}

/** What differs between the cross-entropy and the self-critical phase of a run. */
interface Phase {
  /** For messages. */
  name: string;
  /** The solver's options of the phase. */
  solver: Pick<
    SolverOptions,
    "optimConfig" | "batchSize" | "numEpochs" | "batches" | "explodeFactor"
  >;
  /** Captions per step, for captions/s. */
  captionsPerStep: number;
  /** The optimizer options an experiment's train section sets for the phase. */
  optimConfig(train: Partial<TrainConfig>): Partial<OptimConfig>;
  /** The experiment option that sets an optimizer option, for messages. */
  optionPath(key: string): string;
  /** Where the phase keeps its best checkpoint. */
  bestPath: string;
  /** The run's iteration when the phase started (its solver counts from 0). */
  startIteration: number;
  /** What the phase's checkpoints hold besides the solver's state. */
  extras: Pick<CheckpointExtras, "scst">;
  /** What marks the phase's evaluation records. */
  evalTag?: Pick<EvalRecord, "phase">;
  /** The metrics.jsonl record of an iteration. */
  record(info: IterationInfo, epoch: number, smoothedLoss: number): MetricsRecord;
}

/**
 * One training run of the solver in one phase, and what watches it. The policy of the run,
 * in one place:
 * - every iteration: the progress bar; a `train` (or `scst`) record every `printEvery`
 *   iterations (and at the first and the last);
 * - checkpoint.h5 every `checkpointEvery` iterations, or at each epoch's end when it is 0,
 *   and at the end;
 * - a greedy score of the first val images every `evalEvery` iterations, or at each epoch's
 *   end when it is 0, and at the end; the phase's best checkpoint (best.h5, scst_best.h5)
 *   whenever CIDEr-D improves on the phase's best so far;
 * - a `val` record (the solver's validation loss) at each epoch's end.
 * Records count the run's iterations: a self-critical phase's continue the cross-entropy's.
 */
class TrainingSession {
  /** The solver. */
  readonly solver: CaptioningSolver;
  readonly #ctx: PhaseContext;
  readonly #model: CaptioningModel<FloatDType>;
  readonly #engine: TrainEngine;
  readonly #phase: Phase;
  readonly #progress: ProgressReporter;
  readonly #checkpointPath: string;
  /** The best val CIDEr-D of the phase so far, and what its best checkpoint records of it. */
  #best = -Infinity;
  #bestInfo: Record<string, unknown> | undefined;
  /** The iteration of the checkpoint.h5 on disk (null: none yet), for messages after a failure. */
  #savedIteration: number | null;
  #lastYield = performance.now();

  constructor(
    ctx: PhaseContext,
    model: CaptioningModel<FloatDType>,
    engine: TrainEngine,
    resumed: LoadedCheckpoint | null,
    phase: Phase,
  ) {
    this.#ctx = ctx;
    this.#model = model;
    this.#engine = engine;
    this.#phase = phase;
    const { config } = ctx, t = config.train, runDir = config.output.dir;
    this.#checkpointPath = join(runDir, RUN_FILES.checkpoint);
    this.#bestInfo = resumed?.info;
    if (typeof this.#bestInfo?.cider === "number") this.#best = this.#bestInfo.cider;
    this.#savedIteration = resumed ? runIteration(resumed) : null;
    this.solver = new CaptioningSolver(model, ctx.data, {
      updateRule: t.updateRule,
      lrDecay: t.lrDecay,
      seed: t.seed,
      gradClip: t.gradClip,
      verbose: false,
      engine,
      ...phase.solver,
      onIteration: (info) => this.#afterIteration(info),
      onEpoch: (info) => this.#afterEpoch(info),
    });
    // In an MPI job every rank stops after the same step, the first any rank was asked to.
    if (engine instanceof DistributedEngine) engine.whenStopped(() => this.solver.requestStop());
    this.#progress = new ProgressReporter({
      total: this.solver.numIterations,
      batchSize: phase.captionsPerStep,
      itersPerEpoch: this.solver.iterationsPerEpoch,
      printEvery: t.printEvery,
      ...(ctx.progressWrite ? { write: ctx.progressWrite } : {}),
      ...(ctx.isTTY !== undefined ? { isTTY: ctx.isTTY } : {}),
    });
  }

  /**
   * Restores the solver's state from the checkpoint, with the optimizer options the experiment
   * changes since (nothing is written yet: see {@linkcode RunStart}).
   * @throws {InputError} When the experiment now has fewer iterations than the checkpoint did.
   */
  continueFrom(resumed: LoadedCheckpoint): void {
    if (resumed.solver) {
      this.solver.setState(resumed.solver);
      applyChangedHyperParameters(this.solver, resumed.experiment, this.#ctx, this.#phase);
    }
    const { iteration, numIterations, iterationsPerEpoch } = this.solver;
    const epochs = this.#phase.extras.scst ? "train.scst.numEpochs" : "train.numEpochs";
    if (iteration > numIterations) {
      throw new InputError(
        `${epochs}: the checkpoint is at iteration ${iteration}, past the ${numIterations} ` +
          `iterations of ${numIterations / iterationsPerEpoch} epoch(s) (${iterationsPerEpoch} ` +
          `per epoch${this.#phase.extras.scst ? " of self-critical training" : ""}); ` +
          `resume with at least --${epochs}=${Math.ceil(iteration / iterationsPerEpoch)}`,
      );
    }
    const what = this.#phase.extras.scst ? ` of ${this.#phase.name} training` : "";
    this.#ctx.log(
      iteration === numIterations
        ? `The run already trained its ${numIterations} iterations${what}; raise --${epochs} to train more`
        : `Resuming at iteration ${iteration} of ${numIterations}${what}`,
    );
  }

  /** Trains to the end (or to a stop signal), scores the final parameters, saves them. */
  async run(): Promise<TrainStageResult> {
    const { solver } = this, t = this.#ctx.config.train;
    const stopSignals = this.#listenForStop();
    try {
      try {
        await solver.train();
        // The final parameters are scored for best.h5 unless the last iteration just was,
        // while the engine's workers are still up.
        const every = t.evalEvery === 0 ? solver.iterationsPerEpoch : t.evalEvery;
        if (!solver.stopped && solver.iteration % every !== 0) {
          await this.#scoreForBest(solver.iteration);
        }
      } catch (e) {
        if (e instanceof TrainingDivergedError) {
          throw new TrainingDivergedError(`${e.message}; ${this.#kept()}`);
        }
        // A worker that failed (or hung) before the update left the parameters as the last
        // step made them: they are saved, so nothing of the run is lost.
        if (e instanceof WorkerFailure && (e.phase === "loss" || e.phase === "reduce")) {
          await this.#save(this.#checkpointPath).catch(() => {});
        }
        if (isAllocationFailure(e)) {
          throw new InputError(
            `train.batchSize: out of memory at iteration ${solver.iteration + 1} ` +
              `(${(e as Error).message}); lower train.batchSize, model.hiddenDim or ` +
              `model.wordvecDim; ${this.#kept()}`,
            { cause: e },
          );
        }
        this.#progress.log(
          `Training stopped by an error after iteration ${solver.iteration}; ${this.#kept()}` +
            (this.#savedIteration === null
              ? ""
              : ` (resume with: deno task resume ${this.#ctx.config.output.dir})`),
        );
        throw e;
      } finally {
        this.#progress.finish();
        await solver.close();
      }
      // Still listening, so a single Ctrl-C now does not cut the final save.
      await this.#save(this.#checkpointPath);
    } finally {
      stopSignals.remove();
    }
    if (solver.stopped) {
      this.#ctx.log(
        `Interrupted at iteration ${solver.iteration} of ${solver.numIterations}; checkpoint ` +
          `saved to ${this.#checkpointPath}. Resume with: deno task resume ${this.#ctx.config.output.dir}`,
      );
    }
    return { model: this.#model, iterations: solver.iteration, interrupted: solver.stopped };
  }

  async #afterIteration(info: IterationInfo): Promise<void> {
    const t = this.#ctx.config.train, metrics = await this.#ctx.runStart.metrics();
    // A step on this thread never returns to the event loop by itself; let it run now and
    // then so Ctrl-C (and timers) are seen between steps, not only at the next checkpoint.
    if (performance.now() - this.#lastYield >= YIELD_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      this.#lastYield = performance.now();
    }
    this.#progress.update(info.iteration, info.loss);
    const last = info.iteration === info.numIterations;
    if (info.iteration % t.printEvery === 0 || last || info.iteration === 1) {
      const epoch = info.iteration / this.solver.iterationsPerEpoch;
      metrics.write(this.#phase.record(info, epoch, this.#progress.smoothedLoss));
    }
    if (t.checkpointEvery > 0 && info.iteration % t.checkpointEvery === 0) {
      await this.#save(this.#checkpointPath);
    }
    if (t.evalEvery > 0 && info.iteration % t.evalEvery === 0) {
      await this.#scoreForBest(info.iteration);
    }
  }

  async #afterEpoch(info: EpochInfo): Promise<void> {
    const t = this.#ctx.config.train, metrics = await this.#ctx.runStart.metrics();
    if (info.valLoss !== null) {
      metrics.write({
        kind: "val",
        iteration: this.#phase.startIteration + info.iteration,
        epoch: info.epoch,
        loss: info.valLoss,
      });
      this.#progress.log(
        `epoch ${info.epoch}: val loss ${info.valLoss.toFixed(4)}, lr ${
          info.learningRate.toExponential(2)
        }`,
      );
    }
    if (t.checkpointEvery === 0) await this.#save(this.#checkpointPath);
    if (t.evalEvery === 0) await this.#scoreForBest(info.iteration);
  }

  /**
   * Scores greedy captions of the first val images; a better CIDEr-D than the phase's best is
   * saved as its best checkpoint.
   */
  async #scoreForBest(solverIteration: number): Promise<void> {
    const { config, data } = this.#ctx;
    if (!data.val_captions || data.val_captions.shape[0] === 0) return;
    const metrics = await this.#ctx.runStart.metrics();
    const iteration = this.#phase.startIteration + solverIteration;
    const ev = await evaluateSplit(this.#model, data, {
      split: "val",
      numImages: Math.min(config.evaluate.numImages, QUICK_EVAL_IMAGES),
      beamSize: 1,
      maxLength: config.evaluate.maxLength,
      metrics: ["bleu4", "cider"],
      captioner: (features, o) => this.#engine.sample(features, o),
      diagnostics: false,
    });
    metrics.write({
      kind: "eval",
      iteration,
      split: "val",
      checkpoint: "training",
      decoder: "greedy",
      numImages: ev.numImages,
      metrics: ev.greedy as Record<string, number>,
      ...this.#phase.evalTag,
    });
    const cider = ev.greedy.cider ?? -Infinity;
    this.#progress.log(
      `  val (${ev.numImages} images, greedy): BLEU-4 ${formatScore(ev.greedy.bleu4)} CIDEr-D ${
        formatScore(cider)
      }` +
        (cider > this.#best ? " (best so far)" : ""),
    );
    if (cider > this.#best) {
      this.#best = cider;
      this.#bestInfo = { iteration, cider, bleu4: ev.greedy.bleu4 };
      await this.#save(this.#phase.bestPath);
    }
  }

  /** Saves the model with the solver's state, the experiment and the best score's info. */
  async #save(path: string): Promise<void> {
    await this.#ctx.runStart.metrics();
    // Rank 0 writes for the job (every rank holds the same parameters and state).
    if (this.#ctx.job.writes) {
      await saveCheckpoint(path, this.#model, {
        solver: this.solver.getState(),
        experiment: this.#ctx.config,
        ...(this.#bestInfo ? { info: this.#bestInfo } : {}),
        ...this.#phase.extras,
      });
    }
    if (path === this.#checkpointPath) {
      this.#savedIteration = this.#phase.startIteration + this.solver.iteration;
    }
  }

  /** What is kept on disk, for a message after a failure. */
  #kept(): string {
    return this.#savedIteration === null
      ? "no checkpoint was saved by this run yet"
      : `the last checkpoint (iteration ${this.#savedIteration}) is ${this.#checkpointPath}`;
  }

  /**
   * The first Ctrl-C (or SIGTERM, SIGHUP) stops after the current step with a checkpoint; a second
   * one quits at once (a step that never ends must not trap the user; saves are atomic).
   */
  #listenForStop(): { remove(): void } {
    let signalled = false;
    const stop = () => {
      if (!signalled) {
        signalled = true;
        if (this.#engine instanceof DistributedEngine) this.#engine.requestStop();
        else this.solver.requestStop();
        this.#progress.log(
          "Stopping after this step to save a checkpoint (press Ctrl-C again to quit at once)",
        );
        return;
      }
      this.#progress.log(`Quitting at once; ${this.#kept()}`);
      Deno.exit(130);
    };
    // A closed terminal (SIGHUP) is a stop like the others, not a kill.
    const signals: Deno.Signal[] = this.#ctx.handleSignals ? ["SIGINT", "SIGTERM", "SIGHUP"] : [];
    for (const s of signals) Deno.addSignalListener(s, stop);
    return { remove: () => signals.forEach((s) => Deno.removeSignalListener(s, stop)) };
  }
}

/**
 * After a resume restored the saved optimizer state: applies the optimizer options the
 * experiment changes since the checkpoint's run (a new learning rate takes effect decayed to
 * the current epoch, as if the run had started with it). Unchanged options keep the saved
 * state, so a plain resume continues bit for bit.
 */
function applyChangedHyperParameters(
  solver: CaptioningSolver,
  saved: unknown,
  ctx: PhaseContext,
  phase: Phase,
): void {
  const config = ctx.config;
  const before = phase.optimConfig((saved as Partial<ExperimentConfig> | undefined)?.train ?? {});
  const now = phase.optimConfig(config.train), cfg = solver.optimizer.config;
  for (const [key, value] of Object.entries(now) as [keyof typeof now, number][]) {
    if (before[key] === undefined || before[key] === value) continue;
    cfg[key] = key === "learningRate" ? value * config.train.lrDecay ** solver.epoch : value;
    ctx.log(
      `Resuming with ${phase.optionPath(key)} ${value} (was ${before[key]}): now ${cfg[key]}`,
    );
  }
}

/** The stage's context, with the run's first writes that both phases share. */
interface PhaseContext extends TrainStageContext {
  /** The job (this process alone, or its MPI job). */
  job: Job;
  /** Starts the run's files once, and hands out its metrics log. */
  runStart: RunStart;
}

/**
 * The run's first writes, made once, when the first step of either phase has run (or before
 * anything else is written): the replaced run's checkpoints go, config.json is written,
 * metrics.jsonl is started or trimmed to the checkpoint.
 */
class RunStart {
  #metrics: Promise<MetricsLog> | null = null;

  constructor(
    readonly config: ExperimentConfig,
    readonly replaced: readonly string[],
    readonly resumedIteration: number | null,
    readonly job: Job,
  ) {}

  /**
   * The run's metrics.jsonl, opened (and the run's files started) at the first call; in an
   * MPI job, rank 0's (the others' records go nowhere: rank 0 writes the same ones).
   */
  metrics(): Promise<MetricsLog> {
    if (!this.job.writes) return this.#metrics ??= Promise.resolve(new MetricsLog(() => {}));
    return this.#metrics ??= startRunFiles(this.config, this.replaced, this.resumedIteration)
      .then(() => MetricsLog.open(this.config.output.dir));
  }

  /** Closes the metrics log, if it was opened. */
  async close(): Promise<void> {
    if (this.#metrics) (await this.#metrics).close();
  }
}

/**
 * Refuses a run that cannot fit in memory, before anything is allocated: each phase's
 * minibatch (a self-critical step trains on batchSize × samples captions).
 */
function checkMemory(config: ExperimentConfig, data: LoadedCaptionData, workers: number): void {
  const sizes = {
    vocabSize: data.idx_to_word.length,
    inputDim: data.train_features.shape[1],
    captionLength: data.train_captions.shape[1],
  };
  checkTrainingMemory(estimateTrainingMemory(config, sizes, workers));
  const scst = config.train.scst;
  if (scst.numEpochs > 0 || scst.from !== null) {
    const batchSize = scst.batchSize * scst.samples;
    checkTrainingMemory(
      estimateTrainingMemory({ ...config, train: { ...config.train, batchSize } }, sizes, workers),
    );
  }
}
