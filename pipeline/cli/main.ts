/**
 * The `recap` command line: one entry module, one verb per `deno task`.
 *
 *   deno task train [experiment.json] [--train.learningRate=1e-3 …] [--force]
 *   deno task resume <run dir> [--section.option=value …]
 *   deno task evaluate <checkpoint.h5> [--split val] [--beamSize 3] [--numImages 500]
 *   deno task sample <checkpoint.h5> [--n 10] [--split val] [--beamSize 1] [--maxLength 30]
 *   deno task dataset synth [--dir … --train N --val N --seed S] [--force]
 *
 * Exit codes: 0 success, 2 bad input or config (a one-line message, no stack trace unless
 * --debug), 1 internal error or a diverged run, 130 interrupted (a checkpoint was saved).
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { selectKernels } from "../../layers/kernels/mod.ts";
import { Rng } from "../../layers/random.ts";
import type { CaptioningRNN } from "../../model/captioning_rnn.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { type FloatDType, Tensor } from "../../layers/tensor.ts";
import { decodeCaptions } from "../../model/decode.ts";
import { loadCocoData } from "../data/coco.ts";
import {
  type ExperimentConfig,
  loadExperiment,
  parseOverrides,
  resolveExperiment,
} from "../config/config.ts";
import { experimentHelp } from "../config/schema.ts";
import { datasetMain } from "./dataset.ts";
import { InputError } from "../errors.ts";
import { cleanCaption, evaluateSplit, formatEvaluation } from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import { RUN_FILES, runExperiment } from "../run/run.ts";
import { TrainingDivergedError } from "../train/solver.ts";

const USAGE = `recap: train and evaluate image-captioning RNNs (CS231n) from experiment files

Usage:
  deno task train [experiment.json] [--section.option=value …]   run an experiment
  deno task resume <run dir>                                     continue an interrupted run
  deno task evaluate <checkpoint.h5> [--split val --beamSize 3 --numImages 500 --maxLength 30]
  deno task sample <checkpoint.h5> [--n 10 --split val --beamSize 1]
  deno task dataset synth [--dir datasets/synthetic --train 4000 --val 500]

With no experiment file, train runs the default experiment: an LSTM on the synthetic dataset
(generated on first use), then evaluation and report.html in runs/default.
Add --debug to any command for stack traces; --help after a verb for its options.`;

const TRAIN_HELP =
  `Usage: deno task train [experiment.json] [--section.option=value …] [--force] [--debug]

Runs the experiment's stages (train, evaluate, sample, report). Every option of the file can be
overridden on the command line, typed like its default: --train.learningRate=1e-3,
--model.cellType rnn, --evaluate.splits=train,val. A run directory that already holds a trained
run is never overwritten: continue it with deno task resume, or pass --force to start over.

`;

/**
 * Runs the CLI and returns the process exit code.
 * @param args The command-line arguments (verb first).
 * @returns 0 on success, 2 for bad input, 1 for an internal error, 130 when interrupted.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["train", "experiments/overfit_lstm.json"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  const rest = args.filter((a) => a !== "--debug");
  const [verb, ...params] = rest;
  try {
    switch (verb) {
      case "train":
        return await trainCommand(params);
      case "resume":
        return await resumeCommand(params);
      case "evaluate":
        return await evaluateCommand(params);
      case "sample":
        return await sampleCommand(params);
      case "dataset":
        return await datasetMain(debug ? [...params, "--debug"] : params);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return verb === undefined ? 2 : 0;
      default:
        throw new InputError(
          `unknown command "${verb}"; expected train, resume, evaluate, sample or dataset`,
        );
    }
  } catch (e) {
    if (debug) console.error(e);
    if (e instanceof InputError) {
      if (!debug) console.error(`error: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof TrainingDivergedError) {
      if (!debug) console.error(`error: ${e.message}`);
      return 1;
    }
    const io = fileSystemProblem(e);
    if (io !== null) {
      if (!debug) console.error(`error: ${io}`);
      return 2;
    }
    if (!debug) console.error(`internal error: ${(e as Error)?.stack ?? e}`);
    return 1;
  }
}

/**
 * A file-system failure (full or read-only disk, missing permission, a path that is not a
 * directory) as a one-line message with what to do, or null for any other error: these are
 * problems of the machine, not of recap, so they get exit code 2 and no stack trace.
 */
function fileSystemProblem(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const errno = /\(os error (\d+)\)/.exec(e.message)?.[1];
  const fsError = e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.NotADirectory ||
    e instanceof Deno.errors.IsADirectory || e instanceof Deno.errors.AlreadyExists ||
    e instanceof Deno.errors.NotFound;
  if (errno === undefined && !fsError) return null;
  const message = e.message.split("\n")[0];
  if (errno === "28") return `${message}; free some disk space and run again`;
  if (errno === "30") return `${message}; use a writable directory (data.dir or output.dir)`;
  return `${message}; check that the path exists and that you may write there`;
}

async function trainCommand(params: string[]): Promise<number> {
  if (params.includes("--help") || params.includes("-h")) {
    console.log(TRAIN_HELP + experimentHelp());
    return 0;
  }
  const force = params.includes("--force");
  const args = params.filter((p) => p !== "--force");
  const file = args[0] !== undefined && !args[0].startsWith("--") ? args[0] : undefined;
  const overrides = file ? args.slice(1) : args;
  const config = file
    ? await loadExperiment(file, overrides)
    : resolveExperiment(parseOverrides(overrides), "default.json");
  return exitCodeOf(await runExperiment(config, { overwrite: force }));
}

async function resumeCommand(params: string[]): Promise<number> {
  if (params.includes("--help") || params.length === 0) {
    console.log(
      "Usage: deno task resume <run dir> [--section.option=value …]\n\n" +
        "Continues a run from its checkpoint.h5 with its config.json, exactly as if it had not " +
        "stopped.\nOverrides change the continued run, e.g. a lower --train.learningRate after " +
        "a divergence,\nor more --train.numEpochs.",
    );
    return params.length === 0 ? 2 : 0;
  }
  const runDir = params[0];
  const configPath = join(runDir, RUN_FILES.config);
  const checkpointPath = join(runDir, RUN_FILES.checkpoint);
  for (const path of [configPath, checkpointPath]) {
    try {
      await Deno.stat(path);
    } catch {
      throw new InputError(
        `${path}: not found; pass the directory of a run started with deno task train`,
      );
    }
  }
  const config = await loadExperiment(configPath, params.slice(1));
  // The run is the directory given, wherever it was trained (it may have been moved).
  config.output.dir = runDir;
  return exitCodeOf(await runExperiment(config, { resume: true }));
}

function exitCodeOf(result: { interrupted: boolean }): number {
  return result.interrupted ? 130 : 0;
}

/** Loads a checkpoint with the data it was trained on (or the one given by --data.dir). */
async function checkpointWithData(path: string, dataDir: string | undefined) {
  const ckpt = await loadCheckpoint(path);
  const experiment = ckpt.experiment as ExperimentConfig | undefined;
  const dir = dataDir ?? experiment?.data?.dir;
  if (!dir) {
    throw new InputError(
      `${path}: the checkpoint does not say which data it was trained on; pass --data.dir`,
    );
  }
  // The same training subset as the run, so the baseline is the run's baseline.
  const maxTrain = experiment?.data?.maxTrain;
  const data = await loadCocoData({
    baseDir: dir,
    pcaFeatures: experiment?.data?.pcaFeatures ?? true,
    ...(typeof maxTrain === "number" ? { maxTrain, rng: experiment?.train?.seed ?? 0 } : {}),
  });
  // The checkpoint's vocabulary must be the data's.
  const saved = ckpt.model.idxToWord;
  const words = data.idx_to_word;
  if (saved.length !== words.length || saved.some((w, i) => w !== words[i])) {
    await loadCheckpoint(path, { idxToWord: words }); // throws, naming the first difference
  }
  // "auto" (or no saved choice) defers to RECAP_BACKEND when it is set.
  const backend = experiment?.train?.backend;
  selectKernels(backend === undefined || backend === "auto" ? undefined : backend);
  return { model: ckpt.model as CaptioningRNN<FloatDType>, data, experiment };
}

function intOption(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new InputError(
      `command line: --${name}: expected an integer >= ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function splitOption(value: string | undefined): "train" | "val" {
  const split = value ?? "val";
  if (split !== "train" && split !== "val") {
    throw new InputError(
      `command line: --split: expected "train" or "val", got ${JSON.stringify(split)}`,
    );
  }
  return split;
}

/** Parses a verb's `--name value` options; every option is a string, plus --help. */
function parseVerbArgs(
  params: string[],
  names: string[],
): { values: Record<string, string | undefined> & { help?: boolean }; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const name of names) options[name] = { type: "string" };
  try {
    const { values, positionals } = parseArgs({ args: params, options, allowPositionals: true });
    return {
      values: values as Record<string, string | undefined> & { help?: boolean },
      positionals,
    };
  } catch (e) {
    throw new InputError(`command line: ${(e as Error).message}`);
  }
}

async function evaluateCommand(params: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(params, [
    "split",
    "beamSize",
    "numImages",
    "maxLength",
    "data.dir",
  ]);
  if (values.help || positionals.length !== 1) {
    console.log(
      "Usage: deno task evaluate <checkpoint.h5> [--split val] [--beamSize 3] [--numImages 500] " +
        "[--maxLength 30] [--data.dir DIR]\n\nScores the checkpoint's captions with BLEU-1..4 and CIDEr-D " +
        "against all references, beside the most-frequent-caption baseline.",
    );
    return values.help ? 0 : 2;
  }
  const { model, data, experiment } = await checkpointWithData(positionals[0], values["data.dir"]);
  const ev = await evaluateSplit(model, data, {
    split: splitOption(values.split),
    beamSize: intOption(values.beamSize, "beamSize", experiment?.evaluate?.beamSize ?? 2),
    numImages: intOption(values.numImages, "numImages", experiment?.evaluate?.numImages ?? 500),
    maxLength: intOption(values.maxLength, "maxLength", experiment?.evaluate?.maxLength ?? 30),
    metrics:
      (experiment?.evaluate?.metrics ?? ["bleu1", "bleu2", "bleu3", "bleu4", "cider"]) as Metric[],
  });
  console.log(`${positionals[0]}: ${formatEvaluation(ev)}`);
  return 0;
}

async function sampleCommand(params: string[]): Promise<number> {
  const { values, positionals } = parseVerbArgs(params, [
    "n",
    "split",
    "beamSize",
    "seed",
    "data.dir",
  ]);
  if (values.help || positionals.length !== 1) {
    console.log(
      "Usage: deno task sample <checkpoint.h5> [--n 10] [--split val] [--beamSize 1] [--maxLength 30] [--seed 0] [--data.dir DIR]\n\n" +
        "Prints captions of random images beside a reference caption.",
    );
    return values.help ? 0 : 2;
  }
  const { model, data, experiment } = await checkpointWithData(positionals[0], values["data.dir"]);
  const split = splitOption(values.split);
  const n = intOption(values.n, "n", 10);
  const beamSize = intOption(values.beamSize, "beamSize", 1);
  const maxLength = intOption(values.maxLength, "maxLength", experiment?.evaluate?.maxLength ?? 30);
  const rng = new Rng(intOption(values.seed, "seed", 0, 0));
  const caps = data[`${split}_captions`], idxs = data[`${split}_image_idxs`];
  const rows = Array.from({ length: n }, () => rng.randint(caps.shape[0]));
  const feats = data[`${split}_features`], d = feats.shape[1];
  const features = new Float32Array(n * d);
  rows.forEach((r, i) =>
    features.set(feats.data.subarray(idxs.data[r] * d, (idxs.data[r] + 1) * d), i * d)
  );
  const generated = decodeCaptions(
    model.sample(new Tensor<"float32">(features, [n, d]), { beamSize, maxLength }),
    model.idxToWord,
  );
  const t1 = caps.shape[1];
  rows.forEach((r, i) => {
    const ref = decodeCaptions(
      new Tensor<"int32">(caps.data.slice(r * t1, (r + 1) * t1), [1, t1]),
      data.idx_to_word,
    )[0];
    const url = data[`${split}_urls`][idxs.data[r]];
    console.log(
      `${split} image ${idxs.data[r]}${url ? ` (${url})` : ""}\n  generated: ${
        cleanCaption(generated[i])
      }\n  reference: ${cleanCaption(ref)}`,
    );
  });
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
