/**
 * Layer normalization (PyTorch's `nn.LayerNorm` over the last dimension, the exercise's
 * `layernorm_forward`): each row is centred and scaled by its own mean and (biased) variance,
 * then scaled by gamma and shifted by beta.
 *
 *   xhat = (x - mean) / sqrt(var + eps),  out = gamma * xhat + beta
 *
 * The row kernels below are the one implementation: the Tensor functions run them over every
 * row, the Transformer's fused step and decoder over rows of their work arrays.
 *
 * Dimension legend: N rows (the product of all leading dimensions), D features.
 * @module
 */
import { expectSameDtype, expectShape } from "./checks.ts";
import type { FloatArray, FloatDType } from "./tensor.ts";
import { shapeSize, Tensor } from "./tensor.ts";

/** PyTorch's default epsilon. */
export const LAYER_NORM_EPS = 1e-5;

/**
 * Normalizes `rows` rows of D features from row `row0` (every array at element row0 · D, rstd
 * at row0): xhat and out (which may be x itself) get the normalized and the affine rows.
 * @param x The input rows, (·, D).
 * @param gamma The scale, (D,).
 * @param beta The shift, (D,).
 * @param out Where the output rows go, (·, D).
 * @param xhat Where the normalized rows go, (·, D) (kept for the backward pass).
 * @param rstd Where each row's 1 / sqrt(var + eps) goes, (·,).
 * @param row0 The first row.
 * @param rows How many rows.
 * @param d D.
 * @param eps The variance's smoothing (default 1e-5).
 *
 * @example
 * ```ts
 * import { layerNormRows } from "./layer_norm.ts";
 * const x = new Float64Array([1, 3]), out = new Float64Array(2), xhat = new Float64Array(2);
 * layerNormRows(x, new Float64Array([1, 1]), new Float64Array([0, 0]), out, xhat, new Float64Array(1), 0, 1, 2, 0);
 * console.log(out); // [-1, 1]
 * ```
 */
export function layerNormRows(
  x: FloatArray,
  gamma: FloatArray,
  beta: FloatArray,
  out: FloatArray,
  xhat: FloatArray,
  rstd: FloatArray,
  row0: number,
  rows: number,
  d: number,
  eps: number = LAYER_NORM_EPS,
): void {
  for (let r = row0; r < row0 + rows; r++) {
    const o = r * d;
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[o + j];
    mean /= d;
    let variance = 0;
    for (let j = 0; j < d; j++) variance += (x[o + j] - mean) ** 2;
    variance /= d;
    const rs = 1 / Math.sqrt(variance + eps);
    rstd[r] = rs;
    for (let j = 0; j < d; j++) {
      const xh = (x[o + j] - mean) * rs;
      xhat[o + j] = xh;
      out[o + j] = gamma[j] * xh + beta[j];
    }
  }
}

/**
 * The backward pass of {@linkcode layerNormRows} over the same rows: dx (which may be dout
 * itself) gets rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dout gamma;
 * dgamma += Σ dout xhat and dbeta += Σ dout over the rows, in row order.
 * @param dout The upstream gradient rows, (·, D).
 * @param xhat The normalized rows of the forward pass, (·, D).
 * @param rstd Each row's 1 / sqrt(var + eps), (·,).
 * @param gamma The scale, (D,).
 * @param dx Where the input's gradient goes, (·, D).
 * @param dgamma The scale's gradient, accumulated, (D,).
 * @param dbeta The shift's gradient, accumulated, (D,).
 * @param row0 The first row.
 * @param rows How many rows.
 * @param d D.
 *
 * @example
 * ```ts
 * import { layerNormRowsBackward } from "./layer_norm.ts";
 * const dx = new Float64Array(2), dgamma = new Float64Array(2), dbeta = new Float64Array(2);
 * layerNormRowsBackward(new Float64Array([1, 1]), new Float64Array([-1, 1]), new Float64Array([1]),
 *   new Float64Array([1, 1]), dx, dgamma, dbeta, 0, 1, 2);
 * console.log(dx, dbeta); // [0, 0] [1, 1]: a shift of every input changes nothing
 * ```
 */
export function layerNormRowsBackward(
  dout: FloatArray,
  xhat: FloatArray,
  rstd: FloatArray,
  gamma: FloatArray,
  dx: FloatArray,
  dgamma: FloatArray,
  dbeta: FloatArray,
  row0: number,
  rows: number,
  d: number,
): void {
  for (let r = row0; r < row0 + rows; r++) {
    const o = r * d;
    let meanDxhat = 0, meanDxhatXhat = 0;
    for (let j = 0; j < d; j++) {
      const g = dout[o + j], xh = xhat[o + j];
      dgamma[j] += g * xh;
      dbeta[j] += g;
      const dxh = g * gamma[j];
      meanDxhat += dxh;
      meanDxhatXhat += dxh * xh;
    }
    meanDxhat /= d;
    meanDxhatXhat /= d;
    const rs = rstd[r];
    for (let j = 0; j < d; j++) {
      const xh = xhat[o + j];
      dx[o + j] = rs * (dout[o + j] * gamma[j] - meanDxhat - xh * meanDxhatXhat);
    }
  }
}

/** What {@linkcode layerNormForward} keeps for the backward pass. */
export interface LayerNormCache<D extends FloatDType> {
  /** The normalized input, shaped like x. */
  xhat: Tensor<D>;
  /** Each row's 1 / sqrt(var + eps), (N,). */
  rstd: Tensor<D>;
  /** The scale, (D,). */
  gamma: Tensor<D>;
}

/** Gradients from {@linkcode layerNormBackward}. */
export interface LayerNormGrads<D extends FloatDType> {
  /** Shaped like x. */
  dx: Tensor<D>;
  /** (D,) */
  dgamma: Tensor<D>;
  /** (D,) */
  dbeta: Tensor<D>;
}

/**
 * Forward pass of layer normalization over the last dimension.
 * @param x Input, (…, D).
 * @param gamma Scale, (D,).
 * @param beta Shift, (D,).
 * @param eps The variance's smoothing (default 1e-5, PyTorch's).
 * @returns `[out, cache]` with out shaped like x.
 *
 * @example
 * ```ts
 * import { layerNormForward } from "./layer_norm.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out] = layerNormForward(Tensor.fromValues([1, 2, 3, 4], [2, 2]), Tensor.fromValues([1, 1]), Tensor.zeros([2]));
 * console.log(Array.from(out.data, (v) => Math.round(v * 1000) / 1000)); // [-1, 1, -1, 1]
 * ```
 */
export function layerNormForward<D extends FloatDType>(
  x: Tensor<D>,
  gamma: Tensor<D>,
  beta: Tensor<D>,
  eps: number = LAYER_NORM_EPS,
): [Tensor<D>, LayerNormCache<D>] {
  expectSameDtype({ x, gamma, beta });
  const d = x.shape[x.shape.length - 1], n = shapeSize(x.shape.slice(0, -1));
  expectShape("gamma", gamma, [d]);
  expectShape("beta", beta, [d]);
  const out = Tensor.zeros(x.shape, x.dtype), xhat = Tensor.zeros(x.shape, x.dtype);
  const rstd = Tensor.zeros([n], x.dtype);
  layerNormRows(x.data, gamma.data, beta.data, out.data, xhat.data, rstd.data, 0, n, d, eps);
  return [out, { xhat, rstd, gamma }];
}

/**
 * Backward pass of layer normalization.
 * @param dout Upstream gradient, shaped like the forward's x.
 * @param cache The cache from {@linkcode layerNormForward}.
 * @returns `{ dx, dgamma, dbeta }`.
 *
 * @example
 * ```ts
 * import { layerNormBackward, layerNormForward } from "./layer_norm.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out, cache] = layerNormForward(Tensor.randn([3, 4], 0), Tensor.randn([4], 1), Tensor.randn([4], 2));
 * const { dx, dgamma } = layerNormBackward(Tensor.randn(out.shape, 3), cache);
 * console.log(dx.shape, dgamma.shape); // [3, 4] [4]
 * ```
 */
export function layerNormBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: LayerNormCache<D>,
): LayerNormGrads<D> {
  const { xhat, rstd, gamma } = cache;
  expectShape("dout", dout, xhat.shape);
  const d = gamma.size, n = rstd.size, dtype = xhat.dtype;
  const dx = Tensor.zeros(xhat.shape, dtype);
  const dgamma = Tensor.zeros([d], dtype), dbeta = Tensor.zeros([d], dtype);
  layerNormRowsBackward(
    dout.data,
    xhat.data,
    rstd.data,
    gamma.data,
    dx.data,
    dgamma.data,
    dbeta.data,
    0,
    n,
    d,
  );
  return { dx, dgamma, dbeta };
}
