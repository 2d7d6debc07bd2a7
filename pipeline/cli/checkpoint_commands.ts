/**
 * The verbs that use a trained checkpoint: `evaluate` scores its captions, `sample` prints
 * some. Both read the data the checkpoint was trained on and take their defaults from the
 * experiment saved in it (see `savedAs` in verbs.ts).
 * @module
 */
import { selectKernels } from "../../layers/kernels/mod.ts";
import { Rng } from "../../layers/random.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { decodeCaptions } from "../../model/decode.ts";
import type { ExperimentConfig } from "../config/config.ts";
import { EXPERIMENT_SCHEMA } from "../config/schema.ts";
import { loadCocoData } from "../data/coco.ts";
import { gatherMinibatch, type LoadedCaptionData } from "../data/caption_data.ts";
import { InputError } from "../errors.ts";
import { cleanCaption, evaluateSplit, formatEvaluation } from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { type CommandLine, type OptionValues, withSavedDefaults } from "./args.ts";
import { VERBS } from "./verbs.ts";

type CheckpointOptions = typeof VERBS.evaluate.options | typeof VERBS.sample.options;

/** A checkpoint's model with the data it was trained on, and the verb's resolved options. */
interface CheckpointWithData<O extends CheckpointOptions> {
  model: CaptioningModel<FloatDType>;
  data: LoadedCaptionData;
  experiment: ExperimentConfig | undefined;
  values: OptionValues<O, true>;
}

/**
 * Loads the checkpoint a verb names with the data it was trained on (or the one given by
 * --data.dir), and fills in the defaults its saved experiment gives.
 */
async function checkpointWithData<O extends CheckpointOptions>(
  options: O,
  { values, positionals: [path] }: CommandLine<O>,
): Promise<CheckpointWithData<O>> {
  const ckpt = await loadCheckpoint(path);
  const experiment = ckpt.experiment as ExperimentConfig | undefined;
  const resolved = withSavedDefaults(options, values, experiment);
  const dir = resolved["data.dir"] as string | undefined; // both verbs' DATA_DIR
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
  return { model: ckpt.model as CaptioningModel<FloatDType>, data, experiment, values: resolved };
}

/**
 * `deno task evaluate`: BLEU-1..4 and CIDEr-D of a checkpoint's captions beside the baseline.
 * @param commandLine The parsed command line (see `VERBS.evaluate`).
 * @returns The exit code, 0.
 * @throws {InputError} For a checkpoint or data that cannot be used.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { evaluateCommand } from "./checkpoint_commands.ts";
 * import { VERBS } from "./verbs.ts";
 * await evaluateCommand(parseCommandLine(VERBS.evaluate, ["runs/default/best.h5"]));
 * ```
 */
export async function evaluateCommand(
  commandLine: CommandLine<typeof VERBS.evaluate.options>,
): Promise<number> {
  const { model, data, experiment, values } = await checkpointWithData(
    VERBS.evaluate.options,
    commandLine,
  );
  const ev = await evaluateSplit(model, data, {
    split: values.split,
    beamSize: values.beamSize,
    numImages: values.numImages,
    maxLength: values.maxLength,
    metrics:
      (experiment?.evaluate?.metrics ?? EXPERIMENT_SCHEMA.evaluate.metrics.default) as Metric[],
  });
  console.log(`${commandLine.positionals[0]}: ${formatEvaluation(ev)}`);
  return 0;
}

/**
 * `deno task sample`: a checkpoint's captions of random images beside a reference caption.
 * @param commandLine The parsed command line (see `VERBS.sample`).
 * @returns The exit code, 0.
 * @throws {InputError} For a checkpoint or data that cannot be used.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { sampleCommand } from "./checkpoint_commands.ts";
 * import { VERBS } from "./verbs.ts";
 * await sampleCommand(parseCommandLine(VERBS.sample, ["runs/default/best.h5", "--n", "3"]));
 * ```
 */
export async function sampleCommand(
  commandLine: CommandLine<typeof VERBS.sample.options>,
): Promise<number> {
  const { model, data, values } = await checkpointWithData(VERBS.sample.options, commandLine);
  const { split, n, beamSize, maxLength } = values;
  const rng = new Rng(values.seed);
  const size = data[`${split}_captions`].shape[0];
  const batch = gatherMinibatch(data, split, Array.from({ length: n }, () => rng.randint(size)));
  const generated = decodeCaptions(
    model.sample(batch.features, { beamSize, maxLength }),
    model.idxToWord,
  );
  const references = decodeCaptions(batch.captions, data.idx_to_word);
  batch.imageIdxs.forEach((img, i) => {
    const url = batch.urls?.[i];
    console.log(
      `${split} image ${img}${url ? ` (${url})` : ""}\n  generated: ${
        cleanCaption(generated[i])
      }\n  reference: ${cleanCaption(references[i])}`,
    );
  });
  return 0;
}
