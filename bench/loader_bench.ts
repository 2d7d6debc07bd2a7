/**
 * Loader benchmark: streaming throughput (captions per second delivered to the consumer)
 * and peak RSS, on a COCO-size synthetic dataset, with 4096-d and 512-d features at batch
 * 100; plus the consumer's wait per step when each step also computes for 150 ms (the
 * loader must never be the bottleneck). Prints JSON lines.
 *
 * ```sh
 * deno run -A bench/loader_bench.ts [--dir /tmp/recap_coco_full] [--batches 400]
 * ```
 * The dataset is generated there once (with 4096-d features) if missing. Under
 * `deno bench`, a small benchmark on a tiny dataset runs instead (set up on first use, so
 * importing this module has no side effect).
 * @module
 */
import { CocoStream } from "../pipeline/data/stream/coco_stream.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, path } from "../pipeline/cli/command_spec.ts";

/** One measured configuration, as printed. */
export interface LoaderBenchResult {
  /** Benchmark name. */
  bench: string;
  /** Feature dimension. */
  featureDim: number;
  /** Captions per batch. */
  batchSize: number;
  /** Ring slots minus one. */
  prefetch: number;
  /** Batches timed. */
  batches: number;
  /** Simulated compute per step, ms. */
  computeMs: number;
  /** Captions delivered per second. */
  captionsPerSec: number;
  /** Mean wall time per batch, ms. */
  msPerBatch: number;
  /** Mean consumer wait in next(), ms. */
  waitMsPerBatch: number;
  /** Mean worker read time per batch, ms. */
  readMsPerBatch: number;
  /** Mean hyperslab reads per batch. */
  readsPerBatch: number;
  /** RSS before the stream was opened, MiB. */
  baselineRssMiB: number;
  /** Peak RSS sampled while streaming, MiB. */
  peakRssMiB: number;
}

const MiB = 1 << 20;

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* simulated compute */ }
}

/**
 * Streams `batches` batches and measures throughput, waits and memory.
 * @param baseDir The dataset directory.
 * @param options Features, batch size, prefetch, simulated compute, batch count.
 * @returns The measurements.
 *
 * @example
 * ```ts
 * import { measureStream } from "./loader_bench.ts";
 * import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, path } from "../pipeline/cli/command_spec.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir, numTrain: 50, numVal: 5, images: false });
 * console.log((await measureStream(dir, { batches: 5 })).captionsPerSec);
 * ```
 */
export async function measureStream(
  baseDir: string,
  options: {
    pcaFeatures?: boolean;
    batchSize?: number;
    prefetch?: number;
    computeMs?: number;
    batches?: number;
  } = {},
): Promise<LoaderBenchResult> {
  const { pcaFeatures = true, batchSize = 100, prefetch = 2, computeMs = 0, batches = 200 } =
    options;
  const baseline = Deno.memoryUsage().rss;
  let peak = baseline;
  const stream = await CocoStream.open({
    baseDir,
    batchSize,
    pcaFeatures,
    prefetch,
    seed: 1,
    urls: false,
  });
  let wait = 0, readMs = 0, reads = 0, checksum = 0;
  // Warm-up: let the ring fill once, as it would during the first training step.
  stream.release(await stream.next());
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const w0 = performance.now();
    const b = await stream.next();
    wait += performance.now() - w0;
    readMs += b.readMs;
    reads += b.reads;
    checksum += b.features.data[i % b.features.data.length] + b.captions.data[1];
    if (computeMs) busy(computeMs);
    stream.release(b);
    if (i % 5 === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  const elapsed = performance.now() - t0;
  peak = Math.max(peak, Deno.memoryUsage().rss);
  await stream.close();
  if (!Number.isFinite(checksum)) throw new Error("loader bench: non-finite data");
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    bench: computeMs ? "loader_stream_with_compute" : "loader_stream",
    featureDim: stream.featureDim,
    batchSize,
    prefetch,
    batches,
    computeMs,
    captionsPerSec: Math.round((batches * batchSize) / (elapsed / 1000)),
    msPerBatch: r2(elapsed / batches),
    waitMsPerBatch: r2(wait / batches),
    readMsPerBatch: r2(readMs / batches),
    readsPerBatch: r2(reads / batches),
    baselineRssMiB: Math.round(baseline / MiB),
    peakRssMiB: Math.round(peak / MiB),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const COMMAND = {
  command: "deno run -A bench/loader_bench.ts",
  args: [],
  summary: "Streaming throughput and peak RSS of the loader on a COCO-size synthetic dataset " +
    "(generated in --dir with 4096-d features when missing), as JSON lines.",
  options: {
    dir: path("/tmp/recap_coco_full", "The COCO-size dataset", "/tmp/coco"),
    batches: int(400, 1, "Batches timed per configuration", "20"),
    help: HELP_OPTION,
  },
};

async function main(args: string[]): Promise<void> {
  const { dir, batches } = scriptCommandLine(COMMAND, args).values;
  if (!(await exists(`${dir}/train2014_vgg16_fc7.h5`))) {
    const s = await writeSyntheticDataset({
      dir,
      fullFeatures: true,
      onProgress: (m) => console.error(`loader_bench: ${m}`),
    });
    console.log(
      JSON.stringify({
        bench: "synth_generate_coco_size",
        seconds: Math.round(s.seconds),
        vocabSize: s.vocabSize,
      }),
    );
  }
  for (const pcaFeatures of [false, true]) {
    console.log(JSON.stringify(await measureStream(dir, { pcaFeatures, batches })));
  }
  console.log(
    JSON.stringify(await measureStream(dir, { pcaFeatures: false, computeMs: 150, batches: 40 })),
  );
}

if (import.meta.main) await main(Deno.args);

/** Under `deno bench` (a no-op elsewhere): a tiny dataset, set up on first use. */
let tiny: Promise<{ dir: string; stream: CocoStream }> | null = null;
Deno.bench("CocoStream.next() + release(), batch 100, 4096-d features", async (b) => {
  tiny ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "recap_loader_bench_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    await writeSyntheticDataset({
      dir,
      numTrain: 2000,
      numVal: 10,
      fullFeatures: true,
      images: false,
    });
    const stream = await CocoStream.open({
      baseDir: dir,
      batchSize: 100,
      pcaFeatures: false,
      urls: false,
    });
    return { dir, stream };
  })();
  const { stream } = await tiny;
  b.start();
  const batch = await stream.next();
  b.end();
  stream.release(batch);
});
