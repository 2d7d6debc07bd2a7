/**
 * The recurrent step's GEMMs at the row counts a training step sees (a shard's running
 * captions), in one call or cut into the column blocks of `columnBlockWidth` — the forward
 * gates += h_prev · Wh (K = H, N = G) and the backward dh_prev += dA · Whᵀ (K = G, N = H).
 * One JSON line per (cell, pass, rows) with the median ms of both and the speed-up; the two are
 * interleaved. Forward lines also time the training step's way (`task_*`): one GEMM per block of
 * `task_width` columns, on column slices of Wh (`task_slices_ms`) or on contiguous copies of them
 * (`task_blocks_ms`, the step's `whBlocks`). Rows of few captions are where OpenBLAS's packing
 * of Wh on every call dominates.
 *
 *   deno run -A bench/recurrent_gemm_bench.ts [--reps 40]
 * @module
 */
import {
  columnBlockWidth,
  mat,
  matmulAdd,
  matmulColumnBlocks,
  T,
} from "../layers/kernels/matmul.ts";
import { selectKernels } from "../layers/kernels/mod.ts";
import { copyColumnBlock } from "../layers/kernels/copy_wasm.ts";
import { teamUnitWidth } from "../model/step_team.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int } from "../pipeline/cli/command_spec.ts";
import { H, median } from "./coco_sizes.ts";

const { values: { reps } } = scriptCommandLine({
  command: "deno run -A bench/recurrent_gemm_bench.ts",
  args: [],
  summary: "The recurrent step's GEMMs in one call and in column blocks, one JSON line per " +
    "(cell, pass, rows).",
  options: {
    reps: int(40, 1, "Timed calls of each (the median is reported)", "5"),
    help: HELP_OPTION,
  },
}, Deno.args);
const backend = selectKernels("auto").name;
const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
for (const [cell, gates] of [["rnn", 1], ["lstm", 4], ["gru", 3]] as const) {
  const g = gates * H, wh = rand(H * g);
  for (const rows of [1, 6, 13, 25, 50, 100]) {
    for (const pass of ["forward", "backward"] as const) {
      const [k, n] = pass === "forward" ? [H, g] : [g, H];
      const a = mat(rand(rows * k), rows, k);
      const b = pass === "forward" ? mat(wh, H, g) : T(mat(wh, H, g));
      const c = mat(new Float32Array(rows * n), rows, n);
      const width = columnBlockWidth(rows, n, k, b.transposed);
      const one: number[] = [], blocks: number[] = [], slices: number[] = [], copied: number[] = [];
      // The forward as the training step's tasks run it: one GEMM per u-column block of Wh,
      // as a column slice of Wh (rows G floats apart) or as a contiguous copy (`whBlocks`).
      const u = teamUnitWidth(H), whBlocks = new Float32Array(H * g);
      for (let j0 = 0; j0 < g; j0 += u) copyColumnBlock(wh, g, H, j0, u, whBlocks, j0 * H);
      for (let r = 0; r < reps; r++) {
        let t0 = performance.now();
        matmulAdd(c, a, b);
        one.push(performance.now() - t0);
        t0 = performance.now();
        matmulColumnBlocks(c, a, b, width, 1);
        blocks.push(performance.now() - t0);
        if (pass !== "forward") continue;
        t0 = performance.now();
        for (let j0 = 0; j0 < g; j0 += u) {
          matmulAdd(mat(c.data, rows, u, j0, g), a, mat(wh, H, u, j0, g));
        }
        slices.push(performance.now() - t0);
        t0 = performance.now();
        for (let j0 = 0; j0 < g; j0 += u) {
          matmulAdd(mat(c.data, rows, u, j0, g), a, mat(whBlocks, H, u, j0 * H));
        }
        copied.push(performance.now() - t0);
      }
      const ms1 = median(one), ms2 = median(blocks);
      const tasks = pass === "forward"
        ? {
          task_width: u,
          task_slices_ms: +median(slices).toFixed(3),
          task_blocks_ms: +median(copied).toFixed(3),
        }
        : {};
      console.log(JSON.stringify({
        bench: "recurrent_gemm",
        backend,
        cell,
        pass,
        rows,
        n,
        k,
        width,
        one_call_ms: +ms1.toFixed(3),
        blocks_ms: +ms2.toFixed(3),
        speedup: +(ms1 / ms2).toFixed(2),
        ...tasks,
      }));
    }
  }
}
