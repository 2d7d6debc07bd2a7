/**
 * End-to-end training-step benchmark: forward + backward + adam on one minibatch, float32,
 * at the exercise's COCO sizes (W=256, H=512, V=1004, D=512, T=16). Prints one JSON line per
 * config, like ../shared/peers/bench_numpy_ref.py, so the two can be compared side by side.
 *
 *   deno run -A bench/train_step_bench.ts [cell batch] [--iters N] [--backend blas|wasm|ts]
 * @module
 */
import { parseArgs } from "node:util";
import { selectKernels } from "../layers/kernels/mod.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Optimizer } from "../pipeline/optim.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { InMemoryBatches } from "../pipeline/minibatch.ts";
import { LocalEngine } from "../workers/engine.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { iters: { type: "string", default: "10" }, backend: { type: "string" } },
  allowPositionals: true,
});
const backend = selectKernels((values.backend ?? "auto") as BackendName | "auto").name;
const W = 256, H = 512, V = 1004, D = 512, T = 16;
const configs: Array<[CellType, number]> = positionals.length >= 2
  ? [[positionals[0] as CellType, Number(positionals[1])]]
  : [["rnn", 25], ["lstm", 25], ["rnn", 100], ["lstm", 100]];

for (const [cell, n] of configs) {
  const data = randomCaptionData({ numTrain: 500, vocab: V, inputDim: D, seed: 1 });
  const model = new CaptioningRNN({
    wordToIdx: data.word_to_idx,
    inputDim: D,
    wordvecDim: W,
    hiddenDim: H,
    cellType: cell,
  });
  const batches = new InMemoryBatches(data, n, 0);
  const engine = new LocalEngine(model);
  const opt = new Optimizer("adam", { learningRate: 1e-3 }, model.layout.total, "float32");
  const iters = Number(values.iters), warmup = 2, times: number[] = [];
  for (let i = 0; i < iters + warmup; i++) {
    const batch = batches.next();
    const t0 = performance.now();
    engine.step(batch, opt, 0);
    times.push(performance.now() - t0);
  }
  const sorted = times.slice(warmup).sort((a, b) => a - b);
  const ms = sorted[Math.floor(sorted.length / 2)];
  const k = cell === "lstm" ? 4 : 1;
  const flops = 3 * 2 * (n * D * H + n * T * (W * k * H + H * k * H) + n * T * H * V);
  console.log(JSON.stringify({
    impl: "recap",
    backend,
    workers: 1,
    cell,
    batch: n,
    W,
    H,
    ms_per_iter: Number(ms.toFixed(2)),
    captions_per_s: Number((n / ms * 1000).toFixed(1)),
    gflops: Number((flops / ms / 1e6).toFixed(2)),
  }));
}
