/**
 * Temporal affine layer: the same affine map applied at every time step.
 *
 * Dimension legend: N batch, T time, D input, M output.
 * @module
 */
import { affineBackward, type AffineCache, affineForward, type AffineGrads } from "./affine.ts";
import { expectShape } from "./checks.ts";
import type { FloatDType, Tensor } from "./tensor.ts";

/** What {@linkcode temporalAffineForward} keeps for the backward pass. */
export interface TemporalAffineCache<D extends FloatDType> {
  /** The affine cache over the (N·T, D) rows. */
  affine: AffineCache<D>;
  /** The input's shape, [N, T, D]. */
  xShape: readonly number[];
}

/**
 * Forward pass: out[n, t] = x[n, t] @ w + b, computed as one (N·T, D) @ (D, M) product.
 * @param x Input, (N, T, D).
 * @param w Weights, (D, M).
 * @param b Bias, (M,).
 * @returns `[out, cache]` with out (N, T, M).
 *
 * @example
 * ```ts
 * import { temporalAffineForward, Tensor } from "../mod.ts";
 * const [out] = temporalAffineForward(Tensor.zeros([2, 3, 4]), Tensor.zeros([4, 5]), Tensor.zeros([5]));
 * console.log(out.shape); // [2, 3, 5]
 * ```
 */
export function temporalAffineForward<D extends FloatDType>(
  x: Tensor<D>,
  w: Tensor<D>,
  b: Tensor<D>,
): [Tensor<D>, TemporalAffineCache<D>] {
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, d] = x.shape;
  const [out, affine] = affineForward(x.reshape([n * t, d]), w, b);
  return [out.reshape([n, t, out.shape[1]]), { affine, xShape: x.shape }];
}

/**
 * Backward pass of the temporal affine layer.
 * @param dout Upstream gradient, (N, T, M).
 * @param cache The cache from {@linkcode temporalAffineForward}.
 * @returns `{ dx, dw, db }` with dx (N, T, D), dw (D, M), db (M,).
 *
 * @example
 * ```ts
 * import { temporalAffineBackward, temporalAffineForward, Tensor } from "../mod.ts";
 * const [out, cache] = temporalAffineForward(Tensor.randn([2, 3, 4], 0), Tensor.randn([4, 5], 1), Tensor.zeros([5]));
 * const { dx, dw } = temporalAffineBackward(Tensor.randn(out.shape, 2), cache);
 * console.log(dx.shape, dw.shape); // [2, 3, 4] [4, 5]
 * ```
 */
export function temporalAffineBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: TemporalAffineCache<D>,
): AffineGrads<D> {
  const [n, t] = cache.xShape;
  expectShape("dout", dout, [n, t, -1]);
  const { dx, dw, db } = affineBackward(dout.reshape([n * t, dout.shape[2]]), cache.affine);
  return { dx: dx.reshape(cache.xShape), dw, db };
}
