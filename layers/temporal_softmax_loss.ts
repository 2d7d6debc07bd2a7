/**
 * Temporal softmax loss: cross-entropy of the vocabulary scores at every time step,
 * summed over the unmasked steps and divided by N (the exercise's definition).
 *
 * Dimension legend: N batch, T time, V vocabulary.
 * @module
 */
import { expectShape } from "./checks.ts";
import { type DType, type FloatDType, Tensor } from "./tensor.ts";

/**
 * Loss and gradient of the temporal softmax.
 * @param x Scores, (N, T, V).
 * @param y Target word indices, (N, T), int32, each in [0, V).
 * @param mask Which steps count, (N, T): nonzero means counted.
 * @returns `[loss, dx]` with dx (N, T, V).
 *
 * @example
 * ```ts
 * import { temporalSoftmaxLoss, Tensor } from "../mod.ts";
 * const x = Tensor.zeros([1, 1, 4]);
 * const [loss] = temporalSoftmaxLoss(x, Tensor.fromValues([2], [1, 1], "int32"), Tensor.fromValues([1], [1, 1], "int32"));
 * console.log(loss); // ln(4) ≈ 1.386
 * ```
 */
export function temporalSoftmaxLoss<D extends FloatDType>(
  x: Tensor<D>,
  y: Tensor<"int32">,
  mask: Tensor<DType>,
): [number, Tensor<D>] {
  expectShape("x", x, [-1, -1, -1]);
  const [n, t, v] = x.shape;
  expectShape("y", y, [n, t]);
  expectShape("mask", mask, [n, t]);
  const dx = Tensor.zeros([n, t, v], x.dtype);
  let loss = 0;
  for (let r = 0; r < n * t; r++) {
    if (mask.data[r] === 0) continue; // masked rows contribute neither loss nor gradient
    const target = y.data[r];
    if (target < 0 || target >= v) {
      throw new RangeError(
        `Invalid target index ${target} at position ${r}: expected 0 <= index < ${v}`,
      );
    }
    const o = r * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) if (x.data[o + j] > max) max = x.data[o + j];
    let sum = 0;
    for (let j = 0; j < v; j++) {
      const e = Math.exp(x.data[o + j] - max);
      dx.data[o + j] = e;
      sum += e;
    }
    // -log p[target] = log(sum) - (x[target] - max), without forming p[target] (no log(0)).
    loss += Math.log(sum) - (x.data[o + target] - max);
    const scale = 1 / (sum * n);
    for (let j = 0; j < v; j++) dx.data[o + j] *= scale;
    dx.data[o + target] -= 1 / n;
  }
  return [loss / n, dx];
}

/**
 * The temporal softmax loss with a weight per caption, composed from the layer: each caption's
 * loss and gradient (alone, so divided by 1) times its weight, then divided by N like the
 * unweighted loss. Self-critical training weights each sampled caption by its reward minus
 * its baseline.
 * @param scores Scores, (N, T, V).
 * @param targets Target words, (N, T).
 * @param mask 1 where a target counts, (N, T).
 * @param weights Each caption's weight, (N,).
 * @returns `[loss, dscores]`, like {@linkcode temporalSoftmaxLoss}.
 *
 * @example
 * ```ts
 * import { weightedTemporalSoftmaxLoss } from "./temporal_softmax_loss.ts";
 * import { Tensor } from "./tensor.ts";
 * const scores = Tensor.zeros([2, 1, 2]);
 * const targets = Tensor.fromValues([1, 1], [2, 1], "int32");
 * const mask = Tensor.fromValues([1, 1], [2, 1], "int32");
 * console.log(weightedTemporalSoftmaxLoss(scores, targets, mask, [1, 0])[0].toFixed(4)); // 0.3466
 * ```
 */
export function weightedTemporalSoftmaxLoss<D extends FloatDType>(
  scores: Tensor<D>,
  targets: Tensor<"int32">,
  mask: Tensor<"int32">,
  weights: ArrayLike<number>,
): [number, Tensor<D>] {
  const [n, t, v] = scores.shape;
  const dscores = Tensor.zeros([n, t, v], scores.dtype);
  let loss = 0;
  // Caption i's rows of a (N, T, …) tensor, as a batch of one.
  const caption = <X extends DType>(x: Tensor<X>, i: number): Tensor<X> => {
    const size = x.size / n;
    const rows = x.data.slice(i * size, (i + 1) * size) as typeof x.data;
    return new Tensor(rows, [1, ...x.shape.slice(1)]);
  };
  for (let i = 0; i < n; i++) {
    const [li, di] = temporalSoftmaxLoss(caption(scores, i), caption(targets, i), caption(mask, i));
    loss += weights[i] * li;
    for (let j = 0; j < t * v; j++) dscores.data[i * t * v + j] = weights[i] * di.data[j] / n;
  }
  return [loss / n, dscores];
}
