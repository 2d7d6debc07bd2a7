/**
 * Per-thread CPU time of a process, from Linux's /proc/<pid>/task/<tid>/schedstat: the time
 * each thread ran, and the time it was runnable but waited for a core (another process held
 * it). On a shared machine the second is what tells a slow run from slow code.
 * @module
 */

/** One thread's counters, ms since it started. */
export interface ThreadTimes {
  /** Time on a core. */
  run: number;
  /** Time runnable but waiting for a core. */
  wait: number;
}

/**
 * Every thread's counters of a process.
 * @param pid The process ("self" for this one).
 * @returns Thread id → its counters, or null where /proc is not readable.
 */
export function threadTimes(pid: number | "self" = "self"): Map<string, ThreadTimes> | null {
  const out = new Map<string, ThreadTimes>();
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const [run, wait] = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/schedstat`)
          .split(" ").map(Number);
        out.set(e.name, { run: run / 1e6, wait: wait / 1e6 });
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return null;
  }
  return out;
}

/** What the threads of a process did between two readings. */
export interface ThreadUse {
  /** CPU time of all threads, ms. */
  cpu: number;
  /** CPU time of the busiest thread, ms: the run's length on otherwise idle cores. */
  busiest: number;
  /** Time the threads were runnable but waited for a core, ms (summed). */
  wait: number;
}

/**
 * The difference of two readings of {@linkcode threadTimes}.
 * @param before The first reading.
 * @param after The second.
 * @returns The threads' use in between (threads that started in between count from 0).
 */
export function threadUse(
  before: Map<string, ThreadTimes>,
  after: Map<string, ThreadTimes>,
): ThreadUse {
  let cpu = 0, busiest = 0, wait = 0;
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { run: 0, wait: 0 };
    cpu += t.run - b.run;
    busiest = Math.max(busiest, t.run - b.run);
    wait += t.wait - b.wait;
  }
  return { cpu, busiest, wait };
}
