/**
 * Reading a large JSON document a piece at a time: the elements of some top-level arrays
 * (an annotation file's `images` and `annotations`) are parsed one by one and handed over as
 * they are found, so the whole document never exists as one parsed tree, nor as one string —
 * `dataset_coco.json` is 140 MB of UTF-8 but over 500 MB parsed at once. The scan runs over
 * the file's bytes and only finds where each element starts and ends (strings are skipped by
 * their quotes, nesting by bracket depth; in UTF-8 those bytes never occur inside a multi-byte
 * character); each piece is then decoded and parsed by `JSON.parse`, so what is accepted is
 * exactly JSON.
 * @module
 */

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;
const OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const decoder = new TextDecoder();

/** What {@linkcode scanJsonObject} found besides the elements it handed over. */
export interface JsonScan {
  /** The top-level members not streamed, parsed. */
  members: Record<string, unknown>;
  /** How many elements each streamed array had. */
  counts: Record<string, number>;
}

/**
 * Scans a JSON object, handing each element of the arrays named in `arrays` to `onElement`
 * as it is parsed, and returns its other members parsed (a member named in `arrays` whose value
 * is not an array among them) and how many elements each streamed array had.
 * @param json The JSON text of an object, as UTF-8 bytes (or a string).
 * @param arrays The top-level members whose array elements are handed over one by one.
 * @param onElement Called with the member's name, the parsed element and its index.
 * @returns The other members, and the element count of each array streamed.
 * @throws {SyntaxError} When the text is not a JSON object (JSON.parse's message when it
 *   gives one).
 *
 * @example
 * ```ts
 * import { scanJsonObject } from "./json_pieces.ts";
 * const ids: number[] = [];
 * const text = '{"images": [{"id": 1}, {"id": 2}], "dataset": "x"}';
 * const { members, counts } = scanJsonObject(text, ["images"], (_, v) => {
 *   ids.push((v as { id: number }).id);
 * });
 * console.log(ids, members, counts); // [1, 2] { dataset: "x" } { images: 2 }
 * ```
 */
export function scanJsonObject(
  json: Uint8Array | string,
  arrays: readonly string[],
  onElement: (member: string, value: unknown, index: number) => void,
): JsonScan {
  const bytes = typeof json === "string" ? new TextEncoder().encode(json) : json;
  try {
    return scan(bytes, arrays, onElement);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    JSON.parse(decoder.decode(bytes)); // the engine's own message when the text is bad JSON
    throw e;
  }
}

function scan(
  bytes: Uint8Array,
  arrays: readonly string[],
  onElement: (member: string, value: unknown, index: number) => void,
): JsonScan {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at byte ${i}`);
  };
  const skip = () => {
    while (i < bytes.length && isSpace(bytes[i])) i++;
  };
  const expect = (b: number) => {
    skip();
    if (bytes[i] !== b) fail(`Expected '${String.fromCharCode(b)}'`);
    i++;
  };
  const parse = (start: number, end: number) =>
    JSON.parse(decoder.decode(bytes.subarray(start, end)));
  /** Past the bracket that opens a list: whether it has items (false: it closed at once). */
  const opens = (open: number, close: number) => {
    expect(open);
    skip();
    if (bytes[i] !== close) return true;
    i++;
    return false;
  };
  /** Past the separator after an item: whether another follows (false: the list closed). */
  const more = (close: number) => {
    skip();
    const b = bytes[i++];
    if (b === COMMA) return true;
    if (b === close) return false;
    return fail(`Expected ',' or '${String.fromCharCode(close)}'`);
  };
  /** The value at `i`, parsed, with `i` past it. */
  const value = () => {
    skip();
    const start = i;
    i = valueEnd(bytes, i);
    return parse(start, i);
  };
  const members: Record<string, unknown> = {}, counts: Record<string, number> = {};
  if (opens(OPEN_OBJECT, CLOSE_OBJECT)) {
    do {
      skip();
      if (bytes[i] !== QUOTE) fail("Expected a member name");
      const key = value() as string;
      expect(COLON);
      skip();
      if (arrays.includes(key) && bytes[i] === OPEN_ARRAY) {
        let n = 0;
        if (opens(OPEN_ARRAY, CLOSE_ARRAY)) {
          do onElement(key, value(), n++); while (more(CLOSE_ARRAY));
        }
        counts[key] = n;
      } else members[key] = value();
    } while (more(CLOSE_OBJECT));
  }
  skip();
  if (i !== bytes.length) fail("Unexpected text after the object");
  return { members, counts };
}

/** One past the closing quote of the string whose opening quote is at `i`. */
function stringEnd(bytes: Uint8Array, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = bytes.indexOf(QUOTE, j);
    if (q < 0) throw new SyntaxError(`Unterminated string at byte ${i}`);
    let slashes = 0;
    while (bytes[q - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** One past the end of the JSON value that starts at `i` (its validity is JSON.parse's to check). */
function valueEnd(bytes: Uint8Array, i: number): number {
  const c = bytes[i];
  if (c === QUOTE) return stringEnd(bytes, i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    for (let j = i; j < bytes.length; j++) {
      const d = bytes[j];
      if (d === QUOTE) j = stringEnd(bytes, j) - 1;
      else if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
      else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
        if (--depth === 0) return j + 1;
      }
    }
    throw new SyntaxError(`Unterminated ${c === OPEN_OBJECT ? "object" : "array"} at byte ${i}`);
  }
  let j = i;
  while (
    j < bytes.length && !isSpace(bytes[j]) && bytes[j] !== COMMA && bytes[j] !== CLOSE_ARRAY &&
    bytes[j] !== CLOSE_OBJECT
  ) j++;
  if (j === i) throw new SyntaxError(`Expected a value at byte ${i}`);
  return j;
}
