/**
 * Permission-safe environment access for backend selection.
 * @module
 */

/**
 * Reads an environment variable without ever prompting or throwing.
 * @param name The variable's name.
 * @returns Its value, or undefined when it is unset, empty, or env access is not granted.
 *
 * @example
 * ```ts
 * import { readEnv } from "./env.ts";
 * console.log(readEnv("RECAP_BACKEND") ?? "auto");
 * ```
 */
export function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
