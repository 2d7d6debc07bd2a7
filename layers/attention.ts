/**
 * Multi-head attention, as the course's `MultiHeadAttention`: queries, keys and values are
 * projected (E → E each), split into heads of E/H, attended with scaled dot products under a
 * mask, dropped out, merged and projected again.
 *
 *   Q = query Wq + bq,  K = key Wk + bk,  V = value Wv + bv       (split into H heads)
 *   P = softmax(Q Kᵀ / √(E/H), with masked pairs at -1e10)       (per head)
 *   Y = dropout(P) V,  out = merge(Y) Wo + bo
 *
 * The head kernels ({@linkcode attendForward}, {@linkcode attendBackward}) are the one
 * implementation of one head's attention over one sequence, on matrix views (`mat`) of any
 * array: the Tensor functions run them per example and head, the Transformer's fused step per
 * caption and head of its packed rows, its decoder per row with the cached keys and values.
 *
 * Dimension legend: N batch, S queries, T keys and values, E width, H heads, dh = E/H.
 * @module
 */
import { expectSameDtype, expectShape } from "./checks.ts";
import { dropoutMask } from "./dropout.ts";
import { type Mat, mat, matmul, T } from "./kernels/matmul.ts";
import { accepts, checkOptions } from "./options.ts";
import type { FloatDType } from "./tensor.ts";
import { Tensor } from "./tensor.ts";
import {
  temporalAffineBackward,
  type TemporalAffineCache,
  temporalAffineForward,
} from "./temporal_affine.ts";

/** The score the course gives a masked pair (`masked_fill(mask == 0, -1e10)`). */
export const MASKED_SCORE = -1e10;

/** One head's attention over one sequence: matrix views of its operands and results. */
export interface AttentionHead {
  /** Queries, (S, dh). */
  q: Mat;
  /** Keys, (T, dh). */
  k: Mat;
  /** Values, (T, dh). */
  v: Mat;
  /** The attention weights, (S, T), written by the forward pass. */
  p: Mat;
  /** The weights after dropout, (S, T), written by the forward pass; null without dropout. */
  pd: Mat | null;
  /** The output, (S, dh), written by the forward pass. */
  out: Mat;
}

/** Which query/key pairs may attend: pair (s, j) is allowed when `data[offset + s·ld + j]` ≠ 0. */
export interface AttentionMask {
  /** The mask's elements (1 = attend, 0 = masked). */
  data: Int32Array;
  /** Where pair (0, 0) is. */
  offset: number;
  /** Elements between consecutive query rows. */
  ld: number;
}

function at(m: Mat, r: number, c: number): number {
  return m.offset + r * m.ld + c;
}

/**
 * One head's forward pass: P = softmax(q kᵀ / √dh under the mask), pd = P ⊙ keep,
 * out = (pd or P) v.
 * @param head The views; `p`, `pd` and `out` are written.
 * @param mask Allowed pairs, or null for all.
 * @param keep Dropout multipliers of the weights, (S, T), or null for none (then `pd` is unused).
 *
 * @example
 * ```ts
 * import { mat } from "./kernels/matmul.ts";
 * import { attendForward } from "./attention.ts";
 * // One query, two keys with equal scores: the output is the mean of the two values.
 * const q = new Float64Array([1, 0]), k = new Float64Array([1, 0, 1, 0]), v = new Float64Array([2, 0, 4, 2]);
 * const p = new Float64Array(2), out = new Float64Array(2);
 * attendForward({ q: mat(q, 1, 2), k: mat(k, 2, 2), v: mat(v, 2, 2), p: mat(p, 1, 2), pd: null, out: mat(out, 1, 2) }, null, null);
 * console.log(out); // [3, 1]
 * ```
 */
export function attendForward(
  head: AttentionHead,
  mask: AttentionMask | null,
  keep: Mat | null,
): void {
  const { q, k, v, p, pd, out } = head;
  const s = q.rows, t = k.rows, scale = 1 / Math.sqrt(q.cols), pa = p.data;
  matmul(p, q, T(k)); // the raw scores q · kᵀ
  for (let r = 0; r < s; r++) {
    const o = at(p, r, 0);
    let max = -Infinity;
    for (let j = 0; j < t; j++) {
      let x = pa[o + j] * scale;
      if (mask && mask.data[mask.offset + r * mask.ld + j] === 0) x = MASKED_SCORE;
      pa[o + j] = x;
      if (x > max) max = x;
    }
    let sum = 0;
    for (let j = 0; j < t; j++) {
      const e = Math.exp(pa[o + j] - max);
      pa[o + j] = e;
      sum += e;
    }
    for (let j = 0; j < t; j++) pa[o + j] /= sum;
  }
  if (keep && pd) {
    for (let r = 0; r < s; r++) {
      for (let j = 0; j < t; j++) {
        pd.data[at(pd, r, j)] = pa[at(p, r, j)] * keep.data[at(keep, r, j)];
      }
    }
    matmul(out, pd, v);
  } else matmul(out, p, v);
}

/**
 * One head's backward pass, from the views the forward pass filled. Overwrites dq, dk, dv.
 * @param head The forward pass's views.
 * @param dout The output's gradient, (S, dh).
 * @param mask The forward pass's mask, or null.
 * @param keep The forward pass's dropout multipliers, or null.
 * @param grads Where the gradients go: dq (S, dh), dk (T, dh), dv (T, dh), and a scratch dp
 * (S, T) for the weights' gradient.
 *
 * @example
 * ```ts
 * import { mat } from "./kernels/matmul.ts";
 * import { attendBackward, attendForward } from "./attention.ts";
 * const a = (n: number) => new Float64Array(n).map((_, i) => Math.sin(i + 1));
 * const head = { q: mat(a(4), 2, 2), k: mat(a(6), 3, 2), v: mat(a(6), 3, 2), p: mat(new Float64Array(6), 2, 3), pd: null, out: mat(new Float64Array(4), 2, 2) };
 * attendForward(head, null, null);
 * const dq = new Float64Array(4);
 * attendBackward(head, mat(a(4), 2, 2), null, null, { dq: mat(dq, 2, 2), dk: mat(new Float64Array(6), 3, 2), dv: mat(new Float64Array(6), 3, 2), dp: mat(new Float64Array(6), 2, 3) });
 * console.log(dq.length); // 4
 * ```
 */
export function attendBackward(
  head: AttentionHead,
  dout: Mat,
  mask: AttentionMask | null,
  keep: Mat | null,
  grads: { dq: Mat; dk: Mat; dv: Mat; dp: Mat },
): void {
  const { q, k, v, p, pd } = head, { dq, dk, dv, dp } = grads;
  const s = q.rows, t = k.rows, scale = 1 / Math.sqrt(q.cols), pa = p.data, g = dp.data;
  matmul(dv, T(keep && pd ? pd : p), dout); // dv = (P ⊙ keep)ᵀ dout
  matmul(dp, dout, T(v)); // the gradient of the dropped weights
  for (let r = 0; r < s; r++) {
    const o = at(dp, r, 0), po = at(p, r, 0);
    if (keep) { for (let j = 0; j < t; j++) g[o + j] *= keep.data[at(keep, r, j)]; }
    // Through the softmax: dS = P ⊙ (dP - Σ_j P dP), then the 1/√dh of the scores; a masked
    // pair's score is the constant -1e10, so it passes no gradient on.
    let dot = 0;
    for (let j = 0; j < t; j++) dot += pa[po + j] * g[o + j];
    for (let j = 0; j < t; j++) {
      const masked = mask !== null && mask.data[mask.offset + r * mask.ld + j] === 0;
      g[o + j] = masked ? 0 : pa[po + j] * (g[o + j] - dot) * scale;
    }
  }
  matmul(dq, dp, k); // dq = dS k
  matmul(dk, T(dp), q); // dk = dSᵀ q
}

/**
 * A causal mask of T positions: position s attends to positions 0 … s (the course's
 * `torch.tril(torch.ones(T, T))`).
 * @param t T.
 * @returns The mask, (T, T), int32: 1 on and below the diagonal, 0 above.
 *
 * @example
 * ```ts
 * import { causalMask } from "./attention.ts";
 * console.log(causalMask(2).data); // [1, 0, 1, 1]
 * ```
 */
export function causalMask(t: number): Tensor<"int32"> {
  const m = Tensor.zeros([t, t], "int32");
  for (let s = 0; s < t; s++) m.data.fill(1, s * t, s * t + s + 1);
  return m;
}

/** The projections of a multi-head attention layer (the course's key, query, value, proj). */
export interface AttentionParams<D extends FloatDType> {
  /** (E, E) */
  Wq: Tensor<D>;
  /** (E,) */
  bq: Tensor<D>;
  /** (E, E) */
  Wk: Tensor<D>;
  /** (E,) */
  bk: Tensor<D>;
  /** (E, E) */
  Wv: Tensor<D>;
  /** (E,) */
  bv: Tensor<D>;
  /** (E, E) */
  Wo: Tensor<D>;
  /** (E,) */
  bo: Tensor<D>;
}

/** Options of {@linkcode multiHeadAttentionForward}. */
export interface AttentionOptions {
  /** H, the number of heads; it must divide E. */
  numHeads: number;
  /** Which pairs may attend, (S, T) int32 (1 = attend, 0 = masked); default all. */
  mask?: Tensor<"int32">;
  /**
   * Dropout of the attention weights: `p` and the mask's `seed`; weight (n, h, s, j) is element
   * ((n·H + h)·S + s)·T + j of the mask. Default none.
   */
  dropout?: { p: number; seed: number };
}

/** What {@linkcode multiHeadAttentionForward} keeps for the backward pass. */
export interface AttentionCache<D extends FloatDType> {
  /** The projections' caches. */
  q: TemporalAffineCache<D>;
  /** The key projection's cache. */
  k: TemporalAffineCache<D>;
  /** The value projection's cache. */
  v: TemporalAffineCache<D>;
  /** The output projection's cache. */
  o: TemporalAffineCache<D>;
  /** The projected queries, keys and values, (N, S, E), (N, T, E), (N, T, E). */
  Q: Tensor<D>;
  /** The projected keys. */
  K: Tensor<D>;
  /** The projected values. */
  V: Tensor<D>;
  /** The attention weights, (N, H, S, T). */
  P: Tensor<D>;
  /** The weights after dropout, (N, H, S, T), or null. */
  Pd: Tensor<D> | null;
  /** The dropout multipliers, (N, H, S, T), or null. */
  keep: Tensor<D> | null;
  /** The heads' merged outputs, (N, S, E). */
  Y: Tensor<D>;
  /** H */
  numHeads: number;
  /** The mask, or null. */
  mask: Tensor<"int32"> | null;
}

/** Gradients from {@linkcode multiHeadAttentionBackward}. */
export interface AttentionGrads<D extends FloatDType> {
  /** (N, S, E) */
  dquery: Tensor<D>;
  /** (N, T, E) */
  dkey: Tensor<D>;
  /** (N, T, E) */
  dvalue: Tensor<D>;
  /** (E, E) */
  dWq: Tensor<D>;
  /** (E,) */
  dbq: Tensor<D>;
  /** (E, E) */
  dWk: Tensor<D>;
  /** (E,) */
  dbk: Tensor<D>;
  /** (E, E) */
  dWv: Tensor<D>;
  /** (E,) */
  dbv: Tensor<D>;
  /** (E, E) */
  dWo: Tensor<D>;
  /** (E,) */
  dbo: Tensor<D>;
}

const ATTENTION_RULES = {
  numHeads: accepts.positiveInt,
  mask: accepts.object,
  dropout: accepts.object,
} as const;

/** The views of head h of example n (S queries, T keys) in the layer's tensors. */
function headViews<D extends FloatDType>(
  c: Pick<AttentionCache<D>, "Q" | "K" | "V" | "P" | "Pd" | "Y">,
  n: number,
  h: number,
  heads: number,
): AttentionHead {
  const [, s, e] = c.Q.shape, t = c.K.shape[1], dh = e / heads, pOff = (n * heads + h) * s * t;
  return {
    q: mat(c.Q.data, s, dh, n * s * e + h * dh, e),
    k: mat(c.K.data, t, dh, n * t * e + h * dh, e),
    v: mat(c.V.data, t, dh, n * t * e + h * dh, e),
    p: mat(c.P.data, s, t, pOff),
    pd: c.Pd ? mat(c.Pd.data, s, t, pOff) : null,
    out: mat(c.Y.data, s, dh, n * s * e + h * dh, e),
  };
}

/**
 * Forward pass of multi-head attention.
 * @param query Queries, (N, S, E).
 * @param key Keys, (N, T, E).
 * @param value Values, (N, T, E).
 * @param params The projections Wq, bq, Wk, bk, Wv, bv, Wo, bo.
 * @param options `numHeads`, and optionally a `mask` (S, T) and attention-weight `dropout`.
 * @returns `[out, cache]` with out (N, S, E).
 * @throws {TypeError} For an unknown option.
 * @throws {RangeError} For bad shapes, or heads that do not divide E.
 *
 * @example
 * ```ts
 * import { causalMask, multiHeadAttentionForward } from "./attention.ts";
 * import { Tensor } from "./tensor.ts";
 * const x = Tensor.randn([2, 3, 4], 0), w = (s: number) => Tensor.randn([4, 4], s), b = Tensor.zeros([4]);
 * const params = { Wq: w(1), bq: b, Wk: w(2), bk: b, Wv: w(3), bv: b, Wo: w(4), bo: b };
 * const [out] = multiHeadAttentionForward(x, x, x, params, { numHeads: 2, mask: causalMask(3) });
 * console.log(out.shape); // [2, 3, 4]
 * ```
 */
export function multiHeadAttentionForward<D extends FloatDType>(
  query: Tensor<D>,
  key: Tensor<D>,
  value: Tensor<D>,
  params: AttentionParams<D>,
  options: AttentionOptions,
): [Tensor<D>, AttentionCache<D>] {
  checkOptions("attention options", options, ATTENTION_RULES);
  const heads = options?.numHeads;
  if (heads === undefined) throw new TypeError("Invalid attention options: numHeads is required");
  expectSameDtype({ query, key, value, ...params });
  expectShape("query", query, [-1, -1, -1]);
  const [n, s, e] = query.shape;
  expectShape("key", key, [n, -1, e]);
  const t = key.shape[1];
  expectShape("value", value, [n, t, e]);
  if (e % heads !== 0) {
    throw new RangeError(`Invalid numHeads: ${heads} heads do not divide the width ${e}`);
  }
  const mask = options.mask ?? null;
  if (mask) expectShape("mask", mask, [s, t]);
  const [Q, q] = temporalAffineForward(query, params.Wq, params.bq);
  const [K, k] = temporalAffineForward(key, params.Wk, params.bk);
  const [V, v] = temporalAffineForward(value, params.Wv, params.bv);
  const dtype = query.dtype, drop = options.dropout;
  const P = Tensor.zeros([n, heads, s, t], dtype);
  let keep: Tensor<D> | null = null, Pd: Tensor<D> | null = null;
  if (drop && drop.p > 0) {
    keep = Tensor.zeros(P.shape, dtype);
    Pd = Tensor.zeros(P.shape, dtype);
    dropoutMask(drop.seed, drop.p, keep.data, 0, keep.size);
  }
  const Y = Tensor.zeros([n, s, e], dtype);
  const m: AttentionMask | null = mask ? { data: mask.data, offset: 0, ld: t } : null;
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      const keepView = keep ? mat(keep.data, s, t, (i * heads + h) * s * t) : null;
      attendForward(headViews({ Q, K, V, P, Pd, Y }, i, h, heads), m, keepView);
    }
  }
  const [out, o] = temporalAffineForward(Y, params.Wo, params.bo);
  return [out, { q, k, v, o, Q, K, V, P, Pd, keep, Y, numHeads: heads, mask }];
}

/**
 * Backward pass of multi-head attention. For self-attention (query = key = value) the input's
 * gradient is dquery + dkey + dvalue.
 * @param dout Upstream gradient, (N, S, E).
 * @param cache The cache from {@linkcode multiHeadAttentionForward}.
 * @returns The inputs' and the projections' gradients.
 *
 * @example
 * ```ts
 * import { multiHeadAttentionBackward, multiHeadAttentionForward } from "./attention.ts";
 * import { Tensor } from "./tensor.ts";
 * const x = Tensor.randn([2, 3, 4], 0), m = Tensor.randn([2, 1, 4], 9), w = (s: number) => Tensor.randn([4, 4], s), b = Tensor.zeros([4]);
 * const params = { Wq: w(1), bq: b, Wk: w(2), bk: b, Wv: w(3), bv: b, Wo: w(4), bo: b };
 * const [out, cache] = multiHeadAttentionForward(x, m, m, params, { numHeads: 2 });
 * const { dquery, dkey, dWo } = multiHeadAttentionBackward(Tensor.randn(out.shape, 5), cache);
 * console.log(dquery.shape, dkey.shape, dWo.shape); // [2, 3, 4] [2, 1, 4] [4, 4]
 * ```
 */
export function multiHeadAttentionBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: AttentionCache<D>,
): AttentionGrads<D> {
  const { Q, K, V, keep, numHeads: heads, mask } = cache;
  const [n, s, e] = Q.shape, t = K.shape[1], dtype = Q.dtype, dh = e / heads;
  expectShape("dout", dout, [n, s, e]);
  const o = temporalAffineBackward(dout, cache.o);
  const dQ = Tensor.zeros(Q.shape, dtype), dK = Tensor.zeros(K.shape, dtype);
  const dV = Tensor.zeros(V.shape, dtype), dp = Tensor.zeros([s, t], dtype);
  const m: AttentionMask | null = mask ? { data: mask.data, offset: 0, ld: t } : null;
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      const keepView = keep ? mat(keep.data, s, t, (i * heads + h) * s * t) : null;
      attendBackward(
        headViews(cache, i, h, heads),
        mat(o.dx.data, s, dh, i * s * e + h * dh, e),
        m,
        keepView,
        {
          dq: mat(dQ.data, s, dh, i * s * e + h * dh, e),
          dk: mat(dK.data, t, dh, i * t * e + h * dh, e),
          dv: mat(dV.data, t, dh, i * t * e + h * dh, e),
          dp: mat(dp.data, s, t),
        },
      );
    }
  }
  const q = temporalAffineBackward(dQ, cache.q);
  const k = temporalAffineBackward(dK, cache.k);
  const v = temporalAffineBackward(dV, cache.v);
  return {
    dquery: q.dx,
    dkey: k.dx,
    dvalue: v.dx,
    dWq: q.dw,
    dbq: q.db,
    dWk: k.dw,
    dbk: k.db,
    dWv: v.dw,
    dbv: v.db,
    dWo: o.dw,
    dbo: o.db,
  };
}
