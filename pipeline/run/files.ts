/**
 * The run directory: the names of its files, and the small operations that keep them
 * consistent across fresh runs, resumes and kills (atomic config, trimmed metrics log, no
 * overwritten trained run, no stale partial datasets).
 * @module
 */
import { join } from "node:path";
import type { ExperimentConfig } from "../config/config.ts";
import { InputError } from "../errors.ts";
import { writeTextFileAtomic } from "../io/atomic.ts";
import { exists } from "../io/files.ts";

/** The file names inside a run directory. */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  checkpoint: "checkpoint.h5",
  best: "best.h5",
  scstBest: "scst_best.h5",
  ciderDf: "cider_df.json",
  evaluation: "evaluation.json",
  samples: "samples.json",
  report: "report.html",
} as const;

/**
 * Makes metrics.jsonl hold exactly the records of the run being continued: a fresh run starts
 * an empty log; a resumed one keeps the records up to its checkpoint's iteration (those after
 * it are redone) and drops a line cut short by a kill or a full disk — so the log of an
 * interrupted and resumed run reads like an uninterrupted one. Rewritten atomically.
 * @param path The run's metrics.jsonl.
 * @param resumedIteration The checkpoint's iteration when resuming, null for a fresh run.
 */
export async function prepareMetricsLog(
  path: string,
  resumedIteration: number | null,
): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return; // no log yet
  }
  let keep: string[] = [];
  if (resumedIteration !== null) {
    keep = text.split("\n").filter((line) => {
      try {
        const r = JSON.parse(line);
        // Final evaluations are redone after training; the training records up to the
        // checkpoint are the history that continues.
        if (r?.kind === "eval" && r.checkpoint !== "training") return false;
        return typeof r?.iteration !== "number" || r.iteration <= resumedIteration;
      } catch {
        return false;
      }
    });
    if (keep.join("\n") + "\n" === text) return;
  }
  await writeTextFileAtomic(path, keep.map((line) => line + "\n").join(""));
}

/** Writes the run's config.json atomically (a kill never leaves half a config to resume). */
export async function writeConfig(config: ExperimentConfig): Promise<void> {
  await writeTextFileAtomic(
    join(config.output.dir, RUN_FILES.config),
    JSON.stringify(config, null, 2) + "\n",
  );
}

/**
 * The checkpoints of a trained run already in the directory. Without `overwrite` a fresh run
 * over them is refused; with it they are only removed by {@linkcode startRunFiles}, once the
 * new run has shown it can start.
 * @param config The experiment (its `output.dir`).
 * @param overwrite Whether the run may replace them (`--force`).
 * @returns The paths of the checkpoints present.
 * @throws {InputError} When a trained run is there and `overwrite` is false.
 */
export async function existingCheckpoints(
  config: ExperimentConfig,
  overwrite: boolean,
): Promise<string[]> {
  const runDir = config.output.dir;
  const checkpoints = [RUN_FILES.checkpoint, RUN_FILES.best, RUN_FILES.scstBest].map((f) =>
    join(runDir, f)
  );
  const present = [];
  for (const path of checkpoints) if (await exists(path)) present.push(path);
  if (present.length > 0 && !overwrite) {
    throw new InputError(
      `${present[0]}: this run directory already holds a trained run; continue it with ` +
        `deno task resume ${runDir}, start over with --force, or choose another --output.dir`,
    );
  }
  return present;
}

/**
 * The first writes of a training run, made only once everything has been checked and the
 * first step has run: the old run's checkpoints go (a fresh run with `--force`), config.json
 * is written, metrics.jsonl is started (fresh) or trimmed to the checkpoint (resumed).
 * @param config The experiment.
 * @param replaced The old checkpoints to remove (from {@linkcode existingCheckpoints}).
 * @param resumedIteration The checkpoint's iteration when resuming, null for a fresh run.
 */
export async function startRunFiles(
  config: ExperimentConfig,
  replaced: readonly string[],
  resumedIteration: number | null,
): Promise<void> {
  for (const path of replaced) await Deno.remove(path).catch(() => {});
  await writeConfig(config);
  await prepareMetricsLog(join(config.output.dir, RUN_FILES.metrics), resumedIteration);
}

/** Creates the run directory and checks it is writable, before any work starts. */
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = join(dir, `.write-test-${Deno.pid}`);
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    throw new InputError(
      `${dir}: the output directory is not writable (${
        (e as Error).message
      }); set output.dir to a writable place`,
      { cause: e },
    );
  }
}
