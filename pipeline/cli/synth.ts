/**
 * `deno task dataset synth`: the command line of the synthetic dataset writer.
 *
 * Its defaults are those of the experiments' synthetic data (`datasets/synthetic`, 4000 train /
 * 500 val images, seed 0), so a bare `deno task dataset synth` writes what `deno task train`
 * would generate. It never overwrites a dataset unless given `--force`, and writes into
 * `<dir>.partial-<pid>` first, so an interrupted generation never leaves a half dataset.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { CAPTIONS_FILE, featuresFile, urlsFile, VOCAB_FILE } from "../data/coco_layout.ts";
import { DEFAULT_DATA_DIRS } from "../config/config.ts";
import { EXPERIMENT_SCHEMA } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { writeSyntheticDataset } from "../data/synth/writer.ts";

const SYNTHETIC = EXPERIMENT_SCHEMA.data.synthetic;

/** The defaults of `deno task dataset synth`: those of the experiments' synthetic data. */
export const SYNTH_DEFAULTS: {
  readonly dir: string;
  readonly numTrain: number;
  readonly numVal: number;
  readonly seed: number;
} = {
  dir: DEFAULT_DATA_DIRS.synthetic,
  numTrain: SYNTHETIC.numTrain.default as number,
  numVal: SYNTHETIC.numVal.default as number,
  seed: SYNTHETIC.seed.default as number,
};

/** The entries of a dataset directory the writer writes (and `--force` replaces). */
const DATASET_ENTRIES = [
  CAPTIONS_FILE,
  VOCAB_FILE,
  ...(["train", "val"] as const).flatMap((s) => [
    featuresFile(s, true),
    featuresFile(s, false),
    urlsFile(s),
  ]),
  "images",
];

/** The options, one line each: flag, default, help. */
const OPTIONS: [string, string, string][] = [
  ["--dir DIR", SYNTH_DEFAULTS.dir, "where to write the dataset"],
  ["--train N", String(SYNTH_DEFAULTS.numTrain), "train images (5 captions each)"],
  ["--val N", String(SYNTH_DEFAULTS.numVal), "validation images"],
  ["--seed S", String(SYNTH_DEFAULTS.seed), "seed: the same seed and sizes give the same data"],
  ["--full-features", "off", "also write the 4096-d train2014_vgg16_fc7.h5 / val2014_vgg16_fc7.h5"],
  ["--no-images", "off", "skip the SVG drawings under images/ (URL files still list them)"],
  ["--min-count N", "5", "words seen fewer times in train captions become <UNK>"],
  ["--force", "off", "replace the dataset files already in --dir (refused otherwise)"],
  ["--quiet", "off", "print only the summary"],
  ["--debug", "off", "print a stack trace with an error"],
];

/** The help text of `deno task dataset synth`. */
export const SYNTH_HELP: string = [
  "Usage: deno task dataset synth [options]",
  "",
  "Writes a synthetic COCO captioning dataset (same files, datasets, dtypes and tokens as",
  "datasets/coco_captioning) from a seeded scene grammar, with SVG drawings of each image.",
  "The defaults are those of the experiments' synthetic data (data.synthetic).",
  "",
  "Options:",
  ...OPTIONS.map(([f, d, h]) => `  ${f.padEnd(18)} ${h} (default: ${d})`),
  "  --help             show this help",
].join("\n");

function intArg(flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) {
    throw new InputError(
      `dataset synth: ${flag}: expected an integer >= ${min}, got ${value ?? "nothing"}`,
    );
  }
  return n;
}

/** The dataset entries present in `dir` ([] when it does not exist). */
async function datasetEntriesIn(dir: string): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  if (!info.isDirectory) {
    throw new InputError(
      `dataset synth: --dir: ${dir} is a file, not a directory; choose a directory`,
    );
  }
  const present: string[] = [];
  for (const name of DATASET_ENTRIES) {
    if (await Deno.lstat(join(dir, name)).then(() => true, () => false)) present.push(name);
  }
  return present;
}

/** Removes `<dir>.partial-<pid>` datasets that generations killed midway left beside `dir`. */
async function removeStalePartials(dir: string): Promise<void> {
  const parent = dirname(dir), prefix = `${basename(dir)}.partial-`;
  try {
    for await (const e of Deno.readDir(parent)) {
      if (e.isDirectory && e.name.startsWith(prefix) && /^\d+$/.test(e.name.slice(prefix.length))) {
        await Deno.remove(join(parent, e.name), { recursive: true }).catch(() => {});
      }
    }
  } catch {
    // no parent directory yet: nothing to clean
  }
}

/**
 * Moves a complete dataset from `partial` into `dir`. A new `dir` is one rename. An existing
 * one keeps its other files: the old dataset entries go (the captions file first, so the
 * directory never looks ready midway), the new ones move in, the captions file last.
 */
async function install(partial: string, dir: string, existing: string[]): Promise<void> {
  if (!(await Deno.stat(dir).then(() => true, () => false))) {
    await Deno.rename(partial, dir);
    return;
  }
  const written: string[] = [];
  for await (const e of Deno.readDir(partial)) written.push(e.name);
  const old = [...existing].sort((a, b) =>
    Number(b === CAPTIONS_FILE) - Number(a === CAPTIONS_FILE)
  );
  for (const name of old) await Deno.remove(join(dir, name), { recursive: true });
  const order = written.sort((a, b) => Number(a === CAPTIONS_FILE) - Number(b === CAPTIONS_FILE));
  for (const name of order) await Deno.rename(join(partial, name), join(dir, name));
  await Deno.remove(partial, { recursive: true });
}

/**
 * Runs `deno task dataset synth` with command-line arguments (after `synth`).
 * @param args The arguments, e.g. `["--dir", "/tmp/coco", "--train", "200", "--val", "50"]`.
 * @returns Resolves when the dataset is written (the summary is printed).
 * @throws InputError for an unknown flag, a bad value, or a `--dir` that already holds a
 * dataset without `--force` (exit code 2). `--debug` is accepted here; printing the stack
 * trace is up to the caller (`datasetMain` in dataset.ts).
 *
 * @example
 * ```ts
 * import { synthMain } from "./synth.ts";
 * const dir = `${await Deno.makeTempDir()}/coco`;
 * await synthMain(["--dir", dir, "--train", "10", "--val", "4", "--no-images", "--quiet"]);
 * ```
 */
export async function synthMain(args: string[]): Promise<void> {
  let { dir, numTrain, numVal, seed } = SYNTH_DEFAULTS;
  let fullFeatures = false, images = true, minWordCount = 5, quiet = false, force = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].includes("=")
      ? args[i].split(/=(.*)/s, 2)
      : [args[i], undefined];
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "--help":
      case "-h":
        console.log(SYNTH_HELP);
        return;
      case "--dir": {
        const v = value();
        if (!v) throw new InputError("dataset synth: --dir: expected a directory");
        dir = v;
        break;
      }
      case "--train":
        numTrain = intArg(flag, value(), 1);
        break;
      case "--val":
        numVal = intArg(flag, value(), 1);
        break;
      case "--seed":
        seed = intArg(flag, value(), 0);
        break;
      case "--min-count":
        minWordCount = intArg(flag, value(), 1);
        break;
      case "--full-features":
        fullFeatures = true;
        break;
      case "--no-images":
        images = false;
        break;
      case "--force":
        force = true;
        break;
      case "--quiet":
        quiet = true;
        break;
      case "--debug":
        break;
      default:
        throw new InputError(`dataset synth: unknown option "${args[i]}"; see --help`);
    }
  }
  dir = dir.replace(/(.)\/+$/, "$1");
  const existing = await datasetEntriesIn(dir);
  if (existing.length > 0 && !force) {
    throw new InputError(
      `dataset synth: ${dir} already holds a dataset (${existing.join(", ")}); ` +
        `choose another --dir, or pass --force to replace it`,
    );
  }
  await removeStalePartials(dir);
  const partial = `${dir}.partial-${Deno.pid}`;
  let s;
  try {
    s = await writeSyntheticDataset({
      dir: partial,
      numTrain,
      numVal,
      seed,
      fullFeatures,
      images,
      minWordCount,
      onProgress: quiet ? undefined : (m) => console.error(`synth: ${m}`),
    });
    await install(partial, dir, existing);
  } catch (e) {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    throw e;
  }
  console.log(
    `Wrote ${dir}: ${s.numTrain} train / ${s.numVal} val images, ${s.trainCaptions} / ${s.valCaptions} captions, ` +
      `vocabulary ${s.vocabSize} words, ${(s.unkRate * 100).toFixed(2)}% <UNK>, in ${
        s.seconds.toFixed(1)
      } s`,
  );
}
