/**
 * Memory over a long run: trains a small model for many iterations the way `deno task train`
 * does (engine steps, validation loss each epoch, a checkpoint and a greedy evaluation every
 * 100 iterations, one metrics line per iteration) and prints, every 100 iterations, one JSON
 * line with the resident set size, the V8 heap, and (on Linux) the open file descriptors and
 * threads — so growth per iteration, leaked file handles or leaked workers show as trends.
 * Not a timed test: run it and read the numbers.
 *
 *   deno run -A bench/rss_long_run.ts [--iterations 2000] [--workers 2] [--every 100]
 *
 * The last line is a summary: RSS at the first report and at the end, the largest, and the
 * slope (kB per iteration) of a least-squares line over the second half of the run.
 * @module
 */
import { join } from "node:path";
import { selectKernels } from "../layers/kernels/mod.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { saveCheckpoint } from "../pipeline/train/checkpoint.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { evaluateSplit } from "../pipeline/eval/evaluate.ts";
import { MetricsLog } from "../pipeline/run/metrics_log.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { createEngine } from "../workers/pool.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int } from "../pipeline/cli/command_spec.ts";

const { iterations, every, workers } = scriptCommandLine({
  command: "deno run -A bench/rss_long_run.ts",
  args: [],
  summary: "Trains a small model for many iterations the way deno task train does and prints " +
    "its memory, open files and threads as JSON lines, then a summary with the RSS slope.",
  options: {
    iterations: int(2000, 1, "Iterations to train", "200"),
    workers: int(2, 1, "Compute workers", "1"),
    every: int(100, 1, "Report every this many iterations", "50"),
    help: HELP_OPTION,
  },
}, Deno.args).values;

/** Entries of a /proc directory, or null off Linux. */
function procCount(path: string): number | null {
  try {
    return [...Deno.readDirSync(path)].length;
  } catch {
    return null;
  }
}

const MB = 1024 * 1024;
const backend = selectKernels("auto").name;
const root = await Deno.makeTempDir({ prefix: "recap_rss_" });
try {
  const dataDir = join(root, "data");
  await writeSyntheticDataset({ dir: dataDir, numTrain: 200, numVal: 50, seed: 1, images: false });
  const data = await loadCocoData({ baseDir: dataDir });
  const model = new CaptioningRNN({
    wordToIdx: data.word_to_idx,
    inputDim: data.train_features.shape[1],
    cellType: "lstm",
    wordvecDim: 64,
    hiddenDim: 128,
  });
  const batchSize = 25;
  const perEpoch = Math.floor(data.train_captions.shape[0] / batchSize);
  const metrics = MetricsLog.open(root);
  const samples: { iteration: number; rss: number }[] = [];
  const start = performance.now();
  const report = (iteration: number) => {
    const m = Deno.memoryUsage();
    samples.push({ iteration, rss: m.rss });
    console.log(JSON.stringify({
      iteration,
      seconds: +((performance.now() - start) / 1000).toFixed(1),
      rss_mb: +(m.rss / MB).toFixed(1),
      heap_used_mb: +(m.heapUsed / MB).toFixed(1),
      heap_total_mb: +(m.heapTotal / MB).toFixed(1),
      external_mb: +(m.external / MB).toFixed(1),
      fds: procCount("/proc/self/fd"),
      threads: procCount("/proc/self/task"),
    }));
  };
  const solver: CaptioningSolver = new CaptioningSolver(model, data, {
    updateRule: "adam",
    optimConfig: { learningRate: 5e-3 },
    lrDecay: 0.95,
    batchSize,
    numEpochs: Math.ceil(iterations / perEpoch),
    valCaptions: 100,
    verbose: false,
    seed: 1,
    engine: createEngine(model, { workers, backend }),
    onIteration: async ({ iteration, loss }) => {
      metrics.write({ kind: "train", iteration, epoch: iteration / perEpoch, loss });
      if (iteration % every === 0) {
        await saveCheckpoint(join(root, "checkpoint.h5"), model, { solver: solver.getState() });
        await evaluateSplit(model, data, {
          split: "val",
          numImages: 20,
          beamSize: 1,
          maxLength: 16,
          metrics: ["bleu4", "cider"],
        });
        report(iteration);
      }
      if (iteration >= iterations) solver.requestStop();
    },
  });
  report(0);
  await solver.train();
  await solver.close();
  metrics.close();
  const threadsAtClose = procCount("/proc/self/task");
  await new Promise((r) => setTimeout(r, 500)); // terminated workers' threads exit meanwhile
  // The slope of RSS over the second half (least squares), in kB per iteration.
  const tail = samples.filter((s) => s.iteration >= iterations / 2);
  const mx = tail.reduce((a, s) => a + s.iteration, 0) / tail.length;
  const my = tail.reduce((a, s) => a + s.rss, 0) / tail.length;
  const sxy = tail.reduce((a, s) => a + (s.iteration - mx) * (s.rss - my), 0);
  const sxx = tail.reduce((a, s) => a + (s.iteration - mx) ** 2, 0);
  console.log(JSON.stringify({
    summary: true,
    iterations: solver.iteration,
    workers,
    backend,
    rss_first_mb: +(samples[1].rss / MB).toFixed(1),
    rss_last_mb: +(samples.at(-1)!.rss / MB).toFixed(1),
    rss_max_mb: +(Math.max(...samples.map((s) => s.rss)) / MB).toFixed(1),
    second_half_slope_kb_per_iter: +(sxx > 0 ? sxy / sxx / 1024 : 0).toFixed(3),
    fds_after_close: procCount("/proc/self/fd"),
    threads_at_close: threadsAtClose,
    threads_500ms_after_close: procCount("/proc/self/task"),
  }));
} finally {
  await Deno.remove(root, { recursive: true });
}
