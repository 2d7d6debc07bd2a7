/**
 * The `recap` command line: one entry module, one verb per `deno task`. The verbs and their
 * options are declared once, in verbs.ts; this module picks the verb, runs it and turns what
 * happened into the exit code.
 *
 * Exit codes: 0 success, 2 bad input or config (a one-line message, no stack trace unless
 * --debug), 1 internal error or a diverged run, 130 interrupted (a checkpoint was saved).
 * @module
 */
import { suggestName } from "../../layers/options.ts";
import { InputError } from "../errors.ts";
import { abortJob, currentJob } from "../run/job.ts";
import { TrainingDivergedError } from "../train/solver.ts";
import { type CommandLine, runCommand } from "./args.ts";
import { orList } from "./command_spec.ts";
import { commandHelp } from "./help.ts";
import { captionCommand, evaluateCommand, sampleCommand } from "./checkpoint_commands.ts";
import { importCommand } from "./dataset_import.ts";
import { resumeCommand, trainCommand } from "./experiment_commands.ts";
import { synthCommand } from "./synth.ts";
import { type VerbName, VERBS } from "./verbs.ts";

/** What runs each verb. */
const HANDLERS: {
  [V in VerbName]: (commandLine: CommandLine<typeof VERBS[V]["options"]>) => Promise<number>;
} = {
  train: trainCommand,
  resume: resumeCommand,
  evaluate: evaluateCommand,
  sample: sampleCommand,
  caption: captionCommand,
  "dataset import": importCommand,
  "dataset synth": synthCommand,
};

const VERB_NAMES = Object.keys(VERBS) as VerbName[];
const HELP_WORDS = ["help", "--help", "-h"];

/** The verbs of a group such as `dataset` (`dataset synth`, …), or all top-level words. */
function verbsUnder(group: string | undefined): string[] {
  const words = VERB_NAMES.map((v) => v.split(" "));
  return group === undefined
    ? [...new Set(words.map((w) => w[0]))]
    : words.filter((w) => w[0] === group && w.length > 1).map((w) => w.join(" "));
}

/** The list of verbs, `deno task recap --help` (or of a group's, `deno task dataset`). */
function usage(group?: string): string {
  const names = VERB_NAMES.filter((v) => group === undefined || v.startsWith(`${group} `));
  const rows = names.map((v) => [
    [v.slice(group === undefined ? 0 : group.length + 1), ...VERBS[v].args].join(" "),
    VERBS[v].brief,
  ]);
  const width = Math.max(...rows.map(([u]) => u.length));
  return [
    ...(group === undefined
      ? ["recap: train and evaluate image-captioning RNNs (CS231n) from experiment files", ""]
      : []),
    `Usage: deno task ${group ?? "<command>"}${group ? " <command>" : ""} [arguments] [options]`,
    "",
    "Commands:",
    ...rows.map(([u, brief]) => `  ${u.padEnd(width)}  ${brief}`),
    "",
    ...(group === undefined
      ? [
        "With no experiment file, train runs the default experiment: an LSTM on the synthetic",
        "dataset (generated on first use), then evaluation and report.html in runs/default.",
      ]
      : []),
    "Every command takes --debug (stack traces with errors) and --help (its options).",
  ].join("\n");
}

/** The one-line error for a command that is not in the table, with the nearest one. */
function unknownCommand(typed: string, known: string[]): InputError {
  const hint = suggestName(typed, known);
  return new InputError(
    `command line: unknown command "${typed}"${hint ? ` (did you mean "${hint}"?)` : ""}; ` +
      `expected ${orList(known)}`,
  );
}

/** Runs a verb with its arguments (`--debug`, taken out to find the verb, put back). */
function runVerb<V extends VerbName>(name: V, params: string[], debug: boolean): Promise<number> {
  return runCommand(VERBS[name], debug ? [...params, "--debug"] : params, HANDLERS[name]);
}

/** Picks the verb and runs it, or prints the list of verbs; returns the exit code. */
async function dispatch(words: string[], debug: boolean): Promise<number> {
  const [first, second] = words;
  if (first === undefined || HELP_WORDS.includes(first)) {
    console.log(usage());
    return first === undefined ? 2 : 0;
  }
  const group = verbsUnder(first);
  if (group.length === 0) {
    if (!(first in VERBS)) throw unknownCommand(first, verbsUnder(undefined));
    return await runVerb(first as VerbName, words.slice(1), debug);
  }
  if (second === undefined || HELP_WORDS.includes(second)) {
    const helps = second === undefined ? [] : group.map((v) => commandHelp(VERBS[v as VerbName]));
    console.log([usage(first), ...helps].join("\n\n"));
    return second === undefined ? 2 : 0;
  }
  const name = `${first} ${second}`;
  if (!group.includes(name)) throw unknownCommand(name, group);
  return await runVerb(name as VerbName, words.slice(2), debug);
}

/**
 * Runs the CLI and returns the process exit code.
 * @param args The command-line arguments (verb first).
 * @returns 0 on success, 2 for bad input, 1 for an internal error, 130 when interrupted.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["train", "experiments/overfit_lstm.json"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  try {
    return await dispatch(args.filter((a) => a !== "--debug"), debug);
  } catch (e) {
    const code = reportError(e, debug);
    // In an MPI job the other ranks would wait for this one: end them all, naming this rank.
    const job = currentJob();
    if (job && job.size > 1) abortJob(job, (e as Error)?.message ?? String(e), code);
    return code;
  }
}

/** Prints an error the way its kind asks for; returns the exit code. */
function reportError(e: unknown, debug: boolean): number {
  if (debug) console.error(e);
  if (e instanceof InputError) {
    if (!debug) console.error(`error: ${e.message}`);
    return e.exitCode;
  }
  if (e instanceof TrainingDivergedError) {
    if (!debug) console.error(`error: ${e.message}`);
    return 1;
  }
  const io = fileSystemProblem(e);
  if (io !== null) {
    if (!debug) console.error(`error: ${io}`);
    return 2;
  }
  if (!debug) console.error(`internal error: ${(e as Error)?.stack ?? e}`);
  return 1;
}

/**
 * A file-system failure (full or read-only disk, missing permission, a path that is not a
 * directory) as a one-line message with what to do, or null for any other error: these are
 * problems of the machine, not of recap, so they get exit code 2 and no stack trace.
 */
function fileSystemProblem(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const errno = /\(os error (\d+)\)/.exec(e.message)?.[1];
  const fsError = e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.NotADirectory ||
    e instanceof Deno.errors.IsADirectory || e instanceof Deno.errors.AlreadyExists ||
    e instanceof Deno.errors.NotFound;
  if (errno === undefined && !fsError) return null;
  const message = e.message.split("\n")[0];
  if (errno === "28") return `${message}; free some disk space and run again`;
  if (errno === "30") return `${message}; use a writable directory (data.dir or output.dir)`;
  return `${message}; check that the path exists and that you may write there`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
