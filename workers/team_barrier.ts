/**
 * The barrier of a team step (`model/step_team.ts`) across the pool's workers: a counter and
 * a generation word in the shared control array. The last worker to arrive resets the
 * counter, bumps the generation and wakes the others; the others spin on the generation for up
 * to about 0.3 ms, then wait in `Atomics.wait`, checking every 100 ms whether a teammate
 * failed (`CTRL.TEAM_ABORT`): a step one worker cannot finish must not hold the others
 * forever. (A barrier of 2 workers on 2 cores costs 3 µs spinning against 6 µs in a futex,
 * `bench/barrier_bench.ts`; and a worker woken from the futex of a VM's idle core starts late,
 * while a recurrent step of few captions waits that long at its barrier.)
 * @module
 */
import type { StepTeam } from "../model/step_team.ts";
import { CTRL } from "./pool_protocol.ts";

/**
 * How many times a worker checks the generation before it waits in the kernel: about 0.3 ms
 * (15 ns a check). 4,000 checks (60 µs) ran rnn@25 and lstm@25 1.01–1.05× slower on 2
 * workers: their recurrent steps' barriers then often slept.
 */
const SPIN_CHECKS = 20000;

/** How long one wait lasts before the worker checks for an abort again (ms). */
const ABORT_CHECK_MS = 100;

/** Thrown at the barrier when a teammate's step failed (that failure is the one to report). */
export class TeamAborted extends Error {
  /**
   * The error a waiting worker throws.
   * @param index The worker that stopped waiting.
   */
  constructor(index: number) {
    super(`Compute worker ${index} left its team step: another worker's step failed`);
    this.name = "TeamAborted";
  }
}

/**
 * One worker's view of the pool's team barrier.
 *
 * @example
 * ```ts
 * import { SharedTeam } from "./team_barrier.ts";
 * import { CTRL } from "./pool_protocol.ts";
 * const control = new Int32Array(new SharedArrayBuffer(CTRL.WORDS * 4));
 * const alone = new SharedTeam(control, 0, 1);
 * alone.barrier(); // the only member: returns at once
 * console.log(Atomics.load(control, CTRL.TEAM_GEN)); // 1
 * ```
 */
export class SharedTeam implements StepTeam {
  /**
   * A view of the barrier in `control` for worker `index` of `size`.
   * @param control The pool's control words (`CTRL.TEAM_COUNT`, `TEAM_GEN`, `TEAM_ABORT`,
   * `TEAM_NEXT`).
   * @param index This worker's index.
   * @param size The number of workers.
   * @param waiting 1 for each worker while it waits in the kernel (the pool's watchdog reads
   * it to tell a stuck worker from the teammates waiting for it).
   */
  constructor(
    readonly control: Int32Array,
    readonly index: number,
    readonly size: number,
    readonly waiting: Int32Array = new Int32Array(size),
  ) {}

  /**
   * The next task of the current phase that no worker has taken yet (≥ count when none is
   * left), from the shared counter, which the barrier sets back to 0 for the next phase.
   * @param count The phase's tasks.
   * @returns The task.
   */
  take(count: number): number {
    const k = Atomics.add(this.control, CTRL.TEAM_NEXT, 1);
    return k < count ? k : count;
  }

  /**
   * Waits until every worker has arrived.
   * @throws {TeamAborted} When a teammate failed meanwhile.
   */
  barrier(): void {
    const c = this.control;
    const gen = Atomics.load(c, CTRL.TEAM_GEN);
    if (Atomics.add(c, CTRL.TEAM_COUNT, 1) === this.size - 1) {
      // Everyone has arrived, so nobody takes tasks of the phase that ends here.
      Atomics.store(c, CTRL.TEAM_NEXT, 0);
      Atomics.store(c, CTRL.TEAM_COUNT, 0);
      Atomics.add(c, CTRL.TEAM_GEN, 1);
      Atomics.notify(c, CTRL.TEAM_GEN);
      return;
    }
    for (let i = 0; i < SPIN_CHECKS; i++) if (Atomics.load(c, CTRL.TEAM_GEN) !== gen) return;
    Atomics.store(this.waiting, this.index, 1);
    try {
      while (Atomics.load(c, CTRL.TEAM_GEN) === gen) {
        if (Atomics.load(c, CTRL.TEAM_ABORT) !== 0) throw new TeamAborted(this.index);
        Atomics.wait(c, CTRL.TEAM_GEN, gen, ABORT_CHECK_MS);
      }
    } finally {
      Atomics.store(this.waiting, this.index, 0);
    }
  }

  /** Tells the teammates this worker's step failed, waking any that wait at the barrier. */
  abort(): void {
    Atomics.store(this.control, CTRL.TEAM_ABORT, 1);
    Atomics.notify(this.control, CTRL.TEAM_GEN);
  }
}
