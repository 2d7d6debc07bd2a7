/**
 * Argument checks shared by the backends that hand raw memory to native or wasm code, where an
 * out-of-bounds index would corrupt memory instead of reading `undefined`.
 * @module
 */
import type { FloatArray } from "../tensor.ts";

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
 * Checks every gemm argument (see {@linkcode Kernels.gemm}) before it reaches unchecked memory.
 * @param transA Whether A is stored transposed.
 * @param transB Whether B is stored transposed.
 * @param m Rows of op(A) and C.
 * @param n Columns of op(B) and C.
 * @param k Columns of op(A), rows of op(B).
 * @param a The array holding A.
 * @param aOffset Index of A's first element.
 * @param lda Leading dimension of A.
 * @param b The array holding B.
 * @param bOffset Index of B's first element.
 * @param ldb Leading dimension of B.
 * @param c The array holding C.
 * @param cOffset Index of C's first element.
 * @param ldc Leading dimension of C.
 * @throws {RangeError} If a dimension is negative or not an integer, or an operand does not fit.
 * @throws {TypeError} If A, B and C are not all Float32Array or all Float64Array.
 *
 * @example
 * ```ts
 * import { checkGemm } from "./check.ts";
 * const x = new Float64Array(4);
 * checkGemm(false, false, 2, 2, 2, x, 0, 2, x, 0, 2, x, 0, 2);
 * ```
 */
export function checkGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: FloatArray,
  aOffset: number,
  lda: number,
  b: FloatArray,
  bOffset: number,
  ldb: number,
  c: FloatArray,
  cOffset: number,
  ldc: number,
): void {
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
  checkOperand("A", a, aOffset, lda, transA ? k : m, transA ? m : k);
  checkOperand("B", b, bOffset, ldb, transB ? n : k, transB ? k : n);
  checkOperand("C", c, cOffset, ldc, m, n);
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
