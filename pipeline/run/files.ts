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
import { withH5File } from "../io/h5.ts";

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
 */
export async function prepareMetricsLog(
  path: string,
  checkpointPath: string | null,
): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return; // no log yet
  }
  let keep: string[] = [];
  if (checkpointPath !== null) {
    let iteration: number;
    try {
      const [solver, scst] = await withH5File(checkpointPath, "r", (f) => [
        f.getJsonAttr("/", "solver"),
        f.getJsonAttr("/", "scst"),
      ]);
      // A self-critical checkpoint counts its iterations after those it started from.
      iteration = (solver as { iteration: number }).iteration +
        ((scst as { startIteration?: number } | undefined)?.startIteration ?? 0);
      if (typeof iteration !== "number" || Number.isNaN(iteration)) return;
    } catch {
      return; // no usable checkpoint: resuming fails with its own message, the log is kept
    }
    keep = text.split("\n").filter((line) => {
      try {
        const r = JSON.parse(line);
        // Final evaluations are redone after training; the training records up to the
        // checkpoint are the history that continues.
        if (r?.kind === "eval" && r.checkpoint !== "training") return false;
        return typeof r?.iteration !== "number" || r.iteration <= iteration;
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

/** Refuses to start a fresh run over a trained one, unless asked to (then clears its checkpoints). */
export async function guardExistingRun(
  config: ExperimentConfig,
  overwrite: boolean,
): Promise<void> {
  const runDir = config.output.dir;
  const checkpoints = [RUN_FILES.checkpoint, RUN_FILES.best, RUN_FILES.scstBest].map((f) =>
    join(runDir, f)
  );
  const present = [];
  for (const path of checkpoints) if (await exists(path)) present.push(path);
  if (present.length === 0) return;
  if (!overwrite) {
    throw new InputError(
      `${present[0]}: this run directory already holds a trained run; continue it with ` +
        `deno task resume ${runDir}, start over with --force, or choose another --output.dir`,
    );
  }
  for (const path of present) await Deno.remove(path);
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
