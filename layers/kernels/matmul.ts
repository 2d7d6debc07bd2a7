/**
 * Matrix products in operand form: `matmul(c, a, T(b))` instead of the sixteen positional
 * arguments of {@linkcode Kernels.gemm}. An operand is a row-major matrix inside a flat array
 * (a view, no copy), so a layer can multiply steps of an (N, T, H) buffer or parameters inside
 * the one flat parameter buffer. Underneath, each product is exactly one `kernels().gemm` call
 * with alpha 1 and beta 0 (`matmul`) or 1 (`matmulAdd`), so results are those of the raw kernel.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import { kernels } from "./mod.ts";

/**
 * A matrix inside a flat row-major array: `rows × cols` as it is used (after any transpose).
 * Stored, it is `rows × cols` from `offset` with rows `ld` elements apart, or, when
 * `transposed`, `cols × rows`.
 */
export interface Mat {
  /** The array holding the stored matrix. */
  readonly data: FloatArray;
  /** Rows as used. */
  readonly rows: number;
  /** Columns as used. */
  readonly cols: number;
  /** Index of the stored matrix's first element. */
  readonly offset: number;
  /** Leading dimension: elements between consecutive stored rows. */
  readonly ld: number;
  /** Whether it is used as the transpose of the stored matrix. */
  readonly transposed: boolean;
}

/**
 * A `rows × cols` matrix view of a flat array.
 * @param data The array.
 * @param rows The number of rows.
 * @param cols The number of columns.
 * @param offset Index of the first element (default 0).
 * @param ld Elements between consecutive rows (default `cols`: rows packed one after another).
 * @returns The view.
 *
 * @example
 * ```ts
 * import { mat } from "./matmul.ts";
 * // Step 1 of an (N, T, H) = (2, 3, 4) array: N rows of H, T·H apart.
 * const step = mat(new Float32Array(24), 2, 4, 1 * 4, 3 * 4);
 * console.log(step.rows, step.cols); // 2 4
 * ```
 */
export function mat(
  data: FloatArray,
  rows: number,
  cols: number,
  offset = 0,
  ld: number = cols,
): Mat {
  return { data, rows, cols, offset, ld, transposed: false };
}

/**
 * The transpose of a matrix, as a view (nothing is copied).
 * @param m The matrix.
 * @returns `mᵀ`: rows and columns swapped.
 *
 * @example
 * ```ts
 * import { mat, T } from "./matmul.ts";
 * console.log(T(mat(new Float64Array(6), 2, 3)).rows); // 3
 * ```
 */
export function T(m: Mat): Mat {
  return {
    data: m.data,
    rows: m.cols,
    cols: m.rows,
    offset: m.offset,
    ld: m.ld,
    transposed: !m.transposed,
  };
}

/**
 * c = a · b, overwriting c (whose old contents are never read).
 * @param c The result, `a.rows × b.cols`, not transposed.
 * @param a The left factor.
 * @param b The right factor, `a.cols` rows.
 * @throws {RangeError} When the shapes do not fit, naming them.
 *
 * @example
 * ```ts
 * import { mat, matmul, T } from "./matmul.ts";
 * const x = new Float64Array([1, 2, 3, 4]); // (2, 2)
 * const c = new Float64Array(4);
 * matmul(mat(c, 2, 2), mat(x, 2, 2), T(mat(x, 2, 2))); // x · xᵀ
 * console.log(c); // [5, 11, 11, 25]
 * ```
 */
export function matmul(c: Mat, a: Mat, b: Mat): void {
  gemm(c, a, b, 0);
}

/**
 * c += a · b.
 * @param c The accumulator, `a.rows × b.cols`, not transposed.
 * @param a The left factor.
 * @param b The right factor, `a.cols` rows.
 * @throws {RangeError} When the shapes do not fit, naming them.
 *
 * @example
 * ```ts
 * import { mat, matmulAdd } from "./matmul.ts";
 * const c = new Float32Array([10, 20]); // a bias, (1, 2)
 * matmulAdd(mat(c, 1, 2), mat(new Float32Array([1, 2]), 1, 2), mat(new Float32Array([1, 0, 0, 1]), 2, 2));
 * console.log(c); // [11, 22]
 * ```
 */
export function matmulAdd(c: Mat, a: Mat, b: Mat): void {
  gemm(c, a, b, 1);
}

function gemm(c: Mat, a: Mat, b: Mat, beta: 0 | 1): void {
  if (a.cols !== b.rows || c.rows !== a.rows || c.cols !== b.cols || c.transposed) {
    throw new RangeError(
      `Cannot multiply matrices: ${shape(a)} · ${shape(b)} into ${shape(c)}: ` +
        (a.cols !== b.rows
          ? "the inner dimensions differ"
          : c.transposed
          ? "the result cannot be a transposed view"
          : `the result must be ${a.rows} x ${b.cols}`),
    );
  }
  kernels().gemm(
    a.transposed,
    b.transposed,
    a.rows,
    b.cols,
    a.cols,
    1,
    a.data,
    a.offset,
    a.ld,
    b.data,
    b.offset,
    b.ld,
    beta,
    c.data,
    c.offset,
    c.ld,
  );
}

function shape(m: Mat): string {
  return `${m.rows} x ${m.cols}${m.transposed ? " (transposed)" : ""}`;
}
