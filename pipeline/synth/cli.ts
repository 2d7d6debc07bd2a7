/**
 * `recap dataset synth`: the command line of the synthetic dataset writer.
 * @module
 */
import { InputError } from "../errors.ts";
import { writeSyntheticDataset } from "./writer.ts";

/** The options, one line each: flag, default, help. */
const OPTIONS: [string, string, string][] = [
  ["--dir DIR", "datasets/coco_captioning", "where to write the dataset"],
  ["--train N", "82783", "train images (5 captions each)"],
  ["--val N", "40504", "validation images"],
  ["--seed S", "231", "seed: the same seed and sizes give the same data"],
  ["--full-features", "off", "also write the 4096-d train2014_vgg16_fc7.h5 / val2014_vgg16_fc7.h5"],
  ["--no-images", "off", "skip the SVG drawings under images/ (URL files still list them)"],
  ["--min-count N", "5", "words seen fewer times in train captions become <UNK>"],
  ["--quiet", "off", "print only the summary"],
];

/** The help text of `recap dataset synth`. */
export const SYNTH_HELP: string = [
  "Usage: recap dataset synth [options]",
  "",
  "Writes a synthetic COCO captioning dataset (same files, datasets, dtypes and tokens as",
  "datasets/coco_captioning) from a seeded scene grammar, with SVG drawings of each image.",
  "",
  "Options:",
  ...OPTIONS.map(([f, d, h]) => `  ${f.padEnd(18)} ${h} (default: ${d})`),
  "  --help             show this help",
].join("\n");

function intArg(flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) {
    throw new InputError(
      `recap dataset synth: ${flag}: expected an integer >= ${min}, got ${value ?? "nothing"}`,
    );
  }
  return n;
}

/**
 * Runs `recap dataset synth` with command-line arguments (after `synth`).
 * @param args The arguments, e.g. `["--dir", "/tmp/coco", "--train", "200", "--val", "50"]`.
 * @returns Resolves when the dataset is written (the summary is printed).
 * @throws InputError for an unknown flag or a bad value (exit code 2).
 *
 * @example
 * ```ts
 * import { synthMain } from "./cli.ts";
 * const dir = await Deno.makeTempDir();
 * await synthMain(["--dir", dir, "--train", "10", "--val", "4", "--no-images", "--quiet"]);
 * ```
 */
export async function synthMain(args: string[]): Promise<void> {
  let dir = "datasets/coco_captioning", numTrain = 82783, numVal = 40504, seed = 231;
  let fullFeatures = false, images = true, minWordCount = 5, quiet = false;
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
        if (!v) throw new InputError("recap dataset synth: --dir: expected a directory");
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
      case "--quiet":
        quiet = true;
        break;
      default:
        throw new InputError(`recap dataset synth: unknown option "${args[i]}"; see --help`);
    }
  }
  const s = await writeSyntheticDataset({
    dir,
    numTrain,
    numVal,
    seed,
    fullFeatures,
    images,
    minWordCount,
    onProgress: quiet ? undefined : (m) => console.error(`synth: ${m}`),
  });
  console.log(
    `Wrote ${s.dir}: ${s.numTrain} train / ${s.numVal} val images, ${s.trainCaptions} / ${s.valCaptions} captions, ` +
      `vocabulary ${s.vocabSize} words, ${(s.unkRate * 100).toFixed(2)}% <UNK>, in ${
        s.seconds.toFixed(1)
      } s`,
  );
}
