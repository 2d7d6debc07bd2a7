/**
 * The CBLAS backend: `cblas_sgemm` / `cblas_dgemm` of a native BLAS (OpenBLAS by default)
 * through `Deno.dlopen`. Needs `--allow-ffi`. The library is told to use one thread: the
 * parallelism comes from our own workers, each of which loads its own kernels.
 * @module
 */
import { checkedGemm } from "./check.ts";
import { readEnv } from "./env.ts";
import type { Kernels } from "./types.ts";

/**
 * Where to look for a CBLAS library when `RECAP_BLAS` is not set, in order: on Linux Debian's
 * OpenBLAS, then by name through the loader's search path; on macOS Homebrew's OpenBLAS, then
 * Accelerate.
 * @example
 * ```ts
 * import { BLAS_CANDIDATES } from "./blas.ts";
 * console.log(BLAS_CANDIDATES[0]);
 * ```
 */
export const BLAS_CANDIDATES: readonly string[] = Deno.build.os === "darwin"
  ? [
    "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    "/usr/local/opt/openblas/lib/libopenblas.dylib",
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  ]
  : [
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "libopenblas.so.0",
    "libopenblas.so",
    "libcblas.so.3",
    "libblas.so.3",
  ];

/**
 * The FFI parameter types of `cblas_sgemm` (order, transposes, m, n, k, alpha, a, lda, b, ldb,
 * beta, c, ldc); `cblas_dgemm` takes f64 for alpha and beta.
 * @example
 * ```ts
 * import { CBLAS_SGEMM_PARAMS } from "./blas.ts";
 * console.log(CBLAS_SGEMM_PARAMS.length); // 14
 * ```
 */
export const CBLAS_SGEMM_PARAMS = [
  "i32", // order
  "i32", // transA
  "i32", // transB
  "i32", // m
  "i32", // n
  "i32", // k
  "f32", // alpha (f64 for dgemm)
  "buffer", // a
  "i32", // lda
  "buffer", // b
  "i32", // ldb
  "f32", // beta (f64 for dgemm)
  "buffer", // c
  "i32", // ldc
] as const;

const SYMBOLS = {
  cblas_sgemm: { parameters: CBLAS_SGEMM_PARAMS, result: "void" },
  cblas_dgemm: {
    parameters: CBLAS_SGEMM_PARAMS.map((p) => p === "f32" ? "f64" : p) as unknown as readonly [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f64",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f64",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // One of these sets the library's thread count, depending on which BLAS it is.
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  bli_thread_set_num_threads: { parameters: ["i64"], result: "void", optional: true },
} as const;

type BlasLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** A loaded BLAS backend: the kernels plus where they came from. */
export interface BlasKernels extends Kernels {
  /** The library path or name that was loaded. */
  readonly library: string;
  /**
   * The function that set the library to one thread, or "none" if it has no known one (then
   * its own environment variable, e.g. OPENBLAS_NUM_THREADS=1, is the way).
   */
  readonly threads: string;
  /** Unloads the library; the kernels must not be used afterwards. */
  close(): void;
}

/**
 * Loads the CBLAS backend. Tries `path` if given, else the `RECAP_BLAS` environment variable if
 * set (and readable), else {@linkcode BLAS_CANDIDATES} in order, and sets the library to one
 * thread (`openblas_set_num_threads(1)`, `MKL_Set_Num_Threads(1)` or
 * `bli_thread_set_num_threads(1)`, whichever the library has).
 * @param path A library to load instead of the defaults.
 * @returns The BLAS kernels.
 * @throws {Error} If FFI is not allowed or no candidate library loads with cblas_sgemm and
 * cblas_dgemm; the message lists what was tried.
 *
 * @example
 * ```ts ignore
 * import { loadBlasKernels } from "./blas.ts";
 * const blas = loadBlasKernels(); // needs --allow-ffi
 * const c = new Float32Array(1);
 * blas.gemm(false, false, 1, 1, 1, 1, new Float32Array([2]), 0, 1, new Float32Array([3]), 0, 1, 0, c, 0, 1);
 * console.log(c[0]); // 6
 * ```
 */
export function loadBlasKernels(path?: string): BlasKernels {
  const fromEnv = path === undefined ? readEnv("RECAP_BLAS") : undefined;
  const candidates = path !== undefined ? [path] : fromEnv ? [fromEnv] : BLAS_CANDIDATES;
  const failures: string[] = [];
  for (const candidate of candidates) {
    if (!ffiGranted(candidate)) continue;
    let lib: BlasLibrary;
    try {
      lib = Deno.dlopen(candidate, SYMBOLS);
    } catch (e) {
      failures.push(`${candidate}: ${(e as Error).message}`);
      continue;
    }
    return makeKernels(lib, candidate, oneThread(lib));
  }
  if (failures.length === 0) {
    throw new Error("Cannot load the BLAS backend: FFI is not allowed (run with --allow-ffi)");
  }
  throw new Error(`Cannot load the BLAS backend: ${failures.join("; ")}`);
}

/** Whether FFI is granted for a library (never prompts: a prompt could hang a headless run). */
function ffiGranted(library: string): boolean {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") return true;
    return library.includes("/") &&
      Deno.permissions.querySync({ name: "ffi", path: library }).state === "granted";
  } catch {
    return false;
  }
}

/** Sets the library to one thread; returns the function used, or "none". */
function oneThread(lib: BlasLibrary): string {
  const { openblas_set_num_threads, MKL_Set_Num_Threads, bli_thread_set_num_threads } = lib.symbols;
  if (openblas_set_num_threads) {
    openblas_set_num_threads(1);
    return "openblas_set_num_threads";
  }
  if (MKL_Set_Num_Threads) {
    MKL_Set_Num_Threads(1);
    return "MKL_Set_Num_Threads";
  }
  if (bli_thread_set_num_threads) {
    bli_thread_set_num_threads(1n);
    return "bli_thread_set_num_threads";
  }
  return "none";
}

function makeKernels(lib: BlasLibrary, library: string, threads: string): BlasKernels {
  const { cblas_sgemm, cblas_dgemm } = lib.symbols;
  return {
    name: "blas",
    library,
    threads,
    close: () => lib.close(),
    gemm: checkedGemm((tA, tB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc) => {
      // Views starting at the offsets: "buffer" parameters pass the view's own start address,
      // for ArrayBuffer- and SharedArrayBuffer-backed arrays alike.
      const av = aOff === 0 ? a : a.subarray(aOff);
      const bv = bOff === 0 ? b : b.subarray(bOff);
      const cv = cOff === 0 ? c : c.subarray(cOff);
      const ta = tA ? TRANS : NO_TRANS, tb = tB ? TRANS : NO_TRANS;
      if (c instanceof Float32Array) {
        cblas_sgemm(ROW_MAJOR, ta, tb, m, n, k, alpha, av, lda, bv, ldb, beta, cv, ldc);
      } else {
        cblas_dgemm(ROW_MAJOR, ta, tb, m, n, k, alpha, av, lda, bv, ldb, beta, cv, ldc);
      }
    }),
  };
}
