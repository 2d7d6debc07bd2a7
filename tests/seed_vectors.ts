/**
 * Reads ../shared/reference/seed_vectors.json (through its byte-identical copy in
 * tests/fixtures/) and builds the tensors its generators describe.
 * @module
 */
import { type DType, Tensor } from "../layers/tensor.ts";

/** A generator of a tensor in the seed-vector file. */
export interface TensorSpec {
  linspace?: [number, number];
  values?: number[];
  shape: number[];
  dtype?: DType;
}

/** One case of the seed-vector file. */
export interface SeedCase {
  function: string;
  inputs: Record<string, TensorSpec>;
  expected: Record<string, TensorSpec>;
  max_rel_error?: number;
  max_abs_error?: number;
  dims?: Record<string, number>;
  word_to_idx?: Record<string, number>;
  checks?: Array<Record<string, number | number[]>>;
}

/** The whole seed-vector file. */
export interface SeedVectors {
  cases: Record<string, SeedCase>;
  gradient_checks: Record<string, number>;
  training: Record<string, string>;
}

/** The path of the copy kept in the repository. */
export const FIXTURE_URL = new URL("./fixtures/seed_vectors.json", import.meta.url);
/** The path of the original, beside the repository. */
export const SHARED_URL = new URL("../../shared/reference/seed_vectors.json", import.meta.url);

/** The parsed seed vectors. */
export const seedVectors: SeedVectors = JSON.parse(Deno.readTextFileSync(FIXTURE_URL));

/**
 * Builds the tensor a spec describes.
 * @param spec A `linspace` or `values` generator with its shape.
 * @param dtype The float dtype to build (ignored for int32 specs).
 * @returns The tensor.
 */
export function build(spec: TensorSpec, dtype: DType = "float64"): Tensor {
  const dt = spec.dtype ?? dtype;
  if (spec.linspace) return Tensor.linspace(spec.linspace[0], spec.linspace[1], spec.shape, dt);
  if (spec.values) return Tensor.fromValues(spec.values, spec.shape, dt);
  throw new Error(`Unknown tensor spec: ${JSON.stringify(spec)}`);
}
