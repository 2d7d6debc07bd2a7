/**
 * The cost of one barrier between workers that share a SharedArrayBuffer — what a training
 * step split into fixed tasks inside a shard would pay between dependent phases (once per
 * forward time step, once per backward time step; docs/performance.md). Prints one JSON line
 * per worker count and wait mode: `us_per_barrier`, the median over rounds.
 *
 *   deno run -A bench/barrier_bench.ts [--workers 2,4,8] [--crossings 2000] [--rounds 5]
 *
 * A barrier is a counter and a generation word: the last worker to arrive resets the counter,
 * bumps the generation and wakes the others; the others spin on the generation for up to
 * `spin` checks (`mode: "spin"`, 20000 checks) or go straight to `Atomics.wait`
 * (`mode: "wait"`, a futex). More workers than cores shows what oversubscription costs.
 * @module
 */
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, str } from "../pipeline/cli/command_spec.ts";
import { median } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/barrier_bench.ts",
  args: [],
  summary: "The cost of one barrier between workers over a SharedArrayBuffer, spinning and " +
    "waiting, one JSON line per worker count and mode.",
  options: {
    workers: str("2,4,8", "Worker counts, comma-separated", "2"),
    crossings: int(2000, 1, "Barriers crossed per round", "100"),
    rounds: int(5, 1, "Timed rounds", "1"),
    help: HELP_OPTION,
  },
}, Deno.args);

const WORKER = `
self.onmessage = (e) => {
  const { words, workers, crossings, spin } = e.data;
  const count = 0, gen = 1;
  for (let k = 0; k < crossings; k++) {
    const g = Atomics.load(words, gen);
    if (Atomics.add(words, count, 1) === workers - 1) {
      Atomics.store(words, count, 0);
      Atomics.add(words, gen, 1);
      Atomics.notify(words, gen);
    } else {
      let i = 0;
      while (i < spin && Atomics.load(words, gen) === g) i++;
      while (Atomics.load(words, gen) === g) Atomics.wait(words, gen, g, 1000);
    }
  }
  self.postMessage("done");
};`;

/** The µs per barrier crossing of `workers` workers crossing `crossings` barriers. */
async function crossingUs(workers: number, crossings: number, spin: number): Promise<number> {
  const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
  const pool = Array.from({ length: workers }, () => new Worker(url, { type: "module" }));
  const words = new Int32Array(new SharedArrayBuffer(8));
  // Start them, then time a second batch of crossings once all threads are up.
  const run = () =>
    Promise.all(pool.map((w) =>
      new Promise<void>((resolve) => {
        w.onmessage = () => resolve();
        w.postMessage({ words, workers, crossings, spin });
      })
    ));
  await run();
  const t0 = performance.now();
  await run();
  const us = (performance.now() - t0) * 1000 / crossings;
  pool.forEach((w) => w.terminate());
  URL.revokeObjectURL(url);
  return us;
}

const counts = values.workers.split(",").map(Number);
const { crossings, rounds } = values;
const modes = [["spin", 20000], ["wait", 0]] as const;
const samples = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const workers of counts) {
    for (const [mode, spin] of modes) {
      const key = `${workers} ${mode}`;
      samples.set(key, [...samples.get(key) ?? [], await crossingUs(workers, crossings, spin)]);
    }
  }
}
for (const workers of counts) {
  for (const [mode] of modes) {
    const us = median(samples.get(`${workers} ${mode}`)!);
    console.log(JSON.stringify({
      bench: "barrier",
      workers,
      cores: navigator.hardwareConcurrency,
      mode,
      crossings,
      us_per_barrier: Number(us.toFixed(2)),
    }));
  }
}
