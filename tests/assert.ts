/**
 * The assertions the tests use, in one place: Node's `node:assert/strict` today, so a later
 * switch to `@std/assert` touches only this file.
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts that a value is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep, strict equality. */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts that two values differ (deep, strict). */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

/** Asserts that |actual - expected| <= tolerance. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  message?: string,
): void {
  const diff = Math.abs(actual - expected);
  if (!(diff <= tolerance)) {
    throw new nodeAssert.AssertionError({
      message: message ??
        `Expected ${actual} to be within ${tolerance} of ${expected} (difference ${diff})`,
    });
  }
}

/** Asserts that a function throws, optionally an error of a class whose message matches. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => Error,
  messageIncludes?: string | RegExp,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, errorClass, messageIncludes);
    return e as Error;
  }
  throw new nodeAssert.AssertionError({ message: "Expected function to throw" });
}

/** Asserts that a promise rejects, optionally with an error of a class whose message matches. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => Error,
  messageIncludes?: string | RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, errorClass, messageIncludes);
    return e as Error;
  }
  throw new nodeAssert.AssertionError({ message: "Expected promise to reject" });
}

function checkError(
  e: unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => Error,
  messageIncludes?: string | RegExp,
): void {
  if (errorClass && !(e instanceof errorClass)) {
    throw new nodeAssert.AssertionError({
      message: `Expected error to be ${errorClass.name}, got ${(e as Error)?.constructor?.name}: ${
        (e as Error)?.message
      }`,
    });
  }
  if (messageIncludes !== undefined) {
    const msg = (e as Error)?.message ?? String(e);
    const ok = typeof messageIncludes === "string"
      ? msg.includes(messageIncludes)
      : messageIncludes.test(msg);
    if (!ok) {
      throw new nodeAssert.AssertionError({
        message: `Expected error message to include ${messageIncludes}, got: ${msg}`,
      });
    }
  }
}

/**
 * max |a - b| / max |b|: the error relative to the scale of b (robust to tiny entries), how
 * two computations of the same gradient or activations are compared.
 */
export function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}
