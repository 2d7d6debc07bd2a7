/**
 * The sgemm roofline of this machine: a big square `cblas_sgemm` of the BLAS recap loads, on
 * 1 and on 2 (or more) BLAS threads; the training benchmark divides its executed FLOP rate by
 * it. Used by bench/train_step_bench.ts; run alone it prints one JSON line per thread count:
 *
 *   deno run -A bench/roofline.ts [--size 2048] [--threads 1,2] [--reps 3]
 * @module
 */
import { BLAS_CANDIDATES, CBLAS_SGEMM_PARAMS } from "../layers/kernels/blas.ts";
import { readEnv } from "../layers/kernels/env.ts";
import { median } from "./coco_sizes.ts";

const SYMBOLS = {
  cblas_sgemm: { parameters: CBLAS_SGEMM_PARAMS, result: "void" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

/** A BLAS handle that can time big sgemms at a chosen thread count. */
export interface Roofline {
  /**
   * The median GFLOP/s of `reps` (size × size) · (size × size) sgemms on `threads` threads
   * (the BLAS is set back to 1 thread afterwards, as recap runs it).
   */
  gflops(threads: number, size?: number, reps?: number): number;
  /** Unloads the library. */
  close(): void;
}

/**
 * Opens the BLAS recap uses (`RECAP_BLAS`, else the usual OpenBLAS paths).
 * @returns The roofline timer, or null when no OpenBLAS is found.
 */
export function openRoofline(): Roofline | null {
  const paths = [readEnv("RECAP_BLAS"), ...BLAS_CANDIDATES].filter((p): p is string => !!p);
  for (const path of paths) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch {
      continue;
    }
    const bufs = new Map<number, Float32Array[]>();
    return {
      gflops(threads: number, size = 2048, reps = 3): number {
        if (!bufs.has(size)) {
          const make = () => Float32Array.from({ length: size * size }, () => Math.random() - 0.5);
          bufs.set(size, [make(), make(), new Float32Array(size * size)]);
        }
        const [a, b, c] = bufs.get(size)!;
        lib.symbols.openblas_set_num_threads(threads);
        const call = () =>
          lib.symbols.cblas_sgemm(101, 111, 111, size, size, size, 1, a, size, b, size, 0, c, size);
        call(); // warm up the threads and the packing buffers
        const times: number[] = [];
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          call();
          times.push(performance.now() - t0);
        }
        lib.symbols.openblas_set_num_threads(1);
        return 2 * size ** 3 / median(times) / 1e6;
      },
      close: () => lib.close(),
    };
  }
  return null;
}

if (import.meta.main) {
  const { scriptCommandLine } = await import("../pipeline/cli/args.ts");
  const { HELP_OPTION, int, str } = await import("../pipeline/cli/command_spec.ts");
  const { values } = scriptCommandLine({
    command: "deno run -A bench/roofline.ts",
    args: [],
    summary: "The sgemm roofline: a size³ cblas_sgemm on each thread count, one JSON line each.",
    options: {
      size: int(2048, 64, "The matrices' size", "1024"),
      reps: int(3, 1, "Timed calls per thread count (the median is reported)", "1"),
      threads: str("1,2", "BLAS thread counts, comma-separated", "1"),
      help: HELP_OPTION,
    },
  }, Deno.args);
  const roof = openRoofline();
  if (!roof) throw new Error("No OpenBLAS found (set RECAP_BLAS)");
  const { size, reps } = values;
  for (const threads of values.threads.split(",").map(Number)) {
    const gflops = roof.gflops(threads, size, reps);
    console.log(
      JSON.stringify({ bench: "sgemm_roofline", size, threads, gflops: +gflops.toFixed(1) }),
    );
  }
  roof.close();
}
