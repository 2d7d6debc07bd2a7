/**
 * The verbs that use a trained checkpoint or score captions: `evaluate` scores a checkpoint's
 * captions (or a results file's), `sample` prints some, `caption` captions new images'
 * features into a results file. They take their defaults from the experiment saved in the
 * checkpoint (see `savedAs` in verbs.ts); `evaluate` and `sample` read the data it was
 * trained on.
 * @module
 */
import { kernels } from "../../layers/kernels/mod.ts";
import { Rng } from "../../layers/random.ts";
import { type FloatDType, Tensor } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import { decodeCaptions } from "../../model/decode.ts";
import { SAMPLE_CHUNK } from "../../model/sampling.ts";
import type { SampleOptions } from "../../model/decode_options.ts";
import { sampleOverRanks } from "../../workers/distributed_engine.ts";
import { DEFAULT_MPI_TIMEOUT_S } from "../../workers/mpi/communicator.ts";
import { createEngine } from "../../workers/pool.ts";
import { checkExperiment, type ExperimentConfig } from "../config/config.ts";
import { EXPERIMENT_SCHEMA, METRIC_NAMES } from "../config/schema.ts";
import { loadCocoData } from "../data/coco.ts";
import {
  gatherMinibatch,
  type ImageId,
  type LoadedCaptionData,
  requireCaptions,
  requireSplits,
  type Split,
  splitOf,
} from "../data/caption_data.ts";
import { loadSplitImages } from "../data/dataset_checks.ts";
import { datasetLayout } from "../data/dataset_layout.ts";
import {
  featureFileNames,
  type FeatureSource,
  openFeatures,
} from "../data/features/feature_source.ts";
import { parseImageId, readIdList } from "../data/image_ids.ts";
import { InputError } from "../errors.ts";
import {
  cleanCaption,
  decoderOptions,
  evaluateSplit,
  formatEvaluation,
  formatScoreTable,
} from "../eval/evaluate.ts";
import type { Metric } from "../eval/metrics/mod.ts";
import {
  type CaptionResult,
  evaluationScores,
  readResults,
  scoreResults,
  writeResults,
  writeScores,
} from "../eval/results.ts";
import { selectConfiguredBackend } from "../run/backend.ts";
import { finishJob, openJob } from "../run/job.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { type CommandLine, type OptionValues, withSavedDefaults } from "./args.ts";
import { chooseDecoder, resolveDecodingFlags } from "./decoding_flags.ts";
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
  const { model, experiment, values: resolved } = await checkpointWithDefaults(
    options,
    values,
    path,
  );
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
  requireSplits(data, [resolved.split as Split], "command line: --split", dir);
  requireCaptions(data, resolved.split as Split, dir, `--split ${resolved.split}`);
  const width = data.train_features.shape[1], inputDim = model.config.inputDim;
  if (width !== inputDim) {
    throw new InputError(
      `Cannot load checkpoint ${path}: it reads ${inputDim}-d image features but ${dir} has ` +
        `${width}-d ones (data.pcaFeatures?); pass the --data.dir it was trained on`,
    );
  }
  // The checkpoint's vocabulary must be the data's.
  const saved = model.idxToWord;
  const words = data.idx_to_word;
  if (saved.length !== words.length || saved.some((w, i) => w !== words[i])) {
    await loadCheckpoint(path, { idxToWord: words }); // throws, naming the first difference
  }
  return { model, data, experiment, values: resolved };
}

/**
 * Loads a checkpoint, fills in the defaults its saved experiment gives, and selects the kernels
 * it was trained with.
 */
async function checkpointWithDefaults<O extends typeof VERBS.caption.options | CheckpointOptions>(
  options: O,
  values: OptionValues<O>,
  path: string,
): Promise<{
  model: CaptioningModel<FloatDType>;
  experiment: ExperimentConfig | undefined;
  values: OptionValues<O, true>;
}> {
  const ckpt = await loadCheckpoint(path);
  const experiment = ckpt.experiment as ExperimentConfig | undefined;
  if (experiment !== undefined) {
    try {
      checkExperiment(experiment, "its saved experiment");
    } catch (e) {
      throw new InputError(
        `Cannot load checkpoint ${path}: ${(e as Error).message}; pass --data.dir and the ` +
          `options yourself, or use a checkpoint written by this recap`,
        { cause: e },
      );
    }
  }
  // "auto" (or no saved choice) defers to RECAP_BACKEND when it is set.
  selectConfiguredBackend(experiment?.train?.backend ?? "auto");
  return {
    model: ckpt.model as CaptioningModel<FloatDType>,
    experiment,
    values: withSavedDefaults(options, values, experiment),
  };
}

/** Where `evaluate` writes its scores by default: beside what it scored. */
function scoresPath(scored: string, split: string): string {
  return `${scored.replace(/\.(h5|json)$/i, "")}.${split}.scores.json`;
}

/**
 * `deno task evaluate`: the scores (BLEU-1..4, CIDEr-D, ROUGE-L) of a checkpoint's captions,
 * with the caption diagnostics, or of a results file's, beside the baseline; writes them, with
 * each image's, to a scores file.
 * @param commandLine The parsed command line (see `VERBS.evaluate`).
 * @returns The exit code, 0.
 * @throws {InputError} For a checkpoint, results file or data that cannot be used.
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
  const [checkpoint] = commandLine.positionals, { results } = commandLine.values;
  if (results !== undefined) {
    if (checkpoint !== undefined) {
      throw new InputError(
        `command line: --results: score either a checkpoint (${checkpoint}) or a results file, not both`,
      );
    }
    return await evaluateResults(commandLine.values, results);
  }
  if (checkpoint === undefined) {
    throw new InputError(
      "command line: missing [checkpoint.h5]: give a checkpoint, or --results FILE with " +
        "--data.dir; see --help",
    );
  }
  const { model, data, experiment, values } = await checkpointWithData(
    VERBS.evaluate.options,
    commandLine,
  );
  const { beamSize, controls, samplingAsked } = resolveDecodingFlags(
    commandLine.values,
    values,
    2,
  );
  // Under mpiexec every rank decodes its share of the images; rank 0 alone prints and writes.
  const job = openJob(
    experiment?.train?.distributed?.mpi ?? "auto",
    experiment?.train?.workerTimeout ?? DEFAULT_MPI_TIMEOUT_S,
  );
  const here = {
    sample: (f: Tensor<FloatDType>, o: SampleOptions) => model.sampleWithScores(f, o),
  };
  const ev = await evaluateSplit(model, data, {
    split: values.split,
    beamSize,
    numImages: values.numImages,
    maxLength: values.maxLength,
    metrics:
      (experiment?.evaluate?.metrics ?? EXPERIMENT_SCHEMA.evaluate.metrics.default) as Metric[],
    decoding: controls,
    sample: values.sample || samplingAsked,
    ...(job.comm && job.size > 1
      ? { captioner: (f, o) => sampleOverRanks(here, job.comm!, f, o) }
      : {}),
  });
  if (job.writes) {
    console.log(`${checkpoint}: ${formatEvaluation(ev)}`);
    const out = values.out ?? scoresPath(checkpoint, values.split);
    await writeScores(out, evaluationScores(ev, data, checkpoint, values["data.dir"]!));
    console.log(`Scores of each image: ${out}`);
  }
  await finishJob(job);
  return 0;
}

/** `evaluate --results`: scores a results file against a split of `--data.dir`. */
async function evaluateResults(
  values: OptionValues<typeof VERBS.evaluate.options>,
  results: string,
): Promise<number> {
  for (const name of ["beamSize", "numImages", "maxLength"] as const) {
    if (values[name] !== undefined) {
      throw new InputError(
        `command line: --${name}: is for captioning a checkpoint; a results file has its captions`,
      );
    }
  }
  const dir = values["data.dir"];
  if (dir === undefined) {
    throw new InputError(
      "command line: --data.dir: missing; give the dataset whose references score the results",
    );
  }
  const entries = await readResults(results);
  const data = await loadCocoData({ baseDir: dir });
  requireSplits(data, [values.split], "command line: --split", dir);
  const scores = scoreResults(entries, data, {
    split: values.split,
    metrics: METRIC_NAMES,
    source: results,
    dataset: dir,
  });
  const { noReferences, otherSplits } = scores.leftOut;
  const left = [
    ...(noReferences ? [`${noReferences} without references`] : []),
    ...(otherSplits ? [`${otherSplits} of other splits`] : []),
  ];
  const skipped = left.length ? `; ${left.join(", ")} left out` : "";
  console.log(
    formatScoreTable(
      `${results}: Evaluation on ${values.split} (${scores.numImages} images${skipped}):`,
      [["baseline", scores.baseline.metrics], ["results", scores.scored.results.metrics]],
    ),
  );
  const out = values.out ?? scoresPath(results, values.split);
  await writeScores(out, scores);
  console.log(`Scores of each image: ${out}`);
  return 0;
}

/**
 * What `caption` captions: `--features` (rows named by `--ids` when given), or the features of
 * a dataset's `--split` with its image ids.
 */
async function captionSource(
  values: OptionValues<typeof VERBS.caption.options, true>,
  experiment: ExperimentConfig | undefined,
): Promise<{ source: FeatureSource; ids?: ImageId[] }> {
  const { split, features } = values;
  if ((split === undefined) === (features === undefined)) {
    throw new InputError(
      `command line: ${
        split === undefined
          ? "--features: missing"
          : "--split: give --features or --split, not both"
      }; ` +
        "caption a features file (--features FILE), or a split of a dataset (--split test)",
    );
  }
  if (split !== undefined) {
    for (const name of ["ids", "featuresDataset"] as const) {
      if (values[name] !== undefined) {
        throw new InputError(
          `command line: --${name}: is for --features; a dataset's split has its ids`,
        );
      }
    }
    const dir = values["data.dir"];
    if (dir === undefined) {
      throw new InputError(
        "command line: --data.dir: the checkpoint does not say which data it was trained on; pass --data.dir",
      );
    }
    const layout = await datasetLayout(dir, experiment?.data?.pcaFeatures ?? true);
    if (!layout.splits.includes(split)) {
      throw new InputError(
        `command line: --split: ${dir} has no "${split}" split (it has ${
          layout.splits.join(", ")
        })`,
      );
    }
    const source = await openFeatures(layout.featuresFiles[split]!);
    try {
      const { ids } = await loadSplitImages(layout, split, source.rows);
      return { source, ids: ids ?? Array.from({ length: source.rows }, (_, i) => i) };
    } catch (e) {
      source.close();
      throw e;
    }
  }
  const lines = values.ids === undefined ? undefined : await readIdList(values.ids, "--ids");
  const isDir = await Deno.stat(features!).then((s) => s.isDirectory, () => false);
  const source = await openFeatures(features!, {
    ...(values.featuresDataset !== undefined ? { dataset: values.featuresDataset } : {}),
    datasetOption: "--featuresDataset",
    ...(isDir && lines ? { rowNames: lines.map((l) => featureFileNames(l)) } : {}),
  });
  if (lines && lines.length !== source.rows) {
    source.close();
    throw new InputError(
      `${values.ids}: ${lines.length} lines but ${source.name} has ${source.rows} rows; ` +
        `--ids names the image of each feature row, one line per row`,
    );
  }
  return { source, ...(lines ? { ids: lines.map(parseImageId) } : {}) };
}

/** Feature rows captioned at a time: whole chunks of the decoder, a few MB of features. */
const CAPTION_ROWS = SAMPLE_CHUNK * 8;

/**
 * `deno task caption`: captions every row of a features file (or a dataset split's) with a
 * checkpoint, on the worker pool, and writes a COCO-format results file.
 * @param commandLine The parsed command line (see `VERBS.caption`).
 * @returns The exit code, 0.
 * @throws {InputError} For a checkpoint, features or ids that cannot be used.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { captionCommand } from "./checkpoint_commands.ts";
 * import { VERBS } from "./verbs.ts";
 * await captionCommand(parseCommandLine(VERBS.caption, ["best.h5", "--features", "new.npy"]));
 * ```
 */
export async function captionCommand(
  commandLine: CommandLine<typeof VERBS.caption.options>,
): Promise<number> {
  const [checkpoint] = commandLine.positionals;
  const { model, experiment, values } = await checkpointWithDefaults(
    VERBS.caption.options,
    commandLine.values,
    checkpoint,
  );
  const { source, ids: givenIds } = await captionSource(values, experiment);
  try {
    const D = model.config.inputDim;
    if (source.dim !== D) {
      throw new InputError(
        `${source.name}: ${source.dim}-d features, but ${checkpoint} was trained on ${D}-d ` +
          `ones; caption features extracted the way its training data's were`,
      );
    }
    const ids: ImageId[] = givenIds ?? source.rowNames?.map(parseImageId) ??
      Array.from({ length: source.rows }, (_, i) => i);
    const flags = resolveDecodingFlags(commandLine.values, { ...values, nBest: 1 }, 1);
    const decoder = chooseDecoder(commandLine.values, flags);
    const options = decoderOptions(decoder, flags.beamSize, values.maxLength, {
      ...flags.controls,
      seed: values.seed,
    });
    const engine = createEngine(model, {
      workers: experiment?.train?.workers ?? "auto",
      backend: kernels().name,
    });
    // Under mpiexec every rank decodes its share of each block; rank 0 alone writes.
    const job = openJob(
      experiment?.train?.distributed?.mpi ?? "auto",
      experiment?.train?.workerTimeout ?? DEFAULT_MPI_TIMEOUT_S,
    );
    const sample = job.comm && job.size > 1
      ? (f: Tensor<"float32">, o: SampleOptions) => sampleOverRanks(engine, job.comm!, f, o)
      : (f: Tensor<"float32">, o: SampleOptions) => engine.sample(f, o);
    const results: CaptionResult[] = [];
    try {
      const block = new Float32Array(Math.min(CAPTION_ROWS, source.rows) * D);
      for (let r0 = 0; r0 < source.rows; r0 += CAPTION_ROWS) {
        const r1 = Math.min(source.rows, r0 + CAPTION_ROWS);
        await source.readRows(r0, r1, block);
        const features = new Tensor<"float32">(block.subarray(0, (r1 - r0) * D), [r1 - r0, D]);
        // A sampled caption's stream is numbered by its image's row, whatever the block.
        const sampled = await sample(
          features,
          decoder === "sample" ? { ...options, firstImage: r0 } : options,
        );
        decodeCaptions(sampled.captions, model.idxToWord).forEach((text, i) => {
          results.push({ image_id: ids[r0 + i], caption: cleanCaption(text) });
        });
        if (!values.quiet && job.writes) console.error(`caption: ${r1}/${source.rows} images`);
      }
    } finally {
      await engine.close();
    }
    if (job.writes) {
      await writeResults(values.out, results);
      console.log(`Wrote ${results.length} captions to ${values.out}`);
    }
    await finishJob(job);
    return 0;
  } finally {
    source.close();
  }
}

/**
 * `deno task sample`: a checkpoint's captions of random images beside a reference caption.
 * @param commandLine The parsed command line (see `VERBS.sample`).
 * @returns The exit code, 0.
 * @throws {InputError} For a checkpoint or data that cannot be used, or contradictory flags.
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
  const given = commandLine.values;
  const { split, n, maxLength } = values;
  const flags = resolveDecodingFlags(given, { ...values, beamSize: values.beamSize ?? 1 }, 1);
  const decoder = chooseDecoder(given, flags, ["samples"]);
  const rng = new Rng(values.seed);
  const { captions, imageIdxs, references: raw, imageIds } = splitOf(data, split);
  const size = captions.shape[0];
  if (size === 0) {
    throw new InputError(
      `command line: --split: the ${split} split of ${
        values["data.dir"]
      } has no captions to sample beside; caption its images with deno task caption --split ${split}`,
    );
  }
  const rows = Array.from({ length: n }, () => rng.randint(size));
  const batch = gatherMinibatch(data, split, rows);
  const options = {
    ...decoderOptions(decoder, flags.beamSize, maxLength, { ...flags.controls, seed: values.seed }),
    ...(decoder === "sample" && given.samples !== undefined ? { samples: given.samples } : {}),
  };
  const generated = decodeCaptions(model.sample(batch.features, options), model.idxToWord);
  const m = generated.length / n;
  const encoded = decodeCaptions(batch.captions, data.idx_to_word).map(cleanCaption);
  batch.imageIdxs.forEach((img, i) => {
    const url = batch.urls?.[i];
    // The raw caption of the row drawn (its rank among the image's rows), when the data has them.
    let rank = 0;
    for (let r = 0; r < rows[i]; r++) if (imageIdxs.data[r] === img) rank++;
    const reference = raw ? raw[img][rank] : encoded[i];
    const name = imageIds ? `${imageIds[img]}` : `${img}`;
    const lines = generated.slice(i * m, (i + 1) * m).map((g) => `  generated: ${cleanCaption(g)}`);
    console.log(
      `${split} image ${name}${url ? ` (${url})` : ""}\n${
        lines.join("\n")
      }\n  reference: ${reference}`,
    );
  });
  return 0;
}
