/**
 * Runs an experiment: checks the run directory, prepares the data (generating the synthetic
 * set when it is absent), then the stages in order — train (train_stage.ts), evaluate (COCO
 * metrics of the best checkpoint against the trivial baseline), sample, report.
 *
 * A run directory holds: config.json, metrics.jsonl, checkpoint.h5 (latest), best.h5 (best
 * CIDEr-D on val), evaluation.json, samples.json and report.html.
 * @module
 */
import { join } from "node:path";
import { kernels, selectKernels } from "../../layers/kernels/mod.ts";
import type { BackendName } from "../../layers/kernels/types.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { createEngine, type PoolOptions } from "../../workers/pool.ts";
import type { ExperimentConfig, StageName } from "../config/config.ts";
import type { LoadedCaptionData } from "../data/caption_data.ts";
import { InputError } from "../errors.ts";
import {
  type CaptionedImage,
  type Captioner,
  evaluateSplit,
  formatEvaluation,
  type SplitEvaluation,
} from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import { exists } from "../io/files.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { prepareData, SAMPLE_IMAGES } from "./data.ts";
import {
  ensureWritableDir,
  guardExistingRun,
  prepareMetricsLog,
  RUN_FILES,
  writeConfig,
} from "./files.ts";
import { MetricsLog } from "./metrics_log.ts";
import { writeRunReport } from "./report_data.ts";
import { trainStage } from "./train_stage.ts";

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
  /** The compute worker module of the pool (see `PoolOptions.workerUrl`; default recap's). */
  workerUrl?: PoolOptions["workerUrl"];
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
  const stages = new Set<StageName>(config.stages);
  const runDir = config.output.dir;
  const resume = options.resume ?? false;
  await checkRunDir(config, stages, resume, options.overwrite ?? false);
  // Only a fresh training run defines the run: a resumed run's config.json is replaced once
  // its checkpoint is known to fit, and evaluate/report-only runs leave it be.
  if (!resume && stages.has("train")) await writeConfig(config);
  // "auto" defers to RECAP_BACKEND when it is set.
  const choice = config.train.backend === "auto" ? undefined : config.train.backend as BackendName;
  log(`recap: run ${config.name} in ${runDir} (backend: ${selectKernels(choice).name})`);
  const data = await prepareData(config, log);
  const result: RunResult = { runDir, interrupted: false, iterations: 0, evaluations: [] };
  if (stages.has("train")) {
    await prepareMetricsLog(
      join(runDir, RUN_FILES.metrics),
      resume ? join(runDir, RUN_FILES.checkpoint) : null,
    );
  }
  const metrics = MetricsLog.open(runDir);
  try {
    // 1. Train, or find how far an earlier run trained.
    let trainedModel: CaptioningModel<FloatDType> | undefined;
    if (stages.has("train")) {
      const trained = await trainStage({
        config,
        data,
        metrics,
        log,
        resume,
        handleSignals: options.handleSignals ?? true,
        ...(options.progressWrite ? { progressWrite: options.progressWrite } : {}),
        ...(options.isTTY !== undefined ? { isTTY: options.isTTY } : {}),
        ...(options.workerUrl ? { workerUrl: options.workerUrl } : {}),
      });
      result.iterations = trained.iterations;
      if (trained.interrupted) return { ...result, interrupted: true };
      trainedModel = trained.model;
    } else {
      result.iterations = await trainedIterations(config, data);
      if (resume) await writeConfig(config);
    }
    if (!stages.has("evaluate") && !stages.has("sample") && !stages.has("report")) return result;
    // 2. Evaluate and sample the best checkpoint by CIDEr-D (the latest when there is none).
    const { model, label } = await checkpointToEvaluate(config, data, result, trainedModel);
    if (stages.has("evaluate") || stages.has("sample")) {
      const captioning = createEngine(model, {
        workers: config.train.workers,
        backend: kernels().name,
      });
      const captioner: Captioner = (features, o) => captioning.sample(features, o);
      try {
        if (stages.has("evaluate")) {
          result.evaluations = await evaluateStage(config, model, data, captioner, label, {
            metrics,
            log,
            iteration: result.iterations,
          });
        }
        if (stages.has("sample")) {
          await sampleStage(config, model, data, captioner, result.evaluations, log);
        }
      } finally {
        await captioning.close();
      }
    }
    // 3. The report.
    if (stages.has("report")) {
      result.reportPath = await reportStage(config, stages, result.evaluations, label);
      log(`Report: ${result.reportPath}`);
    }
    return result;
  } finally {
    metrics.close();
  }
}

/**
 * Checks the run directory before any work: writable; a fresh training run does not overwrite
 * a trained one (unless `overwrite`); a run without the train stage has a checkpoint to use.
 */
async function checkRunDir(
  config: ExperimentConfig,
  stages: Set<StageName>,
  resume: boolean,
  overwrite: boolean,
): Promise<void> {
  const runDir = config.output.dir;
  await ensureWritableDir(runDir);
  if (stages.has("train") && !resume) await guardExistingRun(config, overwrite);
  if (stages.has("train")) return;
  const trained = await exists(join(runDir, RUN_FILES.best)) ||
    await exists(join(runDir, RUN_FILES.checkpoint));
  if (!trained) {
    throw new InputError(
      `${runDir}: no trained checkpoint for the ${config.stages.join(", ")} stage` +
        `${
          config.stages.length > 1 ? "s" : ""
        }; add "train" to stages, or set output.dir to a trained run`,
    );
  }
}

/** How far an earlier run trained: the latest checkpoint's iteration (checked: one exists). */
async function trainedIterations(
  config: ExperimentConfig,
  data: LoadedCaptionData,
): Promise<number> {
  const checkpoint = join(config.output.dir, RUN_FILES.checkpoint);
  const path = (await exists(checkpoint)) ? checkpoint : join(config.output.dir, RUN_FILES.best);
  const latest = await loadCheckpoint(path, { idxToWord: data.idx_to_word });
  return latest.solver?.iteration ?? 0;
}

/**
 * The model to evaluate, with its label: best.h5 when it exists, else the latest parameters
 * (those just trained, or the latest checkpoint's).
 */
async function checkpointToEvaluate(
  config: ExperimentConfig,
  data: LoadedCaptionData,
  result: RunResult,
  trained: CaptioningModel<FloatDType> | undefined,
): Promise<{ model: CaptioningModel<FloatDType>; label: string }> {
  const best = join(config.output.dir, RUN_FILES.best);
  if (await exists(best)) {
    const ckpt = await loadCheckpoint(best, { idxToWord: data.idx_to_word });
    const iteration = ckpt.solver?.iteration ?? ckpt.info?.iteration ?? "?";
    return { model: ckpt.model, label: `best (iter ${iteration})` };
  }
  const model = trained ?? (await loadCheckpoint(join(config.output.dir, RUN_FILES.checkpoint), {
    idxToWord: data.idx_to_word,
  })).model;
  return { model, label: `latest (iter ${result.iterations})` };
}

/** Scores each split of `evaluate.splits` (greedy and beam), logs it, saves evaluation.json. */
async function evaluateStage(
  config: ExperimentConfig,
  model: CaptioningModel<FloatDType>,
  data: LoadedCaptionData,
  captioner: Captioner,
  label: string,
  out: { metrics: MetricsLog; log: (line: string) => void; iteration: number },
): Promise<SplitEvaluation[]> {
  const evaluations: SplitEvaluation[] = [];
  for (const split of config.evaluate.splits) {
    const ev = await evaluateSplit(model, data, {
      split,
      numImages: config.evaluate.numImages,
      beamSize: config.evaluate.beamSize,
      maxLength: config.evaluate.maxLength,
      metrics: config.evaluate.metrics as Metric[],
      captioner,
    });
    evaluations.push(ev);
    for (const [decoder, scores] of [["greedy", ev.greedy], ["beam", ev.beam]] as const) {
      if (!scores) continue;
      out.metrics.write({
        kind: "eval",
        iteration: out.iteration,
        split,
        checkpoint: label,
        decoder,
        numImages: ev.numImages,
        metrics: scores as Record<string, number>,
      });
    }
    out.log(formatEvaluation(ev));
  }
  await Deno.writeTextFile(
    join(config.output.dir, RUN_FILES.evaluation),
    JSON.stringify({ checkpoint: label, evaluations }, null, 2) + "\n",
  );
  return evaluations;
}

/** Prints the captions of a few val images beside a reference, and saves samples.json. */
async function sampleStage(
  config: ExperimentConfig,
  model: CaptioningModel<FloatDType>,
  data: LoadedCaptionData,
  captioner: Captioner,
  evaluations: SplitEvaluation[],
  log: (line: string) => void,
): Promise<void> {
  const samples: CaptionedImage[] = evaluations[0]?.images.slice(0, SAMPLE_IMAGES) ??
    (await evaluateSplit(model, data, {
      split: "val",
      numImages: SAMPLE_IMAGES,
      beamSize: config.evaluate.beamSize,
      maxLength: config.evaluate.maxLength,
      metrics: [],
      captioner,
    })).images;
  for (const s of samples) {
    log(`  image ${s.imageIdx}: ${s.beam ?? s.greedy}\n    reference: ${s.references[0]}`);
  }
  await Deno.writeTextFile(
    join(config.output.dir, RUN_FILES.samples),
    JSON.stringify(samples, null, 2) + "\n",
  );
}

/**
 * Writes report.html. A run without the evaluate stage shows the evaluation an earlier run of
 * it saved in evaluation.json.
 */
async function reportStage(
  config: ExperimentConfig,
  stages: Set<StageName>,
  evaluations: SplitEvaluation[],
  label: string,
): Promise<string> {
  const saved = join(config.output.dir, RUN_FILES.evaluation);
  if (!stages.has("evaluate") && await exists(saved)) {
    const previous = JSON.parse(await Deno.readTextFile(saved));
    return await writeRunReport(
      config,
      previous.evaluations ?? [],
      previous.checkpoint ?? label,
    );
  }
  return await writeRunReport(config, evaluations, label);
}
