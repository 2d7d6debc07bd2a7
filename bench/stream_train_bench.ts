/**
 * Streamed training end to end: a small LSTM (H=512, W=256, batch 100) on the 4096-d
 * features of a COCO-size dataset, trained by the worker pool from {@linkcode StreamBatches}
 * with the run's data dictionary from {@linkcode loadCocoForStreaming} — against the same
 * training from {@linkcode loadCocoData} in memory. Each mode runs in its own process so the
 * resident set sizes do not mix. Prints one JSON line per mode: captions per second, the time
 * the solver waited in `BatchSource.next()`, and memory (RSS sampled every 50 ms and at every
 * iteration, and the kernel's high-water mark `VmHWM` on Linux).
 *
 * ```sh
 * deno run -A bench/stream_train_bench.ts [--dir /tmp/recap_coco_full] [--iterations 200]
 *   [--workers 2] [--modes stream,memory] [--val-images 1000]
 * ```
 * The dataset is generated there (COCO size, with 4096-d features) when missing.
 * @module
 */
import type { RngState } from "../layers/random.ts";
import { selectKernels } from "../layers/kernels/mod.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { loadCocoForStreaming } from "../pipeline/data/coco_subset.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { type BatchSource, InMemoryBatches } from "../pipeline/data/batches.ts";
import type { CaptionData } from "../pipeline/data/caption_data.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { StreamBatches } from "../pipeline/data/stream/stream_batches.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { createEngine } from "../workers/pool.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, oneOf, path, str } from "../pipeline/cli/command_spec.ts";

/** One mode's result, as printed. */
export interface StreamTrainBenchResult {
  /** `"stream"` (StreamBatches + loadCocoForStreaming) or `"memory"` (loadCocoData). */
  mode: string;
  /** Compute workers. */
  workers: number;
  /** The kernel backend. */
  backend: string;
  /** Captions per batch. */
  batchSize: number;
  /** Feature dimension. */
  featureDim: number;
  /** Iterations timed. */
  iterations: number;
  /** Seconds to load the data dictionary and open the batch source. */
  loadSeconds: number;
  /** Captions trained per second over all timed iterations. */
  captionsPerSec: number;
  /** Captions per second after the first 10 iterations (warm-up excluded). */
  captionsPerSecSteady: number;
  /** Seconds the solver waited in `next()`, in total. */
  batchWaitSeconds: number;
  /** Mean wait per iteration, ms. */
  batchWaitMsPerIter: number;
  /** The largest wait of one iteration, ms. */
  batchWaitMsMax: number;
  /** RSS once the data is loaded, MiB. */
  rssAfterLoadMiB: number;
  /** The largest RSS sampled, MiB. */
  peakRssMiB: number;
  /** The kernel's peak RSS of the process (VmHWM), MiB, or null off Linux. */
  vmHwmMiB: number | null;
  /** Feature rows held by the dictionary (train + val). */
  featureRowsInMemory: number;
  /** The last loss. */
  lastLoss: number;
}

/** A batch source that adds up the time spent waiting for batches. */
class TimedBatches implements BatchSource {
  readonly #inner: BatchSource;
  /** Wait of each call, ms. */
  readonly waits: number[] = [];

  constructor(inner: BatchSource) {
    this.#inner = inner;
  }

  get size(): number {
    return this.#inner.size;
  }

  async next(): Promise<Minibatch> {
    const t = performance.now();
    const batch = await this.#inner.next();
    this.waits.push(performance.now() - t);
    return batch;
  }

  getState(): RngState {
    return this.#inner.getState();
  }

  setState(state: RngState): void {
    this.#inner.setState(state);
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }
}

const MiB = 1024 * 1024;

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? +(Number(m[1]) / 1024).toFixed(1) : null;
  } catch {
    return null;
  }
}

async function runMode(
  mode: string,
  dir: string,
  iterations: number,
  workers: number,
  valImages: number,
): Promise<StreamTrainBenchResult> {
  const batchSize = 100;
  const backend = selectKernels("auto").name;
  let peak = Deno.memoryUsage().rss;
  const sample = () => {
    const rss = Deno.memoryUsage().rss;
    if (rss > peak) peak = rss;
  };
  const timer = setInterval(sample, 50);
  try {
    const t0 = performance.now();
    let data: CaptionData, source: BatchSource;
    if (mode === "stream") {
      data = await loadCocoForStreaming({
        baseDir: dir,
        pcaFeatures: false,
        numImages: { val: valImages },
      });
      source = await StreamBatches.open({ baseDir: dir, batchSize, pcaFeatures: false, seed: 0 });
    } else if (mode === "memory") {
      data = await loadCocoData({ baseDir: dir, pcaFeatures: false });
      source = new InMemoryBatches(data, batchSize, 0);
    } else {
      throw new RangeError(`Unknown mode "${mode}": expected "stream" or "memory"`);
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    sample();
    const rssAfterLoad = Deno.memoryUsage().rss;
    const batches = new TimedBatches(source);
    const model = new CaptioningRNN({
      wordToIdx: data.word_to_idx,
      inputDim: data.train_features.shape[1],
      wordvecDim: 256,
      hiddenDim: 512,
      cellType: "lstm",
      seed: 0,
    });
    const stepEnds: number[] = [];
    let lastLoss = NaN;
    const solver: CaptioningSolver = new CaptioningSolver(model, data, {
      updateRule: "adam",
      optimConfig: { learningRate: 1e-3 },
      batchSize,
      numEpochs: 1,
      verbose: false,
      batches,
      engine: createEngine(model, { workers, backend }),
      onIteration: ({ iteration, loss }) => {
        sample();
        stepEnds.push(performance.now());
        lastLoss = loss;
        if (iteration >= iterations) solver.requestStop();
      },
    });
    const start = performance.now();
    try {
      await solver.train();
    } finally {
      await solver.close();
    }
    sample();
    const n = stepEnds.length;
    const total = (stepEnds[n - 1] - start) / 1000;
    const steady = (stepEnds[n - 1] - stepEnds[Math.min(9, n - 1)]) / 1000;
    const waitMs = batches.waits.reduce((a, b) => a + b, 0);
    return {
      mode,
      workers,
      backend,
      batchSize,
      featureDim: data.train_features.shape[1],
      iterations: n,
      loadSeconds: +loadSeconds.toFixed(2),
      captionsPerSec: +(n * batchSize / total).toFixed(1),
      captionsPerSecSteady: n > 10 ? +((n - 10) * batchSize / steady).toFixed(1) : NaN,
      batchWaitSeconds: +(waitMs / 1000).toFixed(3),
      batchWaitMsPerIter: +(waitMs / n).toFixed(2),
      batchWaitMsMax: +Math.max(...batches.waits).toFixed(1),
      rssAfterLoadMiB: +(rssAfterLoad / MiB).toFixed(1),
      peakRssMiB: +(peak / MiB).toFixed(1),
      vmHwmMiB: vmHwm(),
      featureRowsInMemory: data.train_features.shape[0] + (data.val_features?.shape[0] ?? 0),
      lastLoss: +lastLoss.toFixed(4),
    };
  } finally {
    clearInterval(timer);
  }
}

if (import.meta.main) {
  const { values } = scriptCommandLine({
    command: "deno run -A bench/stream_train_bench.ts",
    args: [],
    summary: "Streamed training against in-memory training of a small LSTM on a COCO-size " +
      "dataset (generated in --dir when missing), each mode in its own process: captions " +
      "per second, the batch wait and memory, one JSON line per mode.",
    options: {
      dir: path("/tmp/recap_coco_full", "The COCO-size dataset", "/tmp/coco"),
      iterations: int(200, 1, "Iterations per mode", "20"),
      workers: int(2, 1, "Compute workers", "1"),
      modes: str("stream,memory", "Modes to run, comma-separated", "stream"),
      "val-images": int(1000, 1, "Validation images kept in memory", "100"),
      mode: oneOf(
        ["stream", "memory"],
        undefined,
        "Run one mode in this process (internal)",
        "stream",
      ),
      help: HELP_OPTION,
    },
  }, Deno.args);
  const { dir, iterations, workers, "val-images": valImages } = values;
  if (values.mode) {
    // A child: one mode in this process.
    console.log(JSON.stringify(await runMode(values.mode, dir, iterations, workers, valImages)));
  } else {
    const hasFull = await Deno.stat(`${dir}/train2014_vgg16_fc7.h5`).then(() => true, () => false);
    if (!hasFull) {
      console.error(`Generating a COCO-size synthetic dataset with 4096-d features in ${dir}`);
      await writeSyntheticDataset({ dir, fullFeatures: true, images: false });
    }
    for (const mode of values.modes.split(",")) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          import.meta.filename!,
          `--mode=${mode}`,
          `--dir=${dir}`,
          `--iterations=${iterations}`,
          `--workers=${workers}`,
          `--val-images=${valImages}`,
        ],
        stdout: "inherit",
        stderr: "inherit",
      });
      const { code } = await child.output();
      if (code !== 0) throw new Error(`The ${mode} run failed with exit code ${code}`);
    }
  }
}
