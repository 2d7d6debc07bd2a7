/**
 * Shape checks for layer arguments, so a wrong shape fails with a message that names the
 * argument instead of producing garbage.
 * @module
 */
import type { DType, Tensor } from "./tensor.ts";

/**
 * Checks that a tensor has the expected shape; -1 in `expected` matches any size.
 * @param name The argument's name, for the message.
 * @param t The tensor.
 * @param expected The expected dimensions.
 */
export function expectShape(name: string, t: Tensor<DType>, expected: readonly number[]): void {
  const ok = t.shape.length === expected.length &&
    expected.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) {
    const want = expected.map((d) => (d === -1 ? "*" : String(d))).join(", ");
    throw new RangeError(`Invalid shape for ${name}: expected [${want}], got [${t.shape}]`);
  }
}

/**
 * Checks that all float tensors of a layer call share one dtype.
 * @param tensors The named tensors.
 */
export function expectSameDtype(tensors: Record<string, Tensor<DType>>): void {
  const entries = Object.entries(tensors);
  const [firstName, first] = entries[0];
  for (const [name, t] of entries) {
    if (t.dtype !== first.dtype) {
      throw new TypeError(
        `Mixed dtypes: ${name} is ${t.dtype} but ${firstName} is ${first.dtype}`,
      );
    }
  }
}
