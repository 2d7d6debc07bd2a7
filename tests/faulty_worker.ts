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
  return url;
}

class FaultyWorker extends ComputeWorker {
  readonly #fault: Required<Fault>;
  #step = 0;

  constructor(init: ConstructorParameters<typeof ComputeWorker>[0], fault: Required<Fault>) {
    super(init);
    this.#fault = fault;
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
    if (this.#fault.hang === "spin" && this.#due(cmd)) { for (;;) { /* stuck for good */ } }
    if (this.#fault.hang === "wait" && this.#due(cmd)) {
      const c = this.init.control;
      while (Atomics.load(c, CTRL.CMD) !== CMD.STOP) {
        Atomics.wait(c, CTRL.GEN, Atomics.load(c, CTRL.GEN), 50);
      }
      return;
    }
    if (this.#due(cmd)) {
      throw new Error(
        `Injected fault (testing only) in worker ${this.init.index} at step ${this.#step}, ` +
          `${PHASE_NAMES[cmd]} phase`,
      );
    }
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
  };
  serveComputeWorker((init) => new FaultyWorker(init, fault));
}
