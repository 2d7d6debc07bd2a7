/**
 * The GRU (gated recurrent unit) with the equations of PyTorch's `nn.GRU`: one step, and a whole
 * sequence.
 *
 *   a_x = x @ Wx + bx,  a_h = prev_h @ Wh + bh, each split in order r, z, n (each H wide)
 *   r = sigmoid(a_x[r] + a_h[r]),  z = sigmoid(a_x[z] + a_h[z])
 *   n = tanh(a_x[n] + r * a_h[n])
 *   next_h = (1 - z) * n + z * prev_h
 *
 * Unlike the RNN and the LSTM, the two projections keep their own biases (bx, bh): the reset
 * gate r multiplies the recurrent part of n, bias included, so bx and bh are not one bias.
 *
 * Dimension legend: N batch, T time, D input, H hidden (the gates are 3H wide).
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

/** What {@linkcode gruStepForward} keeps for the backward pass. */
export interface GruStepCache<D extends FloatDType> {
  /** (N, D) */
  x: Tensor<D>;
  /** (N, H) */
  prevH: Tensor<D>;
  /** (D, 3H) */
  Wx: Tensor<D>;
  /** (H, 3H) */
  Wh: Tensor<D>;
  /** The activated gates r, z, n, (N, 3H). */
  gates: Tensor<D>;
  /** The recurrent projection prev_h @ Wh + bh, (N, 3H). */
  ah: Tensor<D>;
}

/** Gradients from {@linkcode gruStepBackward}. */
export interface GruStepGrads<D extends FloatDType> {
  /** (N, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dprevH: Tensor<D>;
  /** (D, 3H) */
  dWx: Tensor<D>;
  /** (H, 3H) */
  dWh: Tensor<D>;
  /** (3H,) */
  dbx: Tensor<D>;
  /** (3H,) */
  dbh: Tensor<D>;
}

/**
 * One GRU step.
 * @param x Input, (N, D).
 * @param prevH Previous hidden state, (N, H).
 * @param Wx Input-to-gates weights, (D, 3H).
 * @param Wh Hidden-to-gates weights, (H, 3H).
 * @param bx Input-side gate biases, (3H,).
 * @param bh Hidden-side gate biases, (3H,).
 * @returns `[nextH, cache]` with nextH (N, H).
 *
 * @example
 * ```ts
 * import { gruStepForward } from "./gru.ts";
 * import { Tensor } from "./tensor.ts";
 * const [nextH] = gruStepForward(
 *   Tensor.linspace(-0.4, 1.2, [3, 4]), Tensor.linspace(-0.3, 0.7, [3, 5]),
 *   Tensor.linspace(-2.1, 1.3, [4, 15]), Tensor.linspace(-0.7, 2.2, [5, 15]),
 *   Tensor.linspace(0.3, 0.7, [15]), Tensor.linspace(-0.2, 0.1, [15]),
 * );
 * console.log(nextH.shape); // [3, 5]
 * ```
 */
export function gruStepForward<D extends FloatDType>(
  x: Tensor<D>,
  prevH: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  bx: Tensor<D>,
  bh: Tensor<D>,
): [Tensor<D>, GruStepCache<D>] {
  expectSameDtype({ x, prevH, Wx, Wh, bx, bh });
  const [n, d] = x.shape, h = prevH.shape[1], g3 = 3 * h;
  expectShape("prevH", prevH, [n, h]);
  expectShape("Wx", Wx, [d, g3]);
  expectShape("Wh", Wh, [h, g3]);
  expectShape("bx", bx, [g3]);
  expectShape("bh", bh, [g3]);
  const dtype = x.dtype;
  const gates = Tensor.zeros([n, g3], dtype), ah = Tensor.zeros([n, g3], dtype);
  for (let i = 0; i < n; i++) {
    gates.data.set(bx.data, i * g3);
    ah.data.set(bh.data, i * g3);
  }
  matmulAdd(mat(gates.data, n, g3), mat(x.data, n, d), mat(Wx.data, d, g3)); // += x @ Wx
  matmulAdd(mat(ah.data, n, g3), mat(prevH.data, n, h), mat(Wh.data, h, g3)); // += prev_h @ Wh
  const nextH = Tensor.zeros([n, h], dtype);
  tsElementwise.gruCell(gates.data, ah.data, 0, prevH.data, 0, nextH.data, 0, n, h);
  return [nextH, { x, prevH, Wx, Wh, gates, ah }];
}

/**
 * Backward pass of one GRU step.
 * @param dnextH Gradient of the next hidden state, (N, H).
 * @param cache The cache from {@linkcode gruStepForward}.
 * @returns `{ dx, dprevH, dWx, dWh, dbx, dbh }`.
 *
 * @example
 * ```ts
 * import { gruStepBackward, gruStepForward } from "./gru.ts";
 * import { Tensor } from "./tensor.ts";
 * const [h, cache] = gruStepForward(
 *   Tensor.randn([2, 3], 0), Tensor.randn([2, 4], 1), Tensor.randn([3, 12], 2),
 *   Tensor.randn([4, 12], 3), Tensor.randn([12], 4), Tensor.randn([12], 5),
 * );
 * const { dx, dprevH, dbh } = gruStepBackward(Tensor.randn(h.shape, 6), cache);
 * console.log(dx.shape, dprevH.shape, dbh.shape); // [2, 3] [2, 4] [12]
 * ```
 */
export function gruStepBackward<D extends FloatDType>(
  dnextH: Tensor<D>,
  cache: GruStepCache<D>,
): GruStepGrads<D> {
  const { x, prevH, Wx, Wh, gates, ah } = cache;
  const [n, d] = x.shape, h = prevH.shape[1], g3 = 3 * h;
  expectShape("dnextH", dnextH, [n, h]);
  const dtype = x.dtype;
  const dax = Tensor.zeros([n, g3], dtype), dah = Tensor.zeros([n, g3], dtype);
  // The cell writes dAx, dAh and the direct part of dprev_h, dnext_h ⊙ z.
  const dprevH = Tensor.zeros([n, h], dtype);
  tsElementwise.gruCellBackward(
    gates.data,
    ah.data,
    dax.data,
    dah.data,
    0,
    dnextH.data,
    0,
    prevH.data,
    0,
    dprevH.data,
    0,
    n,
    h,
  );
  const dx = Tensor.zeros([n, d], dtype);
  const dWx = Tensor.zeros([d, g3], dtype), dWh = Tensor.zeros([h, g3], dtype);
  const dbx = Tensor.zeros([g3], dtype), dbh = Tensor.zeros([g3], dtype);
  const dAx = mat(dax.data, n, g3), dAh = mat(dah.data, n, g3);
  matmul(mat(dx.data, n, d), dAx, T(mat(Wx.data, d, g3))); // dAx @ Wxᵀ
  matmulAdd(mat(dprevH.data, n, h), dAh, T(mat(Wh.data, h, g3))); // += dAh @ Whᵀ
  matmul(mat(dWx.data, d, g3), T(mat(x.data, n, d)), dAx); // xᵀ @ dAx
  matmul(mat(dWh.data, h, g3), T(mat(prevH.data, n, h)), dAh); // prev_hᵀ @ dAh
  sumRows(dax.data, n, g3, dbx.data);
  sumRows(dah.data, n, g3, dbh.data);
  return { dx, dprevH, dWx, dWh, dbx, dbh };
}

/** What {@linkcode gruForward} keeps for the backward pass. */
export interface GruCache<D extends FloatDType> {
  /** (N, T, D) */
  x: Tensor<D>;
  /** (N, H) */
  h0: Tensor<D>;
  /** (D, 3H) */
  Wx: Tensor<D>;
  /** (H, 3H) */
  Wh: Tensor<D>;
  /** All hidden states, (N, T, H). */
  h: Tensor<D>;
  /** All activated gates r, z, n, (N, T, 3H). */
  gates: Tensor<D>;
  /** All recurrent projections h_prev @ Wh + bh, (N, T, 3H). */
  ah: Tensor<D>;
}

/** Gradients from {@linkcode gruBackward}. */
export interface GruGrads<D extends FloatDType> {
  /** (N, T, D) */
  dx: Tensor<D>;
  /** (N, H) */
  dh0: Tensor<D>;
  /** (D, 3H) */
  dWx: Tensor<D>;
  /** (H, 3H) */
  dWh: Tensor<D>;
  /** (3H,) */
  dbx: Tensor<D>;
  /** (3H,) */
  dbh: Tensor<D>;
}

/**
 * A GRU over a whole sequence from h0.
 * @param x Inputs, (N, T, D).
 * @param h0 Initial hidden state, (N, H).
 * @param Wx Input-to-gates weights, (D, 3H).
 * @param Wh Hidden-to-gates weights, (H, 3H).
 * @param bx Input-side gate biases, (3H,).
 * @param bh Hidden-side gate biases, (3H,).
 * @returns `[h, cache]` with h (N, T, H).
 *
 * @example
 * ```ts
 * import { gruForward } from "./gru.ts";
 * import { Tensor } from "./tensor.ts";
 * const [h] = gruForward(
 *   Tensor.linspace(-0.4, 0.6, [2, 3, 5]), Tensor.linspace(-0.4, 0.8, [2, 4]),
 *   Tensor.linspace(-0.2, 0.9, [5, 12]), Tensor.linspace(-0.3, 0.6, [4, 12]),
 *   Tensor.linspace(0.2, 0.7, [12]), Tensor.linspace(-0.1, 0.3, [12]),
 * );
 * console.log(h.shape); // [2, 3, 4]
 * ```
 */
export function gruForward<D extends FloatDType>(
  x: Tensor<D>,
  h0: Tensor<D>,
  Wx: Tensor<D>,
  Wh: Tensor<D>,
  bx: Tensor<D>,
  bh: Tensor<D>,
): [Tensor<D>, GruCache<D>] {
  expectSameDtype({ x, h0, Wx, Wh, bx, bh });
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, d] = x.shape, hd = h0.shape[1], g3 = 3 * hd;
  expectShape("h0", h0, [n, hd]);
  expectShape("Wx", Wx, [d, g3]);
  expectShape("Wh", Wh, [hd, g3]);
  expectShape("bx", bx, [g3]);
  expectShape("bh", bh, [g3]);
  const dtype = x.dtype;
  const gates = Tensor.zeros([n, t, g3], dtype), ah = Tensor.zeros([n, t, g3], dtype);
  const ga = gates.data, aa = ah.data;
  for (let r = 0; r < n * t; r++) {
    ga.set(bx.data, r * g3);
    aa.set(bh.data, r * g3);
  }
  // All input projections at once: (N·T, D) @ (D, 3H).
  matmulAdd(mat(ga, n * t, g3), mat(x.data, n * t, d), mat(Wx.data, d, g3));
  const h = Tensor.zeros([n, t, hd], dtype);
  const gStride = t * g3, hStride = t * hd, wh = mat(Wh.data, hd, g3);
  for (let s = 0; s < t; s++) {
    // ah[:, s] += prev_h @ Wh, prev_h = h0 or h[:, s-1] as a strided view.
    const prevH = s === 0 ? mat(h0.data, n, hd) : mat(h.data, n, hd, (s - 1) * hd, hStride);
    matmulAdd(mat(aa, n, g3, s * g3, gStride), prevH, wh);
    for (let i = 0; i < n; i++) {
      // One row of step s (the kernel's rows are contiguous; these are T apart).
      const hOff = i * hStride + s * hd, gOff = i * gStride + s * g3;
      const [prev, pOff] = s === 0 ? [h0.data, i * hd] : [h.data, hOff - hd];
      tsElementwise.gruCell(ga, aa, gOff, prev, pOff, h.data, hOff, 1, hd);
    }
  }
  return [h, { x, h0, Wx, Wh, h, gates, ah }];
}

/**
 * Backward pass of a GRU over a whole sequence (backpropagation through time).
 * @param dh Upstream gradients of all hidden states, (N, T, H).
 * @param cache The cache from {@linkcode gruForward}.
 * @returns `{ dx, dh0, dWx, dWh, dbx, dbh }`.
 *
 * @example
 * ```ts
 * import { gruBackward, gruForward } from "./gru.ts";
 * import { Tensor } from "./tensor.ts";
 * const [h, cache] = gruForward(
 *   Tensor.randn([2, 3, 4], 0), Tensor.randn([2, 5], 1), Tensor.randn([4, 15], 2),
 *   Tensor.randn([5, 15], 3), Tensor.randn([15], 4), Tensor.randn([15], 5),
 * );
 * const { dx, dWh } = gruBackward(Tensor.randn(h.shape, 6), cache);
 * console.log(dx.shape, dWh.shape); // [2, 3, 4] [5, 15]
 * ```
 */
export function gruBackward<D extends FloatDType>(
  dh: Tensor<D>,
  cache: GruCache<D>,
): GruGrads<D> {
  const { x, h0, Wx, Wh, h, gates, ah } = cache;
  const [n, t] = x.shape, hd = h0.shape[1], g3 = 3 * hd;
  expectShape("dh", dh, [n, t, hd]);
  const dtype = x.dtype;
  const gStride = t * g3, hStride = t * hd;
  const dax = Tensor.zeros([n, t, g3], dtype), dah = Tensor.zeros([n, t, g3], dtype);
  const dprevH = Tensor.zeros([n, hd], dtype); // the gradient flowing into h[:, s-1]
  const dhTotal = Tensor.zeros([n, t, hd], dtype).data; // dh + what step s+1 sent back
  const whT = T(mat(Wh.data, hd, g3));
  for (let s = t - 1; s >= 0; s--) {
    for (let i = 0; i < n; i++) {
      const hOff = i * hStride + s * hd;
      for (let j = 0; j < hd; j++) dhTotal[hOff + j] = dh.data[hOff + j] + dprevH.data[i * hd + j];
    }
    dprevH.data.fill(0);
    for (let i = 0; i < n; i++) {
      const hOff = i * hStride + s * hd, gOff = i * gStride + s * g3;
      const [prev, pOff] = s === 0 ? [h0.data, i * hd] : [h.data, hOff - hd];
      tsElementwise.gruCellBackward(
        gates.data,
        ah.data,
        dax.data,
        dah.data,
        gOff,
        dhTotal,
        hOff,
        prev,
        pOff,
        dprevH.data,
        i * hd,
        1,
        hd,
      );
    }
    // dprev_h += dah[:, s] @ Whᵀ.
    matmulAdd(mat(dprevH.data, n, hd), mat(dah.data, n, g3, s * g3, gStride), whT);
  }
  // Over all steps at once: dx = dAx @ Wxᵀ, dWx = xᵀ @ dAx, dWh = h_prevᵀ @ dAh, the biases' sums.
  const { dx, dWx, dWh, db: dbx } = projectionGrads(x, h0, h, dax, Wx, dah);
  const dbh = Tensor.zeros([g3], dtype);
  sumRows(dah.data, n * t, g3, dbh.data);
  return { dx, dh0: dprevH, dWx, dWh, dbx, dbh };
}
