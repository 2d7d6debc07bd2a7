/**
 * Runs an experiment: prepares the data (generating the synthetic set when it is absent),
 * then the stages in order — train (progress, metrics.jsonl, periodic and best checkpoints,
 * Ctrl-C safe), evaluate (COCO metrics against the trivial baseline), sample, report.
 *
 * A run directory holds: config.json, metrics.jsonl, checkpoint.h5 (latest), best.h5 (best
 * CIDEr-D on val), evaluation.json, samples.json and report.html.
 * @module
 */
import { join } from "node:path";
import { kernels, selectKernels } from "../../layers/kernels/mod.ts";
import type { BackendName } from "../../layers/kernels/types.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import { CaptioningRNN } from "../../model/captioning_rnn.ts";
import { loadCheckpoint, removeStaleTemporaries, saveCheckpoint } from "../train/checkpoint.ts";
import { createEngine, type PoolOptions } from "../../workers/pool.ts";
import type { LoadedCaptionData } from "../data/caption_data.ts";
import { StreamBatches } from "../data/stream/stream_batches.ts";
import type { ExperimentConfig } from "../config/config.ts";
import { InputError } from "../errors.ts";
import {
  type Captioner,
  evaluateSplit,
  formatEvaluation,
  formatScore,
  type SplitEvaluation,
} from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import { MetricsLog, ProgressReporter } from "./progress.ts";
import { prepareData, QUICK_EVAL_IMAGES, SAMPLE_IMAGES } from "./data.ts";
import {
  ensureWritableDir,
  exists,
  guardExistingRun,
  prepareMetricsLog,
  RUN_FILES,
  writeConfig,
} from "./files.ts";
import { writeRunReport } from "./report_data.ts";
import { CaptioningSolver, TrainingDivergedError } from "../train/solver.ts";

export { RUN_FILES } from "./files.ts";
export { prepareData } from "./data.ts";

/** How to run an experiment. */
export interface RunOptions {
  /** Continue from the run directory's checkpoint.h5 instead of starting over. */
  resume?: boolean;
  /** Where messages go (default: console.log). */
  log?: (line: string) => void;
  /** Where the progress bar or progress lines go (default: stderr). */
  progressWrite?: (text: string) => void;
  /** Whether progress is drawn as a bar (default: stderr is a terminal). */
  isTTY?: boolean;
  /** Stop training on SIGINT/SIGTERM with a checkpoint (default true). */
  handleSignals?: boolean;
  /**
   * Start over in a run directory that already holds a trained run (its checkpoints are
   * deleted). Without it such a run is refused, so hours of training are never overwritten.
   */
  overwrite?: boolean;
  /** Testing only: make a compute worker fail (see `PoolOptions.faultAt`; needs workers > 1). */
  faultAt?: PoolOptions["faultAt"];
}

/** What a run produced. */
export interface RunResult {
  /** The run directory. */
  runDir: string;
  /** Whether training was interrupted (a checkpoint was written; resume continues it). */
  interrupted: boolean;
  /** Iterations trained in total. */
  iterations: number;
  /** The evaluations of the evaluate stage. */
  evaluations: SplitEvaluation[];
  /** The report, when the report stage ran. */
  reportPath?: string;
}

/** The longest training goes without returning to the event loop (ms), so signals get through. */
const YIELD_MS = 50;

/**
 * Runs the experiment's stages in order.
 * @param config The resolved experiment.
 * @param options Resume, output and signal handling.
 * @returns What the run produced.
 *
 * @example
 * ```ts ignore
 * import { loadExperiment } from "../config/config.ts";
 * import { runExperiment } from "./run.ts";
 * const result = await runExperiment(await loadExperiment("experiments/overfit_lstm.json"));
 * console.log(result.reportPath);
 * ```
 */
export async function runExperiment(
  config: ExperimentConfig,
  options: RunOptions = {},
): Promise<RunResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const runDir = config.output.dir;
  await ensureWritableDir(runDir);
  if (config.stages.includes("train") && !options.resume) {
    await guardExistingRun(config, options.overwrite ?? false);
  }
  const checkpointPath = join(runDir, RUN_FILES.checkpoint);
  const bestPath = join(runDir, RUN_FILES.best);
  if (
    !config.stages.includes("train") && !(await exists(bestPath)) && !(await exists(checkpointPath))
  ) {
    throw new InputError(
      `${runDir}: no trained checkpoint for the ${config.stages.join(", ")} stage` +
        `${
          config.stages.length > 1 ? "s" : ""
        }; add "train" to stages, or set output.dir to a trained run`,
    );
  }
  // A resumed run's config.json is replaced only once its checkpoint is known to fit the
  // (possibly overridden) config, so a failed resume leaves the run as it was.
  // Only a fresh training run defines the run: evaluate/report-only runs leave config.json be.
  if (!options.resume && config.stages.includes("train")) await writeConfig(config);
  // "auto" defers to RECAP_BACKEND when it is set.
  const choice = config.train.backend === "auto" ? undefined : config.train.backend as BackendName;
  const backend = selectKernels(choice).name;
  log(`recap: run ${config.name} in ${runDir} (backend: ${backend})`);
  const data = await prepareData(config, log);
  const result: RunResult = { runDir, interrupted: false, iterations: 0, evaluations: [] };
  if (config.stages.includes("train")) {
    await prepareMetricsLog(
      join(runDir, RUN_FILES.metrics),
      options.resume ? checkpointPath : null,
    );
  }
  const metrics = MetricsLog.open(runDir);
  try {
    let model: CaptioningRNN<FloatDType>;
    if (config.stages.includes("train")) {
      model = await train(config, data, options, metrics, log, result);
      if (result.interrupted) return result;
    } else {
      // Checked above: best.h5 or checkpoint.h5 exists. The latest checkpoint tells how far
      // the run trained.
      const path = (await exists(checkpointPath)) ? checkpointPath : bestPath;
      const latest = await loadCheckpoint(path, { idxToWord: data.idx_to_word });
      model = latest.model;
      result.iterations = latest.solver?.iteration ?? 0;
      if (options.resume) await writeConfig(config);
    }
    // Evaluate the best checkpoint by CIDEr-D when there is one.
    let label = `latest (iter ${result.iterations})`;
    if (await exists(bestPath)) {
      const best = await loadCheckpoint(bestPath, { idxToWord: data.idx_to_word });
      model = best.model;
      label = `best (iter ${(best.solver?.iteration ?? best.info?.iteration) ?? "?"})`;
    }
    // Captioning for evaluation and samples runs on the workers too.
    const captioning = config.stages.some((st) => st === "evaluate" || st === "sample")
      ? createEngine(model, { workers: config.train.workers, backend: kernels().name })
      : null;
    const captioner: Captioner | undefined = captioning
      ? (features, o) => captioning.sample(features, o)
      : undefined;
    try {
      if (config.stages.includes("evaluate")) {
        for (const split of config.evaluate.splits) {
          const ev = await evaluateSplit(model, data, {
            split,
            numImages: config.evaluate.numImages,
            beamSize: config.evaluate.beamSize,
            maxLength: config.evaluate.maxLength,
            metrics: config.evaluate.metrics as Metric[],
            ...(captioner ? { captioner } : {}),
          });
          result.evaluations.push(ev);
          for (const [decoder, scores] of [["greedy", ev.greedy], ["beam", ev.beam]] as const) {
            if (!scores) continue;
            metrics.write({
              kind: "eval",
              iteration: result.iterations,
              split,
              checkpoint: label,
              decoder,
              numImages: ev.numImages,
              metrics: scores as Record<string, number>,
            });
          }
          log(formatEvaluation(ev));
        }
        await Deno.writeTextFile(
          join(runDir, RUN_FILES.evaluation),
          JSON.stringify({ checkpoint: label, evaluations: result.evaluations }, null, 2) + "\n",
        );
      }
      if (config.stages.includes("sample")) {
        const samples = result.evaluations[0]?.images.slice(0, SAMPLE_IMAGES) ??
          (await evaluateSplit(model, data, {
            split: "val",
            numImages: SAMPLE_IMAGES,
            beamSize: config.evaluate.beamSize,
            maxLength: config.evaluate.maxLength,
            metrics: [],
            ...(captioner ? { captioner } : {}),
          })).images;
        for (const s of samples) {
          log(`  image ${s.imageIdx}: ${s.beam ?? s.greedy}\n    reference: ${s.references[0]}`);
        }
        await Deno.writeTextFile(
          join(runDir, RUN_FILES.samples),
          JSON.stringify(samples, null, 2) + "\n",
        );
      }
    } finally {
      await captioning?.close();
    }
    if (config.stages.includes("report")) {
      // A report-only run shows the evaluation an earlier run of the evaluate stage saved.
      const saved = join(runDir, RUN_FILES.evaluation);
      if (!config.stages.includes("evaluate") && await exists(saved)) {
        const previous = JSON.parse(await Deno.readTextFile(saved));
        result.evaluations = previous.evaluations ?? [];
        label = previous.checkpoint ?? label;
      }
      result.reportPath = await writeRunReport(config, result.evaluations, label);
      log(`Report: ${result.reportPath}`);
    }
    return result;
  } finally {
    metrics.close();
  }
}

async function train(
  config: ExperimentConfig,
  data: LoadedCaptionData,
  options: RunOptions,
  metrics: MetricsLog,
  log: (line: string) => void,
  result: RunResult,
): Promise<CaptioningRNN<FloatDType>> {
  const runDir = config.output.dir;
  const checkpointPath = join(runDir, RUN_FILES.checkpoint);
  const bestPath = join(runDir, RUN_FILES.best);
  const t = config.train;
  // Temporary files of saves cut short by a kill: never valid checkpoints, safe to drop.
  const runFiles = [RUN_FILES.config, RUN_FILES.metrics].map((f) => join(runDir, f));
  for (const path of [checkpointPath, bestPath, ...runFiles]) {
    await removeStaleTemporaries(path);
  }
  const resumed = options.resume
    ? await loadCheckpoint(checkpointPath, { idxToWord: data.idx_to_word, model: config.model })
    : null;
  const savedRule = resumed?.solver?.optimizer.rule;
  if (savedRule !== undefined && savedRule !== t.updateRule) {
    throw new InputError(
      `Cannot resume from ${checkpointPath}: it was trained with train.updateRule "${savedRule}" ` +
        `but the experiment asks for "${t.updateRule}"; resume with --train.updateRule=${savedRule}, ` +
        `or start a new run with deno task train`,
    );
  }
  const model = resumed?.model ?? new CaptioningRNN({
    wordToIdx: data.word_to_idx,
    inputDim: data.train_features.shape[1],
    ...config.model,
  });
  // Workers beyond the fixed shard count would have no shard to compute.
  const requested = t.workers === "auto" ? navigator.hardwareConcurrency : t.workers;
  const workers = Math.min(requested, t.shards);
  if (workers < requested) {
    log(`Using ${workers} workers: train.shards (${t.shards}) limits how many can compute`);
  }
  // Streamed runs read training minibatches from the files in a loader worker; the batch order
  // is the in-memory sampler's for the same seed.
  const batches = config.data.stream
    ? await StreamBatches.open({
      baseDir: config.data.dir,
      batchSize: t.batchSize,
      pcaFeatures: config.data.pcaFeatures,
      seed: t.seed,
    })
    : undefined;
  if (batches) log(`Streaming training minibatches from ${config.data.dir} (loader worker)`);
  let engine: ReturnType<typeof createEngine>;
  try {
    engine = createEngine(model, {
      workers,
      shards: t.shards,
      backend: kernels().name,
      ...(options.faultAt ? { faultAt: options.faultAt } : {}),
    });
  } catch (e) {
    await batches?.close();
    throw e;
  }
  let best = -Infinity;
  let bestInfo = resumed?.info;
  if (typeof bestInfo?.cider === "number") best = bestInfo.cider;
  // Assigned below; the callbacks run only once training has started.
  let solver: CaptioningSolver = undefined as unknown as CaptioningSolver;
  let progressReporter: ProgressReporter = undefined as unknown as ProgressReporter;
  // The iteration of the checkpoint.h5 on disk (null: none yet), for messages after a failure.
  let savedIteration: number | null = resumed?.solver?.iteration ?? null;
  const save = async (path: string, info?: Record<string, unknown>) => {
    await saveCheckpoint(path, model, {
      solver: solver.getState(),
      experiment: config,
      ...(info ? { info } : {}),
    });
    if (path === checkpointPath) savedIteration = solver.iteration;
  };
  const quickEval = async (iteration: number) => {
    if (!data.val_captions) return;
    const ev = await evaluateSplit(model, data, {
      split: "val",
      numImages: Math.min(config.evaluate.numImages, QUICK_EVAL_IMAGES),
      beamSize: 1,
      maxLength: config.evaluate.maxLength,
      metrics: ["bleu4", "cider"],
      captioner: (features, o) => engine.sample(features, o),
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
    progressReporter.log(
      `  val (${ev.numImages} images, greedy): BLEU-4 ${formatScore(ev.greedy.bleu4)} CIDEr-D ${
        formatScore(cider)
      }` +
        (cider > best ? " (best so far)" : ""),
    );
    if (cider > best) {
      best = cider;
      bestInfo = { iteration, cider, bleu4: ev.greedy.bleu4 };
      await save(bestPath, bestInfo);
    }
  };
  let lastYield = performance.now();
  try {
    solver = makeSolver();
  } catch (e) {
    // Nothing else will close them: the workers would keep the process alive.
    await engine.close();
    await batches?.close();
    throw e;
  }
  function makeSolver(): CaptioningSolver {
    return new CaptioningSolver(model, data, {
      updateRule: t.updateRule,
      optimConfig: {
        learningRate: t.learningRate,
        momentum: t.momentum,
        decayRate: t.decayRate,
        beta1: t.beta1,
        beta2: t.beta2,
        epsilon: t.epsilon,
      },
      lrDecay: t.lrDecay,
      batchSize: t.batchSize,
      numEpochs: t.numEpochs,
      seed: t.seed,
      gradClip: t.gradClip,
      verbose: false,
      engine,
      ...(batches ? { batches } : {}),
      onIteration: async (info) => {
        // A step on this thread never returns to the event loop by itself; let it run now and
        // then so Ctrl-C (and timers) are seen between steps, not only at the next checkpoint.
        if (performance.now() - lastYield >= YIELD_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          lastYield = performance.now();
        }
        progressReporter.update(info.iteration, info.loss);
        const last = info.iteration === info.numIterations;
        if (info.iteration % t.printEvery === 0 || last || info.iteration === 1) {
          metrics.write({
            kind: "train",
            iteration: info.iteration,
            epoch: info.iteration / solver.iterationsPerEpoch,
            loss: info.loss,
            smoothedLoss: progressReporter.smoothedLoss,
            learningRate: info.learningRate,
          });
        }
        if (t.checkpointEvery > 0 && info.iteration % t.checkpointEvery === 0) {
          await save(checkpointPath, bestInfo);
        }
        if (t.evalEvery > 0 && info.iteration % t.evalEvery === 0) await quickEval(info.iteration);
      },
      onEpoch: async (info) => {
        if (info.valLoss !== null) {
          metrics.write({
            kind: "val",
            iteration: info.iteration,
            epoch: info.epoch,
            loss: info.valLoss,
          });
          progressReporter.log(
            `epoch ${info.epoch}: val loss ${info.valLoss.toFixed(4)}, lr ${
              info.learningRate.toExponential(2)
            }`,
          );
        }
        if (t.checkpointEvery === 0) await save(checkpointPath, bestInfo);
        if (t.evalEvery === 0) await quickEval(info.iteration);
      },
    });
  }
  progressReporter = new ProgressReporter({
    total: solver.numIterations,
    batchSize: t.batchSize,
    itersPerEpoch: solver.iterationsPerEpoch,
    printEvery: t.printEvery,
    ...(options.progressWrite ? { write: options.progressWrite } : {}),
    ...(options.isTTY !== undefined ? { isTTY: options.isTTY } : {}),
  });
  if (resumed) {
    try {
      if (resumed.solver) {
        solver.setState(resumed.solver);
        applyChangedHyperParameters(solver, resumed.experiment, config, log);
      }
      // The run's config.json changes only now that the checkpoint fits the (overridden) config.
      await writeConfig(config);
    } catch (e) {
      await solver.close();
      throw e;
    }
    log(`Resuming at iteration ${solver.iteration} of ${solver.numIterations}`);
  }
  log(
    `Training ${config.model.cellType} (H=${config.model.hiddenDim}, W=${config.model.wordvecDim}) on ` +
      `${data.train_captions.shape[0]} captions: ${solver.numIterations} iterations, ` +
      `batch ${t.batchSize}, ${workers} worker(s)`,
  );
  const kept = () =>
    savedIteration === null
      ? "no checkpoint was saved by this run yet"
      : `the last checkpoint (iteration ${savedIteration}) is ${checkpointPath}`;
  // The first Ctrl-C stops after the current step with a checkpoint; a second one quits at
  // once (a step that never ends must not trap the user; saves are atomic, so it is safe).
  let signalled = false;
  const stop = () => {
    if (!signalled) {
      signalled = true;
      solver.requestStop();
      progressReporter.log(
        "Stopping after this step to save a checkpoint (press Ctrl-C again to quit at once)",
      );
      return;
    }
    progressReporter.log(`Quitting at once; ${kept()}`);
    Deno.exit(130);
  };
  const signals: Deno.Signal[] = options.handleSignals === false ? [] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    try {
      await solver.train();
      // A last evaluation for best.h5 when the final iteration was not evaluated already, while
      // the engine's workers are still up.
      const every = t.evalEvery === 0 ? solver.iterationsPerEpoch : t.evalEvery;
      if (!solver.stopped && solver.iteration % every !== 0) await quickEval(solver.iteration);
    } catch (e) {
      if (e instanceof TrainingDivergedError) {
        throw new TrainingDivergedError(`${e.message}; ${kept()}`);
      }
      progressReporter.log(
        `Training stopped by an error after iteration ${solver.iteration}; ${kept()}` +
          (savedIteration === null ? "" : ` (resume with: deno task resume ${runDir})`),
      );
      throw e;
    } finally {
      progressReporter.finish();
      await solver.close();
    }
    result.iterations = solver.iteration;
    // Still listening, so a single Ctrl-C now does not cut the final save.
    await save(checkpointPath, bestInfo);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  }
  if (solver.stopped) {
    result.interrupted = true;
    log(
      `Interrupted at iteration ${solver.iteration} of ${solver.numIterations}; checkpoint saved to ` +
        `${checkpointPath}. Resume with: deno task resume ${runDir}`,
    );
    return model;
  }
  return model;
}

/** The optimizer options a resumed run may change (e.g. a lower learning rate after a divergence). */
const RESUMABLE_OPTIONS = [
  "learningRate",
  "momentum",
  "decayRate",
  "beta1",
  "beta2",
  "epsilon",
] as const;

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
  const before = (saved as Partial<ExperimentConfig> | undefined)?.train;
  if (!before) return;
  const t = config.train, cfg = solver.optimizer.config;
  for (const key of RESUMABLE_OPTIONS) {
    if (before[key] === undefined || before[key] === t[key]) continue;
    cfg[key] = key === "learningRate" ? t.learningRate * t.lrDecay ** solver.epoch : t[key];
    log(`Resuming with train.${key} ${t[key]} (was ${before[key]}): now ${cfg[key]}`);
  }
}
