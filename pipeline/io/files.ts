/**
 * Small file helpers shared by the pipeline: whether a path exists, and writing a whole
 * string to an open file (unbuffered writes may be short).
 * @module
 */

const encoder = new TextEncoder();

/**
 * Whether a path exists (a file, a directory or anything else).
 * @param path The path.
 * @returns True when `Deno.stat` succeeds.
 *
 * @example
 * ```ts
 * import { exists } from "./files.ts";
 * console.log(await exists(Deno.cwd())); // true
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes all of a string to a file, looping over short writes.
 * @param file An open file (or stdout/stderr).
 * @param text The text.
 *
 * @example
 * ```ts
 * import { writeAll } from "./files.ts";
 * writeAll(Deno.stdout, "hello\n");
 * ```
 */
export function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}

/**
 * What a path is, when it is not a regular file: "a directory", "a FIFO", "a device", … .
 * @param info The path's `Deno.stat`.
 * @returns A noun phrase, or null for a regular file.
 *
 * @example
 * ```ts
 * import { nonFileKind } from "./files.ts";
 * console.log(nonFileKind(await Deno.stat("/dev/zero"))); // a device
 * ```
 */
export function nonFileKind(info: Deno.FileInfo): string | null {
  if (info.isFile) return null;
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/** Why a file could not be read: missing, not a regular file, or too large. */
export type FileProblem = "missing" | "not a file" | "too large";

/** A file that cannot be read as asked, with a one-line reason. */
export class UnreadableFile extends Error {
  /**
   * @param path The file.
   * @param problem What is wrong.
   * @param detail The one-line reason, e.g. "expected a regular file, got a FIFO".
   */
  constructor(readonly path: string, readonly problem: FileProblem, readonly detail: string) {
    super(`${path}: ${detail}`);
    this.name = "UnreadableFile";
  }
}

/**
 * Checks that a path is a regular file (following symlinks) of at most `maxBytes`, so that a
 * FIFO never hangs a read and `/dev/zero` or a huge file never fills memory.
 * @param path The file.
 * @param maxBytes The largest size accepted (default: no limit).
 * @returns Its size in bytes.
 * @throws {UnreadableFile} When it is missing, not a regular file, or larger.
 *
 * @example
 * ```ts
 * import { checkRegularFile } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * console.log(await checkRegularFile(path, 1024)); // 0
 * ```
 */
export async function checkRegularFile(path: string, maxBytes = Infinity): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new UnreadableFile(path, "missing", "file not found");
  }
  const kind = nonFileKind(info);
  if (kind !== null) {
    throw new UnreadableFile(path, "not a file", `expected a file, got ${kind}`);
  }
  if (info.size > maxBytes) {
    throw new UnreadableFile(
      path,
      "too large",
      `the file is ${formatBytes(info.size)}, more than the ${formatBytes(maxBytes)} accepted`,
    );
  }
  return info.size;
}

/**
 * Reads a whole text file after {@linkcode checkRegularFile}.
 * @param path The file.
 * @param maxBytes The largest size accepted.
 * @returns Its text (a leading byte-order mark removed).
 * @throws {UnreadableFile} When it is missing, not a regular file, or larger.
 *
 * @example
 * ```ts
 * import { readTextFileChecked } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "\ufeffhello");
 * console.log(await readTextFileChecked(path, 1024)); // hello
 * ```
 */
export async function readTextFileChecked(path: string, maxBytes: number): Promise<string> {
  await checkRegularFile(path, maxBytes);
  const text = await Deno.readTextFile(path);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** A size as "52.4 MB" (or "512 bytes"). */
function formatBytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n, u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
