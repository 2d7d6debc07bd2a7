/**
 * Writes that a crash, a kill or a full disk can never leave half done: a file is written to
 * `<path>.tmp-<pid>-<random>` beside it, synced, and renamed over the old one (a rename is
 * atomic); a dataset directory is written to `<dir>.partial-<pid>` and renamed into place.
 * What a killed process leaves behind is recognised by its name and removed by the next run:
 * never a valid file, and never one another live process is writing (the pid tells).
 * @module
 */
import { basename, dirname, join } from "node:path";

/**
 * The temporary name a write of `path` by this process uses: `<path>.tmp-<pid>-<random>`.
 * @param path The final path.
 * @returns A fresh temporary path beside it.
 *
 * @example
 * ```ts
 * import { temporaryPath } from "./atomic.ts";
 * console.log(temporaryPath("runs/x/config.json").startsWith(`runs/x/config.json.tmp-${Deno.pid}-`)); // true
 * ```
 */
export function temporaryPath(path: string): string {
  return `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Replaces `path` with what `write` puts into a temporary file: the file is written, synced
 * and renamed over `path`, so `path` always holds either the old content or the new one.
 * On failure the temporary file is removed and the error is rethrown (the old file is intact).
 * @param path The final path.
 * @param write Writes the complete new content to the temporary path it is given.
 * @returns The path written.
 *
 * @example
 * ```ts
 * import { replaceAtomically } from "./atomic.ts";
 * const path = `${await Deno.makeTempDir()}/out.txt`;
 * await replaceAtomically(path, (tmp) => Deno.writeTextFile(tmp, "done\n"));
 * console.log(await Deno.readTextFile(path)); // done
 * ```
 */
export async function replaceAtomically(
  path: string,
  write: (tmp: string) => Promise<void> | void,
): Promise<string> {
  const tmp = temporaryPath(path);
  try {
    await write(tmp);
    const file = await Deno.open(tmp, { read: true, write: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
    return path;
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Replaces a text file atomically (see {@linkcode replaceAtomically}).
 * @param path The file.
 * @param text Its new content.
 * @returns The path written.
 *
 * @example
 * ```ts
 * import { writeTextFileAtomic } from "./atomic.ts";
 * const path = `${await Deno.makeTempDir()}/config.json`;
 * await writeTextFileAtomic(path, "{}\n");
 * ```
 */
export function writeTextFileAtomic(path: string, text: string): Promise<string> {
  return replaceAtomically(path, (tmp) => Deno.writeTextFile(tmp, text));
}

/**
 * Removes the temporary files that writes of `path` by other processes left behind when they
 * were killed midway (they are never valid files; `path` itself is intact).
 * @param path The final path, e.g. `runs/x/checkpoint.h5`.
 * @returns The names removed.
 *
 * @example
 * ```ts
 * import { removeStaleTemporaries } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/checkpoint.h5.tmp-1-abcdef`, "partial");
 * console.log(await removeStaleTemporaries(`${dir}/checkpoint.h5`)); // ["checkpoint.h5.tmp-1-abcdef"]
 * ```
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const prefix = `${basename(path)}.tmp-`;
  return await removeLeftovers(dirname(path), (e) => {
    const m = e.isFile && e.name.startsWith(prefix)
      ? /^(\d+)-[0-9a-z]+$/.exec(e.name.slice(prefix.length))
      : null;
    return m !== null && Number(m[1]) !== Deno.pid;
  });
}

/**
 * The directory a new dataset `dir` is written into before it is renamed into place:
 * `<dir>.partial-<pid>`.
 * @param dir The dataset directory.
 * @returns The partial directory beside it.
 *
 * @example
 * ```ts
 * import { partialDir } from "./atomic.ts";
 * console.log(partialDir("datasets/synthetic/") === `datasets/synthetic.partial-${Deno.pid}`); // true
 * ```
 */
export function partialDir(dir: string): string {
  return `${dir.replace(/\/+$/, "")}.partial-${Deno.pid}`;
}

/**
 * Moves a complete directory written at `partial` into place at `dir`. A new `dir` is one
 * rename. An existing one keeps its other files: the `replaced` entries go (the `markers`
 * first: the entries that make the directory look complete, so it never does midway), the
 * new entries move in (the markers last), and `partial` is removed.
 * @param partial The complete new directory (see {@linkcode partialDir}).
 * @param dir Where it belongs.
 * @param replaced The entries of `dir` to remove first (those the new content replaces).
 * @param markers The entries removed first and moved in last.
 * @returns Resolves once `dir` holds the new content.
 *
 * @example
 * ```ts
 * import { installDirectory, partialDir } from "./atomic.ts";
 * const dir = `${await Deno.makeTempDir()}/data`;
 * await Deno.mkdir(dir);
 * await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
 * await Deno.writeTextFile(`${dir}/old.bin`, "old");
 * const partial = partialDir(dir);
 * await Deno.mkdir(partial);
 * await Deno.writeTextFile(`${partial}/ready.json`, "{}");
 * await installDirectory(partial, dir, ["old.bin"], ["ready.json"]);
 * console.log((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort()); // ["notes.txt", "ready.json"]
 * ```
 */
export async function installDirectory(
  partial: string,
  dir: string,
  replaced: readonly string[],
  markers: readonly string[],
): Promise<void> {
  const there = await Deno.stat(dir).then(() => true, () => false);
  if (!there) {
    await Deno.rename(partial, dir);
    return;
  }
  const marked = (name: string) => Number(markers.includes(name));
  for (const name of [...replaced].sort((a, b) => marked(b) - marked(a))) {
    await Deno.remove(join(dir, name), { recursive: true });
  }
  const written = (await Array.fromAsync(Deno.readDir(partial))).map((e) => e.name);
  for (const name of written.sort((a, b) => marked(a) - marked(b))) {
    await Deno.rename(join(partial, name), join(dir, name));
  }
  await Deno.remove(partial, { recursive: true });
}

/**
 * Removes the `<dir>.partial-<pid>` directories that writes killed midway left beside `dir`
 * (those of this process included: a partial directory is never resumed).
 * @param dir The dataset directory.
 * @returns The names removed.
 *
 * @example
 * ```ts
 * import { removeStalePartials } from "./atomic.ts";
 * const parent = await Deno.makeTempDir();
 * await Deno.mkdir(`${parent}/data.partial-12`);
 * console.log(await removeStalePartials(`${parent}/data`)); // ["data.partial-12"]
 * ```
 */
export async function removeStalePartials(dir: string): Promise<string[]> {
  const path = dir.replace(/\/+$/, "");
  const prefix = `${basename(path)}.partial-`;
  return await removeLeftovers(
    dirname(path),
    (e) => e.isDirectory && e.name.startsWith(prefix) && /^\d+$/.test(e.name.slice(prefix.length)),
  );
}

/** Removes the entries of `dir` that `match` picks; none when `dir` does not exist. */
async function removeLeftovers(
  dir: string,
  match: (e: Deno.DirEntry) => boolean,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed; // no directory, nothing to clean
  }
  for (const e of entries) {
    if (!match(e)) continue;
    await Deno.remove(join(dir, e.name), { recursive: e.isDirectory }).catch(() => {});
    removed.push(e.name);
  }
  return removed;
}
