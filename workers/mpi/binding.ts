/**
 * MPICH's C interface through `Deno.dlopen` (needs `--allow-ffi`): the few calls recap's
 * distributed training uses, loaded only when a job spans processes. Every MPICH handle is a
 * C `int` (the values below are those of MPICH's `mpi.h`, the same in every MPICH 3.x/4.x
 * release); Open MPI's handles are addresses of globals, so this binding is for MPICH (and
 * its ABI-compatible derivatives: Intel MPI, MVAPICH, Cray MPICH).
 *
 * The library is `libmpich.so.12` by name (with both MPIs installed `libmpi.so` is often
 * Open MPI's), or the path in `RECAP_MPI_LIB`.
 * @module
 */

import { readEnv } from "../../layers/kernels/env.ts";

/** MPICH's handle and constant values (`mpi.h`). */
export const MPI = {
  /** `MPI_COMM_WORLD`. */
  COMM_WORLD: 0x44000000,
  /** `MPI_BYTE`. */
  BYTE: 0x4c00010d,
  /** `MPI_FLOAT`. */
  FLOAT: 0x4c00040a,
  /** `MPI_DOUBLE`. */
  DOUBLE: 0x4c00080b,
  /** `MPI_MAX`. */
  MAX: 0x58000001,
  /** `MPI_SUM`. */
  SUM: 0x58000003,
  /** `MPI_SUCCESS`. */
  SUCCESS: 0,
  /** `MPI_MAX_PROCESSOR_NAME`. */
  MAX_PROCESSOR_NAME: 128,
  /** `MPI_THREAD_SINGLE`: every call from the main thread. */
  THREAD_SINGLE: 0,
} as const;

const SYMBOLS = {
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Get_processor_name: { parameters: ["buffer", "buffer"], result: "i32" },
  MPI_Isend: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Irecv: {
    parameters: ["pointer", "i32", "i32", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Ibcast: { parameters: ["pointer", "i32", "i32", "i32", "i32", "buffer"], result: "i32" },
  MPI_Iallreduce: {
    parameters: ["pointer", "pointer", "i32", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Test: { parameters: ["buffer", "buffer", "pointer"], result: "i32" },
  MPI_Abort: { parameters: ["i32", "i32"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  MPI_Get_library_version: { parameters: ["buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded MPICH calls. */
export type MpiSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library loaded by default (by name: with both MPIs installed, `libmpi.so` is Open MPI). */
export const MPICH_LIBRARY = "libmpich.so.12";

let loaded: MpiSymbols | null = null;

/**
 * Loads MPICH once (the first call), from `RECAP_MPI_LIB` or {@linkcode MPICH_LIBRARY}.
 * @returns The MPI calls.
 * @throws {Error} Naming the library and `RECAP_MPI_LIB` when it does not load.
 *
 * @example
 * ```ts ignore
 * import { loadMpich } from "./binding.ts";
 * const mpi = loadMpich(); // throws where MPICH is not installed
 * ```
 */
export function loadMpich(): MpiSymbols {
  if (loaded) return loaded;
  const path = readEnv("RECAP_MPI_LIB") ?? MPICH_LIBRARY;
  try {
    loaded = Deno.dlopen(path, SYMBOLS).symbols;
  } catch (e) {
    throw new Error(
      `Cannot load MPI: ${path} does not load (${(e as Error).message}); install MPICH ` +
        `(Debian/Ubuntu: apt install mpich) or set RECAP_MPI_LIB to its libmpich.so`,
      { cause: e },
    );
  }
  return loaded;
}

/**
 * Whether MPICH can be loaded here (without initialising it).
 * @returns True when {@linkcode loadMpich} would succeed.
 *
 * @example
 * ```ts
 * import { mpichAvailable } from "./binding.ts";
 * console.log(typeof mpichAvailable()); // boolean
 * ```
 */
export function mpichAvailable(): boolean {
  try {
    loadMpich();
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws when an MPI call did not return `MPI_SUCCESS`.
 * @param code The call's return value.
 * @param call The call's name, for the message.
 *
 * @example
 * ```ts
 * import { checkMpi } from "./binding.ts";
 * checkMpi(0, "MPI_Comm_rank"); // MPI_SUCCESS: nothing happens
 * ```
 */
export function checkMpi(code: number, call: string): void {
  if (code !== MPI.SUCCESS) throw new Error(`MPI error: ${call} returned ${code}`);
}
