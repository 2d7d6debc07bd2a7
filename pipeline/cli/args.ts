/**
 * Command lines parsed from their tables (command_spec.ts): every option name is checked
 * (an unknown one suggests the nearest), every value validated, defaults filled in, and the
 * arguments of pass-through options (the experiment's `--section.option=value`) handed on.
 *
 * The only module that imports node's `util.parseArgs` (JSR is out of reach, so a node
 * built-in does the tokenising). Every error is one {@linkcode InputError} line:
 * `command line: --beamSize: expected an integer >= 1, got "0x19"`.
 * @module
 */
import { parseArgs } from "node:util";
import { suggestName } from "../../layers/options.ts";
import { InputError } from "../errors.ts";
import {
  type CliOption,
  type CliOptions,
  type CommandSpec,
  describeAccepted,
} from "./command_spec.ts";
import { commandHelp, usageLine } from "./help.ts";

/** The value type of an option: an enum's is the union of its values, a list's an array of them. */
export type ValueOf<O extends CliOption> = O["type"] extends "int" | "number" ? number
  : O["type"] extends "bool" ? boolean
  : O extends { type: "list"; values: readonly (infer V)[] } ? V[]
  : O extends { values: readonly (infer V)[] } ? V
  : string;

/**
 * The parsed values of a command's options. A flag is a boolean; an option with a default
 * has a value; any other is `undefined` when not given. With `Saved`, the defaults taken
 * from a saved experiment are applied (see {@linkcode withSavedDefaults}).
 */
export type OptionValues<O extends CliOptions, Saved extends boolean = false> = {
  -readonly [K in keyof O]: O[K]["type"] extends "bool" ? boolean
    : O[K] extends { required: true } ? ValueOf<O[K]>
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

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The value of `text` for `option`, or an InputError naming the flag as typed. */
function parseValue(flagName: string, option: CliOption, text: string): number | string | string[] {
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
    case "list": {
      const items = text.split(",");
      const known = (item: string) => (option.values ?? []).includes(item);
      if (!items.every(known)) throw refuse();
      return items;
    }
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
 * import { parseCommandLine } from "./args.ts";
 * import { int } from "./command_spec.ts";
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
  const needed = spec.args.filter((a) => a.startsWith("<")).length;
  if (positionals.length < needed) {
    throw new InputError(
      `command line: missing ${spec.args[positionals.length]}; usage: ${usageLine(spec)}`,
    );
  }
  const variadic = spec.args.at(-1)?.endsWith("…]") ?? false;
  if (positionals.length > spec.args.length && !variadic) {
    const extra = JSON.stringify(positionals[spec.args.length]);
    throw new InputError(`command line: unexpected argument ${extra}; usage: ${usageLine(spec)}`);
  }
  for (const [name, o] of Object.entries(options)) {
    if (o.required && values[name] === undefined) {
      throw new InputError(
        `command line: --${name}: missing; e.g. --${name} ${o.example} (usage: ${usageLine(spec)})`,
      );
    }
  }
  return result(false, positionals, spec.passThrough ? rest.slice(positionals.length) : []);
}

/** The value of a given option: a flag takes none, any other one valid value. */
function optionValue(
  flagName: string,
  option: CliOption,
  text: string | undefined,
  inline: boolean,
): number | string | string[] | boolean {
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
 * import { withSavedDefaults } from "./args.ts";
 * import { int } from "./command_spec.ts";
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
 * import { runCommand } from "./args.ts";
 * import { flag } from "./command_spec.ts";
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
 * import { scriptCommandLine } from "../pipeline/cli/args.ts";
 * import { int } from "../pipeline/cli/command_spec.ts";
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
