/**
 * The fused reduction of one gradient block: the shard gradients summed in shard order and the
 * sum of squares of the result, in one pass over memory instead of two. Bitwise the same as
 * `reduceShards` followed by `sumSquares` (sharding.ts): each partial sum is rounded to the
 * buffer's element type exactly as storing it would, and squares are added in index order.
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
