/**
 * The fixed partitions that make data-parallel training deterministic: a batch is split into
 * fixed shards, and the flat gradient into fixed blocks. Workers take whole shards and whole
 * blocks, and every sum runs in shard order and block order, so results are bitwise the same
 * whatever the number of workers.
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";

/** A half-open index range [start, end). */
export interface Range {
  /** The first index. */
  start: number;
  /** One past the last index. */
  end: number;
}

/**
 * Splits [0, total) into `parts` contiguous ranges of near-equal size (earlier ones no smaller).
 * @param total The length to split.
 * @param parts The number of ranges.
 * @returns The ranges, in order (some empty when parts > total).
 *
 * @example
 * ```ts
 * import { splitRange } from "./sharding.ts";
 * console.log(splitRange(10, 4)); // [{start:0,end:3},{start:3,end:6},{start:6,end:8},{start:8,end:10}]
 * ```
 */
export function splitRange(total: number, parts: number): Range[] {
  const base = Math.floor(total / parts), extra = total % parts;
  const out: Range[] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const end = start + base + (i < extra ? 1 : 0);
    out.push({ start, end });
    start = end;
  }
  return out;
}

/**
 * Which of `count` items (shards or blocks) a worker owns: a contiguous run of them.
 * @param count The number of items.
 * @param workers The number of workers.
 * @param worker This worker's index.
 * @returns The item indices [start, end) of this worker.
 */
export function ownedItems(count: number, workers: number, worker: number): Range {
  return splitRange(count, workers)[worker];
}

/**
 * Sums the shard gradients over [start, end) into `out`, always in shard order.
 * @param shards One gradient buffer per shard.
 * @param out The reduced gradient.
 * @param start The first index.
 * @param end One past the last index.
 */
export function reduceShards(
  shards: FloatArray[],
  out: FloatArray,
  start: number,
  end: number,
): void {
  out.set(shards[0].subarray(start, end), start);
  for (let s = 1; s < shards.length; s++) {
    const g = shards[s];
    for (let i = start; i < end; i++) out[i] += g[i];
  }
}

/**
 * The sum of squares of g[start … end), accumulated in float64.
 * @param g The values.
 * @param start The first index.
 * @param end One past the last index.
 * @returns Σ g².
 */
export function sumSquares(g: FloatArray, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += g[i] * g[i];
  return s;
}

/**
 * Whether a gradient job over `range` writes its shard's gradient straight into the reduced
 * gradient: when the range is one shard and is not added onto a running sum, the reduced
 * gradient is that shard's, bit for bit, so the copy is skipped and the reduce only sums the
 * squares (one pass over the gradient instead of a read, a write and another read).
 * @param range The shards of the job.
 * @param onto Whether the job adds onto a partial sum (a step across processes).
 * @returns True for one shard, not onto.
 *
 * @example
 * ```ts
 * import { writesDirectly } from "./sharding.ts";
 * console.log(writesDirectly({ start: 0, end: 1 }, false), writesDirectly({ start: 0, end: 4 }, false)); // true false
 * ```
 */
export function writesDirectly(range: Range, onto: boolean): boolean {
  return range.end - range.start === 1 && !onto;
}

/**
 * Multiplies g[start … end) by a factor in place (gradient clipping).
 * @param g The values.
 * @param factor The scale.
 * @param start The first index.
 * @param end One past the last index.
 */
export function scaleRange(g: FloatArray, factor: number, start: number, end: number): void {
  for (let i = start; i < end; i++) g[i] *= factor;
}

/**
 * The clipping factor for a gradient norm: 1 when clipping is off or the norm is within bound.
 * @param norm The global gradient norm.
 * @param maxNorm The bound (0 = no clipping).
 * @returns The factor to scale the gradient by.
 */
export function clipFactor(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
}

/**
 * The dropout seed of fixed shard `shard` at training step `step` (the optimizer's count of
 * steps done): a function of the step and the shard alone, never of the worker that computes
 * the shard, so dropout draws the same masks for any number of workers, and a resumed run
 * (whose optimizer continues the count) draws the masks the uninterrupted run would have.
 * @param step The optimizer's step count before this step.
 * @param shard The shard's index.
 * @param shards The number of fixed shards per batch.
 * @returns The seed to pass as the shard's `dropoutSeed`.
 *
 * @example
 * ```ts
 * import { shardDropoutSeed } from "./sharding.ts";
 * console.log(shardDropoutSeed(0, 3, 4), shardDropoutSeed(1, 0, 4)); // 3 4
 * ```
 */
export function shardDropoutSeed(step: number, shard: number, shards: number): number {
  return step * shards + shard;
}
