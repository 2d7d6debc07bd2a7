/**
 * Affine (fully connected) layer: out = x @ w + b.
 *
 * Dimension legend: N batch, D input (the product of x's trailing dims), M output.
 * @module
 */
import { expectSameDtype, expectShape } from "./checks.ts";
import { mat, matmul, matmulAdd, T } from "./kernels/matmul.ts";
import { type FloatArray, type FloatDType, shapeSize, Tensor } from "./tensor.ts";

/** What {@linkcode affineForward} keeps for the backward pass. */
export interface AffineCache<D extends FloatDType> {
  /** The input, (N, d_1, …, d_k). */
  x: Tensor<D>;
  /** The weights, (D, M). */
  w: Tensor<D>;
}

/** Gradients from {@linkcode affineBackward}. */
export interface AffineGrads<D extends FloatDType> {
  /** Gradient of the input, shaped like x. */
  dx: Tensor<D>;
  /** Gradient of the weights, (D, M). */
  dw: Tensor<D>;
  /** Gradient of the bias, (M,). */
  db: Tensor<D>;
}

/**
 * Forward pass of an affine layer; x's trailing dimensions are flattened to D.
 * @param x Input, (N, d_1, …, d_k) with D = d_1 ⋯ d_k.
 * @param w Weights, (D, M).
 * @param b Bias, (M,).
 * @returns `[out, cache]` with out (N, M).
 *
 * @example
 * ```ts
 * import { affineForward, Tensor } from "../mod.ts";
 * const [out] = affineForward(Tensor.zeros([2, 3]), Tensor.zeros([3, 4]), Tensor.linspace(0, 3, [4]));
 * console.log(out.shape); // [2, 4]
 * ```
 */
export function affineForward<D extends FloatDType>(
  x: Tensor<D>,
  w: Tensor<D>,
  b: Tensor<D>,
): [Tensor<D>, AffineCache<D>] {
  expectSameDtype({ x, w, b });
  // D from the trailing dims, not x.size / N, which is NaN for an empty batch.
  const n = x.shape[0], d = shapeSize(x.shape.slice(1));
  expectShape("w", w, [d, -1]);
  const m = w.shape[1];
  expectShape("b", b, [m]);
  const out = Tensor.zeros([n, m], x.dtype);
  affineRows(x.data, n, d, w.data, b.data, out.data, m);
  return [out, { x, w }];
}

/**
 * The affine map on flat rows: out = b broadcast over the rows, then out += x @ w (one GEMM).
 * The kernel under {@linkcode affineForward}, for the fused steps and decoders.
 * @param x The input rows, (N, D), from element 0.
 * @param rows N.
 * @param d D.
 * @param w The weights, (D, M).
 * @param b The bias, (M,).
 * @param out Where the rows go, (N, M) from element `off`, rows M apart.
 * @param m M.
 * @param off The first output element (default 0).
 *
 * @example
 * ```ts
 * import { affineRows } from "./affine.ts";
 * const out = new Float64Array(2);
 * affineRows(new Float64Array([1, 2]), 1, 2, new Float64Array([1, 0, 0, 1]), new Float64Array([10, 20]), out, 2);
 * console.log(out); // [11, 22]
 * ```
 */
export function affineRows(
  x: FloatArray,
  rows: number,
  d: number,
  w: FloatArray,
  b: FloatArray,
  out: FloatArray,
  m: number,
  off = 0,
): void {
  for (let i = 0; i < rows; i++) out.set(b, off + i * m);
  matmulAdd(mat(out, rows, m, off), mat(x, rows, d), mat(w, d, m));
}

/**
 * Backward pass of an affine layer.
 * @param dout Upstream gradient, (N, M).
 * @param cache The cache from {@linkcode affineForward}.
 * @returns `{ dx, dw, db }`.
 *
 * @example
 * ```ts
 * import { affineBackward, affineForward, Tensor } from "../mod.ts";
 * const [out, cache] = affineForward(Tensor.randn([2, 3], 0), Tensor.randn([3, 4], 1), Tensor.zeros([4]));
 * const { dx, dw, db } = affineBackward(Tensor.randn(out.shape, 2), cache);
 * console.log(dx.shape, dw.shape, db.shape); // [2, 3] [3, 4] [4]
 * ```
 */
export function affineBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: AffineCache<D>,
): AffineGrads<D> {
  const { x, w } = cache;
  const n = x.shape[0], d = shapeSize(x.shape.slice(1)), m = w.shape[1];
  expectShape("dout", dout, [n, m]);
  const dx = Tensor.zeros(x.shape, x.dtype);
  const dw = Tensor.zeros([d, m], x.dtype);
  const db = Tensor.zeros([m], x.dtype);
  affineRowsBackward(dout.data, x.data, n, d, w.data, m, { dx: dx.data, dw: dw.data, db: db.data });
  return { dx, dw, db };
}

/**
 * The backward pass of {@linkcode affineRows}: dx = dout @ wᵀ (added to dx with `accumulate`,
 * e.g. when x feeds several maps), dw = xᵀ @ dout, db = Σ dout over the rows; dw and db are
 * overwritten. The kernel under {@linkcode affineBackward}, for the fused steps.
 * @param dout The output's gradient, (N, M), from element 0.
 * @param x The forward pass's input rows, (N, D).
 * @param rows N.
 * @param d D.
 * @param w The weights, (D, M).
 * @param m M.
 * @param grads Where the gradients go: dw (D, M), db (M,), and dx (N, D) unless null.
 * @param accumulate Add into dx instead of overwriting it (default false).
 *
 * @example
 * ```ts
 * import { affineRowsBackward } from "./affine.ts";
 * const g = { dx: new Float64Array(2), dw: new Float64Array(4), db: new Float64Array(2) };
 * affineRowsBackward(new Float64Array([1, 0]), new Float64Array([3, 4]), 1, 2, new Float64Array([1, 2, 3, 4]), 2, g);
 * console.log(g.dx, g.dw, g.db); // [1, 3] [3, 0, 4, 0] [1, 0]
 * ```
 */
export function affineRowsBackward(
  dout: FloatArray,
  x: FloatArray,
  rows: number,
  d: number,
  w: FloatArray,
  m: number,
  grads: { dx: FloatArray | null; dw: FloatArray; db: FloatArray },
  accumulate = false,
): void {
  const dOut = mat(dout, rows, m);
  if (grads.dx) {
    const dx = mat(grads.dx, rows, d), wT = T(mat(w, d, m));
    if (accumulate) matmulAdd(dx, dOut, wT); // += dout @ wᵀ
    else matmul(dx, dOut, wT); // dout @ wᵀ
  }
  matmul(mat(grads.dw, d, m), T(mat(x, rows, d)), dOut); // xᵀ @ dout
  grads.db.fill(0);
  sumRows(dout, rows, m, grads.db);
}

/**
 * Adds the rows of a (rows, cols) matrix into `out` (cols,): the bias gradient.
 * @param a The matrix, row-major.
 * @param rows The number of rows.
 * @param cols The number of columns.
 * @param out The accumulator, (cols,).
 */
export function sumRows(
  a: Float32Array | Float64Array,
  rows: number,
  cols: number,
  out: Float32Array | Float64Array,
): void {
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) out[j] += a[r + j];
  }
}
