/**
 * Argument checks shared by the backends that hand raw memory to native or wasm code, where an
 * out-of-bounds index would corrupt memory instead of reading `undefined`.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import type { Kernels } from "./types.ts";

/**
 * Checks that one gemm operand fits its array: `rows` stored rows of `cols` elements each, the
 * first at `offset`, consecutive rows `ld` elements apart.
 * @param what The operand's name for the error message ("A", "B" or "C").
 * @param x The array holding the operand.
 * @param offset Index of the operand's first element in `x`.
 * @param ld The leading dimension (distance between stored rows, in elements).
 * @param rows The number of stored rows.
 * @param cols The number of stored columns.
 * @throws {RangeError} If an index is negative, not an integer, `ld < cols`, or the last
 * element lies past the end of `x`.
 *
 * @example
 * ```ts
 * import { checkOperand } from "./check.ts";
 * checkOperand("A", new Float32Array(6), 0, 3, 2, 3); // fits exactly
 * ```
 */
export function checkOperand(
  what: string,
  x: FloatArray,
  offset: number,
  ld: number,
  rows: number,
  cols: number,
): void {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(
      `Cannot run gemm: offset of ${what} must be an integer >= 0, got ${offset}`,
    );
  }
  if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
    throw new RangeError(
      `Cannot run gemm: leading dimension of ${what} must be an integer >= ${
        Math.max(1, cols)
      }, got ${ld}`,
    );
  }
  if (rows === 0 || cols === 0) return;
  const end = offset + (rows - 1) * ld + cols;
  if (end > x.length) {
    throw new RangeError(
      `Cannot run gemm: ${what} (${rows} x ${cols}, offset ${offset}, ld ${ld}) needs ${end} elements, its array has ${x.length}`,
    );
  }
}

/**
 * A backend's gemm behind the checks every backend that hands raw memory to native or wasm
 * code needs: the dimensions are integers >= 0, A, B and C have one element type (Float32Array
 * or Float64Array) and every operand fits its array ({@linkcode checkOperand}); m = 0 or
 * n = 0 then does nothing, and k = 0 or alpha = 0 only scales C. So `core` runs with
 * m, n, k >= 1, alpha != 0 and operands that fit.
 * @param core The backend's multiply.
 * @returns The checked gemm, which throws a RangeError for a dimension or an operand out of
 * range and a TypeError for mixed element types.
 *
 * @example
 * ```ts
 * import { checkedGemm } from "./check.ts";
 * import { tsKernels } from "./ts.ts";
 * const gemm = checkedGemm(tsKernels.gemm);
 * const c = new Float64Array([NaN]);
 * gemm(false, false, 1, 1, 0, 1, new Float64Array(0), 0, 1, new Float64Array(0), 0, 1, 0, c, 0, 1);
 * console.log(c[0]); // 0: k = 0 only scales C (beta = 0 clears it)
 * ```
 */
export function checkedGemm(core: Kernels["gemm"]): Kernels["gemm"] {
  return (tA, tB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc) => {
    for (const [name, v] of [["m", m], ["n", n], ["k", k]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
        throw new RangeError(`Cannot run gemm: ${name} must be an integer >= 0, got ${v}`);
      }
    }
    const f32 = c instanceof Float32Array;
    if (!f32 && !(c instanceof Float64Array)) {
      throw new TypeError("Cannot run gemm: C must be a Float32Array or a Float64Array");
    }
    if ((a instanceof Float32Array) !== f32 || (b instanceof Float32Array) !== f32) {
      throw new TypeError(
        `Cannot run gemm: A, B and C must have the same element type, got ${a.constructor.name}, ${b.constructor.name} and ${c.constructor.name}`,
      );
    }
    checkOperand("A", a, aOff, lda, tA ? k : m, tA ? m : k);
    checkOperand("B", b, bOff, ldb, tB ? n : k, tB ? k : n);
    checkOperand("C", c, cOff, ldc, m, n);
    if (m === 0 || n === 0) return;
    if (k === 0 || alpha === 0) return scaleC(m, n, beta, c, cOff, ldc);
    core(tA, tB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
  };
}

/**
 * C = beta * C over an m x n block, with beta = 0 writing zeros (never reading C, so NaN
 * garbage is overwritten). The whole of gemm when k = 0 or alpha = 0.
 * @param m Rows of C.
 * @param n Columns of C.
 * @param beta The scale.
 * @param c The array holding C.
 * @param cOffset Index of C's first element.
 * @param ldc Leading dimension of C.
 *
 * @example
 * ```ts
 * import { scaleC } from "./check.ts";
 * const c = new Float32Array([NaN, 1]);
 * scaleC(1, 2, 0, c, 0, 2); // c is now [0, 0]
 * ```
 */
export function scaleC(
  m: number,
  n: number,
  beta: number,
  c: FloatArray,
  cOffset: number,
  ldc: number,
): void {
  if (beta === 1) return;
  for (let i = 0; i < m; i++) {
    const ci = cOffset + i * ldc;
    if (beta === 0) c.fill(0, ci, ci + n);
    else for (let j = 0; j < n; j++) c[ci + j] *= beta;
  }
}
