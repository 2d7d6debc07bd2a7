/**
 * Backend selection: one backend is chosen once and used by every layer.
 * @module
 */
import { tsKernels } from "./ts.ts";
import type { BackendName, Kernels } from "./types.ts";

export type { BackendName, Kernels } from "./types.ts";

let current: Kernels = tsKernels;

/**
 * The backend the layers use now.
 * @returns The current kernels.
 *
 * @example
 * ```ts
 * import { kernels } from "./mod.ts";
 * console.log(kernels().name);
 * ```
 */
export function kernels(): Kernels {
  return current;
}

/**
 * Makes the layers use the given kernels.
 * @param k The backend to use.
 * @returns The previous backend, to restore later.
 */
export function setKernels(k: Kernels): Kernels {
  const previous = current;
  current = k;
  return previous;
}

/**
 * The backend names, most preferred first.
 * @returns The names.
 */
export function backendNames(): BackendName[] {
  return ["blas", "wasm", "ts"];
}
