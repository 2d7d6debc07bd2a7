/**
 * `deno task dataset <command>`: the dataset tools, run on their own (`deno run -A
 * pipeline/cli/dataset.ts synth …`); the same as `main(["dataset", …])`: `import` turns
 * annotation files and image features into a dataset, `synth` writes the synthetic COCO
 * captioning dataset.
 *
 * @example
 * ```sh
 * deno task dataset synth --dir /tmp/coco --train 200 --val 50
 * ```
 * @module
 */
import { main } from "./main.ts";

/**
 * Runs `deno task dataset` with its arguments.
 * @param args The arguments after `dataset`, e.g. `["synth", "--train", "200"]`. `--debug`
 * anywhere prints bad input with its stack trace instead of one line.
 * @returns The process exit code: 0 on success, 2 for bad input.
 *
 * @example
 * ```ts
 * import { datasetMain } from "./dataset.ts";
 * console.assert(await datasetMain(["--help"]) === 0);
 * ```
 */
export function datasetMain(args: string[]): Promise<number> {
  return main(["dataset", ...args]);
}

if (import.meta.main) Deno.exit(await datasetMain(Deno.args));
