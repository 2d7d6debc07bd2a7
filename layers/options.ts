/**
 * Checks of the option objects the library takes: an unknown option name is an error that
 * names it and suggests the near miss, so `{ learningrate: 1e-3 }` or `{ epochs: 5 }` fails at
 * once instead of being silently ignored (plain JavaScript callers never see a type error),
 * and a value of the wrong type or out of range is an error that names the option.
 * @module
 */

/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * The closest known name to an unknown one, if it is a near miss.
 * @param name The unknown name.
 * @param known The valid names.
 * @returns The suggestion, or undefined when nothing is close.
 *
 * @example
 * ```ts
 * import { suggestName } from "./options.ts";
 * console.log(suggestName("lerningRate", ["learningRate", "momentum"])); // learningRate
 * console.log(suggestName("epochs", ["numEpochs", "batchSize"])); // numEpochs
 * ```
 */
export function suggestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  const lower = name.toLowerCase();
  for (const k of known) {
    const kl = k.toLowerCase();
    // Same letters, or a part of the name ("epochs" for "numEpochs"), before an edit distance.
    const d = kl === lower
      ? 0
      : Math.min(lower.length, kl.length) >= 4 && (kl.includes(lower) || lower.includes(kl))
      ? 1
      : editDistance(name, k);
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return bestDist <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Checks that an options object is an object and names only known options.
 * @param what What takes the options, for the message, e.g. `"CaptioningSolver options"`.
 * @param options The object given (undefined means none).
 * @param known The option names it accepts.
 * @throws {TypeError} When it is not an object, or names an unknown option (with a suggestion).
 *
 * @example
 * ```ts
 * import { checkOptionNames } from "./options.ts";
 * try {
 *   checkOptionNames("Solver options", { epochs: 5 }, ["numEpochs", "batchSize"]);
 * } catch (e) {
 *   console.log((e as Error).message);
 *   // Invalid Solver options: unknown option "epochs" (did you mean "numEpochs"?)
 * }
 * ```
 */
export function checkOptionNames(what: string, options: unknown, known: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Invalid ${what}: expected an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hint = suggestName(key, known);
    throw new TypeError(
      `Invalid ${what}: unknown option "${key}" ` +
        (hint ? `(did you mean "${hint}"?)` : `(known options: ${known.join(", ")})`),
    );
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  return value === null ? "null" : typeof value;
}

/** What one option accepts: a test, and the phrase the error message uses for it. */
export interface OptionRule {
  /** What the option accepts, e.g. "a positive integer". */
  expected: string;
  /** The JavaScript type a value must have ("number", "boolean", …; "any" for no check). */
  type: "number" | "boolean" | "string" | "function" | "object" | "any";
  /** Whether a value of the right type is acceptable. */
  test(value: unknown): boolean;
}

const numberRule = (expected: string, test: (x: number) => boolean): OptionRule => ({
  expected,
  type: "number",
  test: (v) => test(v as number),
});

/** The option rules the library uses. */
export const accepts = {
  /** An integer ≥ 1. */
  positiveInt: numberRule("a positive integer", (x) => Number.isInteger(x) && x >= 1),
  /** An integer ≥ 0. */
  nonNegativeInt: numberRule("a non-negative integer", (x) => Number.isInteger(x) && x >= 0),
  /** A finite number > 0. */
  positiveNumber: numberRule("a positive number", (x) => Number.isFinite(x) && x > 0),
  /** A finite number ≥ 0. */
  nonNegativeNumber: numberRule("a non-negative number", (x) => Number.isFinite(x) && x >= 0),
  /** A finite number in [0, 1). */
  fraction: numberRule("a number in [0, 1)", (x) => Number.isFinite(x) && x >= 0 && x < 1),
  /** true or false. */
  boolean: { expected: "true or false", type: "boolean", test: () => true } as OptionRule,
  /** A function. */
  function: { expected: "a function", type: "function", test: () => true } as OptionRule,
  /** An object (not null, not an array). */
  object: {
    expected: "an object",
    type: "object",
    test: (v) => v !== null && !Array.isArray(v),
  } as OptionRule,
  /** One of the given strings. */
  oneOf: (values: readonly string[]): OptionRule => ({
    expected: `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`,
    type: "string",
    test: (v) => values.includes(v as string),
  }),
  /** An integer in [lo, hi]. */
  intIn: (lo: number, hi: number): OptionRule =>
    numberRule(`an integer from ${lo} to ${hi}`, (x) => Number.isInteger(x) && x >= lo && x <= hi),
  /** A positive integer or "auto". */
  positiveIntOrAuto: {
    expected: 'a positive integer or "auto"',
    type: "any",
    test: (v) => v === "auto" || (Number.isInteger(v) && (v as number) >= 1),
  } as OptionRule,
} as const;

/**
 * Checks an options object: that it is an object, names only known options, and that each
 * option given (not undefined) passes its rule.
 * @param what What takes the options, for the message, e.g. `"CaptioningSolver options"`.
 * @param options The object given (undefined means none).
 * @param rules The rule of each option it accepts.
 * @throws {TypeError} For a non-object, an unknown option, or a value of the wrong type.
 * @throws {RangeError} For a value of the right type that the rule refuses.
 *
 * @example
 * ```ts
 * import { accepts, checkOptions } from "./options.ts";
 * try {
 *   checkOptions("Solver options", { batchSize: 0 }, { batchSize: accepts.positiveInt });
 * } catch (e) {
 *   console.log((e as Error).message);
 *   // Invalid Solver options: batchSize: expected a positive integer, got 0
 * }
 * ```
 */
export function checkOptions(
  what: string,
  options: unknown,
  rules: Readonly<Record<string, OptionRule>>,
): void {
  checkOptionNames(what, options, Object.keys(rules));
  if (options === undefined) return;
  for (const [key, value] of Object.entries(options as Record<string, unknown>)) {
    if (value === undefined) continue;
    const rule = rules[key];
    const detail = `Invalid ${what}: ${key}: expected ${rule.expected}, got ${shown(value)}`;
    if (rule.type !== "any" && typeof value !== rule.type) throw new TypeError(detail);
    if (!rule.test(value)) {
      throw rule.type === "any" && typeof value !== "number" && typeof value !== "string"
        ? new TypeError(detail)
        : new RangeError(detail);
    }
  }
}

function shown(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
