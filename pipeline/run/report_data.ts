/**
 * The run's report: gathers the loss curves from metrics.jsonl, the metrics tables of the
 * final evaluation and of the checkpoints scored during training, and sample images, then
 * renders report.html (see report.ts).
 * @module
 */
import { isAbsolute, join, relative } from "node:path";
import type { ExperimentConfig } from "../config/config.ts";
import type { SplitEvaluation } from "../eval/evaluate.ts";
import { readMetricsLog } from "./metrics_log.ts";
import { lossCurvesFromRecords, type MetricsRow, type SampleItem, writeReport } from "./report.ts";
import { QUICK_EVAL_IMAGES } from "./data.ts";
import { RUN_FILES } from "./files.ts";

/**
 * Writes the run's report.html from its metrics.jsonl and the evaluation stage's results.
 * @param config The experiment.
 * @param evaluations The evaluate stage's results (or the saved ones).
 * @param label What the evaluated checkpoint is called, e.g. "best (iter 1200)".
 * @returns The report's path.
 */
export async function writeRunReport(
  config: ExperimentConfig,
  evaluations: SplitEvaluation[],
  label: string,
): Promise<string> {
  const runDir = config.output.dir;
  const records = await readMetricsLog(join(runDir, RUN_FILES.metrics));
  const { trainLoss, valLoss } = lossCurvesFromRecords(records);
  const rows: MetricsRow[] = [];
  const baselineScores: Record<string, Record<string, number>> = {};
  const samples: SampleItem[] = [];
  for (const ev of evaluations) {
    rows.push({
      split: ev.split,
      checkpoint: label,
      decoder: "greedy",
      scores: ev.greedy as Record<string, number>,
    });
    if (ev.beam) {
      rows.push({
        split: ev.split,
        checkpoint: label,
        decoder: "beam",
        scores: ev.beam as Record<string, number>,
      });
    }
    baselineScores[ev.split] = ev.baseline as Record<string, number>;
    for (const img of ev.images.slice(0, 24)) {
      samples.push({
        split: ev.split,
        imageId: img.imageIdx,
        ...(img.url ? { imageUrl: imageUrlFor(img.url, config, runDir) } : {}),
        greedy: img.greedy,
        ...(img.beam ? { beam: img.beam } : {}),
        references: img.references,
      });
    }
  }
  // The checkpoints scored during training (greedy, the first val images), one row each.
  for (const r of records) {
    if (r.kind !== "eval" || r.checkpoint !== "training") continue;
    const images = r.numImages ?? Math.min(config.evaluate.numImages, QUICK_EVAL_IMAGES);
    rows.push({
      split: `val during training (first ${images} images)`,
      checkpoint: `iteration ${r.iteration}`,
      decoder: r.decoder ?? "greedy",
      scores: r.metrics,
    });
  }
  const baselineCaption = evaluations[0]?.baselineCaption;
  return await writeReport(runDir, {
    title: `recap: ${config.name}`,
    config,
    trainLoss,
    valLoss,
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
