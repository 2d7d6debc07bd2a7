/**
 * End-to-end training-step benchmark: forward + backward + adam on one minibatch, float32,
 * at the exercise's COCO sizes (W=256, H=512, V=1004, D=512, T=16). Prints one JSON line per
 * config and worker count, like ../shared/peers/bench_numpy_ref.py, so the two can be compared
 * side by side.
 *
 *   deno run -A bench/train_step_bench.ts [cell batch] [--iters N] [--backend blas|wasm|ts]
 *     [--workers 1,2] [--shards S]
 *
 * With several worker counts, each config gets one engine per count (1 = the single-thread
 * LocalEngine, more = the PoolEngine), all on the same batches, and their steps are
 * interleaved (in rotating order) so that a noisy machine slows all of them alike.
 * @module
 */
import { parseArgs } from "node:util";
import { selectKernels } from "../layers/kernels/mod.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Optimizer } from "../pipeline/optim.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { InMemoryBatches } from "../pipeline/minibatch.ts";
import { DEFAULT_SHARDS, type TrainEngine } from "../workers/engine.ts";
import { createEngine, PoolEngine } from "../workers/pool.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    iters: { type: "string", default: "10" },
    backend: { type: "string" },
    workers: { type: "string", default: "1" },
    shards: { type: "string" },
  },
  allowPositionals: true,
});
const backend = selectKernels((values.backend ?? "auto") as BackendName | "auto").name;
const workerCounts = values.workers.split(",").map(Number);
const shards = values.shards ? Number(values.shards) : DEFAULT_SHARDS;
const W = 256, H = 512, V = 1004, D = 512, T = 16;
const configs: Array<[CellType, number]> = positionals.length >= 2
  ? [[positionals[0] as CellType, Number(positionals[1])]]
  : [["rnn", 25], ["lstm", 25], ["rnn", 100], ["lstm", 100]];

interface Run {
  workers: number;
  engine: TrainEngine;
  opt: Optimizer;
  times: number[];
  startupMs: number;
}

for (const [cell, n] of configs) {
  const data = randomCaptionData({ numTrain: 500, vocab: V, inputDim: D, seed: 1 });
  const runs: Run[] = [];
  for (const workers of workerCounts) {
    const model = new CaptioningRNN({
      wordToIdx: data.word_to_idx,
      inputDim: D,
      wordvecDim: W,
      hiddenDim: H,
      cellType: cell,
    });
    const t0 = performance.now();
    const engine = createEngine(model, { workers, shards });
    if (engine instanceof PoolEngine) await engine.ready;
    const opt = new Optimizer("adam", { learningRate: 1e-3 }, model.layout.total, "float32");
    runs.push({ workers, engine, opt, times: [], startupMs: performance.now() - t0 });
  }
  const batches = new InMemoryBatches(data, n, 0);
  const iters = Number(values.iters), warmup = 2;
  for (let i = 0; i < iters + warmup; i++) {
    const batch = batches.next();
    for (let k = 0; k < runs.length; k++) {
      const run = runs[(i + k) % runs.length];
      const t0 = performance.now();
      await run.engine.step(batch, run.opt, 0);
      run.times.push(performance.now() - t0);
    }
  }
  const k = cell === "lstm" ? 4 : 1;
  const flops = 3 * 2 * (n * D * H + n * T * (W * k * H + H * k * H) + n * T * H * V);
  const median = (xs: number[]) => {
    const sorted = xs.slice(warmup).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const base = median(runs[0].times);
  for (const run of runs) {
    const ms = median(run.times);
    console.log(JSON.stringify({
      impl: "recap",
      backend,
      workers: run.workers,
      shards,
      cell,
      batch: n,
      W,
      H,
      ms_per_iter: Number(ms.toFixed(2)),
      captions_per_s: Number((n / ms * 1000).toFixed(1)),
      gflops: Number((flops / ms / 1e6).toFixed(2)),
      ...(runs.length > 1 && run !== runs[0]
        ? { speedup_vs_first: Number((base / ms).toFixed(2)) }
        : {}),
      ...(run.workers > 1 ? { startup_ms: Number(run.startupMs.toFixed(0)) } : {}),
    }));
    await run.engine.close();
  }
}
