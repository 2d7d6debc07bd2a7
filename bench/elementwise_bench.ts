/**
 * Does WebAssembly SIMD pay for the recurrent cells' elementwise math? The fused training step
 * (`TrainStep`, loss + gradients, one thread, float32, the exercise's COCO sizes) with the SIMD
 * kernels (`elementwise: "auto"`) beside the plain `Math` ones (`"ts"`), for each cell, on the
 * same batches, interleaved (the order alternates) so a busy machine slows both alike. Also
 * the cell kernels alone, forward + backward over a batch's rows. One JSON line per
 * (cell, kernels), medians.
 *
 *   deno run -A bench/elementwise_bench.ts [--iters N] [--backend blas|wasm|ts]
 * @module
 */
import { tsElementwise } from "../layers/kernels/elementwise.ts";
import { wasmElementwiseArena } from "../layers/kernels/elementwise_wasm.ts";
import { selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CellType } from "../model/captioning_rnn.ts";
import { TrainStep } from "../model/train_step.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, oneOf } from "../pipeline/cli/command_spec.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { cocoModel, D, H, median, V } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/elementwise_bench.ts",
  args: [],
  summary: "The fused training step and the cell kernels with WebAssembly SIMD against plain " +
    "Math elementwise kernels, per cell, one JSON line per (cell, kernels).",
  options: {
    iters: int(15, 1, "Timed iterations", "3"),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend of the GEMMs", "ts"),
    help: HELP_OPTION,
  },
}, Deno.args);
selectKernels(values.backend as BackendName | "auto");
const iters = values.iters, warmup = 2, n = 25, rows = 25 * 16;
const data = randomCaptionData({ numTrain: 500, vocab: V, inputDim: D, seed: 1 });
const caps = new Tensor<"int32">((data.train_captions.data as Int32Array).slice(0, n * 17), [
  n,
  17,
]);
const feats = new Tensor<"float32">(
  (data.train_features.data as Float32Array).slice(0, n * D),
  [n, D],
);

for (const cell of ["lstm", "gru"] as CellType[]) {
  const model = cocoModel(data.word_to_idx, cell);
  const grads = cocoModel(data.word_to_idx, cell).params;
  const shape = { ...model.config, vocabSize: model.vocabSize, nullIdx: model.nullIdx };
  const steps = { wasm: new TrainStep(shape), ts: new TrainStep({ ...shape, elementwise: "ts" }) };
  const times: Record<string, number[]> = { wasm: [], ts: [] };
  for (let i = 0; i < iters + warmup; i++) {
    for (const name of (i % 2 ? ["wasm", "ts"] : ["ts", "wasm"]) as ("wasm" | "ts")[]) {
      const t0 = performance.now();
      steps[name].run(model.params, feats, caps, n, grads);
      if (i >= warmup) times[name].push(performance.now() - t0);
    }
  }
  // The cell kernels alone on `rows` rows: forward, then backward.
  const arena = wasmElementwiseArena()!;
  const g = (cell === "lstm" ? 4 : 3) * H;
  const [a, b, c, d, e, f, x, y] = arena.carve([
    rows * g,
    rows * g,
    rows * H,
    rows * H,
    rows * H,
    rows * H,
    rows * g,
    rows * g,
  ]);
  const cellTimes: Record<string, number[]> = { wasm: [], ts: [] };
  for (let i = 0; i < iters + warmup; i++) {
    for (const [name, k] of [["wasm", arena], ["ts", tsElementwise]] as const) {
      for (const arr of [a, b, c, d, e, f]) arr.fill(0.3);
      const t0 = performance.now();
      if (cell === "lstm") {
        k.lstmCell(a, 0, c, 0, d, e, f, 0, rows, H);
        k.lstmCellBackward(a, 0, f, d, 0, c, 0, e, 0, x, rows, H);
      } else {
        k.gruCell(a, b, 0, c, 0, d, 0, rows, H);
        k.gruCellBackward(a, b, x, y, 0, d, 0, c, 0, e, 0, rows, H);
      }
      if (i >= warmup) cellTimes[name].push(performance.now() - t0);
    }
  }
  for (const name of ["wasm", "ts"] as const) {
    console.log(JSON.stringify({
      bench: "elementwise",
      cell,
      kernels: name,
      batch: n,
      H,
      step_ms: Number(median(times[name]).toFixed(2)),
      cell_fwd_bwd_ms: Number(median(cellTimes[name]).toFixed(3)),
      ...(name === "wasm"
        ? {
          step_speedup_vs_ts: Number((median(times.ts) / median(times.wasm)).toFixed(2)),
          cell_speedup_vs_ts: Number((median(cellTimes.ts) / median(cellTimes.wasm)).toFixed(2)),
        }
        : {}),
    }));
  }
}
