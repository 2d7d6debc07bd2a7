/**
 * Command lines declared as data: a command lists its options once, one line each (name,
 * type, default, range or choices, help, example), and that table builds the parser, the
 * validation and the `--help` text. The CLI verbs (`verbs.ts`) and the bench scripts use it.
 *
 * The only module that imports node's `util.parseArgs` (JSR is out of reach, so a node
 * built-in does the tokenising). Every error is one {@linkcode InputError} line:
 * `command line: --beamSize: expected an integer >= 1, got "0x19"`.
 * @module
 */
import { parseArgs } from "node:util";
import { suggestName } from "../../layers/options.ts";
import { InputError } from "../errors.ts";

/** The kind of value an option takes; `bool` options are flags and take none. */
export type OptionType = "int" | "number" | "string" | "enum" | "bool" | "path";

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
  /** The allowed values (`enum`). */
  readonly values?: readonly string[];
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
  /** Its positional arguments: `"<checkpoint.h5>"` is required, `"[experiment.json]"` optional. */
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

/** The value type of an option: an enum's is the union of its values. */
export type ValueOf<O extends CliOption> = O["type"] extends "int" | "number" ? number
  : O["type"] extends "bool" ? boolean
  : O extends { values: readonly (infer V)[] } ? V
  : string;

/**
 * The parsed values of a command's options. A flag is a boolean; an option with a default
 * has a value; any other is `undefined` when not given. With `Saved`, the defaults taken
 * from a saved experiment are applied (see {@linkcode withSavedDefaults}).
 */
export type OptionValues<O extends CliOptions, Saved extends boolean = false> = {
  -readonly [K in keyof O]: O[K]["type"] extends "bool" ? boolean
    : O[K] extends { savedAs: string } ? Saved extends true ? SavedValue<O[K]>
      : ValueOf<O[K]> | undefined
    : O[K] extends { default: number | string } ? ValueOf<O[K]>
    : ValueOf<O[K]> | undefined;
};

/** The value of an option whose default is saved: defined when the table has a fallback. */
export type SavedValue<O extends CliOption> = O extends { default: number | string } ? ValueOf<O>
  : ValueOf<O> | undefined;

/** A parsed command line. */
export interface CommandLine<O extends CliOptions> {
  /** Whether `--help` (or `-h`) was given: nothing else is checked then. */
  help: boolean;
  /** The options' values. */
  values: OptionValues<O>;
  /** The positional arguments, in order. */
  positionals: string[];
  /** The arguments of the pass-through options, as given (empty for other commands). */
  passedThrough: string[];
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
 * import { int } from "./args.ts";
 * console.log(int(10, 1, "Captions to print", "3").min); // 1
 * ```
 */
export const int: NumberOptionMaker<"int"> = numberOption("int");

/**
 * A number option: `num(default, min, help, example)`.
 *
 * @example
 * ```ts
 * import { num } from "./args.ts";
 * console.log(num(0.5, 0, "Seconds per measurement", "0.1").type); // number
 * ```
 */
export const num: NumberOptionMaker<"number"> = numberOption("number");

/**
 * A free-text option (not empty): `str(default, help, example)`.
 *
 * @example
 * ```ts
 * import { str } from "./args.ts";
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
 * import { path } from "./args.ts";
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
 * import { oneOf } from "./args.ts";
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
 * A flag: off unless given, and given without a value.
 * @param help One-line help text.
 * @returns The option.
 *
 * @example
 * ```ts
 * import { flag } from "./args.ts";
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
 * import { HELP_OPTION } from "./args.ts";
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
 * import { orList } from "./args.ts";
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
 * import { describeAccepted, int } from "./args.ts";
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
    case "string":
      return "a non-empty text";
    case "path":
      return "a path";
    case "bool":
      return "no value";
  }
}

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The value of `text` for `option`, or an InputError naming the flag as typed. */
function parseValue(flagName: string, option: CliOption, text: string): number | string {
  const refuse = () =>
    new InputError(
      `command line: ${flagName}: expected ${describeAccepted(option)}, got ${
        JSON.stringify(text)
      }`,
    );
  switch (option.type) {
    case "int":
    case "number": {
      // Plain decimal only: Number() would also take "0x19", " 2" and "".
      const pattern = option.type === "int" ? INTEGER : DECIMAL;
      const n = Number(text);
      if (!pattern.test(text) || !Number.isFinite(n)) throw refuse();
      if (option.type === "int" && !Number.isSafeInteger(n)) throw refuse();
      if (
        (option.min !== undefined && n < option.min) || (option.max !== undefined && n > option.max)
      ) {
        throw refuse();
      }
      return n;
    }
    case "enum":
      if (!(option.values ?? []).includes(text)) throw refuse();
      return text;
    default:
      if (text === "") throw refuse();
      return text;
  }
}

/**
 * The one-line error for a flag the command does not take, with the known one it abbreviates
 * (`--maxLen`) or the nearest by spelling (`--beamSzie`).
 */
function unknownOption(flagName: string, known: readonly string[]): InputError {
  const name = flagName.replace(/^--/, "");
  const completions = known.filter((k) => k.startsWith(name));
  const hint = !flagName.startsWith("--")
    ? undefined
    : completions.length === 1
    ? completions[0]
    : suggestName(name, known);
  return new InputError(
    `command line: ${flagName}: unknown option${hint ? ` (did you mean --${hint}?)` : ""}; ` +
      "see --help",
  );
}

/**
 * The usage line of a command: how it is invoked, its arguments, `[options]`.
 * @param spec The command.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { usageLine } from "./args.ts";
 * const spec = { command: "deno task sample", args: ["<checkpoint.h5>"], summary: "", options: {} };
 * console.log(usageLine(spec)); // deno task sample <checkpoint.h5> [options]
 * ```
 */
export function usageLine(spec: CommandSpec): string {
  return [spec.command, ...spec.args, spec.passThrough?.usage, "[options]"]
    .filter((s) => s !== undefined).join(" ");
}

/** The option a token names: `-h` is `--help`. */
function optionName(token: { name: string; rawName: string }, options: CliOptions): string {
  return token.rawName === "-h" && Object.hasOwn(options, "help") ? "help" : token.name;
}

/**
 * Parses a command line against its table: every option name is checked (an unknown one is
 * an error that suggests the nearest), every value is validated, defaults are filled in.
 * With `--help` (or `-h`) nothing else is checked.
 * @param spec The command.
 * @param args The arguments after the command name.
 * @returns The options' values, the positionals and the pass-through arguments.
 * @throws {InputError} On an unknown option, a missing or invalid value, or a wrong number of
 * positional arguments: one line naming the flag.
 *
 * @example
 * ```ts
 * import { int, parseCommandLine } from "./args.ts";
 * const spec = {
 *   command: "deno task sample",
 *   args: ["<checkpoint.h5>"],
 *   summary: "Prints captions.",
 *   options: { n: int(10, 1, "Captions to print", "3") },
 * };
 * const { values, positionals } = parseCommandLine(spec, ["best.h5", "--n", "3"]);
 * console.log(values.n, positionals); // 3 ["best.h5"]
 * ```
 */
export function parseCommandLine<O extends CliOptions>(
  spec: CommandSpec<O>,
  args: readonly string[],
): CommandLine<O> {
  const options: CliOptions = spec.options;
  const { tokens } = parseArgs({
    args: [...args],
    options: Object.fromEntries(
      Object.entries(options).map(([name, o]) => [
        name,
        { type: o.type === "bool" ? "boolean" as const : "string" as const },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(options)) {
    values[name] = o.savedAs === undefined ? o.default : undefined;
  }
  const result = (help: boolean, positionals: string[], passedThrough: string[]) => ({
    help,
    values: values as OptionValues<O>,
    positionals,
    passedThrough,
  });
  const flags = tokens.filter((t) => t.kind === "option");
  const isHelp = (t: typeof flags[number]) =>
    optionName(t, options) === "help" && t.value === undefined;
  if (flags.some(isHelp)) return result(true, [], []);

  const known = [...Object.keys(options), ...(spec.passThrough?.names ?? [])];
  const consumed = new Set<number>(); // indices of the arguments this command's options take
  for (const token of flags) {
    const name = optionName(token, options);
    const o = Object.hasOwn(options, name) ? options[name] : undefined; // not "toString"
    if (o === undefined) {
      if (spec.passThrough?.names.includes(name)) continue;
      throw unknownOption(token.rawName, known);
    }
    consumed.add(token.index);
    if (token.value !== undefined && !token.inlineValue) consumed.add(token.index + 1);
    values[name] = optionValue(token.rawName, o, token.value, token.inlineValue ?? false);
  }
  const rest = args.filter((_, i) => !consumed.has(i));
  // Pass-through values are positionals to parseArgs: the command's own positionals are
  // then the leading arguments, before the first pass-through option.
  const firstFlag = rest.findIndex((a) => a.startsWith("-"));
  const positionals = spec.passThrough
    ? rest.slice(0, Math.min(firstFlag < 0 ? rest.length : firstFlag, spec.args.length))
    : tokens.flatMap((t) => t.kind === "positional" ? [t.value] : []);
  const required = spec.args.filter((a) => a.startsWith("<")).length;
  if (positionals.length < required) {
    throw new InputError(
      `command line: missing ${spec.args[positionals.length]}; usage: ${usageLine(spec)}`,
    );
  }
  if (positionals.length > spec.args.length) {
    const extra = JSON.stringify(positionals[spec.args.length]);
    throw new InputError(`command line: unexpected argument ${extra}; usage: ${usageLine(spec)}`);
  }
  return result(false, positionals, spec.passThrough ? rest.slice(positionals.length) : []);
}

/** The value of a given option: a flag takes none, any other one valid value. */
function optionValue(
  flagName: string,
  option: CliOption,
  text: string | undefined,
  inline: boolean,
): number | string | boolean {
  if (option.type === "bool") {
    if (text === undefined) return true;
    throw new InputError(`command line: ${flagName}: takes no value, got ${JSON.stringify(text)}`);
  }
  // parseArgs takes the next argument as the value even when it is the next flag.
  if (text === undefined || (!inline && text.startsWith("--"))) {
    throw new InputError(
      `command line: ${flagName}: missing value, e.g. ${flagName} ${option.example}`,
    );
  }
  return parseValue(flagName, option, text);
}

/**
 * Fills in the defaults that come from a saved experiment (a checkpoint's): each option with
 * `savedAs` that was not given takes the saved value, or its table default when none is saved.
 * @param options The command's options.
 * @param values The parsed values.
 * @param saved The saved experiment (or undefined when there is none).
 * @returns The values with the saved defaults in.
 *
 * @example
 * ```ts
 * import { int, withSavedDefaults } from "./args.ts";
 * const options = { beamSize: { ...int(2, 1, "Beam width", "3"), savedAs: "evaluate.beamSize" } };
 * const values = withSavedDefaults(options, { beamSize: undefined }, { evaluate: { beamSize: 5 } });
 * console.log(values.beamSize); // 5
 * ```
 */
export function withSavedDefaults<O extends CliOptions>(
  options: O,
  values: OptionValues<O>,
  saved: unknown,
): OptionValues<O, true> {
  const out: Record<string, unknown> = { ...values };
  for (const [name, o] of Object.entries(options as CliOptions)) {
    if (o.savedAs === undefined || out[name] !== undefined) continue;
    let node = saved;
    for (const key of o.savedAs.split(".")) node = (node as Record<string, unknown>)?.[key];
    out[name] = node ?? o.default;
  }
  return out as OptionValues<O, true>;
}

/** Words of `text` in lines of at most `width` characters, each after `indent`. */
function wrap(text: string, width: number, indent = ""): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  return [...lines, indent + line].join("\n");
}

const PLACEHOLDER: Record<OptionType, string> = {
  int: "N",
  number: "X",
  string: "TEXT",
  path: "PATH",
  enum: "",
  bool: "",
};

/** The help line of an option: the flag and its value, the help, what it accepts, the default. */
function optionHelp(name: string, o: CliOption): [string, string] {
  const value = o.type === "enum" ? (o.values ?? []).join("|") : PLACEHOLDER[o.type];
  const accepts = o.type === "int" || o.type === "number" ? `: ${describeAccepted(o)}` : "";
  const fallback = o.default === undefined ? undefined : String(o.default);
  const def = o.savedAs !== undefined
    ? `the checkpoint's ${o.savedAs}${fallback === undefined ? "" : `, else ${fallback}`}`
    : o.type === "bool"
    ? undefined
    : fallback;
  const flagName = name === "help" ? "--help, -h" : `--${name}${value ? ` ${value}` : ""}`;
  return [flagName, `${o.help}${accepts}${def === undefined ? "" : ` (default: ${def})`}`];
}

/**
 * The `--help` text of a command, generated from its table: usage, summary, one line per
 * option, then the help of its pass-through options.
 * @param spec The command.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { commandHelp, flag, int } from "./args.ts";
 * console.log(commandHelp({
 *   command: "deno task sample",
 *   args: ["<checkpoint.h5>"],
 *   summary: "Prints captions of random images beside a reference caption.",
 *   options: { n: int(10, 1, "Captions to print", "3"), help: flag("Show this help") },
 * }));
 * // Usage: deno task sample <checkpoint.h5> [options]
 * //
 * // Prints captions of random images beside a reference caption.
 * //
 * // Options:
 * //   --n N       Captions to print: an integer >= 1 (default: 10)
 * //   --help, -h  Show this help
 * ```
 */
export function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, o]) => optionHelp(name, o));
  const width = Math.max(...rows.map(([f]) => f.length));
  return [
    `Usage: ${usageLine(spec)}`,
    "",
    wrap(spec.summary, 100),
    "",
    "Options:",
    ...rows.map(([f, text]) => `  ${f.padEnd(width)}  ${text}`),
    ...(spec.passThrough ? ["", spec.passThrough.help] : []),
  ].join("\n");
}

/**
 * Runs a command: prints its help for `--help` (and, when it needs arguments, for none at
 * all), otherwise parses its command line and hands it to `run`.
 * @param spec The command.
 * @param args The arguments after the command name.
 * @param run Does the command's work with the parsed command line; returns the exit code.
 * @returns The exit code: 0 after the help, 2 after the help for missing arguments, else
 * what `run` returns.
 * @throws {InputError} For a bad command line (see {@linkcode parseCommandLine}).
 *
 * @example
 * ```ts
 * import { flag, runCommand } from "./args.ts";
 * const spec = {
 *   command: "deno task hello",
 *   args: [],
 *   summary: "Says hello.",
 *   options: { loud: flag("Shout"), help: flag("Show this help") },
 * };
 * const code = await runCommand(spec, ["--loud"], ({ values }) => {
 *   console.log(values.loud ? "HELLO" : "hello");
 *   return Promise.resolve(0);
 * });
 * console.assert(code === 0);
 * ```
 */
export async function runCommand<O extends CliOptions>(
  spec: CommandSpec<O>,
  args: readonly string[],
  run: (commandLine: CommandLine<O>) => Promise<number>,
): Promise<number> {
  const needsArgs = spec.args.some((a) => a.startsWith("<"));
  const commandLine = args.length === 0 && needsArgs ? undefined : parseCommandLine(spec, args);
  if (commandLine === undefined || commandLine.help) {
    console.log(commandHelp(spec));
    return commandLine === undefined ? 2 : 0;
  }
  return await run(commandLine);
}

/**
 * Parses a script's command line (a bench script's), or ends the process: after printing
 * the help for `--help` (exit code 0), or the one-line message for bad input (exit code 2).
 * @param spec The script as a command.
 * @param args Its arguments.
 * @returns The parsed command line.
 *
 * @example
 * ```ts ignore
 * import { int, scriptCommandLine } from "../pipeline/cli/args.ts";
 * const { values } = scriptCommandLine({
 *   command: "deno run -A bench/loss_bench.ts",
 *   args: [],
 *   summary: "Times the loss.",
 *   options: { iters: int(15, 1, "Timed iterations", "3") },
 * }, Deno.args);
 * console.log(values.iters);
 * ```
 */
export function scriptCommandLine<O extends CliOptions>(
  spec: CommandSpec<O>,
  args: readonly string[],
): CommandLine<O> {
  let commandLine: CommandLine<O>;
  try {
    commandLine = parseCommandLine(spec, args);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(e.exitCode);
  }
  if (commandLine.help) {
    console.log(commandHelp(spec));
    Deno.exit(0);
  }
  return commandLine;
}
