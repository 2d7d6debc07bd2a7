/**
 * Selects the kernels the layer and model tests run on: the backend named by RECAP_BACKEND
 * when set (CI runs these suites once per available backend), else the plain TypeScript
 * reference. Each test file runs in its own isolate, so importing this affects only that file.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";

/** The backend these tests run on. */
export const testBackend: string =
  selectKernels((Deno.env.get("RECAP_BACKEND") ?? "ts") as BackendName | "auto").name;
