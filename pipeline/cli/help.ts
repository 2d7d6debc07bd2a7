/**
 * The `--help` text of a command, generated from its table: the usage line, the summary,
 * one line per option (its value, help, what it accepts, its default).
 * @module
 */
import {
  type CliOption,
  type CommandSpec,
  describeAccepted,
  type OptionType,
} from "./command_spec.ts";

/**
 * The usage line of a command: how it is invoked, its arguments, `[options]`.
 * @param spec The command.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { usageLine } from "./help.ts";
 * const spec = { command: "deno task sample", args: ["<checkpoint.h5>"], summary: "", options: {} };
 * console.log(usageLine(spec)); // deno task sample <checkpoint.h5> [options]
 * ```
 */
export function usageLine(spec: CommandSpec): string {
  return [spec.command, ...spec.args, spec.passThrough?.usage, "[options]"]
    .filter((s) => s !== undefined).join(" ");
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
  list: "",
  bool: "",
};

/** The help line of an option: the flag and its value, the help, what it accepts, the default. */
function optionHelp(name: string, o: CliOption): [string, string] {
  const value = o.type === "enum"
    ? (o.values ?? []).join("|")
    : o.type === "list"
    ? `${(o.values ?? []).join("|")},…`
    : PLACEHOLDER[o.type];
  const accepts = o.type === "int" || o.type === "number" ? `: ${describeAccepted(o)}` : "";
  const fallback = o.default === undefined ? undefined : String(o.default);
  const def = o.required
    ? undefined
    : o.savedAs !== undefined
    ? `the checkpoint's ${o.savedAs}${fallback === undefined ? "" : `, else ${fallback}`}`
    : o.type === "bool"
    ? undefined
    : fallback;
  const flagName = name === "help" ? "--help, -h" : `--${name}${value ? ` ${value}` : ""}`;
  const note = o.required ? " (required)" : def === undefined ? "" : ` (default: ${def})`;
  return [flagName, `${o.help}${accepts}${note}`];
}

/**
 * The `--help` text of a command, generated from its table: usage, summary, one line per
 * option, then the help of its pass-through options.
 * @param spec The command.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { flag, int } from "./command_spec.ts";
 * import { commandHelp } from "./help.ts";
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
