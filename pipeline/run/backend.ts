/**
 * Selecting the compute backend a run or command asked for (`train.backend`, or the
 * `RECAP_BACKEND` environment variable when it says "auto"), with a one-line message naming
 * the setting to change when it cannot be used — an unknown name, or a BLAS library
 * (`RECAP_BLAS`) that does not load.
 * @module
 */
import { readEnv } from "../../layers/kernels/env.ts";
import { backendNames, selectKernels } from "../../layers/kernels/mod.ts";
import type { BackendName } from "../../layers/kernels/types.ts";
import { InputError } from "../errors.ts";

/**
 * Makes the configured backend current.
 * @param choice `train.backend`: "auto" (then `RECAP_BACKEND` decides, else the fastest that
 * loads) or a backend name.
 * @returns The backend's name.
 * @throws InputError naming `RECAP_BACKEND`, `RECAP_BLAS` or `train.backend`.
 *
 * @example
 * ```ts
 * import { selectConfiguredBackend } from "./backend.ts";
 * console.log(selectConfiguredBackend("ts")); // ts
 * ```
 */
export function selectConfiguredBackend(choice: "auto" | BackendName): BackendName {
  const fromEnv = choice === "auto" ? readEnv("RECAP_BACKEND") : undefined;
  const names = backendNames();
  if (fromEnv !== undefined && fromEnv !== "auto" && !names.includes(fromEnv as BackendName)) {
    throw new InputError(
      `RECAP_BACKEND: unknown backend ${JSON.stringify(fromEnv)}; expected auto, ` +
        `${names.join(", ")}, or unset it`,
    );
  }
  try {
    return selectKernels(choice === "auto" ? undefined : choice).name;
  } catch (e) {
    const why = (e as Error).message;
    const wanted = fromEnv ?? choice;
    const blas = readEnv("RECAP_BLAS");
    if (wanted === "blas" && blas !== undefined) {
      throw new InputError(
        `RECAP_BLAS=${blas}: ${why}; unset RECAP_BLAS or point it at a CBLAS library ` +
          `(e.g. libopenblas.so.0)`,
        { cause: e },
      );
    }
    throw new InputError(
      `${fromEnv !== undefined ? "RECAP_BACKEND" : "train.backend"}: the ${wanted} backend ` +
        `cannot be used here (${why}); choose "auto"`,
      { cause: e },
    );
  }
}
