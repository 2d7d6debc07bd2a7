/**
 * `deno task dataset synth`: the command line of the synthetic dataset writer.
 *
 * Its defaults are those of the experiments' synthetic data (`datasets/synthetic`, 4000 train /
 * 500 val images, seed 0), so a bare `deno task dataset synth` writes what `deno task train`
 * would generate. It never overwrites a dataset unless given `--force`, and writes into
 * `<dir>.partial-<pid>` first, so an interrupted generation never leaves a half dataset.
 * @module
 */
import { installDirectory, partialDir, removeStalePartials } from "../io/atomic.ts";
import { DATASET_MARKERS, datasetEntriesIn } from "../data/dataset_layout.ts";
import { InputError } from "../errors.ts";
import { writeSyntheticDataset } from "../data/synth/writer.ts";
import { type CommandLine, runCommand } from "./args.ts";
import { VERBS } from "./verbs.ts";

const SYNTH = VERBS["dataset synth"];

/** The defaults of `deno task dataset synth`: those of the experiments' synthetic data. */
export const SYNTH_DEFAULTS: {
  readonly dir: string;
  readonly numTrain: number;
  readonly numVal: number;
  readonly seed: number;
} = {
  dir: SYNTH.options.dir.default,
  numTrain: SYNTH.options.train.default,
  numVal: SYNTH.options.val.default,
  seed: SYNTH.options.seed.default,
};

/**
 * Runs `deno task dataset synth` with command-line arguments (after `synth`).
 * @param args The arguments, e.g. `["--dir", "/tmp/coco", "--train", "200", "--val", "50"]`.
 * @returns The exit code, 0, once the dataset is written (the summary is printed) or the help
 * printed.
 * @throws InputError for an unknown flag, a bad value, or a `--dir` that already holds a
 * dataset without `--force` (exit code 2). `--debug` is accepted here; printing the stack
 * trace is up to the caller (`main` in main.ts).
 *
 * @example
 * ```ts
 * import { synthMain } from "./synth.ts";
 * const dir = `${await Deno.makeTempDir()}/coco`;
 * await synthMain(["--dir", dir, "--train", "10", "--val", "4", "--no-images", "--quiet"]);
 * ```
 */
export function synthMain(args: string[]): Promise<number> {
  return runCommand(SYNTH, args, synthCommand);
}

/**
 * Writes the synthetic dataset a parsed `deno task dataset synth` command line asks for.
 * @param commandLine The parsed command line (see `VERBS["dataset synth"]`).
 * @returns The exit code, 0, once the dataset is written (the summary is printed).
 * @throws InputError for a `--dir` that already holds a dataset without `--force`.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./args.ts";
 * import { synthCommand } from "./synth.ts";
 * import { VERBS } from "./verbs.ts";
 * const dir = `${await Deno.makeTempDir()}/coco`;
 * const args = ["--dir", dir, "--train", "10", "--val", "4", "--no-images", "--quiet"];
 * await synthCommand(parseCommandLine(VERBS["dataset synth"], args));
 * ```
 */
export async function synthCommand(
  { values }: CommandLine<typeof VERBS["dataset synth"]["options"]>,
): Promise<number> {
  const dir = values.dir.replace(/(.)\/+$/, "$1");
  const existing = await datasetEntriesIn(dir, "dataset synth: --dir");
  if (existing.length > 0 && !values.force) {
    throw new InputError(
      `dataset synth: ${dir} already holds a dataset (${existing.join(", ")}); ` +
        `choose another --dir, or pass --force to replace it`,
    );
  }
  await removeStalePartials(dir);
  const partial = partialDir(dir);
  let s;
  try {
    s = await writeSyntheticDataset({
      dir: partial,
      numTrain: values.train,
      numVal: values.val,
      seed: values.seed,
      fullFeatures: values["full-features"],
      images: !values["no-images"],
      minWordCount: values["min-count"],
      onProgress: values.quiet ? undefined : (m) => console.error(`synth: ${m}`),
    });
    await installDirectory(partial, dir, existing, DATASET_MARKERS);
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
  return 0;
}
