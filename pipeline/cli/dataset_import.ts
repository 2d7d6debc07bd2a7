/**
 * `deno task dataset import`: the command line of the dataset import (see
 * pipeline/data/import/import_dataset.ts), which turns annotation files and a features file
 * into a dataset `deno task train --data.dir=<dir>` trains on.
 * @module
 */
import { formatImportSummary, importDataset } from "../data/import/import_dataset.ts";
import type { CommandLine } from "./args.ts";
import type { VERBS } from "./verbs.ts";

/**
 * Imports the dataset a parsed `deno task dataset import` command line names, and prints the
 * summary.
 * @param commandLine The parsed command line (see `VERBS["dataset import"]`).
 * @returns The exit code, 0, once the dataset is in place.
 * @throws InputError for bad input (nothing is written then), or a `--dir` that holds a
 *   dataset without `--force`.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { importCommand } from "./dataset_import.ts";
 * import { VERBS } from "./verbs.ts";
 * await importCommand(parseCommandLine(VERBS["dataset import"], [
 *   "dataset_flickr8k.json", "--features", "flickr8k_resnet.npy", "--dir", "datasets/flickr8k",
 * ]));
 * ```
 */
export async function importCommand(
  { values, positionals }: CommandLine<typeof VERBS["dataset import"]["options"]>,
): Promise<number> {
  const summary = await importDataset({
    annotations: positionals,
    features: values.features,
    dir: values.dir,
    ...(values.split !== undefined ? { splits: values.split } : {}),
    ...(values.featuresDataset !== undefined ? { featuresDataset: values.featuresDataset } : {}),
    ...(values.ids !== undefined ? { ids: values.ids } : {}),
    minCount: values.minCount,
    maxLength: values.maxLength,
    force: values.force,
    ...(values.quiet ? {} : { onProgress: (m: string) => console.error(`import: ${m}`) }),
  });
  console.log(formatImportSummary(summary).join("\n"));
  return 0;
}
