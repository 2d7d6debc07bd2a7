/**
 * The recurrent cells' nonlinearities: the names of the vanilla RNN's activations and the
 * scalar sigmoid. Their forward and backward passes over arrays are elementwise kernels
 * (`kernels/elementwise.ts`).
 * @module
 */

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
    throw new RangeError(`Invalid activation: expected "tanh" or "sigmoid", got "${activation}"`);
  }
  return activation;
}
