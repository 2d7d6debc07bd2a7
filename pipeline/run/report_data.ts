/**
 * The run's report: gathers the loss curves and self-critical training's rewards from
 * metrics.jsonl, the metrics tables of the final evaluation (every evaluated checkpoint side
 * by side: cross-entropy and self-critical) and of the checkpoints scored during training, and
 * sample images, then renders report.html (see report.ts).
 * @module
 */
import { isAbsolute, join, relative } from "node:path";
import type { ExperimentConfig } from "../config/config.ts";
import type { SplitEvaluation } from "../eval/evaluate.ts";
import { readMetricsLog } from "./metrics_log.ts";
import { lossCurvesFromRecords, type MetricsRow, type SampleItem, writeReport } from "./report.ts";
import { QUICK_EVAL_IMAGES } from "./data.ts";
import { RUN_FILES } from "./files.ts";

/** The evaluations of one checkpoint. */
export interface EvaluatedCheckpoint {
  /** What the checkpoint is called, e.g. "best (iter 1200)". */
  label: string;
  /** Its evaluation of each split. */
  evaluations: SplitEvaluation[];
}

/**
 * Writes the run's report.html from its metrics.jsonl and the evaluation stage's results.
 * @param config The experiment.
 * @param checkpoints The evaluated checkpoints (the evaluate stage's, or the saved ones), side
 * by side in the metrics tables; the samples are the last one's.
 * @returns The report's path.
 */
export async function writeRunReport(
  config: ExperimentConfig,
  checkpoints: EvaluatedCheckpoint[],
): Promise<string> {
  const runDir = config.output.dir;
  const records = await readMetricsLog(join(runDir, RUN_FILES.metrics));
  const { trainLoss, valLoss } = lossCurvesFromRecords(records);
  const rows: MetricsRow[] = [];
  const baselineScores: Record<string, Record<string, number>> = {};
  const samples: SampleItem[] = [];
  for (const [c, { label, evaluations }] of checkpoints.entries()) {
    const last = c === checkpoints.length - 1;
    for (const ev of evaluations) {
      for (const decoder of ["greedy", "beam", "sample"] as const) {
        const scores = ev[decoder];
        if (!scores) continue;
        const diagnostics = ev.diagnostics?.[decoder];
        rows.push({
          split: ev.split,
          checkpoint: label,
          decoder,
          scores: scores as Record<string, number>,
          ...(diagnostics ? { diagnostics: { ...diagnostics } } : {}),
        });
      }
      baselineScores[ev.split] = ev.baseline as Record<string, number>;
      if (!last) continue;
      for (const img of ev.images.slice(0, 24)) {
        samples.push({
          split: ev.split,
          imageId: img.imageIdx,
          ...(img.url ? { imageUrl: imageUrlFor(img.url, config, runDir) } : {}),
          greedy: img.greedy,
          ...(img.beam ? { beam: img.beam } : {}),
          ...(img.sample ? { sample: img.sample } : {}),
          references: img.references,
        });
      }
    }
  }
  // The checkpoints scored during training (greedy, the first val images), one row each.
  for (const r of records) {
    if (r.kind !== "eval" || r.checkpoint !== "training") continue;
    const images = r.numImages ?? Math.min(config.evaluate.numImages, QUICK_EVAL_IMAGES);
    rows.push({
      split: `val during training (first ${images} images)`,
      checkpoint: `iteration ${r.iteration}${r.phase === "scst" ? " (self-critical)" : ""}`,
      decoder: r.decoder ?? "greedy",
      scores: r.metrics,
    });
  }
  const rewards = records.flatMap((r) =>
    r.kind === "scst"
      ? [{
        iteration: r.iteration,
        reward: r.reward,
        beatBaseline: r.beatBaseline,
        ...(r.greedyReward === undefined ? {} : { greedyReward: r.greedyReward }),
      }]
      : []
  );
  const baselineCaption = checkpoints.at(-1)?.evaluations[0]?.baselineCaption;
  return await writeReport(runDir, {
    title: `recap: ${config.name}`,
    config,
    trainLoss,
    valLoss,
    ...(rewards.length ? { rewards } : {}),
    metrics: rows,
    ...(baselineCaption !== undefined
      ? { baseline: { caption: baselineCaption, scores: baselineScores } }
      : {}),
    samples,
  });
}

/** An image URL as the report (in runDir) can load it: web URLs as they are, dataset paths made relative. */
function imageUrlFor(url: string, config: ExperimentConfig, runDir: string): string {
  if (/^[a-z]+:\/\//i.test(url) || isAbsolute(url)) return url;
  return relative(runDir, join(config.data.dir, url));
}
