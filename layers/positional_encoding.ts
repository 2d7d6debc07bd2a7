/**
 * Sinusoidal positional encoding, as the course's `PositionalEncoding`: position i gets
 *
 *   pe[i, j] = sin(i · 10000^(-j/W))        for even j
 *   pe[i, j] = cos(i · 10000^(-(j-1)/W))    for odd j
 *
 * added to the word vectors (the course's layer also applies dropout; here that is the
 * dropout layer's job). It has no parameters: its backward pass passes the gradient through.
 *
 * Dimension legend: N batch, T time (T ≤ P), P positions, W word vector (even).
 * @module
 */
import { expectShape } from "./checks.ts";
import { type FloatDType, Tensor } from "./tensor.ts";

/**
 * The encoding table of P positions.
 * @param positions P.
 * @param dim W, even.
 * @param dtype The element type (default float64).
 * @returns pe, (P, W).
 * @throws {RangeError} When W is odd (sin and cos come in pairs).
 *
 * @example
 * ```ts
 * import { positionalEncoding } from "./positional_encoding.ts";
 * const pe = positionalEncoding(3, 4);
 * console.log(pe.data[4], pe.data[5]); // sin(1) = 0.84…, cos(1) = 0.54…
 * ```
 */
export function positionalEncoding<D extends FloatDType = "float64">(
  positions: number,
  dim: number,
  dtype: D = "float64" as D,
): Tensor<D> {
  if (dim % 2 !== 0) {
    throw new RangeError(`Cannot make a positional encoding: its width must be even, got ${dim}`);
  }
  const pe = Tensor.zeros([positions, dim], dtype);
  for (let i = 0; i < positions; i++) {
    for (let j = 0; j < dim; j += 2) {
      const angle = i * 10000 ** (-j / dim);
      pe.data[i * dim + j] = Math.sin(angle);
      pe.data[i * dim + j + 1] = Math.cos(angle);
    }
  }
  return pe;
}

/** What {@linkcode positionalEncodingForward} keeps for the backward pass. */
export interface PositionalEncodingCache {
  /** The input's shape, [N, T, W]. */
  xShape: readonly number[];
}

/**
 * Adds the encoding of positions 0 … T-1 to a sequence of vectors.
 * @param x Input, (N, T, W).
 * @param pe The encoding table, (P, W) with P ≥ T (see {@linkcode positionalEncoding}).
 * @returns `[out, cache]` with out (N, T, W).
 * @throws {RangeError} When the sequence is longer than the table.
 *
 * @example
 * ```ts
 * import { positionalEncoding, positionalEncodingForward } from "./positional_encoding.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out] = positionalEncodingForward(Tensor.zeros([1, 2, 4]), positionalEncoding(50, 4));
 * console.log(out.data[1], out.data[4]); // cos(0) = 1, sin(1) = 0.84…
 * ```
 */
export function positionalEncodingForward<D extends FloatDType>(
  x: Tensor<D>,
  pe: Tensor<D>,
): [Tensor<D>, PositionalEncodingCache] {
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, w] = x.shape;
  expectShape("pe", pe, [-1, w]);
  if (t > pe.shape[0]) {
    throw new RangeError(
      `Cannot encode positions: the sequence has ${t} positions, the table ${pe.shape[0]}`,
    );
  }
  const out = x.clone();
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < t * w; k++) out.data[i * t * w + k] += pe.data[k];
  }
  return [out, { xShape: x.shape }];
}

/**
 * Backward pass of the positional encoding: the gradient passes through unchanged.
 * @param dout Upstream gradient, (N, T, W).
 * @param cache The cache from {@linkcode positionalEncodingForward}.
 * @returns dx, (N, T, W).
 *
 * @example
 * ```ts
 * import { positionalEncoding, positionalEncodingBackward, positionalEncodingForward } from "./positional_encoding.ts";
 * import { Tensor } from "./tensor.ts";
 * const [, cache] = positionalEncodingForward(Tensor.zeros([2, 3, 4]), positionalEncoding(5, 4));
 * console.log(positionalEncodingBackward(Tensor.randn([2, 3, 4], 0), cache).shape); // [2, 3, 4]
 * ```
 */
export function positionalEncodingBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: PositionalEncodingCache,
): Tensor<D> {
  expectShape("dout", dout, cache.xShape);
  return dout.clone();
}
