/**
 * The vanilla RNN: one step, and a whole sequence.
 *
 *   next_h = act(x @ Wx + prev_h @ Wh + b),  act = tanh (or sigmoid, to compare as the exercise does)
 *
 * Dimension legend: N batch, T time, D input, H hidden.
 * The sequence functions compute the input projection of all T steps in one GEMM and the
 * weight gradients as one GEMM over all steps, which is the same math as looping the step.
 * @module
 */
import { type Activation, checkActivation } from "./activations.ts";
import { sumRows } from "./affine.ts";
import { expectSameDtype, expectShape } from "./checks.ts";
import { tsElementwise } from "./kernels/elementwise.ts";
import { mat, matmul, matmulAdd, T } from "./kernels/matmul.ts";
import { allocFloat, type FloatDType, Tensor } from "./tensor.ts";

/** What {@linkcode rnnStepForward} keeps for the backward pass. */
export interface RnnStepCache<D extends FloatDType> {
  /** Input, (N, D). */
  x: Tensor<D>;
  /** Previous hidden state, (N, H). */
  prevH: Tensor<D>;
  /** Input-to-hidden weights, (D, H). */
  Wx: Tensor<D>;
  /** Hidden-to-hidden weights, (H, H). */
  Wh: Tensor<D>;
  /** The step's output, (N, H). */
  nextH: Tensor<D>;
  /** The nonlinearity used. */
  activation: Activation;
}

/** Gradients from {@linkcode rnnStepBackward}. */
export interface RnnStepGrads<D extends FloatDType> {
  /** (N, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dprevH: Tensor<D>;
  /** (D, H) */
  dWx: Tensor<D>;
  /** (H, H) */
  dWh: Tensor<D>;
  /** (H,) */
  db: Tensor<D>;
}

/**
 * One vanilla-RNN step: next_h = act(x @ Wx + prev_h @ Wh + b).
 * @param x Input, (N, D).
 * @param prevH Previous hidden state, (N, H).
 * @param Wx Input-to-hidden weights, (D, H).
 * @param Wh Hidden-to-hidden weights, (H, H).
 * @param b Bias, (H,).
 * @param activation "tanh" (default) or "sigmoid".
 * @returns `[nextH, cache]` with nextH (N, H).
 *
 * @example
 * ```ts
 * import { rnnStepForward, Tensor } from "../mod.ts";
 * const [nextH] = rnnStepForward(
 *   Tensor.linspace(-0.4, 0.7, [3, 10]), Tensor.linspace(-0.2, 0.5, [3, 4]),
 *   Tensor.linspace(-0.1, 0.9, [10, 4]), Tensor.linspace(-0.3, 0.7, [4, 4]),
 *   Tensor.linspace(-0.2, 0.4, [4]),
 * );
 * console.log(nextH.data[0]); // -0.58172089…
 * ```
 */
export function rnnStepForward<D extends FloatDType>(
  x: Tensor<D>,
  prevH: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  b: Tensor<D>,
  activation: Activation = "tanh",
): [Tensor<D>, RnnStepCache<D>] {
  checkActivation(activation);
  expectSameDtype({ x, prevH, Wx, Wh, b });
  const [n, d] = x.shape, h = prevH.shape[1];
  expectShape("prevH", prevH, [n, h]);
  expectShape("Wx", Wx, [d, h]);
  expectShape("Wh", Wh, [h, h]);
  expectShape("b", b, [h]);
  const nextH = Tensor.zeros([n, h], x.dtype);
  const a = nextH.data; // the pre-activation, turned into next_h in place
  for (let i = 0; i < n; i++) a.set(b.data, i * h);
  const out = mat(a, n, h);
  matmulAdd(out, mat(x.data, n, d), mat(Wx.data, d, h)); // += x @ Wx
  matmulAdd(out, mat(prevH.data, n, h), mat(Wh.data, h, h)); // += prev_h @ Wh
  tsElementwise.activate(a, 0, a.length, activation);
  return [nextH, { x, prevH, Wx, Wh, nextH, activation }];
}

/**
 * Backward pass of one vanilla-RNN step.
 * @param dnextH Gradient of the step's output, (N, H).
 * @param cache The cache from {@linkcode rnnStepForward}.
 * @returns `{ dx, dprevH, dWx, dWh, db }`.
 *
 * @example
 * ```ts
 * import { rnnStepBackward, rnnStepForward, Tensor } from "../mod.ts";
 * const [h, cache] = rnnStepForward(
 *   Tensor.randn([2, 3], 0), Tensor.randn([2, 4], 1), Tensor.randn([3, 4], 2),
 *   Tensor.randn([4, 4], 3), Tensor.randn([4], 4),
 * );
 * const { dx, dWh } = rnnStepBackward(Tensor.randn(h.shape, 5), cache);
 * console.log(dx.shape, dWh.shape); // [2, 3] [4, 4]
 * ```
 */
export function rnnStepBackward<D extends FloatDType>(
  dnextH: Tensor<D>,
  cache: RnnStepCache<D>,
): RnnStepGrads<D> {
  const { x, prevH, Wx, Wh, nextH, activation } = cache;
  const [n, d] = x.shape, h = prevH.shape[1];
  expectShape("dnextH", dnextH, [n, h]);
  const dtype = x.dtype;
  // da = dnext_h * act'(a), written with the output: tanh' = 1 - h², sigmoid' = h (1 - h).
  const da = Tensor.zeros([n, h], dtype);
  tsElementwise.activationBackward(dnextH.data, 0, nextH.data, 0, da.data, 0, n * h, activation);
  const dx = Tensor.zeros([n, d], dtype), dprevH = Tensor.zeros([n, h], dtype);
  const dWx = Tensor.zeros([d, h], dtype), dWh = Tensor.zeros([h, h], dtype);
  const db = Tensor.zeros([h], dtype);
  const dA = mat(da.data, n, h);
  matmul(mat(dx.data, n, d), dA, T(mat(Wx.data, d, h))); // da @ Wxᵀ
  matmul(mat(dprevH.data, n, h), dA, T(mat(Wh.data, h, h))); // da @ Whᵀ
  matmul(mat(dWx.data, d, h), T(mat(x.data, n, d)), dA); // xᵀ @ da
  matmul(mat(dWh.data, h, h), T(mat(prevH.data, n, h)), dA); // prev_hᵀ @ da
  sumRows(da.data, n, h, db.data);
  return { dx, dprevH, dWx, dWh, db };
}

/** What {@linkcode rnnForward} keeps for the backward pass. */
export interface RnnCache<D extends FloatDType> {
  /** Inputs, (N, T, D). */
  x: Tensor<D>;
  /** Initial hidden state, (N, H). */
  h0: Tensor<D>;
  /** (D, H) */
  Wx: Tensor<D>;
  /** (H, H) */
  Wh: Tensor<D>;
  /** All hidden states, (N, T, H). */
  h: Tensor<D>;
  /** The nonlinearity used. */
  activation: Activation;
}

/** Gradients from {@linkcode rnnBackward}. */
export interface RnnGrads<D extends FloatDType> {
  /** (N, T, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dh0: Tensor<D>;
  /** (D, H) */
  dWx: Tensor<D>;
  /** (H, H) */
  dWh: Tensor<D>;
  /** (H,) */
  db: Tensor<D>;
}

/**
 * A vanilla RNN over a whole sequence: the step applied for t = 0 … T-1 from h0.
 * @param x Inputs, (N, T, D).
 * @param h0 Initial hidden state, (N, H).
 * @param Wx Input-to-hidden weights, (D, H).
 * @param Wh Hidden-to-hidden weights, (H, H).
 * @param b Bias, (H,).
 * @param activation "tanh" (default) or "sigmoid".
 * @returns `[h, cache]` with h (N, T, H), the hidden state of every step.
 *
 * @example
 * ```ts
 * import { rnnForward, Tensor } from "../mod.ts";
 * const [h] = rnnForward(
 *   Tensor.linspace(-0.1, 0.3, [2, 3, 4]), Tensor.linspace(-0.3, 0.1, [2, 5]),
 *   Tensor.linspace(-0.2, 0.4, [4, 5]), Tensor.linspace(-0.4, 0.1, [5, 5]),
 *   Tensor.linspace(-0.7, 0.1, [5]),
 * );
 * console.log(h.shape); // [2, 3, 5]
 * ```
 */
export function rnnForward<D extends FloatDType>(
  x: Tensor<D>,
  h0: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  b: Tensor<D>,
  activation: Activation = "tanh",
): [Tensor<D>, RnnCache<D>] {
  checkActivation(activation);
  expectSameDtype({ x, h0, Wx, Wh, b });
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, d] = x.shape, hd = h0.shape[1];
  expectShape("h0", h0, [n, hd]);
  expectShape("Wx", Wx, [d, hd]);
  expectShape("Wh", Wh, [hd, hd]);
  expectShape("b", b, [hd]);
  const h = Tensor.zeros([n, t, hd], x.dtype);
  const a = h.data; // pre-activations, turned into hidden states in place, step by step
  for (let r = 0; r < n * t; r++) a.set(b.data, r * hd);
  // All input projections at once: (N·T, D) @ (D, H).
  matmulAdd(mat(a, n * t, hd), mat(x.data, n * t, d), mat(Wx.data, d, hd));
  const rowStride = t * hd; // from (n, t) to (n + 1, t) in an (N, T, H) array
  const wh = mat(Wh.data, hd, hd);
  for (let s = 0; s < t; s++) {
    // a[:, s] += prev_h @ Wh, where prev_h is h0 or h[:, s-1] (a strided view, no copy).
    const prevH = s === 0 ? mat(h0.data, n, hd) : mat(a, n, hd, (s - 1) * hd, rowStride);
    matmulAdd(mat(a, n, hd, s * hd, rowStride), prevH, wh);
    for (let i = 0; i < n; i++) {
      tsElementwise.activate(a, i * rowStride + s * hd, hd, activation);
    }
  }
  return [h, { x, h0, Wx, Wh, h, activation }];
}

/**
 * Backward pass of a vanilla RNN over a whole sequence (backpropagation through time).
 * @param dh Upstream gradients of all hidden states, (N, T, H).
 * @param cache The cache from {@linkcode rnnForward}.
 * @returns `{ dx, dh0, dWx, dWh, db }`.
 *
 * @example
 * ```ts
 * import { rnnBackward, rnnForward, Tensor } from "../mod.ts";
 * const [h, cache] = rnnForward(
 *   Tensor.randn([2, 3, 4], 0), Tensor.randn([2, 5], 1), Tensor.randn([4, 5], 2),
 *   Tensor.randn([5, 5], 3), Tensor.randn([5], 4),
 * );
 * const { dx, dh0 } = rnnBackward(Tensor.randn(h.shape, 5), cache);
 * console.log(dx.shape, dh0.shape); // [2, 3, 4] [2, 5]
 * ```
 */
export function rnnBackward<D extends FloatDType>(
  dh: Tensor<D>,
  cache: RnnCache<D>,
): RnnGrads<D> {
  const { x, h0, Wx, Wh, h, activation } = cache;
  const [n, t] = x.shape, hd = h0.shape[1];
  expectShape("dh", dh, [n, t, hd]);
  const dtype = x.dtype;
  const rowStride = t * hd;
  const da = Tensor.zeros([n, t, hd], dtype); // gradient of every step's pre-activation
  const dprev = Tensor.zeros([n, hd], dtype); // gradient flowing into h[:, s] from step s+1
  const total = allocFloat(dtype, hd);
  const whT = T(mat(Wh.data, hd, hd));
  for (let s = t - 1; s >= 0; s--) {
    for (let i = 0; i < n; i++) {
      const o = i * rowStride + s * hd;
      for (let j = 0; j < hd; j++) total[j] = dh.data[o + j] + dprev.data[i * hd + j];
      tsElementwise.activationBackward(total, 0, h.data, o, da.data, o, hd, activation);
    }
    // dprev = da[:, s] @ Whᵀ: the gradient of h[:, s-1] (or of h0 at s = 0).
    matmul(mat(dprev.data, n, hd), mat(da.data, n, hd, s * hd, rowStride), whT);
  }
  return { ...projectionGrads(x, h0, h, da, Wx), dh0: dprev };
}

/**
 * The gradients of a recurrent layer's projections, over all steps at once, from the gradient
 * of every step's pre-activation: dx = da @ Wxᵀ, dWx = xᵀ @ da, dWh = h_prevᵀ @ daH, db = Σ da.
 * Shared by the vanilla RNN and the LSTM (whose da is 4H wide), where the input and recurrent
 * projections add up to one pre-activation (daH = da), and the GRU (3H wide), where they differ.
 * @param x Inputs, (N, T, D).
 * @param h0 Initial hidden state, (N, H).
 * @param h All hidden states, (N, T, H).
 * @param da Pre-activation gradients of the input projection, (N, T, G) with G = H (RNN),
 * 4H (LSTM) or 3H (GRU).
 * @param Wx Input weights, (D, G).
 * @param daH Pre-activation gradients of the recurrent projection (default `da`), (N, T, G).
 * @returns `{ dx, dWx, dWh, db }`.
 */
export function projectionGrads<D extends FloatDType>(
  x: Tensor<D>,
  h0: Tensor<D>,
  h: Tensor<D>,
  da: Tensor<D>,
  Wx: Tensor<D>,
  daH: Tensor<D> = da,
): { dx: Tensor<D>; dWx: Tensor<D>; dWh: Tensor<D>; db: Tensor<D> } {
  const [n, t, d] = x.shape, hd = h0.shape[1], g = da.shape[2], dtype = x.dtype, rows = n * t;
  const dx = Tensor.zeros([n, t, d], dtype);
  const dWx = Tensor.zeros([d, g], dtype), dWh = Tensor.zeros([hd, g], dtype);
  const db = Tensor.zeros([g], dtype);
  const dA = mat(da.data, rows, g); // every step's rows, (N·T, G)
  matmul(mat(dx.data, rows, d), dA, T(mat(Wx.data, d, g)));
  matmul(mat(dWx.data, d, g), T(mat(x.data, rows, d)), dA);
  const hPrev = shiftedHidden(h0, h);
  matmul(mat(dWh.data, hd, g), T(mat(hPrev.data, rows, hd)), mat(daH.data, rows, g));
  sumRows(da.data, n * t, g, db.data);
  return { dx, dWx, dWh, db };
}

/**
 * The hidden state each step starts from: h_prev[:, 0] = h0, h_prev[:, s] = h[:, s-1].
 * @param h0 (N, H)
 * @param h (N, T, H)
 * @returns h_prev, (N, T, H).
 */
export function shiftedHidden<D extends FloatDType>(h0: Tensor<D>, h: Tensor<D>): Tensor<D> {
  const [n, t, hd] = h.shape;
  const out = Tensor.zeros([n, t, hd], h.dtype);
  for (let i = 0; i < n; i++) {
    const o = i * t * hd;
    out.data.set(h0.data.subarray(i * hd, (i + 1) * hd), o);
    out.data.set(h.data.subarray(o, o + (t - 1) * hd), o + hd);
  }
  return out;
}
