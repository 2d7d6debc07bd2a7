/**
 * The train stage of a run, in the order it happens:
 *
 * 1. the model — restored from checkpoint.h5 when resuming (after checking that it fits the
 *    experiment), else initialised;
 * 2. the training minibatches (in memory, or streamed by a loader worker) and the compute
 *    engine (this thread, or the worker pool);
 * 3. a {@linkcode TrainingSession}: the solver, and what watches it — the progress bar,
 *    metrics.jsonl, checkpoint.h5 and best.h5 — with the policy of when each is written;
 * 4. training, stopped cleanly by Ctrl-C or SIGTERM with a checkpoint.
 * @module
 */
import { join } from "node:path";
import { kernels } from "../../layers/kernels/mod.ts";
import { pickOptimConfig } from "../../layers/optim.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { createCaptioningModel, describeModel } from "../../model/models.ts";
import { createEngine, type PoolOptions } from "../../workers/pool.ts";
import type { TrainEngine } from "../../workers/engine.ts";
import type { ExperimentConfig } from "../config/config.ts";
import type { BatchSource } from "../data/batches.ts";
import type { LoadedCaptionData } from "../data/caption_data.ts";
import { StreamBatches } from "../data/stream/stream_batches.ts";
import { InputError } from "../errors.ts";
import { evaluateSplit, formatScore } from "../eval/evaluate.ts";
import { removeStaleTemporaries } from "../io/atomic.ts";
import { loadCheckpoint, type LoadedCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import {
  CaptioningSolver,
  type EpochInfo,
  type IterationInfo,
  TrainingDivergedError,
} from "../train/solver.ts";
import { QUICK_EVAL_IMAGES } from "./data.ts";
import { RUN_FILES, writeConfig } from "./files.ts";
import type { MetricsLog } from "./metrics_log.ts";
import { ProgressReporter } from "./progress.ts";

/** What the train stage needs from the run. */
export interface TrainStageContext {
  /** The resolved experiment. */
  config: ExperimentConfig;
  /** The run's data. */
  data: LoadedCaptionData;
  /** The run's metrics.jsonl. */
  metrics: MetricsLog;
  /** Where messages go. */
  log: (line: string) => void;
  /** Continue from checkpoint.h5. */
  resume: boolean;
  /** Stop on SIGINT and SIGTERM with a checkpoint. */
  handleSignals: boolean;
  /** Where the progress bar or lines go (default stderr). */
  progressWrite?: (text: string) => void;
  /** Whether progress is drawn as a bar (default: stderr is a terminal). */
  isTTY?: boolean;
  /** The compute worker module of the pool (see `PoolOptions.workerUrl`). */
  workerUrl?: PoolOptions["workerUrl"];
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
 * Runs the train stage: builds or restores the model, trains it, and writes checkpoint.h5,
 * best.h5 and metrics.jsonl as it goes.
 * @param ctx The run's experiment, data, metrics log and options.
 * @returns The model, the iterations done, and whether a signal stopped it.
 */
export async function trainStage(ctx: TrainStageContext): Promise<TrainStageResult> {
  const { config, data, log } = ctx;
  const runDir = config.output.dir;
  // Temporary files of writes cut short by a kill: never valid files, safe to drop.
  for (const name of [RUN_FILES.checkpoint, RUN_FILES.best, RUN_FILES.config, RUN_FILES.metrics]) {
    await removeStaleTemporaries(join(runDir, name));
  }
  const resumed = ctx.resume ? await checkpointToResume(config, data) : null;
  const words = data.train_captions.shape[1] - 1, m = config.model;
  if (m.cellType === "transformer" && words > m.maxLength) {
    throw new InputError(
      `model.maxLength: the captions have ${words} positions, more than the Transformer's ` +
        `${m.maxLength}; raise model.maxLength to at least ${words}`,
    );
  }
  const model = resumed?.model ?? createCaptioningModel({
    wordToIdx: data.word_to_idx,
    inputDim: data.train_features.shape[1],
    ...config.model,
  });
  const workers = usableWorkers(config, log);
  const batches = await trainingBatches(config, log);
  let engine: TrainEngine;
  try {
    engine = createEngine(model, {
      workers,
      shards: config.train.shards,
      backend: kernels().name,
      ...(ctx.workerUrl ? { workerUrl: ctx.workerUrl } : {}),
    });
  } catch (e) {
    await batches?.close?.();
    throw e;
  }
  let session: TrainingSession;
  try {
    session = new TrainingSession(ctx, model, engine, batches, resumed);
    if (resumed) await session.continueFrom(resumed);
  } catch (e) {
    // Nothing else will close them: the workers would keep the process alive.
    await engine.close();
    await batches?.close?.();
    throw e;
  }
  log(
    `Training ${describeModel(model.config)} on ` +
      `${data.train_captions.shape[0]} captions: ${session.solver.numIterations} iterations, ` +
      `batch ${config.train.batchSize}, ${workers} worker(s)`,
  );
  return await session.run();
}

/** Loads checkpoint.h5 to resume, checking it fits the data, the model and the update rule. */
async function checkpointToResume(
  config: ExperimentConfig,
  data: LoadedCaptionData,
): Promise<LoadedCheckpoint> {
  const path = join(config.output.dir, RUN_FILES.checkpoint);
  const resumed = await loadCheckpoint(path, { idxToWord: data.idx_to_word, model: config.model });
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

/** The workers that have work: no more than the fixed shards of a batch. */
function usableWorkers(config: ExperimentConfig, log: (line: string) => void): number {
  const t = config.train;
  const requested = t.workers === "auto" ? navigator.hardwareConcurrency : t.workers;
  const workers = Math.min(requested, t.shards);
  if (workers < requested) {
    log(`Using ${workers} workers: train.shards (${t.shards}) limits how many can compute`);
  }
  return workers;
}

/**
 * Streamed runs read training minibatches from the files in a loader worker (the batch order
 * is the in-memory sampler's for the same seed); others draw them from the loaded data.
 */
async function trainingBatches(
  config: ExperimentConfig,
  log: (line: string) => void,
): Promise<BatchSource | undefined> {
  if (!config.data.stream) return undefined;
  const batches = await StreamBatches.open({
    baseDir: config.data.dir,
    batchSize: config.train.batchSize,
    pcaFeatures: config.data.pcaFeatures,
    seed: config.train.seed,
  });
  log(`Streaming training minibatches from ${config.data.dir} (loader worker)`);
  return batches;
}

/**
 * One training run of the solver, and what watches it. The policy of the run, in one place:
 * - every iteration: the progress bar; a `train` record every `printEvery` iterations (and
 *   at the first and the last);
 * - checkpoint.h5 every `checkpointEvery` iterations, or at each epoch's end when it is 0,
 *   and at the end;
 * - a greedy score of the first val images every `evalEvery` iterations, or at each epoch's
 *   end when it is 0, and at the end; best.h5 whenever CIDEr-D improves on the best so far;
 * - a `val` record (the solver's validation loss) at each epoch's end.
 */
class TrainingSession {
  /** The solver. */
  readonly solver: CaptioningSolver;
  readonly #ctx: TrainStageContext;
  readonly #model: CaptioningModel<FloatDType>;
  readonly #engine: TrainEngine;
  readonly #progress: ProgressReporter;
  readonly #checkpointPath: string;
  readonly #bestPath: string;
  /** The best val CIDEr-D so far, and what best.h5 records of it. */
  #best = -Infinity;
  #bestInfo: Record<string, unknown> | undefined;
  /** The iteration of the checkpoint.h5 on disk (null: none yet), for messages after a failure. */
  #savedIteration: number | null;
  #lastYield = performance.now();

  constructor(
    ctx: TrainStageContext,
    model: CaptioningModel<FloatDType>,
    engine: TrainEngine,
    batches: BatchSource | undefined,
    resumed: LoadedCheckpoint | null,
  ) {
    this.#ctx = ctx;
    this.#model = model;
    this.#engine = engine;
    const { config } = ctx, t = config.train, runDir = config.output.dir;
    this.#checkpointPath = join(runDir, RUN_FILES.checkpoint);
    this.#bestPath = join(runDir, RUN_FILES.best);
    this.#bestInfo = resumed?.info;
    if (typeof this.#bestInfo?.cider === "number") this.#best = this.#bestInfo.cider;
    this.#savedIteration = resumed?.solver?.iteration ?? null;
    this.solver = new CaptioningSolver(model, ctx.data, {
      updateRule: t.updateRule,
      optimConfig: pickOptimConfig(t),
      lrDecay: t.lrDecay,
      batchSize: t.batchSize,
      numEpochs: t.numEpochs,
      seed: t.seed,
      gradClip: t.gradClip,
      verbose: false,
      engine,
      ...(batches ? { batches } : {}),
      onIteration: (info) => this.#afterIteration(info),
      onEpoch: (info) => this.#afterEpoch(info),
    });
    this.#progress = new ProgressReporter({
      total: this.solver.numIterations,
      batchSize: t.batchSize,
      itersPerEpoch: this.solver.iterationsPerEpoch,
      printEvery: t.printEvery,
      ...(ctx.progressWrite ? { write: ctx.progressWrite } : {}),
      ...(ctx.isTTY !== undefined ? { isTTY: ctx.isTTY } : {}),
    });
  }

  /**
   * Restores the solver's state from the checkpoint (with the optimizer options the
   * experiment changes since), and only then rewrites the run's config.json: a resume that
   * fails before this point leaves the run as it was.
   */
  async continueFrom(resumed: LoadedCheckpoint): Promise<void> {
    if (resumed.solver) {
      this.solver.setState(resumed.solver);
      applyChangedHyperParameters(this.solver, resumed.experiment, this.#ctx.config, this.#ctx.log);
    }
    await writeConfig(this.#ctx.config);
    this.#ctx.log(
      `Resuming at iteration ${this.solver.iteration} of ${this.solver.numIterations}`,
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
    const t = this.#ctx.config.train;
    // A step on this thread never returns to the event loop by itself; let it run now and
    // then so Ctrl-C (and timers) are seen between steps, not only at the next checkpoint.
    if (performance.now() - this.#lastYield >= YIELD_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      this.#lastYield = performance.now();
    }
    this.#progress.update(info.iteration, info.loss);
    const last = info.iteration === info.numIterations;
    if (info.iteration % t.printEvery === 0 || last || info.iteration === 1) {
      this.#ctx.metrics.write({
        kind: "train",
        iteration: info.iteration,
        epoch: info.iteration / this.solver.iterationsPerEpoch,
        loss: info.loss,
        smoothedLoss: this.#progress.smoothedLoss,
        learningRate: info.learningRate,
      });
    }
    if (t.checkpointEvery > 0 && info.iteration % t.checkpointEvery === 0) {
      await this.#save(this.#checkpointPath);
    }
    if (t.evalEvery > 0 && info.iteration % t.evalEvery === 0) {
      await this.#scoreForBest(info.iteration);
    }
  }

  async #afterEpoch(info: EpochInfo): Promise<void> {
    const t = this.#ctx.config.train;
    if (info.valLoss !== null) {
      this.#ctx.metrics.write({
        kind: "val",
        iteration: info.iteration,
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

  /** Scores greedy captions of the first val images; a better CIDEr-D is saved as best.h5. */
  async #scoreForBest(iteration: number): Promise<void> {
    const { config, data, metrics } = this.#ctx;
    if (!data.val_captions) return;
    const ev = await evaluateSplit(this.#model, data, {
      split: "val",
      numImages: Math.min(config.evaluate.numImages, QUICK_EVAL_IMAGES),
      beamSize: 1,
      maxLength: config.evaluate.maxLength,
      metrics: ["bleu4", "cider"],
      captioner: (features, o) => this.#engine.sample(features, o),
    });
    metrics.write({
      kind: "eval",
      iteration,
      split: "val",
      checkpoint: "training",
      decoder: "greedy",
      numImages: ev.numImages,
      metrics: ev.greedy as Record<string, number>,
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
      await this.#save(this.#bestPath);
    }
  }

  /** Saves the model with the solver's state, the experiment and the best score's info. */
  async #save(path: string): Promise<void> {
    await saveCheckpoint(path, this.#model, {
      solver: this.solver.getState(),
      experiment: this.#ctx.config,
      ...(this.#bestInfo ? { info: this.#bestInfo } : {}),
    });
    if (path === this.#checkpointPath) this.#savedIteration = this.solver.iteration;
  }

  /** What is kept on disk, for a message after a failure. */
  #kept(): string {
    return this.#savedIteration === null
      ? "no checkpoint was saved by this run yet"
      : `the last checkpoint (iteration ${this.#savedIteration}) is ${this.#checkpointPath}`;
  }

  /**
   * The first Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; a second
   * one quits at once (a step that never ends must not trap the user; saves are atomic).
   */
  #listenForStop(): { remove(): void } {
    let signalled = false;
    const stop = () => {
      if (!signalled) {
        signalled = true;
        this.solver.requestStop();
        this.#progress.log(
          "Stopping after this step to save a checkpoint (press Ctrl-C again to quit at once)",
        );
        return;
      }
      this.#progress.log(`Quitting at once; ${this.#kept()}`);
      Deno.exit(130);
    };
    const signals: Deno.Signal[] = this.#ctx.handleSignals ? ["SIGINT", "SIGTERM"] : [];
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
  config: ExperimentConfig,
  log: (line: string) => void,
): void {
  const before = pickOptimConfig(
    (saved as Partial<ExperimentConfig> | undefined)?.train ?? {},
  );
  const now = pickOptimConfig(config.train), cfg = solver.optimizer.config;
  for (const [key, value] of Object.entries(now) as [keyof typeof now, number][]) {
    if (before[key] === undefined || before[key] === value) continue;
    cfg[key] = key === "learningRate" ? value * config.train.lrDecay ** solver.epoch : value;
    log(`Resuming with train.${key} ${value} (was ${before[key]}): now ${cfg[key]}`);
  }
}
