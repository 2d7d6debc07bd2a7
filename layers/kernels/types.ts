/**
 * The kernel interface under the layers: the few primitives whose speed matters.
 * Every backend (ts, wasm, blas) implements it for Float32Array and Float64Array.
 * @module
 */
import type { FloatArray } from "../tensor.ts";

/** The names of the compute backends. */
export type BackendName = "ts" | "wasm" | "blas";

/**
 * A compute backend. Matrices are row-major, addressed as (array, offset, leading dimension),
 * so a layer can multiply views into one flat buffer without copying.
 */
export interface Kernels {
  /** Which backend this is. */
  readonly name: BackendName;
  /**
   * General matrix multiply: C = alpha * op(A) @ op(B) + beta * C, where op(X) is X or Xᵀ.
   * op(A) is (m, k), op(B) is (k, n), C is (m, n). A, B and C have the same element type.
   * beta = 0 overwrites C (its old contents are never read, so NaN garbage is fine);
   * beta = 1 accumulates into C.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: FloatArray,
    aOffset: number,
    lda: number,
    b: FloatArray,
    bOffset: number,
    ldb: number,
    beta: number,
    c: FloatArray,
    cOffset: number,
    ldc: number,
  ): void;
}
