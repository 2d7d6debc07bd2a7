/**
 * Shared pieces of the reliability tests: a tiny synthetic dataset, experiment files for it,
 * and the CLI as a subprocess (run to the end, or spawned to be signalled while it trains).
 * @module
 */
import { join } from "node:path";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";

/** The CLI entry module. */
export const CLI: string = new URL("../pipeline/cli/main.ts", import.meta.url).pathname;

/** A tiny synthetic dataset (60 train / 20 val images, 300 / 100 captions) in `dir`. */
export async function tinyDataset(dir: string, seed = 3): Promise<string> {
  await writeSyntheticDataset({ dir, numTrain: 60, numVal: 20, seed, images: false });
  return dir;
}

/** A deep merge of plain objects (arrays and values of `b` replace those of `a`). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && old && typeof old === "object"
      ? merge(old as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

/**
 * An experiment object for the tiny dataset: a small LSTM, batches of 10 (30 iterations per
 * epoch), single-thread, train stage only, with `extra` merged in.
 */
export function tinyExperiment(
  dataDir: string,
  runDir: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return merge({
    name: "tiny",
    data: { source: "synthetic", dir: dataDir },
    model: { cellType: "lstm", hiddenDim: 16, wordvecDim: 8 },
    train: {
      numEpochs: 2,
      batchSize: 10,
      printEvery: 1,
      workers: 1,
      evalEvery: 1_000_000,
      checkpointEvery: 0,
    },
    evaluate: { splits: ["val"], numImages: 10, beamSize: 1, maxLength: 8 },
    stages: ["train"],
    output: { dir: runDir },
  }, extra);
}

/** Writes an experiment file and returns its path. */
export async function writeExperiment(
  path: string,
  experiment: Record<string, unknown>,
): Promise<string> {
  await Deno.writeTextFile(path, JSON.stringify(experiment, null, 2));
  return path;
}

/** What a finished CLI process printed. */
export interface CliResult {
  /** The exit code. */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Starts the CLI; `done` resolves with its output once it exits. */
export function spawnCli(args: string[]): { child: Deno.ChildProcess; done: Promise<CliResult> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  const done = child.output().then((out) => ({
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  }));
  return { child, done };
}

/** Runs the CLI to the end. */
export function runCli(args: string[]): Promise<CliResult> {
  return spawnCli(args).done;
}

/**
 * Waits until the run's metrics.jsonl has a train record (or one of `kind`) at `iteration`
 * or later.
 * @returns The highest such iteration seen.
 */
export async function waitForTrainRecord(
  runDir: string,
  iteration = 1,
  timeoutMs = 60_000,
  kind = "train",
): Promise<number> {
  const path = join(runDir, "metrics.jsonl");
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch { /* not yet created */ }
    let last = 0;
    const record = new RegExp(`"kind":"${kind}","iteration":(\\d+)`, "g");
    for (const m of text.matchAll(record)) last = Number(m[1]);
    if (last >= iteration) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`No ${kind} record at iteration ${iteration} in ${path} within ${timeoutMs} ms`);
}

/** The names in a directory, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/**
 * The CLI's error output: the lines that are not progress (a training run draws progress on
 * stderr too). A good failure is exactly one line, with no stack trace.
 */
export function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    l.trim() !== "" && !/^\(Iteration \d+ \/ \d+\)|^epoch \d+: val loss/.test(l)
  );
}

/** The iterations of a run's metrics.jsonl records of one kind, in file order. */
export async function loggedIterations(runDir: string, kind: string): Promise<number[]> {
  const text = await Deno.readTextFile(join(runDir, "metrics.jsonl"));
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    .filter((r) => r.kind === kind).map((r) => r.iteration);
}
