/**
 * Training across processes against training across workers on one machine: 2 MPI processes
 * × 1 worker (`mpiexec.mpich -n 2`, the DistributedEngine) against 1 process × 2 workers (the
 * PoolEngine), lstm at the exercise's COCO sizes (H=512, W=256, V=1004, D=512; random captions of T=16), batch
 * 100, 4 shards, float32. Prints one JSON line per timed run and one summary line per config
 * with medians; the runs of the two configs alternate, so a busy machine slows both alike.
 *
 *   deno run -A bench/mpi_bench.ts [--rounds 3] [--iters 10]
 *
 * Each run reports captions/s, the time per step, and (MPI) the time per step rank 0 spent
 * waiting for transfers and for the other rank, and the bandwidth of a broadcast of the
 * gradient (the parameter count in float32) between the two ranks: the inputs of the scaling
 * model in docs/performance.md.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { Optimizer } from "../layers/optim.ts";
import { randomCaptionData } from "../tests/fixtures_data.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, str } from "../pipeline/cli/command_spec.ts";
import { finishJob, openJob } from "../pipeline/run/job.ts";
import { DistributedEngine } from "../workers/distributed_engine.ts";
import { createEngine } from "../workers/pool.ts";
import { cocoModelOf, D, median, V } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/mpi_bench.ts",
  args: [],
  summary: "2 MPI processes x 1 worker against 1 process x 2 workers, lstm H=512 batch 100: " +
    "captions/s and the time per step spent in MPI, one JSON line per run and per config.",
  options: {
    rounds: int(3, 1, "Runs of each config, alternating", "1"),
    iters: int(10, 1, "Timed steps per run (after 2 warm-up steps)", "2"),
    child: str("", "Internal: run one config in this process (mpi or pool)", "pool"),
    help: HELP_OPTION,
  },
}, Deno.args);

const BATCH = 100, SHARDS = 4;

/** One config's run in this process; rank 0 prints its JSON line. */
async function child(config: "mpi" | "pool"): Promise<void> {
  const backend = selectKernels().name;
  const job = config === "mpi" ? openJob("on", 120) : null;
  const data = randomCaptionData({ numTrain: 1000, vocab: V, inputDim: D, seed: 1 });
  const model = cocoModelOf(data.word_to_idx, "lstm");
  const local = createEngine(model, { workers: config === "mpi" ? 1 : 2, shards: SHARDS });
  const engine = job ? new DistributedEngine(local, job.comm!, model.flat) : local;
  const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
  const batches = new InMemoryBatches(data, BATCH, 0);
  for (let i = 0; i < 2; i++) await engine.step(batches.next(), opt, 0); // warm-up
  if (engine instanceof DistributedEngine) engine.takeMpiSeconds();
  const times: number[] = [];
  let mpiSeconds = 0;
  for (let i = 0; i < values.iters; i++) {
    const t0 = performance.now();
    await engine.step(batches.next(), opt, 0);
    times.push(performance.now() - t0);
    if (engine instanceof DistributedEngine) mpiSeconds += engine.takeMpiSeconds();
  }
  const result: Record<string, unknown> = {
    config: config === "mpi" ? "2 processes x 1 worker" : "1 process x 2 workers",
    backend,
    params: model.layout.total,
    ms_per_step: median(times),
    captions_per_s: BATCH / (median(times) / 1000),
  };
  if (job) {
    result.mpi_ms_per_step = (mpiSeconds * 1000) / values.iters;
    result.bcast_gbytes_per_s = await bcastBandwidth(job.comm!, model.layout.total);
  }
  if (!job || job.rank === 0) console.log(JSON.stringify(result));
  await engine.close();
  if (job) {
    await finishJob(job);
  }
}

/** The bandwidth of broadcasting `count` float32 from rank 0 (median of 5, after a warm-up). */
async function bcastBandwidth(
  comm: NonNullable<ReturnType<typeof openJob>["comm"]>,
  count: number,
): Promise<number> {
  const buf = new Float32Array(new SharedArrayBuffer(count * 4));
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await comm.bcast(buf, 0).wait("the bandwidth broadcast");
    if (i > 0) times.push(performance.now() - t0);
  }
  return (count * 4) / (median(times) / 1000) / 1e9;
}

/** Runs the configs alternately in child processes and prints their medians. */
async function parent(): Promise<void> {
  const self = new URL(import.meta.url).pathname;
  const args = (config: string) => [
    "run",
    "-A",
    self,
    `--child=${config}`,
    `--iters=${values.iters}`,
  ];
  const runs: Record<string, Record<string, number>[]> = { mpi: [], pool: [] };
  for (let round = 0; round < values.rounds; round++) {
    const order = round % 2 === 0 ? ["mpi", "pool"] : ["pool", "mpi"];
    for (const config of order) {
      const command = config === "mpi"
        ? new Deno.Command("mpiexec.mpich", { args: ["-n", "2", Deno.execPath(), ...args(config)] })
        : new Deno.Command(Deno.execPath(), { args: args(config) });
      const out = await command.output();
      const text = new TextDecoder().decode(out.stdout).trim();
      if (!out.success) throw new Error(`${config}: ${new TextDecoder().decode(out.stderr)}`);
      console.log(text);
      runs[config].push(JSON.parse(text.split("\n").at(-1)!));
    }
  }
  for (const list of Object.values(runs)) {
    const summary: Record<string, unknown> = { summary: list[0].config, runs: list.length };
    for (const key of Object.keys(list[0])) {
      if (typeof list[0][key] === "number") summary[key] = median(list.map((r) => r[key]));
    }
    console.log(JSON.stringify(summary));
  }
}

if (values.child === "mpi" || values.child === "pool") await child(values.child);
else await parent();
