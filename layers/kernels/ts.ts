/**
 * The plain TypeScript backend: the reference every other backend is tested against.
 * @module
 */
import type { Kernels } from "./types.ts";

/**
 * The plain TypeScript kernels (i-k-j loops, no tricks): C = alpha · op(A) · op(B) + beta · C,
 * row-major; see {@linkcode Kernels.gemm}. Each row of C is computed on its own, so a row's
 * bits do not depend on how many rows a call has.
 * @example
 * ```ts
 * import { tsKernels } from "./ts.ts";
 * const c = new Float32Array(4); // (2 x 2) = (2 x 1) @ (1 x 2)
 * tsKernels.gemm(false, false, 2, 2, 1, 1, new Float32Array([1, 2]), 0, 1, new Float32Array([3, 4]), 0, 2, 0, c, 0, 2);
 * console.log(c); // [3, 4, 6, 8]
 * ```
 */
export const tsKernels: Kernels = {
  name: "ts",
  gemm(transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc) {
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
  },
};
