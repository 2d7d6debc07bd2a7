/**
 * Every verb of the `recap` command line, defined once as data: how it is invoked, what it
 * does, and its options, one line each (name, type, default, range or choices, help, and an
 * example value that tests/cli_test.ts runs). The parser, the validation, each verb's
 * `--help` and the list of verbs in `deno task recap --help` all come from this table.
 *
 * Defaults that an experiment also has (the synthetic data's sizes, a checkpoint's beam
 * width) are read from the experiment schema, so the two never disagree.
 * @module
 */
import {
  type CliOption,
  type CliOptions,
  type CommandSpec,
  flag,
  HELP_OPTION,
  int,
  listOf,
  num,
  oneOf,
  path,
  required,
  str,
} from "./command_spec.ts";
import { DECODE_LIMITS, DECODE_METHODS, LENGTH_PENALTIES } from "../../model/decode_options.ts";
import { DEFAULT_DATA_DIRS } from "../config/config.ts";
import { experimentHelp, forEachOption, type OptionSpec } from "../config/schema.ts";
import { SPLITS } from "../data/caption_data.ts";

/** A verb of the command line: a command with a few words for the list of verbs. */
export interface VerbSpec<O extends CliOptions = CliOptions> extends CommandSpec<O> {
  /** What it does in a few words, for `deno task recap --help`. */
  readonly brief: string;
}

/** The experiment options, by dotted name (`$schema` is for editors, not a command line). */
const EXPERIMENT_OPTIONS = new Map<string, OptionSpec>();
forEachOption((p, spec) => {
  if (p[0] !== "$schema") EXPERIMENT_OPTIONS.set(p.join("."), spec);
});

/** The default of an experiment option. */
function experimentDefault<T>(name: string): T {
  const option = EXPERIMENT_OPTIONS.get(name);
  if (option === undefined) throw new Error(`The verb table names no experiment option ${name}`);
  return option.default as T;
}

/**
 * An option whose default is the checkpoint's saved experiment option `name`, or, for a
 * checkpoint that saved none, that option's default.
 */
function saved<O extends CliOption>(
  name: string,
  option: O,
): Omit<O, "default"> & { savedAs: string; default: number | string } {
  const fallback = experimentDefault<number | string | null>(name);
  if (fallback === null) {
    throw new Error(`Experiment option ${name} has no default to fall back on`);
  }
  // The saved option's range holds on the command line too.
  const { min, max } = EXPERIMENT_OPTIONS.get(name)!;
  return {
    ...option,
    ...(min !== undefined ? { min } : {}),
    ...(max !== undefined ? { max } : {}),
    savedAs: name,
    default: fallback,
  };
}

/** `train` and `resume` take every experiment option as `--section.option=value`. */
const EXPERIMENT_OVERRIDES = {
  usage: "[--section.option=value …]",
  names: [...EXPERIMENT_OPTIONS.keys()],
  help: experimentHelp(),
};

/** Options every verb takes. */
const COMMON = {
  debug: flag("Print the stack trace with an error"),
  help: HELP_OPTION,
};

/** The split option of the verbs that caption a dataset's images. */
const SPLIT = oneOf(
  SPLITS,
  "val",
  "Split whose images are captioned (test: imported datasets)",
  "train",
);

/** The dataset option of the verbs that read a checkpoint: the one it was trained on. */
const DATA_DIR = {
  ...path(
    undefined,
    "The dataset: the checkpoint's (default), or the one a results file is scored against",
    "datasets/synthetic",
  ),
  savedAs: "data.dir",
};

/** Where new images' features come from, for the verbs that read them. */
const FEATURES = {
  featuresDataset: str(
    undefined,
    "The dataset of an HDF5 features file (default: its only 2-D dataset, or features)",
    "features",
  ),
  ids: path(undefined, "A file naming the image (id or file name) of each feature row", "ids.txt"),
};

/**
 * The decoding controls of the verbs that caption, defaulting to the checkpoint's experiment
 * (its `evaluate` section). A control given turns its decoder on (see decoding_flags.ts).
 */
const DECODING = {
  nBest: saved(
    "evaluate.nBest",
    int(undefined, 1, "Beam captions per image, best first (beam search)", "2"),
  ),
  lengthPenalty: saved(
    "evaluate.lengthPenalty",
    oneOf(
      LENGTH_PENALTIES,
      undefined,
      "Beam search ranks finished captions by log p, log p / ((5 + len) / 6)^α or log p / len",
      "average",
    ),
  ),
  lengthAlpha: saved(
    "evaluate.lengthAlpha",
    num(undefined, 0, "The α of --lengthPenalty gnmt (higher = longer captions)", "1.5"),
  ),
  beamGroups: saved(
    "evaluate.beamGroups",
    int(undefined, 1, "Diverse beam search: groups of beams (beam search)", "2"),
  ),
  diversity: saved(
    "evaluate.diversity",
    num(undefined, 0, "Diverse beam search: penalty for a word an earlier group chose", "2"),
  ),
  plainBeam: {
    ...flag("Beam search without greedy's caption among the candidates (faster)"),
    savedAs: "evaluate.plainBeam",
  },
  blockTrigrams: {
    ...flag("Never repeat a trigram within a caption"),
    savedAs: "evaluate.blockTrigrams",
  },
  suppressUnk: { ...flag("Never write <UNK>"), savedAs: "evaluate.suppressUnk" },
  temperature: saved(
    "evaluate.temperature",
    num(undefined, 0.01, "Sampling temperature (sampling)", "0.7"),
  ),
  topK: saved(
    "evaluate.topK",
    int(undefined, 0, "Sampling: the k likeliest words only (0 = all)", "3"),
  ),
  topP: saved("evaluate.topP", {
    ...num(
      undefined,
      0.01,
      "Sampling: the likeliest words of total probability p (1 = all)",
      "0.9",
    ),
    max: 1,
  }),
};

/** The decoding controls of `caption`: one caption per image, so no n-best list. */
const { nBest: _nBest, ...ONE_CAPTION_DECODING } = DECODING;

/** A verb's entry, invoked as `deno task <name>`. */
function verb<O extends CliOptions>(name: string, spec: Omit<VerbSpec<O>, "command">): VerbSpec<O> {
  return { command: `deno task ${name}`, ...spec };
}

/**
 * The verbs, keyed by name as typed after `deno task` (`dataset synth` is two words).
 *
 * @example
 * ```ts
 * import { VERBS } from "./verbs.ts";
 * console.log(VERBS.sample.options.maxLength.savedAs); // evaluate.maxLength
 * ```
 */
export const VERBS = {
  train: verb("train", {
    args: ["[experiment.json]"],
    passThrough: EXPERIMENT_OVERRIDES,
    brief: "run an experiment: train, evaluate, sample, report",
    summary: "Runs the experiment's stages (train, evaluate, sample, report). With no file it " +
      "runs the default experiment: an LSTM on the synthetic dataset (generated on first use), " +
      "then evaluation and report.html in runs/default. Every option of the file can be " +
      "overridden on the command line, typed like its default: --train.learningRate=1e-3, " +
      "--model.cellType rnn, --evaluate.splits=train,val. A run directory that already holds " +
      "a trained run is never overwritten: continue it with deno task resume, or pass --force " +
      "to start over.",
    options: {
      force: flag(
        "Start over in a run directory that holds a trained run (deletes its checkpoints)",
      ),
      ...COMMON,
    },
  }),
  resume: verb("resume", {
    args: ["<run dir>"],
    passThrough: EXPERIMENT_OVERRIDES,
    brief: "continue an interrupted run",
    summary: "Continues a run from its checkpoint.h5 with its config.json, exactly as if it had " +
      "not stopped. Overrides change the continued run, e.g. a lower --train.learningRate " +
      "after a divergence, or more --train.numEpochs.",
    options: { ...COMMON },
  }),
  evaluate: verb("evaluate", {
    args: ["[checkpoint.h5]"],
    brief:
      "score a checkpoint or a results file: BLEU-1..4, CIDEr-D and ROUGE-L beside the baseline",
    summary: "Scores the checkpoint's captions of a split (greedy; beam search when the beam " +
      "is wider than 1; sampled with --sample) with every metric against all references of " +
      "each image, beside the most-frequent-caption baseline, on the data it was trained on " +
      "(or --data.dir), with the caption diagnostics. Decoding options default to the " +
      "checkpoint's experiment; a beam-search option given asks for beam search, a sampling " +
      "option for sampling. With --results instead of a checkpoint, scores a results file in " +
      "the COCO format ([{image_id, caption}], recap's or any captioner's) against the --split " +
      "of --data.dir. Writes the corpus scores and each image's (as pycocoevalcap's imgToEval) " +
      "to --out.",
    options: {
      results: path(
        undefined,
        "A COCO-format results file to score instead of a checkpoint",
        "results.json",
      ),
      split: SPLIT,
      beamSize: saved("evaluate.beamSize", int(undefined, 1, "Beam width (1 = greedy)", "3")),
      numImages: saved("evaluate.numImages", int(undefined, 1, "Images to score", "7")),
      maxLength: saved("evaluate.maxLength", int(undefined, 1, "Longest caption, words", "5")),
      sample: { ...flag("Also score one sampled caption per image"), savedAs: "evaluate.sample" },
      seed: saved("evaluate.seed", int(undefined, 0, "Seed of the sampled captions", "7")),
      ...DECODING,
      "data.dir": DATA_DIR,
      out: path(
        undefined,
        "Where to write the scores (default: <checkpoint or results file>.<split>.scores.json)",
        "scores.json",
      ),
      ...COMMON,
    },
  }),
  sample: verb("sample", {
    args: ["<checkpoint.h5>"],
    brief: "print captions of random images beside a reference",
    summary: "Prints the checkpoint's captions of random images beside a reference caption: " +
      "greedy, beam search (--beamSize 2 or more, or any beam-search option; --nBest prints " +
      "the n best), or sampled (--decoder sample, or any sampling option).",
    options: {
      n: { ...int(10, 1, "Images to caption", "3"), max: 10_000 },
      split: SPLIT,
      decoder: oneOf(
        DECODE_METHODS,
        undefined,
        "How to caption (default: beam when --beamSize > 1 or a beam option is given, sample when a sampling option is, else greedy)",
        "sample",
      ),
      beamSize: {
        ...int(undefined, 1, "Beam width (default 1: greedy)", "2"),
        max: DECODE_LIMITS.beamSize,
      },
      samples: {
        ...int(undefined, 1, "Captions sampled per image (sampling; default 1)", "3"),
        max: DECODE_LIMITS.samples,
      },
      maxLength: saved("evaluate.maxLength", int(undefined, 1, "Longest caption, words", "5")),
      seed: int(0, 0, "Seed of the choice of images and of the sampled captions", "7"),
      ...DECODING,
      "data.dir": DATA_DIR,
      ...COMMON,
    },
  }),
  caption: verb("caption", {
    args: ["<checkpoint.h5>"],
    brief: "caption images' features into a COCO results file",
    summary: "Captions every row of a features file (a 2-D .npy, an HDF5 dataset, or a " +
      "directory of per-image .npy files) with the checkpoint, on the worker pool, and writes " +
      "the COCO results format, [{image_id, caption}]: image ids from --ids, else a " +
      "directory's file names, else row numbers. With --split instead of --features, captions " +
      "that split of a dataset (--data.dir, default the checkpoint's), with its image ids. " +
      "The features must have the width the checkpoint was trained on. Decoding options " +
      "default to the checkpoint's experiment, as for evaluate.",
    options: {
      features: path(undefined, "The image features to caption", "features.h5"),
      ...FEATURES,
      split: oneOf(
        SPLITS,
        undefined,
        "Caption this split of the dataset instead of --features",
        "val",
      ),
      "data.dir": DATA_DIR,
      decoder: oneOf(
        DECODE_METHODS,
        undefined,
        "How to caption (default: beam when --beamSize > 1 or a beam option is given, sample when a sampling option is, else greedy)",
        "beam",
      ),
      beamSize: saved("evaluate.beamSize", int(undefined, 1, "Beam width (1 = greedy)", "1")),
      maxLength: saved("evaluate.maxLength", int(undefined, 1, "Longest caption, words", "5")),
      seed: saved("evaluate.seed", int(undefined, 0, "Seed of the sampled captions", "7")),
      ...ONE_CAPTION_DECODING,
      out: path("results.json", "Where to write the results", "captions.json"),
      quiet: flag("Print only where the results went"),
      ...COMMON,
    },
  }),
  "dataset import": verb("dataset import", {
    args: ["<annotations.json>", "[more.json …]"],
    brief: "import a captioning dataset and its features",
    summary: "Writes a dataset recap trains on (deno task train --data.dir=<dir>) from " +
      "annotation files — a Karpathy split file (dataset_coco.json, dataset_flickr8k.json, " +
      "dataset_flickr30k.json; restval joins train) or COCO captions files, one per split — " +
      "and the images' features: a 2-D .npy (float32 or float64), an HDF5 dataset, or a " +
      "directory of per-image .npy named by image id or file stem. Feature rows follow the " +
      "annotations' image order unless --ids names each row's image. The vocabulary comes " +
      "from the train captions; evaluation scores against every raw caption. Written to a " +
      "partial directory and moved into place; a dataset in --dir is replaced only with --force.",
    options: {
      features: required(path(undefined, "The image features", "features.h5")),
      dir: required(path(undefined, "Where to write the dataset", "datasets/mine")),
      split: listOf(
        SPLITS,
        "COCO captions files: the split of each file, in order (default: from the file names)",
        "train,val",
      ),
      ...FEATURES,
      minCount: int(5, 1, "Words seen fewer times in the train captions become <UNK>", "2"),
      maxLength: int(16, 1, "Words kept per caption (longer ones are cut)", "12"),
      force: flag("Replace the dataset already in --dir (refused otherwise)"),
      quiet: flag("Print only the summary"),
      ...COMMON,
    },
  }),
  "dataset synth": verb("dataset synth", {
    args: [],
    brief: "write the synthetic dataset in the COCO layout",
    summary: "Writes a synthetic COCO captioning dataset (same files, datasets, dtypes and " +
      "tokens as datasets/coco_captioning) from a seeded scene grammar, with SVG drawings of " +
      "each image. The defaults are those of the experiments' synthetic data (data.synthetic), " +
      "so it writes what deno task train would generate. A directory that holds a dataset is " +
      "never overwritten without --force.",
    options: {
      dir: path(DEFAULT_DATA_DIRS.synthetic, "Where to write the dataset", "datasets/mine"),
      train: {
        ...int(experimentDefault<number>("data.synthetic.numTrain"), 1, "Train images", "12"),
        max: EXPERIMENT_OPTIONS.get("data.synthetic.numTrain")!.max,
      },
      val: {
        ...int(experimentDefault<number>("data.synthetic.numVal"), 1, "Validation images", "3"),
        max: EXPERIMENT_OPTIONS.get("data.synthetic.numVal")!.max,
      },
      seed: int(experimentDefault<number>("data.synthetic.seed"), 0, "Seed of the data", "4"),
      "full-features": flag("Also write the 4096-d train2014_vgg16_fc7.h5 / val2014_vgg16_fc7.h5"),
      "no-images": flag("Skip the SVG drawings under images/ (the URL files still list them)"),
      "min-count": int(5, 1, "Words seen fewer times in train captions become <UNK>", "2"),
      force: flag("Replace the dataset files already in --dir (refused otherwise)"),
      quiet: flag("Print only the summary"),
      ...COMMON,
    },
  }),
} as const;

/** The name of a verb: `"train"`, …, `"dataset synth"`. */
export type VerbName = keyof typeof VERBS;
