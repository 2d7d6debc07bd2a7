/**
 * Numeric gradients and the relative error, with the exercise's definitions, so users can
 * check any backward pass the way the notebook does.
 * @module
 */
import type { DType, FloatDType, Tensor } from "./tensor.ts";
import { Tensor as T } from "./tensor.ts";

/**
 * Centered-difference gradient of a scalar function: (f(x + h e_i) - f(x - h e_i)) / 2h.
 * `x` is perturbed in place and restored; `f` is expected to read it.
 * @param f The scalar function of x.
 * @param x The point, modified during the call and restored.
 * @param h The step (default 1e-5).
 * @returns The numeric gradient, shaped like x.
 *
 * @example
 * ```ts
 * import { evalNumericalGradient, Tensor } from "../mod.ts";
 * const x = Tensor.fromValues([1, 2, 3]);
 * const g = evalNumericalGradient((t) => t.data.reduce((s, v) => s + v * v, 0), x);
 * console.log(g.data); // ≈ [2, 4, 6]
 * ```
 */
export function evalNumericalGradient<D extends FloatDType>(
  f: (x: Tensor<D>) => number,
  x: Tensor<D>,
  h = 1e-5,
): Tensor<D> {
  // The array case with a one-element f and df = 1: the same (f(x + h) - f(x - h)) / 2h.
  return evalNumericalGradientArray((t) => T.fromValues([f(t)]), x, T.fromValues([1]), h);
}

/**
 * Centered-difference gradient of a tensor-valued function, contracted with the upstream
 * gradient df: grad[i] = Σ (f(x + h e_i) - f(x - h e_i)) · df / 2h.
 * @param f The function of x; the tensor it returns is read before the next call.
 * @param x The point, modified during the call and restored.
 * @param df The upstream gradient, shaped like f(x).
 * @param h The step (default 1e-5).
 * @returns The numeric gradient, shaped like x.
 *
 * @example
 * ```ts
 * import { evalNumericalGradientArray, Tensor } from "../mod.ts";
 * const x = Tensor.fromValues([1, 2]);
 * const double = (t: Tensor<"float64">) => Tensor.fromValues([2 * t.data[0], 2 * t.data[1]]);
 * const g = evalNumericalGradientArray(double, x, Tensor.fromValues([1, 1]));
 * console.log(g.data); // ≈ [2, 2]
 * ```
 */
export function evalNumericalGradientArray<D extends FloatDType>(
  f: (x: Tensor<D>) => Tensor<FloatDType>,
  x: Tensor<D>,
  df: Tensor<FloatDType>,
  h = 1e-5,
): Tensor<D> {
  const grad = T.zeros(x.shape, x.dtype);
  for (let i = 0; i < x.size; i++) {
    const old = x.data[i];
    x.data[i] = old + h;
    const pos = f(x).data.slice();
    x.data[i] = old - h;
    const neg = f(x).data;
    x.data[i] = old;
    if (pos.length !== df.size || neg.length !== df.size) {
      throw new RangeError(
        `Invalid df: f(x) has ${pos.length} elements but df has ${df.size}`,
      );
    }
    let s = 0;
    for (let j = 0; j < df.size; j++) s += (pos[j] - neg[j]) * df.data[j];
    grad.data[i] = s / (2 * h);
  }
  return grad;
}

/**
 * The exercise's relative error: max |a - b| / max(1e-8, |a| + |b|), elementwise.
 * @param a A tensor, array or number.
 * @param b Another of the same size.
 * @returns The largest elementwise relative error.
 *
 * @example
 * ```ts
 * import { relError } from "../mod.ts";
 * console.log(relError([1, 2], [1, 2.000002])); // ≈ 5e-7
 * ```
 */
export function relError(
  a: Tensor<DType> | ArrayLike<number> | number,
  b: Tensor<DType> | ArrayLike<number> | number,
): number {
  const x = values(a), y = values(b);
  if (x.length !== y.length) {
    throw new RangeError(`Cannot compare: sizes differ (${x.length} and ${y.length})`);
  }
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.abs(x[i] - y[i]) / Math.max(1e-8, Math.abs(x[i]) + Math.abs(y[i]));
    if (e > worst || Number.isNaN(e)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

function values(a: Tensor<DType> | ArrayLike<number> | number): ArrayLike<number> {
  if (typeof a === "number") return [a];
  if (a instanceof T) return a.data;
  return a as ArrayLike<number>;
}
