/**
 * End-to-end training-step benchmark: forward + backward + adam on one minibatch, float32,
 * at the exercise's COCO sizes (W=256, H=512, V=1004, D=512, T=16; the Transformer with the
 * experiment defaults). Prints one JSON line per config and worker count, like
 * ../shared/peers/bench_numpy_ref.py, so the two can be compared side by side.
 *
 *   deno run -A bench/train_step_bench.ts [model batch] [--models rnn,gru,lstm,transformer]
 *     [--batch 100] [--data datasets/synthetic] [--iters N] [--backend blas|wasm|ts]
 *     [--workers 1,2] [--shards S] [--split auto,steps,shards]
 *
 * Each config (a model and a batch size) gets one engine per shard count, worker count (1 = the
 * single-thread LocalEngine, more = the PoolEngine) and split (how the pool's workers share a
 * step: as a team, or whole shards each; `split` in the line); every config's engines step on batches
 * of the same data. Each round runs the configs one after another: a config's engines one after
 * another in an order that rotates with the round, each for `--iters` steps back to back after an
 * untimed one (as training runs them), so that a noisy machine slows every worker count alike over
 * the rounds; then the config's PyTorch peer.
 *
 * On Linux it also reads each thread's CPU time (/proc/self/task/<tid>/schedstat) around every
 * step: `cpu_ms_per_iter` is the CPU time of all threads, `busiest_thread_ms` that of the
 * busiest thread — what a step would take on otherwise idle cores, so a shared, busy machine
 * still shows how well the work splits (`cpu_speedup_vs_first`); `captions_per_s_idle_cores` is the
 * batch over the busiest thread's time. The pool's lines also give
 * `phase_ms`, the median wall time of each phase of its step (load, loss, reduce, update).
 *
 * `gflops` counts the GEMM FLOPs the step executes (forward and backward of every GEMM over the
 * packed rows: a caption's rows stop after its last target; the input projection over the
 * rows' distinct words); `roofline_fraction` divides it by
 * the sgemm roofline on as many BLAS threads as the machine has cores (a 2048³ sgemm, measured
 * in every round, bench/roofline.ts), `roofline_fraction_per_worker` by the roofline of as many
 * threads as workers; `roofline_fraction_idle_cores` uses the busiest thread's CPU time instead of
 * the wall time.
 *
 * With `--peer` (default: `.venv-torch/bin/python` when it exists), every round also runs the
 * PyTorch peer (../shared/peers/bench_torch_ref.py cell batch) for each config, right after that
 * config's recap steps, and its lines come out beside recap's with `recap_vs` (recap's best captions/s
 * over the peer's) — `deno task bench:train`.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { threadTimes, threadUse } from "./thread_stats.ts";
import type { ModelKind } from "../model/captioning_model.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Optimizer } from "../layers/optim.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import type { CaptionData } from "../pipeline/data/caption_data.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { defaultShards, type TrainEngine } from "../workers/engine.ts";
import { createEngine, PoolEngine } from "../workers/pool.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, oneOf, str } from "../pipeline/cli/command_spec.ts";
import { cocoModelOf, D, H, median as medianOf, V, W } from "./coco_sizes.ts";
import { openRoofline } from "./roofline.ts";
import { captionLengths } from "../model/captions.ts";
import type { Minibatch } from "../model/minibatch.ts";

const { values, positionals } = scriptCommandLine({
  command: "deno run -A bench/train_step_bench.ts",
  args: ["[cell]", "[batch]"],
  summary: "Forward + backward + adam on one minibatch at the exercise's COCO sizes, one JSON " +
    "line per config and worker count; a model (rnn, lstm, gru, transformer) and a batch size " +
    "pick one config, --models and --batch several.",
  options: {
    models: str(
      "",
      "Models to compare at --batch, comma-separated (default: rnn,lstm at 25 and 100)",
      "gru,transformer",
    ),
    batch: int(100, 1, "Batch size of the --models configs", "25"),
    data: str(
      "",
      "A dataset directory to draw the batches from (default: random captions)",
      "datasets/synthetic",
    ),
    iters: int(6, 1, "Timed iterations per round", "3"),
    rounds: int(
      3,
      1,
      "Rounds (each: config by config, its engines in turn, then its peer)",
      "1",
    ),
    peer: str(
      "",
      "Python with PyTorch for the peer, or 'none' (default: .venv-torch/bin/python if present)",
      "none",
    ),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend", "ts"),
    workers: str("1", "Worker counts, comma-separated", "1,2"),
    shards: str(
      "",
      "Fixed shards per batch, comma-separated (default: the model's, 1 or 4 for the Transformer)",
      "1,4",
    ),
    split: str(
      "auto",
      "How the pool's workers share a step: auto, steps (as a team), shards (whole shards each), comma-separated",
      "steps,shards",
    ),
    help: HELP_OPTION,
  },
}, Deno.args);
const backend = selectKernels(values.backend as BackendName | "auto").name;
const workerCounts = values.workers.split(",").map(Number);
const shardCounts = values.shards ? values.shards.split(",").map(Number) : [];
const splits = values.split.split(",") as Array<"auto" | "steps" | "shards">;
for (const split of splits) {
  if (split !== "auto" && split !== "steps" && split !== "shards") {
    console.error(
      `bench/train_step_bench.ts: --split: expected auto, steps or shards, got "${split}"`,
    );
    Deno.exit(2);
  }
}
const defaultPeer = ".venv-torch/bin/python";
const peer = values.peer === "none"
  ? null
  : values.peer || (isFile(defaultPeer) ? defaultPeer : null);
const peerScript = new URL("../../shared/peers/bench_torch_ref.py", import.meta.url);
const configs: Array<[ModelKind, number]> = positionals.length >= 2
  ? [[positionals[0] as ModelKind, Number(positionals[1])]]
  : values.models
  ? values.models.split(",").map((m) => [m as ModelKind, values.batch])
  : [["rnn", 25], ["lstm", 25], ["rnn", 100], ["lstm", 100]];

interface Run {
  cell: ModelKind;
  n: number;
  shards: number;
  split: "steps" | "shards" | null;
  flops: number[];
  phases: Record<string, number[]>;
  batches: InMemoryBatches;
  workers: number;
  engine: TrainEngine;
  opt: Optimizer;
  times: number[];
  cpu: number[];
  busiest: number[];
  startupMs: number;
}

/** Whether a file exists. */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * GEMM FLOPs of one step per caption row (forward + backward, 3 × 2 per multiply-add); for the
 * recurrent models without the input projection, which runs once per distinct word.
 */
function flopsPerRow(cell: ModelKind): number {
  if (cell === "transformer") return 3 * 2 * (2 * (5 * W * W + 2 * W * 2048) + W * V);
  const k = { rnn: 1, lstm: 4, gru: 3 }[cell];
  return 3 * 2 * (H * k * H + H * V);
}

/**
 * The GEMM FLOPs a step executes on a batch: the recurrent models compute only the packed rows
 * (each caption up to its last unmasked target), the input projection of each distinct word of
 * those rows once, and the projection of the captions that have one; the Transformer computes
 * all N · T rows.
 */
function executedFlops(cell: ModelKind, batch: Minibatch): number {
  const [n, t1] = batch.captions.shape, cap = batch.captions.data;
  if (cell === "transformer") return 3 * 2 * n * D * W + n * (t1 - 1) * flopsPerRow(cell);
  const len = new Int32Array(n);
  captionLengths(cap, n, t1, V, data.word_to_idx["<NULL>"], len);
  let rows = 0, running = 0;
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    rows += len[i];
    if (len[i] > 0) running++;
    for (let s = 0; s < len[i]; s++) seen.add(cap[i * t1 + s]);
  }
  const k = { rnn: 1, lstm: 4, gru: 3 }[cell];
  return 3 * 2 * (running * D * H + seen.size * W * k * H) + rows * flopsPerRow(cell);
}

/** One PyTorch peer run of a config: its JSON lines (one per implementation). */
async function runPeer(python: string, cell: ModelKind, n: number): Promise<PeerLine[]> {
  const out = await new Deno.Command(python, {
    args: [peerScript.pathname, cell, String(n)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`The PyTorch peer failed on ${cell} ${n}`);
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

/** A line of the PyTorch peer (bench_torch_ref.py). */
interface PeerLine {
  impl: string;
  cell: string;
  batch: number;
  threads: number;
  ms_median: number;
  captions_per_s: number;
}

// Random captions at the COCO sizes, or a dataset's (e.g. datasets/synthetic: the default run's).
const data: CaptionData = values.data
  ? await loadCocoData({ baseDir: values.data })
  : randomCaptionData({ numTrain: 500, vocab: V, inputDim: D, seed: 1 });
const runs: Run[] = [];
for (const [cell, n] of configs) {
  for (
    const shards of shardCounts.length === 0
      ? [defaultShards(cell)]
      : cell === "transformer"
      ? [shardCounts[0]]
      : shardCounts
  ) {
    for (const workers of workerCounts) {
      for (const split of workers === 1 || cell === "transformer" ? [splits[0]] : splits) {
        const model = cocoModelOf(data.word_to_idx, cell);
        const t0 = performance.now();
        const engine = createEngine(model, { workers, shards, split });
        if (engine instanceof PoolEngine) await engine.ready;
        const opt = new Optimizer("adam", { learningRate: 1e-3 }, model.layout.total, "float32");
        runs.push({
          cell,
          n,
          shards,
          split: engine instanceof PoolEngine ? engine.split : null,
          flops: [],
          phases: { load: [], loss: [], reduce: [], update: [] },
          batches: new InMemoryBatches(data, n, 0),
          workers,
          engine,
          opt,
          times: [],
          cpu: [],
          busiest: [],
          startupMs: performance.now() - t0,
        });
      }
    }
  }
}
const iters = values.iters, warmup = 2, cores = navigator.hardwareConcurrency;
const roof = openRoofline();
const roofline = new Map<number, number[]>();
const peerLines = new Map<string, PeerLine[]>();
for (let round = 0; round < values.rounds; round++) {
  // Config by config: its engines one after another (in an order that rotates with the round),
  // each for `iters` steps back to back after an untimed one, as training runs them; then its
  // peer. So recap and PyTorch run the same config close in time, and a config's steps do not
  // share the caches with the other configs' engines (the peer, in its own process, does not
  // either). (Interleaving the engines step by step slowed the pool's rnn@25 steps by a
  // quarter: its workers started every step cold after the one-worker engine's.)
  for (const [cell, n] of configs) {
    const mine = runs.filter((r) => r.cell === cell && r.n === n);
    const skip = 1 + (round === 0 ? warmup : 0);
    for (let k = 0; k < mine.length; k++) {
      const run = mine[(round + k) % mine.length];
      for (let it = 0; it < iters + skip; it++) {
        const batch = run.batches.next();
        const before = threadTimes();
        const t0 = performance.now();
        await run.engine.step(batch, run.opt, 0);
        if (it < skip) continue;
        run.times.push(performance.now() - t0);
        run.flops.push(executedFlops(run.cell, batch));
        if (run.engine instanceof PoolEngine) {
          const tm = run.engine.timings;
          for (const phase in run.phases) run.phases[phase].push(tm[phase as keyof typeof tm]);
        }
        const after = threadTimes();
        if (before && after) {
          const used = threadUse(before, after);
          run.cpu.push(used.cpu);
          run.busiest.push(used.busiest);
        }
      }
    }
    if (peer && (cell === "rnn" || cell === "lstm")) { // the peer has these two
      const key = `${cell} ${n}`;
      peerLines.set(key, [...peerLines.get(key) ?? [], ...await runPeer(peer, cell, n)]);
    }
  }
  for (const threads of new Set([1, cores, ...workerCounts])) {
    if (roof) roofline.set(threads, [...roofline.get(threads) ?? [], roof.gflops(threads)]);
  }
}
roof?.close();
const median = (xs: number[]) => medianOf(xs);
const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const roofOf = (threads: number) => roofline.has(threads) ? medianOf(roofline.get(threads)!) : NaN;
for (const threads of [...roofline.keys()].sort((a, b) => a - b)) {
  console.log(JSON.stringify({
    bench: "sgemm_roofline",
    size: 2048,
    threads,
    gflops: round(roofOf(threads), 1),
  }));
}
for (const [cell, n] of configs) {
  const mine = runs.filter((r) => r.cell === cell && r.n === n);
  const base = median(mine[0].times);
  const baseBusiest = mine[0].busiest.length ? median(mine[0].busiest) : NaN;
  let best = 0;
  for (const run of mine) {
    const ms = median(run.times);
    // The mean executed FLOPs of a step (the batches differ in their packed rows).
    const flops = run.flops.reduce((a, b) => a + b, 0) / run.flops.length;
    best = Math.max(best, n / ms * 1000);
    const busiest = run.busiest.length ? median(run.busiest) : NaN;
    const first = mine.length > 1 && run === mine[0];
    console.log(JSON.stringify({
      impl: "recap",
      backend,
      workers: run.workers,
      shards: run.shards,
      ...(run.split ? { split: run.split } : {}),
      cell,
      batch: n,
      W,
      H,
      ms_per_iter: Number(ms.toFixed(2)),
      captions_per_s: Number((n / ms * 1000).toFixed(1)),
      gflop_per_iter: round(flops / 1e9, 3),
      gflops: Number((flops / ms / 1e6).toFixed(2)),
      ...(roofline.size
        ? {
          roofline_fraction: round(flops / ms / 1e6 / roofOf(cores), 3),
          roofline_fraction_per_worker: round(flops / ms / 1e6 / roofOf(run.workers), 3),
        }
        : {}),
      ...(mine.length > 1 && !first ? { speedup_vs_first: round(base / ms) } : {}),
      ...(run.cpu.length
        ? {
          cpu_ms_per_iter: round(median(run.cpu), 1),
          busiest_thread_ms: round(busiest, 1),
          captions_per_s_idle_cores: round(n / busiest * 1000, 1),
          ...(roofline.size
            ? { roofline_fraction_idle_cores: round(flops / busiest / 1e6 / roofOf(cores), 3) }
            : {}),
        }
        : {}),
      ...(mine.length > 1 && !first && run.cpu.length
        ? { cpu_speedup_vs_first: round(baseBusiest / busiest) }
        : {}),
      ...(run.phases.loss.length
        ? {
          phase_ms: Object.fromEntries(
            Object.entries(run.phases).map(([phase, ms]) => [phase, round(median(ms))]),
          ),
        }
        : {}),
      ...(run.workers > 1 ? { startup_ms: round(run.startupMs, 0) } : {}),
    }));
    await run.engine.close();
  }
  const lines = peerLines.get(`${cell} ${n}`) ?? [];
  for (const impl of new Set(lines.map((l) => l.impl))) {
    const mineLines = lines.filter((l) => l.impl === impl);
    const ms = medianOf(mineLines.map((l) => l.ms_median));
    console.log(JSON.stringify({
      impl,
      threads: mineLines[0].threads,
      cell,
      batch: n,
      W,
      H,
      ms_per_iter: ms,
      captions_per_s: round(n / ms * 1000, 1),
      rounds: mineLines.length,
      recap_vs: round(best / (n / ms * 1000)),
    }));
  }
}
