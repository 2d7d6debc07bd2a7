/**
 * The LSTM: one step, and a whole sequence (c0 = 0).
 *
 *   a = x @ Wx + prev_h @ Wh + b, split in order i, f, o, g (each H wide)
 *   i, f, o = sigmoid(…), g = tanh(…)
 *   next_c = f * prev_c + i * g,  next_h = o * tanh(next_c)
 *
 * Dimension legend: N batch, T time, D input, H hidden (the gates are 4H wide).
 * The sequence functions compute the input projection of all T steps in one GEMM and the
 * weight gradients as one GEMM over all steps, which is the same math as looping the step.
 * @module
 */
import { sumRows } from "./affine.ts";
import { expectSameDtype, expectShape } from "./checks.ts";
import { tsElementwise } from "./kernels/elementwise.ts";
import { mat, matmul, matmulAdd, T } from "./kernels/matmul.ts";
import { projectionGrads } from "./rnn.ts";
import { type FloatDType, Tensor } from "./tensor.ts";

/** What {@linkcode lstmStepForward} keeps for the backward pass. */
export interface LstmStepCache<D extends FloatDType> {
  /** (N, D) */
  x: Tensor<D>;
  /** (N, H) */
  prevH: Tensor<D>;
  /** (N, H) */
  prevC: Tensor<D>;
  /** (D, 4H) */
  Wx: Tensor<D>;
  /** (H, 4H) */
  Wh: Tensor<D>;
  /** The activated gates i, f, o, g, (N, 4H). */
  gates: Tensor<D>;
  /** tanh(next_c), (N, H). */
  tanhC: Tensor<D>;
}

/** Gradients from {@linkcode lstmStepBackward}. */
export interface LstmStepGrads<D extends FloatDType> {
  /** (N, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dprevH: Tensor<D>;
  /** (N, H) */
  dprevC: Tensor<D>;
  /** (D, 4H) */
  dWx: Tensor<D>;
  /** (H, 4H) */
  dWh: Tensor<D>;
  /** (4H,) */
  db: Tensor<D>;
}

/**
 * One LSTM step.
 * @param x Input, (N, D).
 * @param prevH Previous hidden state, (N, H).
 * @param prevC Previous cell state, (N, H).
 * @param Wx Input-to-gates weights, (D, 4H).
 * @param Wh Hidden-to-gates weights, (H, 4H).
 * @param b Gate biases, (4H,).
 * @returns `[nextH, nextC, cache]`, both states (N, H).
 *
 * @example
 * ```ts
 * import { lstmStepForward, Tensor } from "../mod.ts";
 * const [nextH, nextC] = lstmStepForward(
 *   Tensor.linspace(-0.4, 1.2, [3, 4]), Tensor.linspace(-0.3, 0.7, [3, 5]),
 *   Tensor.linspace(-0.4, 0.9, [3, 5]), Tensor.linspace(-2.1, 1.3, [4, 20]),
 *   Tensor.linspace(-0.7, 2.2, [5, 20]), Tensor.linspace(0.3, 0.7, [20]),
 * );
 * console.log(nextH.shape, nextC.shape); // [3, 5] [3, 5]
 * ```
 */
export function lstmStepForward<D extends FloatDType>(
  x: Tensor<D>,
  prevH: Tensor<D>,
  prevC: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  b: Tensor<D>,
): [Tensor<D>, Tensor<D>, LstmStepCache<D>] {
  expectSameDtype({ x, prevH, prevC, Wx, Wh, b });
  const [n, d] = x.shape, h = prevH.shape[1];
  expectShape("prevH", prevH, [n, h]);
  expectShape("prevC", prevC, [n, h]);
  expectShape("Wx", Wx, [d, 4 * h]);
  expectShape("Wh", Wh, [h, 4 * h]);
  expectShape("b", b, [4 * h]);
  const dtype = x.dtype;
  const gates = Tensor.zeros([n, 4 * h], dtype);
  for (let i = 0; i < n; i++) gates.data.set(b.data, i * 4 * h);
  const a = mat(gates.data, n, 4 * h);
  matmulAdd(a, mat(x.data, n, d), mat(Wx.data, d, 4 * h)); // += x @ Wx
  matmulAdd(a, mat(prevH.data, n, h), mat(Wh.data, h, 4 * h)); // += prev_h @ Wh
  const nextH = Tensor.zeros([n, h], dtype), nextC = Tensor.zeros([n, h], dtype);
  const tanhC = Tensor.zeros([n, h], dtype);
  // The cell: activates the gates in place, then next_c, tanh(next_c) and next_h.
  tsElementwise.lstmCell(gates.data, 0, prevC.data, 0, nextC.data, tanhC.data, nextH.data, 0, n, h);
  return [nextH, nextC, { x, prevH, prevC, Wx, Wh, gates, tanhC }];
}

/**
 * Backward pass of one LSTM step.
 * @param dnextH Gradient of the next hidden state, (N, H).
 * @param dnextC Gradient of the next cell state, (N, H).
 * @param cache The cache from {@linkcode lstmStepForward}.
 * @returns `{ dx, dprevH, dprevC, dWx, dWh, db }`.
 *
 * @example
 * ```ts
 * import { lstmStepBackward, lstmStepForward, Tensor } from "../mod.ts";
 * const [h, c, cache] = lstmStepForward(
 *   Tensor.randn([2, 3], 0), Tensor.randn([2, 4], 1), Tensor.randn([2, 4], 2),
 *   Tensor.randn([3, 16], 3), Tensor.randn([4, 16], 4), Tensor.randn([16], 5),
 * );
 * const { dx, dprevC } = lstmStepBackward(Tensor.randn(h.shape, 6), Tensor.randn(c.shape, 7), cache);
 * console.log(dx.shape, dprevC.shape); // [2, 3] [2, 4]
 * ```
 */
export function lstmStepBackward<D extends FloatDType>(
  dnextH: Tensor<D>,
  dnextC: Tensor<D>,
  cache: LstmStepCache<D>,
): LstmStepGrads<D> {
  const { x, prevH, prevC, Wx, Wh, gates, tanhC } = cache;
  const [n, d] = x.shape, h = prevH.shape[1];
  expectShape("dnextH", dnextH, [n, h]);
  expectShape("dnextC", dnextC, [n, h]);
  const dtype = x.dtype;
  const da = Tensor.zeros([n, 4 * h], dtype);
  // The cell backward turns dnext_c into dprev_c in place.
  const dprevC = Tensor.zeros([n, h], dtype);
  dprevC.data.set(dnextC.data);
  tsElementwise.lstmCellBackward(
    gates.data,
    0,
    dnextH.data,
    dprevC.data,
    0,
    prevC.data,
    0,
    tanhC.data,
    0,
    da.data,
    n,
    h,
  );
  const dx = Tensor.zeros([n, d], dtype), dprevH = Tensor.zeros([n, h], dtype);
  const dWx = Tensor.zeros([d, 4 * h], dtype), dWh = Tensor.zeros([h, 4 * h], dtype);
  const db = Tensor.zeros([4 * h], dtype);
  const dA = mat(da.data, n, 4 * h);
  matmul(mat(dx.data, n, d), dA, T(mat(Wx.data, d, 4 * h))); // da @ Wxᵀ
  matmul(mat(dprevH.data, n, h), dA, T(mat(Wh.data, h, 4 * h))); // da @ Whᵀ
  matmul(mat(dWx.data, d, 4 * h), T(mat(x.data, n, d)), dA); // xᵀ @ da
  matmul(mat(dWh.data, h, 4 * h), T(mat(prevH.data, n, h)), dA); // prev_hᵀ @ da
  sumRows(da.data, n, 4 * h, db.data);
  return { dx, dprevH, dprevC, dWx, dWh, db };
}

/** What {@linkcode lstmForward} keeps for the backward pass. */
export interface LstmCache<D extends FloatDType> {
  /** (N, T, D) */
  x: Tensor<D>;
  /** (N, H) */
  h0: Tensor<D>;
  /** (D, 4H) */
  Wx: Tensor<D>;
  /** (H, 4H) */
  Wh: Tensor<D>;
  /** All hidden states, (N, T, H). */
  h: Tensor<D>;
  /** All cell states, (N, T, H). */
  c: Tensor<D>;
  /** tanh of all cell states, (N, T, H). */
  tanhC: Tensor<D>;
  /** All activated gates i, f, o, g, (N, T, 4H). */
  gates: Tensor<D>;
}

/** Gradients from {@linkcode lstmBackward}. */
export interface LstmGrads<D extends FloatDType> {
  /** (N, T, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dh0: Tensor<D>;
  /** (D, 4H) */
  dWx: Tensor<D>;
  /** (H, 4H) */
  dWh: Tensor<D>;
  /** (4H,) */
  db: Tensor<D>;
}

/**
 * An LSTM over a whole sequence from h0, with the initial cell state c0 = 0.
 * @param x Inputs, (N, T, D).
 * @param h0 Initial hidden state, (N, H).
 * @param Wx Input-to-gates weights, (D, 4H).
 * @param Wh Hidden-to-gates weights, (H, 4H).
 * @param b Gate biases, (4H,).
 * @returns `[h, cache]` with h (N, T, H).
 *
 * @example
 * ```ts
 * import { lstmForward, Tensor } from "../mod.ts";
 * const [h] = lstmForward(
 *   Tensor.linspace(-0.4, 0.6, [2, 3, 5]), Tensor.linspace(-0.4, 0.8, [2, 4]),
 *   Tensor.linspace(-0.2, 0.9, [5, 16]), Tensor.linspace(-0.3, 0.6, [4, 16]),
 *   Tensor.linspace(0.2, 0.7, [16]),
 * );
 * console.log(h.shape); // [2, 3, 4]
 * ```
 */
export function lstmForward<D extends FloatDType>(
  x: Tensor<D>,
  h0: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  b: Tensor<D>,
): [Tensor<D>, LstmCache<D>] {
  expectSameDtype({ x, h0, Wx, Wh, b });
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, d] = x.shape, hd = h0.shape[1], g4 = 4 * hd;
  expectShape("h0", h0, [n, hd]);
  expectShape("Wx", Wx, [d, g4]);
  expectShape("Wh", Wh, [hd, g4]);
  expectShape("b", b, [g4]);
  const dtype = x.dtype;
  const gates = Tensor.zeros([n, t, g4], dtype);
  const ga = gates.data;
  for (let r = 0; r < n * t; r++) ga.set(b.data, r * g4);
  // All input projections at once: (N·T, D) @ (D, 4H).
  matmulAdd(mat(ga, n * t, g4), mat(x.data, n * t, d), mat(Wx.data, d, g4));
  const h = Tensor.zeros([n, t, hd], dtype), c = Tensor.zeros([n, t, hd], dtype);
  const tanhC = Tensor.zeros([n, t, hd], dtype);
  const gStride = t * g4, hStride = t * hd, wh = mat(Wh.data, hd, g4);
  for (let s = 0; s < t; s++) {
    // gates[:, s] += prev_h @ Wh, prev_h = h0 or h[:, s-1] as a strided view.
    const prevH = s === 0 ? mat(h0.data, n, hd) : mat(h.data, n, hd, (s - 1) * hd, hStride);
    matmulAdd(mat(ga, n, g4, s * g4, gStride), prevH, wh);
    for (let i = 0; i < n; i++) {
      // One row of step s (the kernel's rows are contiguous; these are T apart). c0 = 0.
      const hOff = i * hStride + s * hd, prevC = s === 0 ? null : c.data;
      const gOff = i * gStride + s * g4;
      tsElementwise.lstmCell(ga, gOff, prevC, hOff - hd, c.data, tanhC.data, h.data, hOff, 1, hd);
    }
  }
  return [h, { x, h0, Wx, Wh, h, c, tanhC, gates }];
}

/**
 * Backward pass of an LSTM over a whole sequence (backpropagation through time).
 * @param dh Upstream gradients of all hidden states, (N, T, H).
 * @param cache The cache from {@linkcode lstmForward}.
 * @returns `{ dx, dh0, dWx, dWh, db }`.
 *
 * @example
 * ```ts
 * import { lstmBackward, lstmForward, Tensor } from "../mod.ts";
 * const [h, cache] = lstmForward(
 *   Tensor.randn([2, 3, 4], 0), Tensor.randn([2, 5], 1), Tensor.randn([4, 20], 2),
 *   Tensor.randn([5, 20], 3), Tensor.randn([20], 4),
 * );
 * const { dx, dWh } = lstmBackward(Tensor.randn(h.shape, 5), cache);
 * console.log(dx.shape, dWh.shape); // [2, 3, 4] [5, 20]
 * ```
 */
export function lstmBackward<D extends FloatDType>(
  dh: Tensor<D>,
  cache: LstmCache<D>,
): LstmGrads<D> {
  const { x, h0, Wx, Wh, h, c, tanhC, gates } = cache;
  const [n, t] = x.shape, hd = h0.shape[1], g4 = 4 * hd;
  expectShape("dh", dh, [n, t, hd]);
  const dtype = x.dtype;
  const gStride = t * g4, hStride = t * hd;
  const da = Tensor.zeros([n, t, g4], dtype);
  const dprevH = Tensor.zeros([n, hd], dtype);
  const dprevC = Tensor.zeros([n, hd], dtype); // carried from step s+1 to s, in place
  // dh + dprev_h of every step, at the offsets of tanh_c (as the cell backward reads them).
  const dhTotal = Tensor.zeros([n, t, hd], dtype).data;
  const whT = T(mat(Wh.data, hd, g4));
  for (let s = t - 1; s >= 0; s--) {
    for (let i = 0; i < n; i++) {
      const hOff = i * hStride + s * hd, gOff = i * gStride + s * g4;
      for (let j = 0; j < hd; j++) dhTotal[hOff + j] = dh.data[hOff + j] + dprevH.data[i * hd + j];
      tsElementwise.lstmCellBackward(
        gates.data,
        gOff,
        dhTotal,
        dprevC.data,
        i * hd,
        s === 0 ? null : c.data, // c0 = 0
        hOff - hd,
        tanhC.data,
        hOff,
        da.data,
        1,
        hd,
      );
    }
    // dprev_h = da[:, s] @ Whᵀ.
    matmul(mat(dprevH.data, n, hd), mat(da.data, n, g4, s * g4, gStride), whT);
  }
  // Over all steps at once: dx = da @ Wxᵀ, dWx = xᵀ @ da, dWh = h_prevᵀ @ da, db = Σ da.
  return { ...projectionGrads(x, h0, h, da, Wx), dh0: dprevH };
}
