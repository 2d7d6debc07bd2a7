/**
 * The loss-and-gradient step alone (`CaptioningRNN.loss`, one shard, one thread), float32, at
 * the exercise's COCO sizes (W=256, H=512, V=1004, D=512, T=16), beside the layer-composed
 * `lossReference`, with the FLOPs the fused step really executes (it skips the steps after
 * each caption's last target) and the fraction of the BLAS roofline (a 512³ sgemm measured in
 * the same run) that it reaches. One JSON line per (cell, batch, path).
 *
 *   deno run -A bench/loss_bench.ts [--iters N] [--backend blas|wasm|ts] [--reference]
 * @module
 */
import { describeKernels, selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CellType } from "../model/captioning_rnn.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { flag, HELP_OPTION, int, oneOf } from "../pipeline/cli/command_spec.ts";
import { cocoModel, D, H, median, T, V, W } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/loss_bench.ts",
  args: [],
  summary: "Times CaptioningRNN.loss (one shard, one thread) at the exercise's COCO sizes, " +
    "against the BLAS roofline, one JSON line per (cell, batch, path).",
  options: {
    iters: int(15, 1, "Timed iterations", "3"),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend", "ts"),
    reference: flag("Also time the layer-composed lossReference"),
    help: HELP_OPTION,
  },
}, Deno.args);
const k = selectKernels(values.backend as BackendName | "auto");
const iters = values.iters;

/** GFLOP/s of a 512³ sgemm on this backend: the roofline the step is measured against. */
function roofline(): number {
  const m = 512, a = new Float32Array(m * m).fill(0.5), c = new Float32Array(m * m);
  const times: number[] = [];
  for (let r = 0; r < 25; r++) {
    const t0 = performance.now();
    k.gemm(false, false, m, m, m, 1, a, 0, m, a, 0, m, 0, c, 0, m);
    times.push(performance.now() - t0);
  }
  return 2 * m ** 3 / median(times.slice(5)) / 1e6;
}

/** GEMM FLOPs of one loss call: dense (every step, as the NumPy peer) and executed (packed). */
function flops(cell: CellType, caps: Tensor<"int32">): { dense: number; executed: number } {
  const [n, t1] = caps.shape, g = cell === "lstm" ? 4 * H : H;
  let rows = 0, running = 0;
  for (let i = 0; i < n; i++) {
    let len = 0;
    for (let s = 0; s < t1 - 1; s++) if (caps.data[i * t1 + s + 1] !== 0) len = s + 1;
    rows += len;
    if (len > 0) running++;
  }
  // forward + 2 backward GEMMs per product (the features' gradient is not needed: 2 for W_proj).
  const perRow = 3 * 2 * (W * g + H * g + H * V);
  return {
    dense: 3 * 2 * (n * D * H + n * T * (W * g + H * g + H * V)),
    executed: 2 * 2 * running * D * H + rows * perRow,
  };
}

const peak = roofline();
console.log(
  JSON.stringify({ backend: describeKernels(k), roofline_gflops: Number(peak.toFixed(1)) }),
);
const data = randomCaptionData({ numTrain: 500, vocab: V, inputDim: D, seed: 1 });
const allCaps = data.train_captions.data as Int32Array;
const allFeats = data.train_features.data as Float32Array;
for (
  const [cell, n] of [["rnn", 25], ["lstm", 25], ["rnn", 50], ["lstm", 50], ["rnn", 100], [
    "lstm",
    100,
  ]] as const
) {
  const model = cocoModel(data.word_to_idx, cell);
  const grad = new Float32Array(model.layout.total);
  const paths = values.reference ? ["fused", "reference"] as const : ["fused"] as const;
  for (const path of paths) {
    const times: number[] = [];
    let f = { dense: 0, executed: 0 };
    for (let it = 0; it < iters + 2; it++) {
      const start = (it * n) % (500 - n);
      const caps = new Tensor<"int32">(allCaps.slice(start * 17, (start + n) * 17), [
        n,
        17,
      ]);
      const feats = new Tensor<"float32">(allFeats.slice(start * D, (start + n) * D), [n, D]);
      const t0 = performance.now();
      if (path === "fused") model.loss(feats, caps, { gradBuffer: grad });
      else model.lossReference(feats, caps, { gradBuffer: grad });
      const dt = performance.now() - t0;
      if (it >= 2) {
        times.push(dt);
        const fi = flops(cell, caps);
        f = { dense: f.dense + fi.dense / iters, executed: f.executed + fi.executed / iters };
      }
    }
    const ms = median(times);
    const executed = path === "fused" ? f.executed : f.dense;
    console.log(JSON.stringify({
      impl: "recap-loss",
      path,
      cell,
      batch: n,
      ms_per_call: Number(ms.toFixed(2)),
      gflop_dense: Number((f.dense / 1e9).toFixed(2)),
      gflop_executed: Number((executed / 1e9).toFixed(2)),
      gflops_executed: Number((executed / ms / 1e6).toFixed(1)),
      roofline_fraction: Number((executed / ms / 1e6 / peak).toFixed(2)),
    }));
  }
}
