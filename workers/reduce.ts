/**
 * The fused reduction of one gradient block: the shard gradients summed in shard order and the
 * sum of squares of the result, in one pass over memory instead of two. Bitwise the same as
 * `reduceShards` followed by `sumSquares` (sharding.ts): each partial sum is rounded to the
 * buffer's element type exactly as storing it would, and squares are added in index order.
 *
 * The sum is a left fold, `((g0 + g1) + g2) + g3`, so it can be cut anywhere and continued:
 * `reduceBlockOnto` adds shards 2 and 3 onto a buffer holding `g0 + g1` (another process's
 * running sum) and gives the bits of the whole fold.
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";
import { reduceShards, sumSquares } from "./sharding.ts";

/**
 * Sums the shard gradients over [start, end) into `out` in shard order, and returns Σ out²
 * (accumulated in float64, in index order).
 * @param shards One gradient buffer per shard, all of `out`'s type.
 * @param out The reduced gradient.
 * @param start The first index.
 * @param end One past the last index.
 * @returns The block's sum of squares, bitwise equal to `sumSquares(out, start, end)` after
 * `reduceShards(shards, out, start, end)`.
 *
 * @example
 * ```ts
 * import { reduceBlock } from "./reduce.ts";
 * const out = new Float32Array(2);
 * const sq = reduceBlock([new Float32Array([1, 2]), new Float32Array([2, 0])], out, 0, 2);
 * console.log(out, sq); // Float32Array [3, 2] 13
 * ```
 */
export function reduceBlock(
  shards: FloatArray[],
  out: FloatArray,
  start: number,
  end: number,
): number {
  if (out instanceof Float32Array && shards.every((s) => s instanceof Float32Array)) {
    const f = shards as Float32Array[];
    switch (f.length) {
      case 1:
        return reduce1(f[0], out, start, end);
      case 2:
        return reduce2(f[0], f[1], out, start, end);
      case 3:
        return reduce3(f[0], f[1], f[2], out, start, end);
      case 4:
        return reduce4(f[0], f[1], f[2], f[3], out, start, end);
    }
  }
  if (out instanceof Float64Array && shards.every((s) => s instanceof Float64Array)) {
    const f = shards as Float64Array[];
    if (f.length === 4) return reduce4f64(f[0], f[1], f[2], f[3], out, start, end);
  }
  reduceShards(shards, out, start, end);
  return sumSquares(out, start, end);
}

/**
 * Adds the shard gradients over [start, end) onto `out` in shard order — `out` holds the
 * running sum of the shards before them — and returns Σ out² (float64, index order).
 * @param shards The gradient buffers of the next shards, all of `out`'s type.
 * @param out The running sum, updated in place.
 * @param start The first index.
 * @param end One past the last index.
 * @returns The block's sum of squares after the adds.
 *
 * @example Continuing a sum: the bits of summing all four shards at once
 * ```ts
 * import { reduceBlock, reduceBlockOnto } from "./reduce.ts";
 * const g = [0.1, 0.2, 0.3, 0.4].map((x) => new Float32Array([x, -x]));
 * const whole = new Float32Array(2), cut = new Float32Array(2);
 * reduceBlock(g, whole, 0, 2);
 * reduceBlock(g.slice(0, 2), cut, 0, 2); // shards 0 and 1 (one process) …
 * reduceBlockOnto(g.slice(2), cut, 0, 2); // … then 2 and 3 onto their sum (the next)
 * console.log(cut[0] === whole[0] && cut[1] === whole[1]); // true
 * ```
 */
export function reduceBlockOnto(
  shards: FloatArray[],
  out: FloatArray,
  start: number,
  end: number,
): number {
  // `out` is the fold's first term: reading it before writing each element aliases safely.
  return reduceBlock([out, ...shards], out, start, end);
}

function reduce1(s0: Float32Array, out: Float32Array, start: number, end: number): number {
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = s0[i];
    out[i] = v;
    sq += v * v;
  }
  return sq;
}

function reduce2(
  s0: Float32Array,
  s1: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
): number {
  const fr = Math.fround;
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = fr(s0[i] + s1[i]);
    out[i] = v;
    sq += v * v;
  }
  return sq;
}

function reduce3(
  s0: Float32Array,
  s1: Float32Array,
  s2: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
): number {
  const fr = Math.fround;
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = fr(fr(s0[i] + s1[i]) + s2[i]);
    out[i] = v;
    sq += v * v;
  }
  return sq;
}

function reduce4(
  s0: Float32Array,
  s1: Float32Array,
  s2: Float32Array,
  s3: Float32Array,
  out: Float32Array,
  start: number,
  end: number,
): number {
  const fr = Math.fround;
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = fr(fr(fr(s0[i] + s1[i]) + s2[i]) + s3[i]);
    out[i] = v;
    sq += v * v;
  }
  return sq;
}

function reduce4f64(
  s0: Float64Array,
  s1: Float64Array,
  s2: Float64Array,
  s3: Float64Array,
  out: Float64Array,
  start: number,
  end: number,
): number {
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = s0[i] + s1[i] + s2[i] + s3[i];
    out[i] = v;
    sq += v * v;
  }
  return sq;
}
