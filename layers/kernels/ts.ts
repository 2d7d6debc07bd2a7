/**
 * The plain TypeScript backend: the reference every other backend is tested against.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import type { Kernels } from "./types.ts";

/** The plain TypeScript kernels (i-k-j loops, no tricks). */
export const tsKernels: Kernels = {
  name: "ts",
  gemm: gemmTs,
};

/** C = alpha * op(A) @ op(B) + beta * C, row-major; see {@linkcode Kernels.gemm}. */
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
