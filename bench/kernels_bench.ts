/**
 * Throughput of each available backend's gemm on the model's shapes: one JSON line per
 * (backend, dtype, shape, transposes) with GFLOP/s (best and median of repeated runs).
 *
 * Run: `deno task bench:kernels` or `deno run -A bench/kernels_bench.ts [--backends=wasm,blas]
 * [--dtype=float32|float64] [--seconds=0.5]`.
 * @module
 */
import { Rng } from "../layers/random.ts";
import { availableBackends, loadKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, num, oneOf, str } from "../pipeline/cli/command_spec.ts";

/** (m, n, k): 512³; the temporal affine 1600×1004×512; an LSTM step; a 4-way sharded step. */
const SHAPES: [number, number, number][] = [
  [512, 512, 512],
  [1600, 1004, 512],
  [100, 2048, 512],
  [25, 512, 512],
];
const TRANSPOSES: [string, boolean, boolean][] = [["NN", false, false], ["TN", true, false], [
  "NT",
  false,
  true,
]];

const COMMAND = {
  command: "deno run -A bench/kernels_bench.ts",
  args: [],
  summary: "GFLOP/s of each backend's gemm on the model's shapes, one JSON line per " +
    "(backend, dtype, shape, transposes).",
  options: {
    backends: str(undefined, "Backends, comma-separated (default: every one that loads)", "wasm"),
    dtype: oneOf(["float32", "float64"], "float32", "Precision of the matrices", "float64"),
    seconds: num(0.5, 0, "Seconds of repeated runs per measurement", "0.1"),
    help: HELP_OPTION,
  },
};

/**
 * Runs every (backend, shape, transposes) and prints one JSON line each.
 * @param args Command-line options: --backends, --dtype, --seconds.
 * @returns Nothing; results go to stdout.
 * @example
 * ```ts ignore
 * import { main } from "./kernels_bench.ts";
 * main(["--backends=wasm", "--seconds=0.1"]);
 * ```
 */
export function main(args: string[]): void {
  const { dtype, seconds, ...values } = scriptCommandLine(COMMAND, args).values;
  const backends = (values.backends?.split(",") ?? availableBackends()) as BackendName[];
  const rng = new Rng(1);

  for (const name of backends) {
    const kern = loadKernels(name);
    for (const [m, n, k] of SHAPES) {
      for (const [trans, transA, transB] of TRANSPOSES) {
        const make = (length: number) => {
          const x = dtype === "float32" ? new Float32Array(length) : new Float64Array(length);
          for (let i = 0; i < length; i++) x[i] = rng.random() - 0.5;
          return x;
        };
        const a = make(m * k), b = make(k * n), c = make(m * n);
        const lda = transA ? m : k, ldb = transB ? k : n;
        const run = () => kern.gemm(transA, transB, m, n, k, 1, a, 0, lda, b, 0, ldb, 0, c, 0, n);
        run(); // warm-up: compile, grow memory
        const times: number[] = [];
        const start = performance.now();
        while (
          times.length < 3 || (performance.now() - start < seconds * 1000 && times.length < 1000)
        ) {
          const t = performance.now();
          run();
          times.push(performance.now() - t);
        }
        times.sort((x, y) => x - y);
        const gflops = (ms: number) => Math.round((2 * m * n * k) / ms / 1e5) / 10;
        console.log(JSON.stringify({
          backend: name,
          dtype,
          m,
          n,
          k,
          trans,
          gflops: gflops(times[0]),
          median_gflops: gflops(times[Math.floor(times.length / 2)]),
          runs: times.length,
        }));
      }
    }
  }
}

// Only when run as a program: `deno bench` also loads *_bench.ts files, and must not run this.
if (import.meta.main) main(Deno.args);
