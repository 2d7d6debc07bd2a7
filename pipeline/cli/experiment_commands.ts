/**
 * The verbs that run an experiment: `train` starts one from a file (or the default
 * experiment), `resume` continues a run from its directory. Both take the experiment's
 * options as `--section.option=value` overrides, parsed by `parseOverrides`.
 * @module
 */
import { join } from "node:path";
import { loadExperiment, parseOverrides, resolveExperiment } from "../config/config.ts";
import { InputError } from "../errors.ts";
import { RUN_FILES } from "../run/files.ts";
import { detectLaunch } from "../run/job.ts";
import { assertRunFree } from "../run/lock.ts";
import { runExperiment } from "../run/run.ts";
import type { CommandLine } from "./args.ts";
import type { VERBS } from "./verbs.ts";

/** 130 (interrupted: a checkpoint was saved) or 0. */
function exitCodeOf(result: { interrupted: boolean }): number {
  return result.interrupted ? 130 : 0;
}

/**
 * `deno task train`: runs an experiment file's stages, or the default experiment's.
 * @param commandLine The parsed command line (see `VERBS.train`).
 * @returns The exit code: 0, or 130 when interrupted.
 * @throws {InputError} For a bad experiment, or a trained run in the way without --force.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { trainCommand } from "./experiment_commands.ts";
 * import { VERBS } from "./verbs.ts";
 * await trainCommand(parseCommandLine(VERBS.train, ["experiments/overfit_lstm.json"]));
 * ```
 */
export async function trainCommand(
  { values, positionals: [file], passedThrough: overrides }: CommandLine<
    typeof VERBS.train.options
  >,
): Promise<number> {
  const config = file
    ? await loadExperiment(file, overrides)
    : resolveExperiment(parseOverrides(overrides), "default.json");
  return exitCodeOf(await runExperiment(config, { overwrite: values.force }));
}

/**
 * `deno task resume`: continues a run from its checkpoint.h5 with its config.json.
 * @param commandLine The parsed command line (see `VERBS.resume`).
 * @returns The exit code: 0, or 130 when interrupted.
 * @throws {InputError} When the directory holds no run, or an override does not fit it.
 *
 * @example
 * ```ts ignore
 * import { parseCommandLine } from "./args.ts";
 * import { resumeCommand } from "./experiment_commands.ts";
 * import { VERBS } from "./verbs.ts";
 * await resumeCommand(parseCommandLine(VERBS.resume, ["runs/default", "--train.numEpochs=8"]));
 * ```
 */
export async function resumeCommand(
  { positionals: [runDir], passedThrough: overrides }: CommandLine<typeof VERBS.resume.options>,
): Promise<number> {
  // In an MPI job rank 0 holds the run's lock: the other ranks must not find it taken.
  if ((detectLaunch()?.rank ?? 0) === 0) await assertRunFree(runDir);
  const moved = (parseOverrides(overrides).output as { dir?: unknown } | undefined)?.dir;
  if (moved !== undefined) {
    throw new InputError(
      `command line: --output.dir: a resumed run stays in its directory (${runDir}); to ` +
        `continue it elsewhere, copy ${runDir} there and resume the copy`,
    );
  }
  const configPath = join(runDir, RUN_FILES.config);
  const checkpointPath = join(runDir, RUN_FILES.checkpoint);
  for (const path of [configPath, checkpointPath]) {
    try {
      await Deno.stat(path);
    } catch {
      throw new InputError(
        `${path}: not found; pass the directory of a run started with deno task train`,
      );
    }
  }
  const config = await loadExperiment(configPath, overrides);
  // The run is the directory given, wherever it was trained (it may have been moved).
  config.output.dir = runDir;
  return exitCodeOf(await runExperiment(config, { resume: true }));
}
