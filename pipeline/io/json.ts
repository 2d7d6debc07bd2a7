/**
 * JSON with errors a person can act on: every syntax error is reported on one line with its
 * line and column (V8's messages give no position for a bad token such as `NaN`, and quote
 * the whole text), and numbers too large for a float (`1e999`) are refused instead of being
 * read as Infinity. A leading byte-order mark is accepted.
 * @module
 */

/** A JSON syntax error at a line and column (both from 1). */
export class JsonSyntaxError extends SyntaxError {
  /**
   * @param line The line of the error.
   * @param column Its column.
   * @param detail What is wrong there, e.g. `unexpected "N" (NaN is not JSON; use a number)`.
   */
  constructor(readonly line: number, readonly column: number, readonly detail: string) {
    super(`line ${line}, column ${column}: ${detail}`);
    this.name = "JsonSyntaxError";
  }
}

/**
 * Parses JSON text, reporting the first error with its position.
 * @param text The text (a leading byte-order mark is skipped).
 * @returns The value.
 * @throws {JsonSyntaxError} On invalid JSON or a number out of the float range.
 *
 * @example
 * ```ts
 * import { parseJson } from "./json.ts";
 * try {
 *   parseJson('{\n  "lr": NaN\n}');
 * } catch (e) {
 *   console.log((e as Error).message); // line 2, column 9: unexpected "N" (NaN and Infinity are not JSON numbers)
 * }
 * ```
 */
export function parseJson(text: string): unknown {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  new JsonScanner(src).document();
  return JSON.parse(src);
}

/** A validating scanner of the JSON grammar that stops at the first error, with its offset. */
class JsonScanner {
  #at = 0;
  constructor(readonly src: string) {}

  document(): void {
    this.#space();
    this.#value();
    this.#space();
    if (this.#at < this.src.length) this.#fail("unexpected text after the JSON value");
  }

  #fail(detail: string, at = this.#at): never {
    const before = this.src.slice(0, at);
    const line = before.split("\n").length;
    throw new JsonSyntaxError(line, at - before.lastIndexOf("\n"), detail);
  }

  #space(): void {
    while (/[ \t\n\r]/.test(this.src[this.#at] ?? "")) this.#at++;
  }

  #value(): void {
    const c = this.src[this.#at];
    if (c === undefined) this.#fail("unexpected end of the file");
    if (c === "{") return this.#object();
    if (c === "[") return this.#array();
    if (c === '"') return this.#string();
    if (/^-?(Infinity|NaN)/.test(this.src.slice(this.#at, this.#at + 9))) {
      this.#fail(`unexpected ${JSON.stringify(c)} (NaN and Infinity are not JSON numbers)`);
    }
    if (c === "-" || (c >= "0" && c <= "9")) return this.#number();
    for (const word of ["true", "false", "null"]) {
      if (this.src.startsWith(word, this.#at)) {
        this.#at += word.length;
        return;
      }
    }
    const hint = c === "'" ? " (strings take double quotes)" : "";
    this.#fail(`unexpected ${JSON.stringify(c)}${hint}`);
  }

  #object(): void {
    this.#at++;
    this.#space();
    if (this.src[this.#at] === "}") return void this.#at++;
    for (;;) {
      this.#space();
      if (this.src[this.#at] !== '"') {
        this.#fail(
          this.src[this.#at] === "}"
            ? "a comma before } (JSON allows no trailing comma)"
            : "expected a double-quoted property name",
        );
      }
      this.#string();
      this.#space();
      if (this.src[this.#at] !== ":") this.#fail("expected ':' after the property name");
      this.#at++;
      this.#space();
      this.#value();
      this.#space();
      const c = this.src[this.#at];
      if (c === "}") return void this.#at++;
      if (c !== ",") this.#fail("expected ',' or '}' after a property");
      this.#at++;
    }
  }

  #array(): void {
    this.#at++;
    this.#space();
    if (this.src[this.#at] === "]") return void this.#at++;
    for (;;) {
      this.#space();
      if (this.src[this.#at] === "]") {
        this.#fail("a comma before ] (JSON allows no trailing comma)");
      }
      this.#value();
      this.#space();
      const c = this.src[this.#at];
      if (c === "]") return void this.#at++;
      if (c !== ",") this.#fail("expected ',' or ']' after an element");
      this.#at++;
    }
  }

  #string(): void {
    const start = this.#at++;
    for (;;) {
      const c = this.src[this.#at];
      if (c === undefined) this.#fail("unterminated string", start);
      if (c === '"') return void this.#at++;
      if (c < " ") this.#fail("a control character (a line break?) inside a string");
      if (c === "\\") {
        const e = this.src[this.#at + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(this.src.slice(this.#at + 2, this.#at + 6))) {
            this.#fail("a \\u escape needs four hex digits");
          }
          this.#at += 6;
          continue;
        }
        if (!e || !'"\\/bfnrt'.includes(e)) this.#fail("an unknown escape in a string");
        this.#at += 2;
        continue;
      }
      this.#at++;
    }
  }

  #number(): void {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.src.slice(this.#at));
    if (!m) this.#fail("a malformed number");
    if (!Number.isFinite(Number(m[0]))) {
      this.#fail(`the number ${m[0]} is too large for a 64-bit float`);
    }
    this.#at += m[0].length;
  }
}
