/**
 * The error type for bad input: a config, data file or checkpoint that cannot be used.
 * The CLI prints its one-line message (no stack trace unless --debug) and exits with code 2.
 * @module
 */

/**
 * Bad input from the user: the message names the file and field and says what to do.
 *
 * @example
 * ```ts
 * import { InputError } from "./errors.ts";
 * const e = new InputError(`exp.json: train.learningRate: expected a positive number, got "fast"`);
 * console.assert(e.exitCode === 2);
 * ```
 */
export class InputError extends Error {
  /** The process exit code for bad input. */
  readonly exitCode = 2;

  /**
   * Creates a bad-input error.
   * @param message One line: the file, the field, what is wrong and what to do.
   * @param options The underlying cause, if any.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "InputError";
  }
}
