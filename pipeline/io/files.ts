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
