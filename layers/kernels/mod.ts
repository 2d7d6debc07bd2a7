/**
 * Backend selection: one backend is chosen once (per process or worker) and used by every layer.
 * `selectKernels()` picks blas if it loads, else wasm, else ts; `RECAP_BACKEND` overrides.
 * @module
 */
import { type BlasKernels, loadBlasKernels } from "./blas.ts";
import { readEnv } from "./env.ts";
import { tsKernels } from "./ts.ts";
import { loadWasmKernels, type WasmKernels } from "./wasm.ts";
import type { BackendName, Kernels } from "./types.ts";

export type { BackendName, Kernels } from "./types.ts";

/** The backend in use; chosen on first use when nobody chose one (see {@linkcode kernels}). */
let current: Kernels | null = null;

/**
 * The backend the layers use now. Until one is chosen with {@linkcode selectKernels} or
 * {@linkcode setKernels}, the first call chooses as `selectKernels()` does (RECAP_BACKEND, else
 * the fastest that loads), so a library user gets the fast path without asking for it.
 * @returns The current kernels.
 *
 * @example
 * ```ts
 * import { kernels } from "./mod.ts";
 * console.log(kernels().name);
 * ```
 */
export function kernels(): Kernels {
  return current ?? selectKernels();
}

/**
 * Makes the layers use the given kernels.
 * @param k The backend to use.
 * @returns The previous backend, to restore later.
 *
 * @example
 * ```ts
 * import { setKernels } from "./mod.ts";
 * import { tsKernels } from "./ts.ts";
 * const previous = setKernels(tsKernels);
 * setKernels(previous);
 * ```
 */
export function setKernels(k: Kernels): Kernels {
  const previous = kernels();
  current = k;
  return previous;
}

/**
 * The backend names, most preferred first.
 * @returns The names.
 *
 * @example
 * ```ts
 * import { backendNames } from "./mod.ts";
 * console.log(backendNames()); // ["blas", "wasm", "ts"]
 * ```
 */
export function backendNames(): BackendName[] {
  return ["blas", "wasm", "ts"];
}

const LOADERS: Record<BackendName, () => Kernels> = {
  blas: () => loadBlasKernels(),
  wasm: () => loadWasmKernels(),
  ts: () => tsKernels,
};

/** Each backend's load outcome in this process or worker: loaded once, then reused. */
const loaded = new Map<BackendName, Kernels | Error>();

/**
 * Loads a backend by name (once per process or worker; later calls return the same object).
 * @param name The backend.
 * @returns Its kernels.
 * @throws {Error} If the backend cannot load here, saying why (e.g. no --allow-ffi, no BLAS).
 *
 * @example
 * ```ts
 * import { loadKernels } from "./mod.ts";
 * console.log(loadKernels("ts").name); // "ts"
 * ```
 */
export function loadKernels(name: BackendName): Kernels {
  if (!(name in LOADERS)) throw unknownBackend(name);
  let outcome = loaded.get(name);
  if (outcome === undefined) {
    try {
      outcome = LOADERS[name]();
    } catch (e) {
      outcome = e instanceof Error ? e : new Error(String(e));
    }
    loaded.set(name, outcome);
  }
  if (outcome instanceof Error) throw outcome;
  return outcome;
}

/**
 * The backends that load on this machine with the current permissions, most preferred first.
 * @returns Their names (always ends with "ts").
 *
 * @example
 * ```ts
 * import { availableBackends } from "./mod.ts";
 * console.log(availableBackends()); // e.g. ["blas", "wasm", "ts"]
 * ```
 */
export function availableBackends(): BackendName[] {
  return backendNames().filter((name) => {
    try {
      loadKernels(name);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Chooses the backend the layers use and makes it current. "auto" takes the first of blas, wasm,
 * ts that loads.
 * @param choice "auto" or a backend name; defaults to the `RECAP_BACKEND` environment variable
 * (when set and readable), else "auto".
 * @returns The kernels now current.
 * @throws {RangeError} If `choice` is not "auto" or a backend name.
 * @throws {Error} If an explicitly chosen backend cannot load, saying why.
 *
 * @example
 * ```ts
 * import { selectKernels } from "./mod.ts";
 * console.log(`backend: ${selectKernels().name}`);
 * ```
 */
export function selectKernels(choice?: "auto" | BackendName): Kernels {
  const wanted = choice ?? readEnv("RECAP_BACKEND") ?? "auto";
  if (wanted === "auto") {
    // The first that loads; later ones are not even tried (ts always loads).
    for (const name of backendNames()) {
      try {
        return current = loadKernels(name);
      } catch {
        // Not available here: try the next one.
      }
    }
  }
  if (!backendNames().includes(wanted as BackendName)) throw unknownBackend(wanted);
  return current = loadKernels(wanted as BackendName);
}

/**
 * A one-line description of a backend, for the "backend:" line a run prints at start.
 * @param k The kernels (default: the current ones).
 * @returns E.g. "blas (/usr/lib/x86_64-linux-gnu/libopenblas.so.0, 1 thread)",
 * "wasm (SIMD128, relaxed FMA)" or "ts (plain TypeScript)".
 *
 * @example
 * ```ts
 * import { describeKernels, selectKernels } from "./mod.ts";
 * console.log(`backend: ${describeKernels(selectKernels())}`);
 * ```
 */
export function describeKernels(k: Kernels = kernels()): string {
  const extra = k as Partial<BlasKernels & WasmKernels>;
  switch (k.name) {
    case "blas":
      return `blas (${extra.library ?? "CBLAS"}, ${
        extra.threads === "none" ? "library's own threading" : "1 thread"
      })`;
    case "wasm":
      return `wasm (SIMD128${extra.relaxed ? ", relaxed FMA" : ""})`;
    default:
      return `${k.name} (plain TypeScript)`;
  }
}

function unknownBackend(name: string): RangeError {
  return new RangeError(
    `Cannot select kernels: unknown backend "${name}", expected one of auto, ${
      backendNames().join(", ")
    }`,
  );
}
