/**
 * Runs an experiment: checks the run directory, prepares the data (generating the synthetic
 * set when it is absent), then the stages in order — train (train_stage.ts), evaluate (COCO
 * metrics of the best checkpoint against the trivial baseline), sample, report.
 *
 * A run directory holds: config.json, metrics.jsonl, checkpoint.h5 (latest), best.h5 (best
 * CIDEr-D on val), with self-critical training scst_best.h5 (its best) and cider_df.json (the
 * training document frequencies), evaluation.json, samples.json and report.html.
 * @module
 */
import { join } from "node:path";
import { kernels } from "../../layers/kernels/mod.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { sampleOverRanks } from "../../workers/distributed_engine.ts";
import { createEngine, type PoolOptions } from "../../workers/pool.ts";
import { checkExperiment, type ExperimentConfig, type StageName } from "../config/config.ts";
import type { LoadedCaptionData } from "../data/caption_data.ts";
import { InputError } from "../errors.ts";
import {
  type CaptionedImage,
  type Captioner,
  type DecodingControls,
  evaluateSplit,
  formatEvaluation,
  type SplitEvaluation,
} from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import { exists } from "../io/files.ts";
import { loadCheckpoint, runIteration } from "../train/checkpoint.ts";
import { selectConfiguredBackend } from "./backend.ts";
import { ensureDataset, prepareData, SAMPLE_IMAGES } from "./data.ts";
import { ensureWritableDir, existingCheckpoints, RUN_FILES, writeConfig } from "./files.ts";
import { describeLayout, finishJob, type Job, openJob, rankHosts, rankZeroFirst } from "./job.ts";
import { lockRunDir } from "./lock.ts";
import { MetricsLog } from "./metrics_log.ts";
import { type EvaluatedCheckpoint, writeRunReport } from "./report_data.ts";
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
  /** The evaluations of the evaluate stage (of the checkpoint the run produced last). */
  evaluations: SplitEvaluation[];
  /** The other checkpoints' evaluations, side by side (the cross-entropy one, with SCST). */
  compared?: EvaluatedCheckpoint[];
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
  checkExperiment(config);
  const job = openJob(config.train.distributed.mpi, config.train.workerTimeout);
  // In an MPI job rank 0 alone prints and writes; the others train their shards.
  const quiet = () => {};
  const log = job.writes ? options.log ?? ((line: string) => console.log(line)) : quiet;
  const stages = new Set<StageName>(config.stages);
  const runDir = config.output.dir;
  const resume = options.resume ?? false;
  const replaced = await checkRunDir(config, stages, resume, options.overwrite ?? false);
  if (job.size > 1) log(describeLayout(await rankHosts(job)));
  const lock = job.writes ? await lockRunDir(runDir) : null;
  let result: RunResult;
  try {
    result = await runStages(config, stages, {
      ...options,
      ...(job.writes ? {} : { progressWrite: quiet }),
      log,
      resume,
      job,
    }, replaced);
  } finally {
    await lock?.release();
  }
  await finishJob(job);
  return result;
}

/**
 * The stages, with the run directory checked and locked. Nothing is written into it before
 * the data is ready and training has started (see train_stage.ts), so a run that cannot
 * start leaves an earlier run in the directory as it was.
 */
async function runStages(
  config: ExperimentConfig,
  stages: Set<StageName>,
  options: RunOptions & { log: (line: string) => void; resume: boolean; job: Job },
  replaced: readonly string[],
): Promise<RunResult> {
  const { log, resume, job } = options, runDir = config.output.dir;
  log(
    `recap: run ${config.name} in ${runDir} (backend: ${
      selectConfiguredBackend(config.train.backend)
    })`,
  );
  // Rank 0 first generates the synthetic dataset if it is absent; then every rank loads it.
  await rankZeroFirst(job, () => job.writes ? ensureDataset(config, log) : Promise.resolve());
  const data = await prepareData(config, log);
  const result: RunResult = { runDir, interrupted: false, iterations: 0, evaluations: [] };
  let metrics: MetricsLog | null = null;
  try {
    // 1. Train, or find how far an earlier run trained.
    let trainedModel: CaptioningModel<FloatDType> | undefined;
    if (stages.has("train")) {
      const trained = await trainStage({
        config,
        data,
        replaced,
        log,
        resume,
        job,
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
      if (resume && job.writes) await writeConfig(config);
    }
    if (!stages.has("evaluate") && !stages.has("sample") && !stages.has("report")) return result;
    // In an MPI job every rank decodes its share of the images; rank 0 alone writes.
    metrics = job.writes ? MetricsLog.open(runDir) : new MetricsLog(() => {});
    // 2. Evaluate and sample the best checkpoint by CIDEr-D (the latest when there is none);
    // with self-critical training, the cross-entropy one beside it. Rank 0 wrote them: the
    // other ranks read them after it.
    const checkpoints = await rankZeroFirst(
      job,
      () => checkpointsToEvaluate(config, data, result, trainedModel),
    );
    const evaluated: EvaluatedCheckpoint[] = [];
    for (const [i, { model, label }] of checkpoints.entries()) {
      const primary = i === checkpoints.length - 1;
      if (!stages.has("evaluate") && !(primary && stages.has("sample"))) continue;
      const captioning = createEngine(model, {
        workers: config.train.workers,
        backend: kernels().name,
        workerTimeout: config.train.workerTimeout,
      });
      const captioner: Captioner = job.comm && job.size > 1
        ? (features, o) => sampleOverRanks(captioning, job.comm!, features, o)
        : (features, o) => captioning.sample(features, o);
      try {
        if (stages.has("evaluate")) {
          const evaluations = await evaluateStage(config, model, data, captioner, label, {
            metrics,
            log,
            iteration: result.iterations,
          });
          evaluated.push({ label, evaluations });
          if (primary) result.evaluations = evaluations;
        }
        if (primary && stages.has("sample")) {
          await sampleStage(config, model, data, captioner, result.evaluations, log, job.writes);
        }
      } finally {
        await captioning.close();
      }
    }
    if (!job.writes) return result;
    if (stages.has("evaluate")) {
      result.compared = evaluated.slice(0, -1);
      await Deno.writeTextFile(
        join(config.output.dir, RUN_FILES.evaluation),
        JSON.stringify(
          {
            checkpoint: evaluated.at(-1)!.label,
            evaluations: evaluated.at(-1)!.evaluations,
            ...(evaluated.length > 1
              ? {
                compared: evaluated.slice(0, -1).map((e) => ({
                  checkpoint: e.label,
                  evaluations: e.evaluations,
                })),
              }
              : {}),
          },
          null,
          2,
        ) + "\n",
      );
    }
    // 3. The report.
    if (stages.has("report")) {
      result.reportPath = await reportStage(config, stages, evaluated, checkpoints.at(-1)!.label);
      log(`Report: ${result.reportPath}`);
    }
    return result;
  } finally {
    metrics?.close();
  }
}

/**
 * Checks the run directory before any work: writable; a fresh training run does not overwrite
 * a trained one (unless `overwrite`); a run without the train stage has a checkpoint to use.
 * @returns The old run's checkpoints that a fresh `overwrite` run replaces once it starts.
 */
async function checkRunDir(
  config: ExperimentConfig,
  stages: Set<StageName>,
  resume: boolean,
  overwrite: boolean,
): Promise<string[]> {
  const runDir = config.output.dir;
  await ensureWritableDir(runDir);
  const from = config.train.scst.from;
  if (stages.has("train") && from !== null && !resume && !(await exists(from))) {
    throw new InputError(
      `train.scst.from: ${from}: no such checkpoint; train one first (deno task train), or ` +
        `set train.scst.from to a checkpoint.h5 or best.h5 of a trained run`,
    );
  }
  if (stages.has("train")) return resume ? [] : await existingCheckpoints(config, overwrite);
  const trained = await exists(join(runDir, RUN_FILES.best)) ||
    await exists(join(runDir, RUN_FILES.scstBest)) ||
    await exists(join(runDir, RUN_FILES.checkpoint));
  if (!trained) {
    throw new InputError(
      `${runDir}: no trained checkpoint for the ${config.stages.join(", ")} stage` +
        `${
          config.stages.length > 1 ? "s" : ""
        }; add "train" to stages, or set output.dir to a trained run`,
    );
  }
  return [];
}

/** How far an earlier run trained: the latest checkpoint's iteration (checked: one exists). */
async function trainedIterations(
  config: ExperimentConfig,
  data: LoadedCaptionData,
): Promise<number> {
  const runDir = config.output.dir;
  for (const name of [RUN_FILES.checkpoint, RUN_FILES.scstBest, RUN_FILES.best]) {
    const path = join(runDir, name);
    if (await exists(path)) {
      return runIteration(await loadCheckpoint(path, { idxToWord: data.idx_to_word }));
    }
  }
  return 0;
}

/** A model to evaluate, with what the report calls it. */
interface ToEvaluate {
  model: CaptioningModel<FloatDType>;
  label: string;
}

/**
 * The models to evaluate, the one the run produced last: best.h5 when it exists, else the
 * latest parameters (those just trained, or the latest checkpoint's). With self-critical
 * training, its scst_best.h5 (or the latest), after the cross-entropy checkpoint it started
 * from (this run's best.h5, or `train.scst.from`).
 */
async function checkpointsToEvaluate(
  config: ExperimentConfig,
  data: LoadedCaptionData,
  result: RunResult,
  trained: CaptioningModel<FloatDType> | undefined,
): Promise<ToEvaluate[]> {
  const runDir = config.output.dir, scst = config.train.scst;
  const load = (path: string) => loadCheckpoint(path, { idxToWord: data.idx_to_word });
  const latest = async () => trained ?? (await load(join(runDir, RUN_FILES.checkpoint))).model;
  const best = join(runDir, RUN_FILES.best);
  if (scst.numEpochs === 0) {
    if (await exists(best)) {
      const ckpt = await load(best);
      return [{ model: ckpt.model, label: `best (iter ${runIteration(ckpt) || "?"})` }];
    }
    return [{ model: await latest(), label: `latest (iter ${result.iterations})` }];
  }
  const out: ToEvaluate[] = [];
  const crossEntropy = scst.from ?? best;
  if (await exists(crossEntropy)) {
    const ckpt = await load(crossEntropy);
    const where = scst.from === null ? "best" : crossEntropy;
    out.push({ model: ckpt.model, label: `cross-entropy ${where} (iter ${runIteration(ckpt)})` });
  }
  const scstBest = join(runDir, RUN_FILES.scstBest);
  if (await exists(scstBest)) {
    const ckpt = await load(scstBest);
    out.push({ model: ckpt.model, label: `self-critical best (iter ${runIteration(ckpt)})` });
  } else {
    out.push({ model: await latest(), label: `self-critical latest (iter ${result.iterations})` });
  }
  return out;
}

/**
 * Scores each split of `evaluate.splits` (greedy, beam, and sampled when asked, with the
 * decoding controls) and logs it.
 */
async function evaluateStage(
  config: ExperimentConfig,
  model: CaptioningModel<FloatDType>,
  data: LoadedCaptionData,
  captioner: Captioner,
  label: string,
  out: { metrics: MetricsLog; log: (line: string) => void; iteration: number },
): Promise<SplitEvaluation[]> {
  const evaluations: SplitEvaluation[] = [];
  const e = config.evaluate;
  for (const split of e.splits) {
    const ev = await evaluateSplit(model, data, {
      split,
      numImages: e.numImages,
      beamSize: e.beamSize,
      maxLength: e.maxLength,
      metrics: e.metrics as Metric[],
      captioner,
      decoding: decodingControls(e),
      sample: e.sample,
    });
    evaluations.push(ev);
    for (const decoder of ["greedy", "beam", "sample"] as const) {
      const scores = ev[decoder];
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
    out.log(`Checkpoint ${label}:`);
    out.log(formatEvaluation(ev));
  }
  return evaluations;
}

/**
 * The decoding controls of an experiment's evaluate section.
 * @param e The evaluate section.
 * @returns The controls `evaluateSplit` takes.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "../config/config.ts";
 * import { decodingControls } from "./run.ts";
 * const cfg = resolveExperiment({ evaluate: { blockTrigrams: true } }, "x.json");
 * console.log(decodingControls(cfg.evaluate).blockTrigrams); // true
 * ```
 */
export function decodingControls(e: ExperimentConfig["evaluate"]): DecodingControls {
  const { nBest, lengthPenalty, lengthAlpha, beamGroups, diversity, plainBeam } = e;
  const { blockTrigrams, suppressUnk } = e;
  const { temperature, topK, topP, seed } = e;
  return {
    nBest,
    lengthPenalty,
    lengthAlpha,
    beamGroups,
    diversity,
    plainBeam,
    blockTrigrams,
    suppressUnk,
    temperature,
    topK,
    topP,
    seed,
  };
}

/** Prints the captions of a few val images beside a reference; saves samples.json when `writes`. */
async function sampleStage(
  config: ExperimentConfig,
  model: CaptioningModel<FloatDType>,
  data: LoadedCaptionData,
  captioner: Captioner,
  evaluations: SplitEvaluation[],
  log: (line: string) => void,
  writes: boolean,
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
  if (!writes) return;
  await Deno.writeTextFile(
    join(config.output.dir, RUN_FILES.samples),
    JSON.stringify(samples, null, 2) + "\n",
  );
}

/**
 * Writes report.html. A run without the evaluate stage shows the evaluations an earlier run of
 * it saved in evaluation.json.
 */
async function reportStage(
  config: ExperimentConfig,
  stages: Set<StageName>,
  evaluated: EvaluatedCheckpoint[],
  label: string,
): Promise<string> {
  const saved = join(config.output.dir, RUN_FILES.evaluation);
  if (!stages.has("evaluate") && await exists(saved)) {
    const previous = JSON.parse(await Deno.readTextFile(saved));
    const compared = (previous.compared ?? []) as { checkpoint: string; evaluations: [] }[];
    return await writeRunReport(config, [
      ...compared.map((c) => ({ label: c.checkpoint, evaluations: c.evaluations })),
      { label: previous.checkpoint ?? label, evaluations: previous.evaluations ?? [] },
    ]);
  }
  return await writeRunReport(config, evaluated.length ? evaluated : [{ label, evaluations: [] }]);
}
