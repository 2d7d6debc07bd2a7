/**
 * The CLI run in this process with its console output captured, for the tests that check
 * what a command prints and its exit code.
 * @module
 */
import { main } from "../pipeline/cli/main.ts";

/** What an in-process run of the CLI printed. */
export interface Run {
  /** The exit code. */
  code: number;
  /** What it printed with console.log, lines joined. */
  stdout: string;
  /** One entry per console.error call (an error printed with --debug shows its stack). */
  stderr: string[];
}

/**
 * Runs the CLI in this process, capturing what it prints to the console. Calls run one at a
 * time: each swaps the console's functions for its own while it runs.
 */
export function cli(args: string[]): Promise<Run> {
  const run = queue.then(() => capture(args));
  queue = run.then(() => {}, () => {});
  return run;
}

let queue: Promise<void> = Promise.resolve();

async function capture(args: string[]): Promise<Run> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  const text = (xs: unknown[]) => xs.map((x) => x instanceof Error ? x.stack : String(x)).join(" ");
  console.log = (...xs: unknown[]) => out.push(text(xs));
  console.error = (...xs: unknown[]) => err.push(text(xs));
  try {
    return { code: await main(args), stdout: out.join("\n"), stderr: err };
  } finally {
    console.log = log;
    console.error = error;
  }
}
