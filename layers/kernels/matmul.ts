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
 * Columns j0 … j1 − 1 of a matrix, as a view (of its stored rows when it is transposed).
 * @param m The matrix.
 * @param j0 The first column.
 * @param j1 One past the last column.
 * @returns The `m.rows × (j1 − j0)` view.
 *
 * @example
 * ```ts
 * import { columnSlice, mat } from "./matmul.ts";
 * const m = columnSlice(mat(new Float32Array(12), 3, 4), 1, 3);
 * console.log(m.rows, m.cols, m.offset, m.ld); // 3 2 1 4
 * ```
 */
export function columnSlice(m: Mat, j0: number, j1: number): Mat {
  return { ...m, cols: j1 - j0, offset: m.offset + (m.transposed ? j0 * m.ld : j0) };
}

/**
 * Rows r0 … r1 − 1 of a matrix, as a view (of its stored columns when it is transposed).
 * @param m The matrix.
 * @param r0 The first row.
 * @param r1 One past the last row.
 * @returns The `(r1 − r0) × m.cols` view.
 *
 * @example
 * ```ts
 * import { mat, rowSlice, T } from "./matmul.ts";
 * const m = rowSlice(T(mat(new Float32Array(12), 3, 4)), 1, 3); // rows 1, 2 of a 4 × 3 view
 * console.log(m.rows, m.cols, m.offset); // 2 3 1
 * ```
 */
export function rowSlice(m: Mat, r0: number, r1: number): Mat {
  return { ...m, rows: r1 - r0, offset: m.offset + (m.transposed ? r0 : r0 * m.ld) };
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

/**
 * The largest product M·N·K for which OpenBLAS (0.3.x, AVX-512 builds) multiplies without
 * packing its operands (its "small matrix" kernels): below it, a GEMM costs its FLOPs; above
 * it, every call first copies all of B (4 MiB for the LSTM's Wh), which dominates a recurrent
 * step of a few rows.
 */
export const SMALL_GEMM_MNK = 1_000_000;

/**
 * When cutting a GEMM into column blocks pays, by how b is sliced (bench/recurrent_gemm_bench.ts
 * on OpenBLAS 0.3.21, AVX-512): column slices of a row-major b (rows of `width` floats, `ld`
 * apart) are slow below 32 columns; row slices of a transposed view (contiguous rows of b's
 * stored form) pay down to 8, but only when b holds more than 2¹⁸ elements (1 MiB of float32:
 * below it, one packed call is as fast).
 */
export const BLOCKING_LIMITS = {
  columnSlicesMinWidth: 32,
  rowSlicesMinWidth: 8,
  rowSlicesMinB: 1 << 18,
} as const;

/**
 * The column-block width that keeps each block of an (m × k) · (k × n) GEMM within
 * {@linkcode SMALL_GEMM_MNK}: the largest power of two w < n that divides n with
 * m·w·k ≤ SMALL_GEMM_MNK, within the {@linkcode BLOCKING_LIMITS} of b's slicing, else n (one
 * call). A function of the shape alone — never of the worker count — so a GEMM cut this way
 * gives the same bits wherever it runs.
 * @param m Rows of the product.
 * @param n Columns of the product.
 * @param k The inner dimension.
 * @param bTransposed Whether b is a transposed view (its blocks are then rows of its storage).
 * @returns The block width, a divisor of n.
 *
 * @example
 * ```ts
 * import { columnBlockWidth } from "./matmul.ts";
 * console.log(columnBlockWidth(6, 2048, 512, false), columnBlockWidth(100, 2048, 512, false)); // 256 2048
 * ```
 */
export function columnBlockWidth(m: number, n: number, k: number, bTransposed: boolean): number {
  const lim = BLOCKING_LIMITS;
  if (bTransposed && n * k <= lim.rowSlicesMinB) return n;
  const minWidth = bTransposed ? lim.rowSlicesMinWidth : lim.columnSlicesMinWidth;
  let w = 1;
  while (w * 2 < n && n % (w * 2) === 0 && m * w * 2 * k <= SMALL_GEMM_MNK) w *= 2;
  return w >= minWidth ? w : n;
}

/**
 * c = a · b + beta · c, computed as independent GEMMs over fixed blocks of `width` columns of
 * c: block j is c[:, j·w … (j+1)·w) = a · b[:, j·w … (j+1)·w) (b is sliced by columns, or by
 * rows of its stored form when it is a transposed view). Each block is one GEMM of the same
 * shape on the same data, so the bits depend on `width`, not on who computes which block.
 * @param c The result, `a.rows × b.cols`, not transposed.
 * @param a The left factor.
 * @param b The right factor, `a.cols` rows.
 * @param width The block width, a divisor of `b.cols` (e.g. from {@linkcode columnBlockWidth}).
 * @param beta 0 to overwrite c, 1 to add to it.
 * @throws {RangeError} When the shapes do not fit or width does not divide the columns.
 *
 * @example
 * ```ts
 * import { mat, matmulColumnBlocks } from "./matmul.ts";
 * const c = new Float32Array(4);
 * const eye = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
 * matmulColumnBlocks(mat(c, 1, 4), mat(new Float32Array([1, 2, 3, 4]), 1, 4), mat(eye, 4, 4), 2, 0);
 * console.log(c); // [1, 2, 3, 4]
 * ```
 */
export function matmulColumnBlocks(c: Mat, a: Mat, b: Mat, width: number, beta: 0 | 1): void {
  const n = b.cols;
  if (!Number.isInteger(width) || width < 1 || n % width !== 0) {
    throw new RangeError(`Cannot cut ${n} columns into blocks of ${width}`);
  }
  if (width === n) return gemm(c, a, b, beta);
  for (let j = 0; j < n; j += width) {
    // Column j of b is at offset j of its rows, or, stored transposed, at row j.
    const bOff = b.offset + (b.transposed ? j * b.ld : j);
    const bj: Mat = { ...b, cols: width, offset: bOff };
    gemm({ ...c, cols: width, offset: c.offset + j }, a, bj, beta);
  }
}
