/**
 * This process's threads, for the tests that check that no worker outlives its pool. Deno's
 * test sanitizers do not track workers; /proc does, on Linux: live workers are threads
 * named "worker-N".
 * @module
 */

/** The names of this process's threads, except the runtime's I/O pool (it grows lazily). */
export function threadNames(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      names.push(Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).trim());
    } catch (err) {
      // The thread ended meanwhile: its entry is gone (ENOENT), or going (ESRCH, os error 3).
      const failure = err as { code?: string; message?: string };
      const ended = err instanceof Deno.errors.NotFound || failure.code === "ESRCH" ||
        /\(os error 3\)/.test(failure.message ?? "");
      if (!ended) throw err;
    }
  }
  return names.filter((name) => name !== "tokio-runtime-w");
}

/** The live Web Worker threads of this process ("worker-N"). */
export function workerThreads(): string[] {
  return threadNames().filter((name) => name.startsWith("worker-"));
}

/**
 * Waits up to `ms` for every worker thread to end (a terminated worker's thread takes a
 * moment to go).
 * @returns The worker threads still alive then.
 */
export async function workerThreadsAfter(ms = 2000): Promise<string[]> {
  for (let waited = 0; waited < ms && workerThreads().length > 0; waited += 20) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return workerThreads();
}
