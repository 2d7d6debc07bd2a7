/**
 * Adam's update on one worker's share of the LSTM's parameters (1.3 M of 2.6 M by default,
 * float32), the scalar loop on plain arrays beside the WebAssembly SIMD loop on arrays in
 * WebAssembly memories (`sharedWasmArray`), interleaved, one thread. Both must give the same
 * bits (checked at the end). One JSON line per loop with the median ms.
 *
 *   deno run -A bench/adam_bench.ts [--n 1300000] [--reps 30]
 * @module
 */
import { sharedWasmArray } from "../layers/kernels/wasm_arrays.ts";
import { applyUpdate, optimDefaults } from "../layers/optim.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int } from "../pipeline/cli/command_spec.ts";
import { median } from "./coco_sizes.ts";

const { values: { n, reps } } = scriptCommandLine({
  command: "deno run -A bench/adam_bench.ts",
  args: [],
  summary: "Adam's update, scalar against WebAssembly SIMD, one JSON line per loop.",
  options: {
    n: int(1_300_000, 4, "Parameters updated per call", "100000"),
    reps: int(30, 1, "Timed calls of each (the median is reported)", "5"),
    help: HELP_OPTION,
  },
}, Deno.args);

const config = optimDefaults("adam");
const plain = [0, 1, 2, 3].map(() => new Float32Array(n));
const wasm = [0, 1, 2, 3].map(() => sharedWasmArray("float32", n));
for (let i = 0; i < n; i++) {
  plain[0][i] = wasm[0][i] = Math.sin(i);
  plain[1][i] = wasm[1][i] = Math.cos(i * 1.3) * 1e-2;
}
const times = { scalar: [] as number[], simd: [] as number[] };
for (let t = 1; t <= reps; t++) {
  for (const [name, [w, dw, m, v]] of [["scalar", plain], ["simd", wasm]] as const) {
    const t0 = performance.now();
    applyUpdate("adam", config, t, [m, v], w, dw, 0, n);
    times[name].push(performance.now() - t0);
  }
}
const same = plain.every((a, k) => a.every((x, i) => Object.is(x, wasm[k][i])));
for (const [loop, ms] of Object.entries(times)) {
  console.log(JSON.stringify({
    bench: "adam",
    loop,
    n,
    ms: +median(ms).toFixed(3),
    ns_per_param: +(median(ms) * 1e6 / n).toFixed(2),
    same_bits: same,
  }));
}
if (!same) Deno.exit(1);
