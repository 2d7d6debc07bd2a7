/**
 * The Transformer's feed-forward block, as the course's `TransformerDecoderLayer` has it:
 *
 *   hidden = relu(x W1 + b1),  out = dropout(hidden) W2 + b2
 *
 * The row kernels are the one implementation: the Tensor functions run them over every row,
 * the Transformer's fused step and decoder over rows of their work arrays.
 *
 * Dimension legend: N rows (the product of all leading dimensions), W width, F hidden size.
 * @module
 */
import { sumRows } from "./affine.ts";
import { expectSameDtype, expectShape } from "./checks.ts";
import { dropoutMask } from "./dropout.ts";
import { mat, matmul, matmulAdd, T } from "./kernels/matmul.ts";
import type { FloatArray, FloatDType } from "./tensor.ts";
import { shapeSize, Tensor } from "./tensor.ts";

/** The block's parameters, as flat arrays: W1 (W, F), b1 (F,), W2 (F, W), b2 (W,). */
export interface FeedForwardWeights {
  /** (W, F) */
  W1: FloatArray;
  /** (F,) */
  b1: FloatArray;
  /** (F, W) */
  W2: FloatArray;
  /** (W,) */
  b2: FloatArray;
}

/** The block's work arrays over N rows. */
export interface FeedForwardWork {
  /** relu(x W1 + b1), (N, F), written by the forward pass. */
  hidden: FloatArray;
  /** Dropout multipliers of the hidden units, (N, F), or null for none. */
  keep: FloatArray | null;
  /** hidden ⊙ keep, (N, F), written by the forward pass when `keep` is given. */
  dropped: FloatArray | null;
}

/**
 * The forward pass over `rows` rows (every array from element 0): hidden, dropped and out.
 * @param x The input, (N, W).
 * @param rows N.
 * @param w W.
 * @param f F.
 * @param p The weights.
 * @param work The hidden units (and dropout) of the rows.
 * @param out Where the output goes, (N, W).
 *
 * @example
 * ```ts
 * import { feedForwardRows } from "./feed_forward.ts";
 * const p = { W1: new Float64Array([1, -1]), b1: new Float64Array(2), W2: new Float64Array([1, 1]), b2: new Float64Array([0.5]) };
 * const out = new Float64Array(1);
 * feedForwardRows(new Float64Array([2]), 1, 1, 2, p, { hidden: new Float64Array(2), keep: null, dropped: null }, out);
 * console.log(out[0]); // relu(2) + relu(-2) + 0.5 = 2.5
 * ```
 */
export function feedForwardRows(
  x: FloatArray,
  rows: number,
  w: number,
  f: number,
  p: FeedForwardWeights,
  work: FeedForwardWork,
  out: FloatArray,
): void {
  const { hidden, keep, dropped } = work;
  for (let r = 0; r < rows; r++) hidden.set(p.b1, r * f);
  matmulAdd(mat(hidden, rows, f), mat(x, rows, w), mat(p.W1, w, f));
  for (let i = 0; i < rows * f; i++) if (!(hidden[i] > 0)) hidden[i] = 0;
  let u = hidden;
  if (keep && dropped) {
    for (let i = 0; i < rows * f; i++) dropped[i] = hidden[i] * keep[i];
    u = dropped;
  }
  for (let r = 0; r < rows; r++) out.set(p.b2, r * w);
  matmulAdd(mat(out, rows, w), mat(u, rows, f), mat(p.W2, f, w));
}

/**
 * The backward pass over the same rows; every gradient is overwritten. `dx` may be `dout`
 * itself (it is written last).
 * @param dout The output's gradient, (N, W).
 * @param x The forward pass's input, (N, W).
 * @param rows N.
 * @param w W.
 * @param f F.
 * @param p The weights.
 * @param work The forward pass's hidden units (and dropout).
 * @param dHidden Scratch for the hidden units' gradient, (N, F).
 * @param grads Where the gradients go: dx (N, W), dW1, db1, dW2, db2.
 *
 * @example
 * ```ts
 * import { feedForwardRows, feedForwardRowsBackward } from "./feed_forward.ts";
 * const p = { W1: new Float64Array([1, -1]), b1: new Float64Array(2), W2: new Float64Array([1, 1]), b2: new Float64Array(1) };
 * const work = { hidden: new Float64Array(2), keep: null, dropped: null };
 * const x = new Float64Array([2]);
 * feedForwardRows(x, 1, 1, 2, p, work, new Float64Array(1));
 * const g = { dx: new Float64Array(1), dW1: new Float64Array(2), db1: new Float64Array(2), dW2: new Float64Array(2), db2: new Float64Array(1) };
 * feedForwardRowsBackward(new Float64Array([1]), x, 1, 1, 2, p, work, new Float64Array(2), g);
 * console.log(g.dx[0], g.dW2); // 1 (only the active unit) [2, 0]
 * ```
 */
export function feedForwardRowsBackward(
  dout: FloatArray,
  x: FloatArray,
  rows: number,
  w: number,
  f: number,
  p: FeedForwardWeights,
  work: FeedForwardWork,
  dHidden: FloatArray,
  grads: { dx: FloatArray; dW1: FloatArray; db1: FloatArray; dW2: FloatArray; db2: FloatArray },
): void {
  const { hidden, keep, dropped } = work;
  const u = keep && dropped ? dropped : hidden, dOut = mat(dout, rows, w);
  matmul(mat(grads.dW2, f, w), T(mat(u, rows, f)), dOut); // dW2 = uᵀ dout
  grads.db2.fill(0);
  sumRows(dout, rows, w, grads.db2);
  matmul(mat(dHidden, rows, f), dOut, T(mat(p.W2, f, w))); // du = dout W2ᵀ
  for (let i = 0; i < rows * f; i++) {
    // Through the dropout, then the ReLU (its gradient is 0 where the unit was not active).
    const g = keep ? dHidden[i] * keep[i] : dHidden[i];
    dHidden[i] = hidden[i] > 0 ? g : 0;
  }
  const dH = mat(dHidden, rows, f);
  matmul(mat(grads.dW1, w, f), T(mat(x, rows, w)), dH); // dW1 = xᵀ dhidden
  grads.db1.fill(0);
  sumRows(dHidden, rows, f, grads.db1);
  matmul(mat(grads.dx, rows, w), dH, T(mat(p.W1, w, f))); // dx = dhidden W1ᵀ
}

/** What {@linkcode feedForwardForward} keeps for the backward pass. */
export interface FeedForwardCache<D extends FloatDType> {
  /** The input, (…, W). */
  x: Tensor<D>;
  /** The weights. */
  p: FeedForwardWeights;
  /** The hidden units and dropout of every row. */
  work: FeedForwardWork;
}

/** Gradients from {@linkcode feedForwardBackward}. */
export interface FeedForwardGrads<D extends FloatDType> {
  /** Shaped like x. */
  dx: Tensor<D>;
  /** (W, F) */
  dW1: Tensor<D>;
  /** (F,) */
  db1: Tensor<D>;
  /** (F, W) */
  dW2: Tensor<D>;
  /** (W,) */
  db2: Tensor<D>;
}

/**
 * Forward pass of the feed-forward block over the last dimension.
 * @param x Input, (…, W).
 * @param W1 (W, F)
 * @param b1 (F,)
 * @param W2 (F, W)
 * @param b2 (W,)
 * @param dropout Dropout of the hidden units: `p` and the mask's `seed` (unit (r, k) is element
 * r·F + k of the mask); default none.
 * @returns `[out, cache]` with out shaped like x.
 *
 * @example
 * ```ts
 * import { feedForwardForward } from "./feed_forward.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out] = feedForwardForward(Tensor.randn([2, 3, 4], 0), Tensor.randn([4, 8], 1),
 *   Tensor.zeros([8]), Tensor.randn([8, 4], 2), Tensor.zeros([4]), { p: 0.1, seed: 7 });
 * console.log(out.shape); // [2, 3, 4]
 * ```
 */
export function feedForwardForward<D extends FloatDType>(
  x: Tensor<D>,
  W1: Tensor<D>,
  b1: Tensor<D>,
  W2: Tensor<D>,
  b2: Tensor<D>,
  dropout?: { p: number; seed: number },
): [Tensor<D>, FeedForwardCache<D>] {
  expectSameDtype({ x, W1, b1, W2, b2 });
  const w = x.shape[x.shape.length - 1], rows = shapeSize(x.shape.slice(0, -1));
  expectShape("W1", W1, [w, -1]);
  const f = W1.shape[1];
  expectShape("b1", b1, [f]);
  expectShape("W2", W2, [f, w]);
  expectShape("b2", b2, [w]);
  const dtype = x.dtype, alloc = () => Tensor.zeros([rows, f], dtype).data;
  const work: FeedForwardWork = { hidden: alloc(), keep: null, dropped: null };
  if (dropout && dropout.p > 0) {
    work.keep = alloc();
    work.dropped = alloc();
    dropoutMask(dropout.seed, dropout.p, work.keep, 0, rows * f);
  }
  const p = { W1: W1.data, b1: b1.data, W2: W2.data, b2: b2.data };
  const out = Tensor.zeros(x.shape, dtype);
  feedForwardRows(x.data, rows, w, f, p, work, out.data);
  return [out, { x, p, work }];
}

/**
 * Backward pass of the feed-forward block.
 * @param dout Upstream gradient, shaped like the forward's x.
 * @param cache The cache from {@linkcode feedForwardForward}.
 * @returns `{ dx, dW1, db1, dW2, db2 }`.
 *
 * @example
 * ```ts
 * import { feedForwardBackward, feedForwardForward } from "./feed_forward.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out, cache] = feedForwardForward(Tensor.randn([3, 4], 0), Tensor.randn([4, 8], 1),
 *   Tensor.zeros([8]), Tensor.randn([8, 4], 2), Tensor.zeros([4]));
 * const { dx, dW1 } = feedForwardBackward(Tensor.randn(out.shape, 3), cache);
 * console.log(dx.shape, dW1.shape); // [3, 4] [4, 8]
 * ```
 */
export function feedForwardBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: FeedForwardCache<D>,
): FeedForwardGrads<D> {
  const { x, p, work } = cache;
  expectShape("dout", dout, x.shape);
  const w = x.shape[x.shape.length - 1], f = p.b1.length, rows = shapeSize(x.shape.slice(0, -1));
  const dtype = x.dtype;
  const g = {
    dx: Tensor.zeros(x.shape, dtype),
    dW1: Tensor.zeros([w, f], dtype),
    db1: Tensor.zeros([f], dtype),
    dW2: Tensor.zeros([f, w], dtype),
    db2: Tensor.zeros([w], dtype),
  };
  const dHidden = Tensor.zeros([rows, f], dtype).data;
  feedForwardRowsBackward(dout.data, x.data, rows, w, f, p, work, dHidden, {
    dx: g.dx.data,
    dW1: g.dW1.data,
    db1: g.db1.data,
    dW2: g.dW2.data,
    db2: g.db2.data,
  });
  return g;
}
