/**
 * The run directory: the names of its files, and the small operations that keep them
 * consistent across fresh runs, resumes and kills (atomic config, trimmed metrics log, no
 * overwritten trained run, no stale partial datasets).
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { ExperimentConfig } from "../config/config.ts";
import { InputError } from "../errors.ts";
import { withH5File } from "../io/h5.ts";

/** The file names inside a run directory. */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  checkpoint: "checkpoint.h5",
  best: "best.h5",
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
      const solver = await withH5File(checkpointPath, "r", (f) => f.getJsonAttr("/", "solver"));
      iteration = (solver as { iteration: number }).iteration;
      if (typeof iteration !== "number") return;
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
  const tmp = `${path}.tmp-${Deno.pid}-metrics`;
  await Deno.writeTextFile(tmp, keep.map((line) => line + "\n").join(""));
  await Deno.rename(tmp, path);
}

/** Removes `<dir>.partial-<pid>` datasets that generations killed midway left beside `dir`. */
export async function removeStalePartials(dir: string): Promise<void> {
  const path = dir.replace(/\/+$/, "");
  const parent = dirname(path), prefix = `${basename(path)}.partial-`;
  try {
    for await (const e of Deno.readDir(parent)) {
      if (e.isDirectory && /^\d+$/.test(e.name.slice(prefix.length)) && e.name.startsWith(prefix)) {
        await Deno.remove(join(parent, e.name), { recursive: true }).catch(() => {});
      }
    }
  } catch {
    // no parent directory yet: nothing to clean
  }
}

/** Writes the run's config.json atomically (a kill never leaves half a config to resume). */
export async function writeConfig(config: ExperimentConfig): Promise<void> {
  const path = join(config.output.dir, RUN_FILES.config);
  const tmp = `${path}.tmp-${Deno.pid}-config`;
  await Deno.writeTextFile(tmp, JSON.stringify(config, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/** Refuses to start a fresh run over a trained one, unless asked to (then clears its checkpoints). */
export async function guardExistingRun(
  config: ExperimentConfig,
  overwrite: boolean,
): Promise<void> {
  const runDir = config.output.dir;
  const checkpoints = [RUN_FILES.checkpoint, RUN_FILES.best].map((f) => join(runDir, f));
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

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
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
