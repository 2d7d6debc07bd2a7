/**
 * The plain TypeScript backend: the reference every other backend is tested against.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import type { Kernels } from "./types.ts";

/**
 * The plain TypeScript kernels (i-k-j loops, no tricks).
 * @example
 * ```ts
 * import { tsKernels } from "./ts.ts";
 * const c = new Float64Array(1);
 * tsKernels.gemm(false, false, 1, 1, 2, 1, new Float64Array([1, 2]), 0, 2, new Float64Array([3, 4]), 0, 1, 0, c, 0, 1);
 * console.log(c[0]); // 11
 * ```
 */
export const tsKernels: Kernels = {
  name: "ts",
  gemm: gemmTs,
};

/**
 * C = alpha * op(A) @ op(B) + beta * C, row-major; see {@linkcode Kernels.gemm}.
 * @param transA Whether op(A) = Aᵀ (A stored k x m).
 * @param transB Whether op(B) = Bᵀ (B stored n x k).
 * @param m Rows of op(A) and C.
 * @param n Columns of op(B) and C.
 * @param k Columns of op(A), rows of op(B).
 * @param alpha Scale of the product.
 * @param a The array holding A.
 * @param aOffset Index of A's first element.
 * @param lda Leading dimension of A (elements between stored rows).
 * @param b The array holding B.
 * @param bOffset Index of B's first element.
 * @param ldb Leading dimension of B.
 * @param beta Scale of the old C (0 overwrites without reading).
 * @param c The array holding C.
 * @param cOffset Index of C's first element.
 * @param ldc Leading dimension of C.
 * @example
 * ```ts
 * import { gemmTs } from "./ts.ts";
 * const c = new Float32Array(4); // (2 x 2) = (2 x 1) @ (1 x 2)
 * gemmTs(false, false, 2, 2, 1, 1, new Float32Array([1, 2]), 0, 1, new Float32Array([3, 4]), 0, 2, 0, c, 0, 2);
 * console.log(c); // [3, 4, 6, 8]
 * ```
 */
export function gemmTs(
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
): void {
  for (let i = 0; i < m; i++) {
    const ci = cOffset + i * ldc;
    if (beta === 0) c.fill(0, ci, ci + n);
    else if (beta !== 1) { for (let j = 0; j < n; j++) c[ci + j] *= beta; }
  }
  // op(A)[i, p] and op(B)[p, j] index helpers, hoisted per loop for the common cases.
  const aRow = transA ? 1 : lda, aCol = transA ? lda : 1;
  for (let i = 0; i < m; i++) {
    const ci = cOffset + i * ldc;
    for (let p = 0; p < k; p++) {
      const av = alpha * a[aOffset + i * aRow + p * aCol];
      if (av === 0) continue;
      if (!transB) {
        const bp = bOffset + p * ldb;
        for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
      } else {
        const bp = bOffset + p;
        for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j * ldb];
      }
    }
  }
}
