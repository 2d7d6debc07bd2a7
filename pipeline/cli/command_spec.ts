/**
 * The shape of a command's table: a command lists its options once, one line each (name,
 * type, default, range or choices, help, example), made with `int`, `num`, `str`, `path`,
 * `oneOf` and `flag`. From that table args.ts parses and validates, help.ts writes the
 * `--help` text. The CLI verbs (`verbs.ts`) and the bench scripts are tables of this shape.
 * @module
 */

/** The kind of value an option takes; `bool` options are flags and take none. */
export type OptionType = "int" | "number" | "string" | "enum" | "list" | "bool" | "path";

/** One option of a command. */
export interface CliOption {
  /** The kind of value. */
  readonly type: OptionType;
  /** The value when the option is not given; none means unset (or saved, see `savedAs`). */
  readonly default?: number | string | boolean;
  /** The smallest allowed value (`int`, `number`). */
  readonly min?: number;
  /** The largest allowed value (`int`, `number`). */
  readonly max?: number;
  /** The allowed values (`enum`, and each item of a `list`). */
  readonly values?: readonly string[];
  /** Whether the command cannot run without it (see {@linkcode required}). */
  readonly required?: boolean;
  /** One-line help text. */
  readonly help: string;
  /** A valid value, shown in messages and run by tests (`"true"` for a flag). */
  readonly example: string;
  /** The dotted option of a saved experiment whose value is the default (`default` if unset). */
  readonly savedAs?: string;
}

/** A command's options, keyed by flag name (`beamSize` for `--beamSize`). */
export type CliOptions = Readonly<Record<string, CliOption>>;

/** A command: how it is invoked, what it does and the options it takes. */
export interface CommandSpec<O extends CliOptions = CliOptions> {
  /** How it is invoked, e.g. `"deno task sample"`. */
  readonly command: string;
  /**
   * Its positional arguments: `"<checkpoint.h5>"` is required, `"[experiment.json]"` optional,
   * and a last one ending in `…]` (`"[more.json …]"`) takes any number more.
   */
  readonly args: readonly string[];
  /** One paragraph on what it does. */
  readonly summary: string;
  /** Its options. */
  readonly options: O;
  /**
   * Options it hands on unparsed to the code that runs it (the experiment's dotted options
   * of `train` and `resume`): their names, their usage and their help.
   */
  readonly passThrough?: {
    readonly usage: string;
    readonly names: readonly string[];
    readonly help: string;
  };
}

/** Makes an option of a number type: a default, a smallest value, help, an example. */
export type NumberOptionMaker<T extends "int" | "number"> = <D extends number | undefined>(
  def: D,
  min: number,
  help: string,
  example: string,
) => { type: T; default: D; min: number; help: string; example: string };

/** Makes an option of a text type: a default, help, an example. */
export type TextOptionMaker<T extends "string" | "path"> = <D extends string | undefined>(
  def: D,
  help: string,
  example: string,
) => { type: T; default: D; help: string; example: string };

const numberOption =
  <T extends "int" | "number">(type: T): NumberOptionMaker<T> => (def, min, help, example) => ({
    type,
    default: def,
    min,
    help,
    example,
  });

const textOption =
  <T extends "string" | "path">(type: T): TextOptionMaker<T> => (def, help, example) => ({
    type,
    default: def,
    help,
    example,
  });

/**
 * An integer option: `int(default, min, help, example)`; a default of `undefined` leaves it
 * unset.
 *
 * @example
 * ```ts
 * import { int } from "./command_spec.ts";
 * console.log(int(10, 1, "Captions to print", "3").min); // 1
 * ```
 */
export const int: NumberOptionMaker<"int"> = numberOption("int");

/**
 * A number option: `num(default, min, help, example)`.
 *
 * @example
 * ```ts
 * import { num } from "./command_spec.ts";
 * console.log(num(0.5, 0, "Seconds per measurement", "0.1").type); // number
 * ```
 */
export const num: NumberOptionMaker<"number"> = numberOption("number");

/**
 * A free-text option (not empty): `str(default, help, example)`.
 *
 * @example
 * ```ts
 * import { str } from "./command_spec.ts";
 * console.log(str("1,2", "Worker counts, comma-separated", "1").default); // 1,2
 * ```
 */
export const str: TextOptionMaker<"string"> = textOption("string");

/**
 * A file or directory option (not empty; whether it exists is for the command to say):
 * `path(default, help, example)`.
 *
 * @example
 * ```ts
 * import { path } from "./command_spec.ts";
 * console.log(path("datasets/synthetic", "Where to write", "/tmp/coco").type); // path
 * ```
 */
export const path: TextOptionMaker<"path"> = textOption("path");

/**
 * An option that takes one of a fixed set of values.
 * @param values The allowed values.
 * @param def The default (`undefined`: unset).
 * @param help One-line help text.
 * @param example A valid value.
 * @returns The option.
 *
 * @example
 * ```ts
 * import { oneOf } from "./command_spec.ts";
 * console.log(oneOf(["train", "val"], "val", "Split", "train").values); // ["train", "val"]
 * ```
 */
export function oneOf<const V extends readonly string[], D extends V[number] | undefined>(
  values: V,
  def: D,
  help: string,
  example: V[number],
): { type: "enum"; values: V; default: D; help: string; example: string } {
  return { type: "enum", values, default: def, help, example };
}

/**
 * An option that takes a comma-separated list of some fixed values (`--split train,val`).
 * @param values The allowed items.
 * @param help One-line help text.
 * @param example A valid value, e.g. `"train,val"`.
 * @returns The option (unset unless given).
 *
 * @example
 * ```ts
 * import { listOf } from "./command_spec.ts";
 * console.log(listOf(["train", "val"], "Splits", "train,val").type); // list
 * ```
 */
export function listOf<const V extends readonly string[]>(
  values: V,
  help: string,
  example: string,
): { type: "list"; values: V; default: undefined; help: string; example: string } {
  return { type: "list", values, default: undefined, help, example };
}

/**
 * The same option, needed: the command refuses to run without it, and its help says so.
 * @param option An option without a default.
 * @returns The option, marked required.
 *
 * @example
 * ```ts
 * import { path, required } from "./command_spec.ts";
 * console.log(required(path(undefined, "The features", "f.npy")).required); // true
 * ```
 */
export function required<O extends CliOption & { default: undefined }>(
  option: O,
): O & { required: true } {
  return { ...option, required: true };
}

/**
 * A flag: off unless given, and given without a value.
 * @param help One-line help text.
 * @returns The option.
 *
 * @example
 * ```ts
 * import { flag } from "./command_spec.ts";
 * console.log(flag("Replace the dataset").default); // false
 * ```
 */
export function flag(
  help: string,
): { type: "bool"; default: false; help: string; example: string } {
  return { type: "bool", default: false, help, example: "true" };
}

/**
 * The `--help` option (also `-h`): every command lists it, so the help lists it too.
 *
 * @example
 * ```ts
 * import { HELP_OPTION } from "./command_spec.ts";
 * console.log(HELP_OPTION.type); // bool
 * ```
 */
export const HELP_OPTION: { type: "bool"; default: false; help: string; example: string } = flag(
  "Show this help",
);

/**
 * Items as a sentence says them: "a, b or c".
 * @param items The items.
 * @returns The list.
 *
 * @example
 * ```ts
 * import { orList } from "./command_spec.ts";
 * console.log(orList(["train", "resume", "sample"])); // train, resume or sample
 * ```
 */
export function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

/**
 * What an option accepts, as error messages and help say it: "an integer >= 1",
 * `"train" or "val"`, "a path".
 * @param option The option.
 * @returns A short noun phrase.
 *
 * @example
 * ```ts
 * import { describeAccepted, int } from "./command_spec.ts";
 * console.log(describeAccepted(int(10, 1, "Captions", "3"))); // an integer >= 1
 * ```
 */
export function describeAccepted(option: CliOption): string {
  const { min, max } = option;
  const bounds = min !== undefined && max !== undefined
    ? ` in [${min}, ${max}]`
    : min !== undefined
    ? ` >= ${min}`
    : max !== undefined
    ? ` <= ${max}`
    : "";
  switch (option.type) {
    case "int":
      return `an integer${bounds}`;
    case "number":
      return `a number${bounds}`;
    case "enum":
      return orList((option.values ?? []).map((v) => JSON.stringify(v)));
    case "list":
      return `a comma-separated list of ${
        orList((option.values ?? []).map((v) => JSON.stringify(v)))
      }`;
    case "string":
      return "a non-empty text";
    case "path":
      return "a path";
    case "bool":
      return "no value";
  }
}
