/**
 * Checks of the option objects the library takes: an unknown option name is an error that
 * names it and suggests the near miss, so `{ learningrate: 1e-3 }` or `{ epochs: 5 }` fails at
 * once instead of being silently ignored (plain JavaScript callers never see a type error).
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
 * ```
 */
export function suggestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, k);
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
