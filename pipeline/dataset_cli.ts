/**
 * `deno task dataset <command>`: dataset tools. Today one command, `synth`, which writes the
 * synthetic COCO captioning dataset.
 *
 * @example
 * ```sh
 * deno task dataset synth --dir /tmp/coco --train 200 --val 50
 * ```
 * @module
 */
import { InputError } from "./errors.ts";
import { SYNTH_HELP, synthMain } from "./synth/cli.ts";

const HELP = `Usage: recap dataset <command> [options]

Commands:
  synth    write a synthetic COCO captioning dataset (see: recap dataset synth --help)`;

/**
 * Runs `recap dataset` with its arguments.
 * @param args The arguments after `dataset`, e.g. `["synth", "--train", "200"]`.
 * @returns The process exit code: 0 on success, 2 for bad input.
 *
 * @example
 * ```ts
 * import { datasetMain } from "./dataset_cli.ts";
 * console.assert(await datasetMain(["--help"]) === 0);
 * ```
 */
export async function datasetMain(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      console.log(command === undefined ? HELP : `${HELP}\n\n${SYNTH_HELP}`);
      return command === undefined ? 2 : 0;
    }
    if (command === "synth") {
      await synthMain(rest);
      return 0;
    }
    throw new InputError(
      `recap dataset: unknown command "${command}"; try: recap dataset synth --help`,
    );
  } catch (e) {
    if (e instanceof InputError && !rest.includes("--debug")) {
      console.error(`error: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await datasetMain(Deno.args));
