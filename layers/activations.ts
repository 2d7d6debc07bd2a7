/**
 * Nonlinearities shared by the recurrent cells: the scalar sigmoid, and the forward and
 * backward passes of an activation over a run of an array.
 * @module
 */
import type { FloatArray } from "./tensor.ts";

/** The recurrent cell's nonlinearity: the exercise's "tanh" or "sigmoid". */
export type Activation = "tanh" | "sigmoid";

/**
 * A numerically stable logistic sigmoid (no overflow for large |x|).
 * @param x The input.
 * @returns 1 / (1 + e^-x).
 *
 * @example
 * ```ts
 * import { sigmoid } from "./activations.ts";
 * console.assert(sigmoid(0) === 0.5);
 * ```
 */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const z = Math.exp(x);
  return z / (1 + z);
}

/**
 * Checks an activation name given by a user.
 * @param activation The name to check.
 * @returns The same name, typed.
 */
export function checkActivation(activation: string): Activation {
  if (activation !== "tanh" && activation !== "sigmoid") {
    throw new RangeError(`Unknown activation "${activation}": expected "tanh" or "sigmoid"`);
  }
  return activation;
}

/**
 * Applies the activation to `a[offset … offset+len)` in place.
 * @param a The array.
 * @param offset The first element.
 * @param len The number of elements.
 * @param activation `"tanh"` or `"sigmoid"`.
 *
 * @example
 * ```ts
 * import { activateInPlace } from "./activations.ts";
 * const a = new Float64Array([5, 0, 0]);
 * activateInPlace(a, 1, 2, "sigmoid");
 * console.assert(a[0] === 5 && a[1] === 0.5);
 * ```
 */
export function activateInPlace(
  a: FloatArray,
  offset: number,
  len: number,
  activation: Activation,
): void {
  const end = offset + len;
  if (activation === "tanh") { for (let i = offset; i < end; i++) a[i] = Math.tanh(a[i]); }
  else for (let i = offset; i < end; i++) a[i] = sigmoid(a[i]);
}

/**
 * The backward pass of an activation: `out = dout * act'(a)`, written with the activation's
 * output y: tanh' = 1 - y², σ' = y (1 - y).
 * @param dout The upstream gradient.
 * @param dOffset Where its run starts.
 * @param y The activation's output.
 * @param yOffset Where its run starts.
 * @param out Where the gradient goes (may be `dout` itself).
 * @param outOffset Where its run starts.
 * @param len The number of elements.
 * @param activation `"tanh"` or `"sigmoid"`.
 *
 * @example
 * ```ts
 * import { activationBackward } from "./activations.ts";
 * const out = new Float64Array(1);
 * activationBackward(new Float64Array([2]), 0, new Float64Array([0.5]), 0, out, 0, 1, "tanh");
 * console.assert(out[0] === 1.5);
 * ```
 */
export function activationBackward(
  dout: FloatArray,
  dOffset: number,
  y: FloatArray,
  yOffset: number,
  out: FloatArray,
  outOffset: number,
  len: number,
  activation: Activation,
): void {
  for (let j = 0; j < len; j++) {
    const v = y[yOffset + j];
    const slope = activation === "tanh" ? 1 - v * v : v * (1 - v);
    out[outOffset + j] = dout[dOffset + j] * slope;
  }
}
