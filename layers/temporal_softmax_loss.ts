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
