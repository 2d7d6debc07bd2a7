/**
 * Inverted dropout (PyTorch's `nn.Dropout`: `p` is the probability of dropping an element;
 * kept elements are scaled by 1 / (1 - p), so evaluation needs no rescaling).
 *
 * The mask is a pure function of a seed and each element's index — a counter-based hash, not a
 * stream — so a mask does not depend on the order elements are visited in: the fused training
 * step (packed rows), the layer-composed reference (padded tensors) and any split of a batch
 * into shards draw the same mask for the same element, and a run is reproducible for a seed.
 *
 * Dimension legend: N batch, D the features of each row (any trailing shape).
 * @module
 */
import { accepts, checkOptions } from "./options.ts";
import type { FloatArray, FloatDType } from "./tensor.ts";
import { Tensor } from "./tensor.ts";

/** Options of {@linkcode dropoutForward}. */
export interface DropoutOptions {
  /** The probability of dropping each element, in [0, 1). */
  p: number;
  /** The mask's seed (any integer): the same seed drops the same elements. */
  seed: number;
  /** "train" (default) drops; "test" passes x through, as the exercise's `dropout_param`. */
  mode?: "train" | "test";
}

/** What {@linkcode dropoutForward} keeps for the backward pass. */
export interface DropoutCache<D extends FloatDType> {
  /** The multipliers: 0 for a dropped element, 1 / (1 - p) for a kept one; null in test mode. */
  mask: Tensor<D> | null;
}

const DROPOUT_RULES = {
  p: accepts.fraction,
  seed: { expected: "an integer", type: "number", test: (v: unknown) => Number.isInteger(v) },
  mode: accepts.oneOf(["train", "test"]),
} as const;

/** lowbias32: a 32-bit integer hash with good avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A seed derived from a seed and a list of integers (e.g. a layer and a site), so every
 * dropout site of a model draws its own mask from one seed.
 * @param seed The base seed (any integer).
 * @param parts The integers to fold in, in order.
 * @returns A 32-bit seed.
 *
 * @example
 * ```ts
 * import { deriveSeed } from "./dropout.ts";
 * console.log(deriveSeed(7, 0, 1) === deriveSeed(7, 0, 1), deriveSeed(7, 0, 1) === deriveSeed(7, 1, 0));
 * // true false
 * ```
 */
export function deriveSeed(seed: number, ...parts: number[]): number {
  // Doubles beyond 32 bits (a large step count) keep their high part.
  let h = mix32((seed | 0) ^ mix32(Math.floor(seed / 2 ** 32) + 0x9e3779b9));
  for (const part of parts) {
    h = mix32(h ^ mix32((part | 0) + 0x9e3779b9) ^ Math.floor(part / 2 ** 32));
  }
  return h;
}

/**
 * Writes dropout multipliers for the elements with indices `first … first + count - 1`:
 * 0 where the element is dropped (probability p), 1 / (1 - p) where it is kept.
 * @param seed The mask's seed.
 * @param p The drop probability, in [0, 1).
 * @param out Where the multipliers go.
 * @param off Where element `first`'s multiplier goes in `out`.
 * @param count How many elements.
 * @param first The index of the first element (default 0).
 *
 * @example
 * ```ts
 * import { dropoutMask } from "./dropout.ts";
 * const whole = new Float64Array(8), tail = new Float64Array(3);
 * dropoutMask(1, 0.5, whole, 0, 8);
 * dropoutMask(1, 0.5, tail, 0, 3, 5); // elements 5, 6, 7 alone: the same multipliers
 * console.log(tail[2] === whole[7]); // true
 * ```
 */
export function dropoutMask(
  seed: number,
  p: number,
  out: FloatArray,
  off: number,
  count: number,
  first = 0,
): void {
  const s = deriveSeed(seed), keep = 1 / (1 - p);
  // An element is kept when its hash, as a fraction of 2^32, is at least p.
  const threshold = p * 2 ** 32;
  for (let k = 0; k < count; k++) {
    const h = mix32(s ^ Math.imul((first + k) | 0, 0x9e3779b9) ^ Math.floor((first + k) / 2 ** 32));
    out[off + k] = h >= threshold ? keep : 0;
  }
}

/**
 * Forward pass of inverted dropout.
 * @param x Input, any shape.
 * @param options `p` (drop probability), `seed`, and `mode` ("train" or "test").
 * @returns `[out, cache]` with out shaped like x.
 * @throws {TypeError} For an unknown option or a value of the wrong type.
 * @throws {RangeError} For p outside [0, 1) or a seed that is not an integer.
 *
 * @example
 * ```ts
 * import { dropoutForward } from "./dropout.ts";
 * import { Tensor } from "./tensor.ts";
 * const [out] = dropoutForward(Tensor.fromValues([1, 1, 1, 1, 1, 1]), { p: 0.5, seed: 3 });
 * console.log(Array.from(out.data).every((v) => v === 0 || v === 2)); // true
 * ```
 */
export function dropoutForward<D extends FloatDType>(
  x: Tensor<D>,
  options: DropoutOptions,
): [Tensor<D>, DropoutCache<D>] {
  checkOptions("dropout options", options, DROPOUT_RULES);
  if (options?.p === undefined || options.seed === undefined) {
    throw new TypeError("Invalid dropout options: p and seed are required");
  }
  const out = x.clone();
  if (options.mode === "test" || options.p === 0) return [out, { mask: null }];
  const mask = Tensor.zeros(x.shape, x.dtype);
  dropoutMask(options.seed, options.p, mask.data, 0, mask.size);
  for (let i = 0; i < out.size; i++) out.data[i] *= mask.data[i];
  return [out, { mask }];
}

/**
 * Backward pass of inverted dropout: the upstream gradient through the same mask.
 * @param dout Upstream gradient, shaped like the forward's input.
 * @param cache The cache from {@linkcode dropoutForward}.
 * @returns dx, shaped like dout.
 *
 * @example
 * ```ts
 * import { dropoutBackward, dropoutForward } from "./dropout.ts";
 * import { Tensor } from "./tensor.ts";
 * const [, cache] = dropoutForward(Tensor.randn([2, 3], 0), { p: 0.3, seed: 1 });
 * const dx = dropoutBackward(Tensor.fromValues([1, 1, 1, 1, 1, 1], [2, 3]), cache);
 * console.log(dx.data.every((v, i) => v === cache.mask!.data[i])); // true: dout ⊙ mask
 * ```
 */
export function dropoutBackward<D extends FloatDType>(
  dout: Tensor<D>,
  cache: DropoutCache<D>,
): Tensor<D> {
  const dx = dout.clone();
  const { mask } = cache;
  if (mask === null) return dx;
  if (mask.size !== dout.size) {
    throw new RangeError(
      `Invalid shape for dout: expected [${mask.shape}], got [${dout.shape}]`,
    );
  }
  for (let i = 0; i < dx.size; i++) dx.data[i] *= mask.data[i];
  return dx;
}
