/**
 * Word embedding: looks up a vector for each word index.
 *
 * Dimension legend: N batch, T time, V vocabulary, D (= W) word-vector size.
 * @module
 */
import { expectShape } from "./checks.ts";
import { type FloatDType, Tensor } from "./tensor.ts";

/** What {@linkcode wordEmbeddingForward} keeps for the backward pass. */
export interface WordEmbeddingCache {
  /** The word indices, (N, T). */
  x: Tensor<"int32">;
  /** The shape of W, [V, D]. */
  wShape: readonly [number, number];
}

/**
 * Forward pass: out[n, t] = W[x[n, t]].
 * @param x Word indices, (N, T), int32, each in [0, V).
 * @param W Word vectors, (V, D).
 * @returns `[out, cache]` with out (N, T, D).
 *
 * @example
 * ```ts
 * import { Tensor, wordEmbeddingForward } from "../mod.ts";
 * const x = Tensor.fromValues([0, 3, 1, 2, 2, 1, 0, 3], [2, 4], "int32");
 * const [out] = wordEmbeddingForward(x, Tensor.linspace(0, 1, [5, 3]));
 * console.log(out.shape); // [2, 4, 3]
 * ```
 */
export function wordEmbeddingForward<D extends FloatDType>(
  x: Tensor<"int32">,
  W: Tensor<D>,
): [Tensor<D>, WordEmbeddingCache] {
  if (x.dtype !== "int32") {
    throw new TypeError(`Invalid dtype for x: expected int32, got ${x.dtype}`);
  }
  expectShape("W", W, [-1, -1]);
  const [v, d] = W.shape;
  const out = Tensor.zeros([...x.shape, d], W.dtype);
  for (let r = 0; r < x.size; r++) {
    const word = x.data[r];
    if (word < 0 || word >= v) {
      throw new RangeError(
        `Invalid word index ${word} at position ${r}: expected 0 <= index < ${v}`,
      );
    }
    out.data.set(W.data.subarray(word * d, (word + 1) * d), r * d);
  }
  return [out, { x, wShape: [v, d] }];
}

/** Gradients from {@linkcode wordEmbeddingBackward}. */
export interface WordEmbeddingGrads<D extends FloatDType> {
  /** Gradient of the word vectors, (V, D). */
  dW: Tensor<D>;
}

/**
 * Backward pass: each word's row of dW sums the upstream gradients where it was looked up.
 * @param dout Upstream gradient, (N, T, D).
 * @param cache The cache from {@linkcode wordEmbeddingForward}.
 * @returns `{ dW }` with dW (V, D).
 *
 * @example
 * ```ts
 * import { Tensor, wordEmbeddingBackward, wordEmbeddingForward } from "../mod.ts";
 * const x = Tensor.fromValues([1, 1], [1, 2], "int32");
 * const [out, cache] = wordEmbeddingForward(x, Tensor.zeros([3, 2]));
 * const { dW } = wordEmbeddingBackward(Tensor.fromValues([1, 2, 3, 4], out.shape), cache);
 * console.log(dW.data); // [0, 0, 4, 6, 0, 0]
 * ```
 */
export function wordEmbeddingBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: WordEmbeddingCache,
): WordEmbeddingGrads<D> {
  const { x, wShape: [v, d] } = cache;
  expectShape("dout", dout, [...x.shape, d]);
  const dW = Tensor.zeros([v, d], dout.dtype);
  for (let r = 0; r < x.size; r++) {
    const o = x.data[r] * d, s = r * d;
    for (let j = 0; j < d; j++) dW.data[o + j] += dout.data[s + j];
  }
  return { dW };
}
