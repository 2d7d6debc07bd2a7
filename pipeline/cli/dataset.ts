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
import { InputError } from "../errors.ts";
import { SYNTH_HELP, synthMain } from "./synth.ts";

const HELP = `Usage: deno task dataset <command> [options] [--debug]

Commands:
  synth    write a synthetic COCO captioning dataset (see: deno task dataset synth --help)`;

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
export async function datasetMain(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  const [command, ...rest] = args.filter((a) => a !== "--debug");
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
      `dataset: unknown command "${command}"; try: deno task dataset synth --help`,
    );
  } catch (e) {
    if (e instanceof InputError) {
      console.error(debug ? e : `error: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await datasetMain(Deno.args));
