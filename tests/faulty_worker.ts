/**
 * A compute worker that fails on purpose, for the tests of failure handling. It is given to
 * the pool as its `workerUrl`, with the fault in the query string (see
 * {@linkcode faultyWorkerUrl}): worker `worker` throws in `phase` of training step `step`
 * (1 = the pool's first step); with `uncaught`, the error escapes the job's error handling,
 * as a crash of the worker would; with `hang`, it loops forever instead. Production code
 * knows nothing of it.
 * @module
 */
import { ComputeWorker, serveComputeWorker } from "../workers/compute_worker.ts";
import { CMD, CTRL, PHASE_NAMES } from "../workers/pool_protocol.ts";

/** A fault to inject. */
export interface Fault {
  /** The training step (1 = the first) at which to throw. */
  step: number;
  /** The worker that throws. */
  worker: number;
  /** The phase in which it throws (default "loss"). */
  phase?: "loss" | "reduce" | "update";
  /** Throw outside the job's error handling, as if the worker crashed (default false). */
  uncaught?: boolean;
  /**
   * Instead of throwing, never finish the job: "wait" blocks until the pool stops (the pool
   * cannot tell it from a stuck worker, and it cleans up after itself: for tests in this
   * process); "spin" loops forever, as a worker stuck in a bug does — a thread that Deno
   * cannot terminate, so only for a subprocess that exits.
   */
  hang?: "wait" | "spin";
  /**
   * Fault inside a team step instead of at the job's start: at this worker's n-th barrier of
   * the step's loss job (1 = the first), while its teammates wait there (default 0: at the
   * start). Only "throw" (the default) and `hang: "wait"` apply.
   */
  barrier?: number;
}

/**
 * The URL of this module with a fault, to pass as `workerUrl`.
 * @param fault The fault.
 * @returns The worker module URL.
 */
export function faultyWorkerUrl(fault: Fault): URL {
  const url = new URL(import.meta.url);
  url.searchParams.set("step", String(fault.step));
  url.searchParams.set("worker", String(fault.worker));
  url.searchParams.set("phase", fault.phase ?? "loss");
  if (fault.uncaught) url.searchParams.set("uncaught", "1");
  if (fault.hang) url.searchParams.set("hang", fault.hang);
  if (fault.barrier) url.searchParams.set("barrier", String(fault.barrier));
  return url;
}

class FaultyWorker extends ComputeWorker {
  readonly #fault: Required<Fault>;
  #step = 0;

  constructor(init: ConstructorParameters<typeof ComputeWorker>[0], fault: Required<Fault>) {
    super(init);
    this.#fault = fault;
    const team = this.team;
    if (fault.barrier > 0 && team && init.index === fault.worker) {
      const wait = team.barrier.bind(team);
      let arrived = 0;
      team.barrier = () => {
        if (this.#inDueJob && ++arrived === fault.barrier) this.#fail(CMD.LOSS);
        wait();
      };
    }
  }

  /** Whether the current job is the one to fault in (set around it). */
  #inDueJob = false;

  /** The fault itself: hang until the pool stops (then return), or throw. */
  #fail(cmd: number): void {
    if (this.#fault.hang === "wait") {
      const c = this.init.control;
      while (Atomics.load(c, CTRL.CMD) !== CMD.STOP) {
        Atomics.wait(c, CTRL.GEN, Atomics.load(c, CTRL.GEN), 50);
      }
      return; // the pool stopped: at a barrier, the teammates' abort ends the step
    }
    throw new Error(
      `Injected fault (testing only) in worker ${this.init.index} at step ${this.#step}, ` +
        `${PHASE_NAMES[cmd]} phase${
          this.#fault.barrier ? ` (barrier ${this.#fault.barrier})` : ""
        }`,
    );
  }

  #due(cmd: number): boolean {
    const f = this.#fault;
    return Atomics.load(this.init.control, CTRL.TRAINING) === 1 && this.init.index === f.worker &&
      this.#step === f.step && PHASE_NAMES[cmd] === f.phase;
  }

  override runJob(cmd: number): void {
    if (cmd === CMD.LOSS && Atomics.load(this.init.control, CTRL.TRAINING) === 1) this.#step++;
    if (this.#fault.uncaught && this.#due(cmd)) {
      throw new Error(`Injected uncaught fault (testing only) in worker ${this.init.index}`);
    }
    super.runJob(cmd);
  }

  override run(cmd: number): void {
    if (this.#fault.barrier > 0) {
      this.#inDueJob = this.#due(cmd);
      try {
        return super.run(cmd);
      } finally {
        this.#inDueJob = false;
      }
    }
    if (this.#fault.hang === "spin" && this.#due(cmd)) { for (;;) { /* stuck for good */ } }
    if (this.#due(cmd)) return this.#fail(cmd);
    super.run(cmd);
  }
}

if (import.meta.main) {
  const q = new URL(import.meta.url).searchParams;
  const fault: Required<Fault> = {
    step: Number(q.get("step")),
    worker: Number(q.get("worker")),
    phase: (q.get("phase") ?? "loss") as Required<Fault>["phase"],
    uncaught: q.has("uncaught"),
    hang: (q.get("hang") ?? undefined) as Required<Fault>["hang"],
    barrier: Number(q.get("barrier") ?? 0),
  };
  serveComputeWorker((init) => new FaultyWorker(init, fault));
}
