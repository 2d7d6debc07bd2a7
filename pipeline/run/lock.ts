/**
 * The run directory's lock: one recap process at a time trains, resumes or evaluates a run.
 * The lock is a file, `.lock`, created exclusively, that names its holder (pid, host, the
 * process's start time). A second process is refused at once with the holder's name; a lock
 * whose holder is gone (killed, crashed) is taken over, so it never blocks the next run.
 * On Linux the holder's liveness is read from /proc (pid and start time, so a reused pid does
 * not count); elsewhere a lock from another process is trusted until deleted by hand.
 * @module
 */
import { join } from "node:path";
import { InputError } from "../errors.ts";

/** The lock file's name inside a run directory. */
export const LOCK_FILE = ".lock";

/** Who holds a lock. */
export interface LockHolder {
  /** The holder's process id. */
  pid: number;
  /** The holder's host name. */
  host: string;
  /** When it took the lock (ISO 8601). */
  since: string;
  /** The process's start time in clock ticks after boot (/proc/<pid>/stat), when known. */
  startTicks: number | null;
}

/** A held lock; release it when the run ends. */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  /** Removes the lock file, if this process still holds it (idempotent). */
  release(): Promise<void>;
}

/**
 * Takes the lock of a run directory (which must exist).
 * @param runDir The run directory.
 * @returns The held lock.
 * @throws {InputError} When another live process holds it, naming that process.
 *
 * @example
 * ```ts
 * import { lockRunDir } from "./lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await lockRunDir(dir);
 * await lock.release();
 * ```
 */
export async function lockRunDir(runDir: string): Promise<RunLock> {
  const path = join(runDir, LOCK_FILE);
  const me: LockHolder = {
    pid: Deno.pid,
    host: Deno.hostname(),
    since: new Date().toISOString(),
    startTicks: startTicks(Deno.pid),
  };
  // Two tries: the second after removing a lock whose holder is gone.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await Deno.open(path, { write: true, createNew: true });
      try {
        await file.write(new TextEncoder().encode(JSON.stringify(me) + "\n"));
      } finally {
        file.close();
      }
      return heldLock(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const holder = await readHolder(path);
    if (holder !== null && isAlive(holder)) throw busy(runDir, holder);
    if (holder !== null && holder.host !== me.host) {
      throw new InputError(
        `${runDir}: this run is locked by pid ${holder.pid} on ${holder.host} (since ` +
          `${holder.since}); if that process is gone, delete ${path}`,
      );
    }
    // The holder is gone (or the lock is unreadable: a process killed while writing it).
    await Deno.remove(path).catch(() => {});
  }
  throw new InputError(
    `${runDir}: another recap process took this run's lock at the same time; try again`,
  );
}

/**
 * Checks, without taking it, that no live process holds a run directory's lock (a command
 * that must read the run's files first calls it, so a busy run is reported as busy).
 * @param runDir The run directory.
 * @throws {InputError} When another live process holds it, naming that process.
 *
 * @example
 * ```ts
 * import { assertRunFree } from "./lock.ts";
 * await assertRunFree(await Deno.makeTempDir());
 * ```
 */
export async function assertRunFree(runDir: string): Promise<void> {
  const holder = await readHolder(join(runDir, LOCK_FILE));
  if (holder !== null && holder.pid !== Deno.pid && isAlive(holder)) throw busy(runDir, holder);
}

function busy(runDir: string, holder: LockHolder): InputError {
  return new InputError(
    `${runDir}: this run is in use by another recap process (pid ${holder.pid} on ` +
      `${holder.host}, since ${holder.since}); wait for it to finish or stop it`,
  );
}

function heldLock(path: string): RunLock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      const holder = await readHolder(path);
      if (holder?.pid === Deno.pid) await Deno.remove(path).catch(() => {});
    },
  };
}

/** The holder named in a lock file, or null when it cannot be read. */
async function readHolder(path: string): Promise<LockHolder | null> {
  try {
    const h = JSON.parse(await Deno.readTextFile(path));
    return typeof h?.pid === "number" && typeof h?.host === "string" ? h as LockHolder : null;
  } catch {
    return null;
  }
}

/** Whether the lock's holder still runs (another host's cannot be checked: assumed alive). */
function isAlive(holder: LockHolder): boolean {
  if (holder.host !== Deno.hostname()) return true;
  if (holder.pid === Deno.pid) return true;
  const ticks = startTicks(holder.pid);
  if (ticks === null) return !procReadable(); // no such process, unless /proc is unavailable
  return holder.startTicks === null || ticks === holder.startTicks;
}

/** A process's start time in clock ticks after boot, or null (no such process, or no /proc). */
function startTicks(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 22; the command name (field 2) may hold spaces, so count after its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

function procReadable(): boolean {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}
