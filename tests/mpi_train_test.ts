/**
 * Training across the processes of an MPI job (`mpiexec.mpich -n 2 deno task train`), bit for
 * bit one process's run with the same seed and shards: with 1 and 2 workers per process, a
 * 3 processes, a resume with another process count, Ctrl-C on mpiexec; rank 0 alone writes; a rank that
 * throws, is killed or drifts ends the whole job promptly; a launcher MPICH cannot join is
 * refused. Skipped with a message where MPICH (`mpiexec.mpich`, `libmpich.so.12`) is absent.
 * @module
 */
import { join } from "node:path";
import { describeLayout, detectLaunch } from "../pipeline/run/job.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { mpichAvailable } from "../workers/mpi/binding.ts";
import { rankShards } from "../workers/distributed_engine.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = join(ROOT, "pipeline/cli/main.ts");

async function hasMpiexec(): Promise<boolean> {
  try {
    const out = await new Deno.Command("mpiexec.mpich", { args: ["--version"], stdout: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

const MPI_OK = mpichAvailable() && await hasMpiexec();
if (!MPI_OK) {
  console.log(
    "mpi_train_test: skipping the MPI runs: MPICH is not installed (apt install mpich)",
  );
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** `deno run -A <args>` alone (ranks = 0) or as `mpiexec.mpich -n <ranks>`. */
async function run(ranks: number, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const deno = ["run", "-A", ...args];
  const command = ranks === 0
    ? new Deno.Command(Deno.execPath(), { args: deno, env, stdout: "piped", stderr: "piped" })
    : new Deno.Command("mpiexec.mpich", {
      args: ["-n", String(ranks), Deno.execPath(), ...deno],
      env,
      stdout: "piped",
      stderr: "piped",
    });
  const t0 = performance.now();
  const out = await command.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

const TMP = MPI_OK ? await Deno.makeTempDir({ prefix: "recap_mpi_" }) : "";
const EXPERIMENT = join(TMP, "exp.json");
if (MPI_OK) {
  await Deno.writeTextFile(
    EXPERIMENT,
    JSON.stringify({
      name: "mpi",
      stages: ["train", "evaluate", "sample"],
      data: { dir: join(TMP, "data"), synthetic: { numTrain: 100, numVal: 150 } },
      model: { cellType: "lstm", wordvecDim: 16, hiddenDim: 24 },
      train: {
        numEpochs: 2,
        batchSize: 25,
        workers: 1,
        shards: 4,
        gradClip: 1,
        printEvery: 5,
        distributed: { checkEvery: 3 },
      },
      // 150 images: two chunks of decoding, one on each rank.
      evaluate: { numImages: 150, splits: ["val"], beamSize: 2, sample: true },
      output: { dir: join(TMP, "alone") },
    }),
  );
}

/** `deno task train` of the experiment into `runs/<dir>` (`ranks` 0: one process). */
function train(ranks: number, dir: string, ...overrides: string[]): Promise<Ran> {
  return run(ranks, [MAIN, "train", EXPERIMENT, `--output.dir=${join(TMP, dir)}`, ...overrides]);
}

/** The parameters and the optimizer state of a run's checkpoint.h5 (or another file). */
async function saved(dir: string, file = "checkpoint.h5") {
  const ckpt = await loadCheckpoint(join(TMP, dir, file));
  return { flat: ckpt.model.flat, solver: ckpt.solver! };
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assertEquals(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${what}: element ${i}: ${a[i]} != ${b[i]}`);
  }
}

/** The run's metrics.jsonl records without their time stamps. */
async function records(dir: string): Promise<unknown[]> {
  const text = await Deno.readTextFile(join(TMP, dir, "metrics.jsonl"));
  return text.trim().split("\n").map((line) => {
    const { time: _, ...record } = JSON.parse(line);
    return record;
  });
}

async function assertSameRun(dir: string, reference: string, file = "checkpoint.h5") {
  const a = await saved(dir, file), b = await saved(reference, file);
  sameBits(a.flat, b.flat, `${dir}: parameters`);
  assertEquals(a.solver.optimizer.t, b.solver.optimizer.t);
  a.solver.optimizer.moments.forEach((m, i) =>
    sameBits(m, b.solver.optimizer.moments[i], `${dir}: moment ${i}`)
  );
  assertEquals(a.solver.lossHistory, b.solver.lossHistory, `${dir}: losses`);
}

/**
 * Trains `name`_alone in one process and `name`_mpi on 2 ranks (with `mpiArgs` too), checks both
 * succeed and end with the same bits; returns the 2-rank run.
 */
async function assertTwoRanksEqualOne(
  name: string,
  args: string[],
  mpiArgs: string[] = [],
): Promise<Ran> {
  const one = await train(0, `${name}_alone`, ...args);
  const both = await train(2, `${name}_mpi`, ...args, ...mpiArgs);
  assertEquals(one.code, 0, one.stderr);
  assertEquals(both.code, 0, both.stderr);
  await assertSameRun(`${name}_mpi`, `${name}_alone`);
  return both;
}

let alone: Promise<Ran> | null = null;
/** The one-process reference run (once). */
function reference(): Promise<Ran> {
  return alone ??= train(0, "alone").then((r) => {
    assertEquals(r.code, 0, r.stderr);
    return r;
  });
}

Deno.test({
  name:
    "mpiexec -n 2 with 1 shard per rank: each rank's 2 workers share its shard's step, one process's bits",
  ignore: !MPI_OK,
  async fn() {
    const both = await assertTwoRanksEqualOne("team", ["--train.shards=2", "--train.workers=2"]);
    assert(
      both.stdout.includes("2 worker(s) sharing each step in each of 2 processes"),
      both.stdout,
    );
  },
});

Deno.test("rankShards() gives each rank a contiguous run of shards, and needs S ≥ P", () => {
  assertEquals([0, 1, 2].map((r) => rankShards(8, 3, r)), [
    { start: 0, end: 3 },
    { start: 3, end: 6 },
    { start: 6, end: 8 },
  ]);
  assertThrows(() => rankShards(2, 4, 0), RangeError, "train.shards to at least 4");
});

Deno.test("detectLaunch() reads Hydra's, Slurm's and Open MPI's variables; describeLayout() groups hosts", () => {
  assertEquals(detectLaunch({ SLURM_STEP_NUM_TASKS: "8", SLURM_PROCID: "3" }), {
    launcher: "srun",
    size: 8,
    rank: 3,
  });
  assertEquals(detectLaunch({ SLURM_NTASKS: "8" }), null, "sbatch alone is no launch");
  assertEquals(detectLaunch({ OMPI_COMM_WORLD_SIZE: "2" })?.launcher, "Open MPI's mpirun");
  assertEquals(
    describeLayout(["n1", "n1", "n2", "n2"]),
    "MPI job of 4 processes: ranks 0-1 on n1, ranks 2-3 on n2",
  );
});

for (const workers of [1, 2]) {
  Deno.test({
    name:
      `mpiexec -n 2 train (${workers} worker(s) each) equals one process bit for bit; rank 0 alone writes`,
    ignore: !MPI_OK,
    async fn() {
      await reference();
      const dir = `mpi2_w${workers}`;
      const r = await train(2, dir, `--train.workers=${workers}`);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stdout.includes("MPI job of 2 processes: ranks 0-1 on"), r.stdout);
      assert(r.stdout.includes("in each of 2 processes (shards of 4 per rank: 0-1, 2-3)"));
      assertEquals(r.stdout.split("recap: run mpi").length, 2, "rank 0 alone prints");
      await assertSameRun(dir, "alone");
      await assertSameRun(dir, "alone", "best.h5");
      assertEquals(await records(dir), await records("alone"), "metrics.jsonl");
      for (const file of ["evaluation.json", "samples.json"]) {
        const text = (d: string) => Deno.readTextFile(join(TMP, d, file));
        assertEquals(await text(dir), await text("alone"), file);
      }
    },
  });
}

Deno.test({
  name: "mpiexec -n 2 caption (greedy, sampled) writes one process's results file, from rank 0",
  ignore: !MPI_OK,
  async fn() {
    await reference();
    const best = join(TMP, "alone", "best.h5");
    for (const decoder of ["greedy", "sample"]) {
      const out = (who: string) => join(TMP, `caption_${decoder}_${who}.json`);
      const args = (who: string) => [
        MAIN,
        "caption",
        best,
        "--split=val",
        `--decoder=${decoder}`,
        "--quiet",
        `--out=${out(who)}`,
      ];
      const alone = await run(0, args("alone")), both = await run(2, args("mpi"));
      assertEquals(alone.code, 0, alone.stderr);
      assertEquals(both.code, 0, both.stderr);
      assertEquals(both.stdout.trim().split("\n").length, 1, "rank 0 alone prints");
      const text = (who: string) => Deno.readTextFile(out(who));
      assertEquals(await text("mpi"), await text("alone"), decoder);
      assertEquals(JSON.parse(await text("mpi")).length, 150);
    }
  },
});

Deno.test({
  name: "mpiexec -n 2 evaluate (greedy, beam, sampled) writes one process's scores, from rank 0",
  ignore: !MPI_OK,
  async fn() {
    await reference();
    const best = join(TMP, "alone", "best.h5");
    const out = (who: string) => join(TMP, `scores_${who}.json`);
    const args = (who: string) => [
      MAIN,
      "evaluate",
      best,
      "--split=val",
      "--numImages=150",
      "--sample",
      `--out=${out(who)}`,
    ];
    const alone = await run(0, args("alone")), both = await run(2, args("mpi"));
    assertEquals(alone.code, 0, alone.stderr);
    assertEquals(both.code, 0, both.stderr);
    assertEquals(both.stdout, alone.stdout.replaceAll(out("alone"), out("mpi")));
    const text = (who: string) => Deno.readTextFile(out(who));
    assertEquals(await text("mpi"), await text("alone"));
  },
});

Deno.test({
  name: "the Transformer (dropout on) across 2 processes equals one process",
  ignore: !MPI_OK,
  async fn() {
    const transformer = [
      "--model.cellType=transformer",
      "--model.numLayers=1",
      "--model.numHeads=2",
      "--model.ffDim=32",
      "--model.dropout=0.1",
      "--stages=train",
      "--train.numEpochs=1",
    ];
    await assertTwoRanksEqualOne("transformer", transformer);
  },
});

Deno.test({
  name: "a streamed run across 2 processes (each rank reads its shards' rows) equals one process",
  ignore: !MPI_OK,
  async fn() {
    const stream = ["--data.stream=true", "--stages=train"];
    const both = await assertTwoRanksEqualOne("stream", stream, ["--train.workers=2"]);
    assert(both.stdout.includes("Streaming training minibatches"), both.stdout);
  },
});

Deno.test({
  name:
    "self-critical training across 2 processes (its sampling spread over the ranks by chunks) equals one process",
  ignore: !MPI_OK,
  async fn() {
    // 40 images × 5 samples: chunks of 25 images, so both ranks sample (images 0-24, 25-39).
    const scst = [
      "--train.scst.numEpochs=1",
      "--train.scst.batchSize=40",
      "--train.numEpochs=1",
      "--stages=train",
    ];
    await assertTwoRanksEqualOne("scst", scst);
    const logged = await records("scst_mpi");
    assert(logged.some((r) => (r as { kind: string }).kind === "scst"), "SCST steps ran");
    assertEquals(logged, await records("scst_alone"), "metrics.jsonl");
  },
});

Deno.test({
  name:
    "3 processes (shards 2+1+1: a middle rank takes and passes on the sum), then a resume with 2, equal one process",
  ignore: !MPI_OK,
  async fn() {
    await reference();
    const first = await train(3, "resumed", "--train.numEpochs=1");
    assertEquals(first.code, 0, first.stderr);
    assert(first.stdout.includes("shards of 4 per rank: 0-1, 2, 3"), first.stdout);
    const r = await run(2, [MAIN, "resume", join(TMP, "resumed"), "--train.numEpochs=2"]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stdout.includes("Resuming at iteration 20 of 40"), r.stdout);
    await assertSameRun("resumed", "alone");
  },
});

Deno.test({
  name:
    "Ctrl-C on mpiexec stops every rank after the same step with a checkpoint; resume alone finishes the run",
  ignore: !MPI_OK,
  async fn() {
    const dir = join(TMP, "interrupted");
    const args = [
      `--output.dir=${dir}`,
      "--train.numEpochs=30",
      "--train.evalEvery=1000",
      "--stages=train",
    ];
    const proc = new Deno.Command("mpiexec.mpich", {
      args: ["-n", "2", Deno.execPath(), "run", "-A", MAIN, "train", EXPERIMENT, ...args],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Interrupt once training runs (the first progress line).
    const decoder = new TextDecoder();
    let stderr = "";
    const reader = proc.stderr.getReader();
    while (!stderr.includes("(Iteration")) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value);
    }
    proc.kill("SIGINT");
    const rest = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        stderr += decoder.decode(value);
      }
    })();
    const [status, stdout] = await Promise.all([
      proc.status,
      new Response(proc.stdout).text(),
      rest,
    ]);
    // Every rank exits 130; Hydra's own status after it forwarded a Ctrl-C is 130 or 0.
    assert([0, 130].includes(status.code), `exit ${status.code}: ${stderr}`);
    const stopped = /Interrupted at iteration (\d+) of 600/.exec(stdout);
    assert(stopped, stdout + stderr);
    const ckpt = await saved("interrupted");
    assertEquals(ckpt.solver.iteration, Number(stopped[1]), "the checkpoint of the last step");
    // The uninterrupted run, and the interrupted one resumed by one process, end the same.
    const [whole, resumed] = await Promise.all([
      train(0, "uninterrupted", "--train.numEpochs=30", "--train.evalEvery=1000", "--stages=train"),
      run(0, [MAIN, "resume", dir]),
    ]);
    assertEquals(whole.code, 0, whole.stderr);
    assertEquals(resumed.code, 0, resumed.stderr);
    await assertSameRun("interrupted", "uninterrupted");
  },
});

Deno.test({
  name: "a rank that throws, is killed or drifts ends the whole job at once, naming the rank",
  ignore: !MPI_OK,
  async fn() {
    const fixture = join(ROOT, "tests/mpi_fault_fixture.ts");
    const thrown = await run(2, [fixture, "throw"]);
    assertEquals(thrown.code, 1);
    assert(thrown.stderr.includes("recap: rank 1 of 2"), thrown.stderr);
    assert(thrown.stderr.includes("the injected fault of step 3"), thrown.stderr);
    const killed = await run(2, [fixture, "kill"]);
    assert(killed.code !== 0, "a killed rank fails the job");
    assert(!killed.stdout.includes("no fault"), "rank 0 did not go on alone");
    const drifted = await run(2, [fixture, "drift"]);
    assertEquals(drifted.code, 1, drifted.stdout + drifted.stderr);
    assert(
      drifted.stderr.includes("parameters or optimizer state differ after step 2"),
      drifted.stderr,
    );
    // Well below the 60 s the fixture's ranks would wait for each other.
    for (const r of [thrown, killed, drifted]) assert(r.seconds < 30, `${r.seconds} s`);
  },
});

Deno.test({
  name: "a launcher MPICH cannot join (each process a job of 1) is refused, naming mpiexec.mpich",
  ignore: !MPI_OK,
  async fn() {
    const r = await run(0, [MAIN, "train", EXPERIMENT, `--output.dir=${join(TMP, "refused")}`], {
      OMPI_COMM_WORLD_SIZE: "2",
      OMPI_COMM_WORLD_RANK: "0",
    });
    assertEquals(r.code, 2, r.stderr);
    assert(r.stderr.includes("Open MPI's mpirun started 2 processes"), r.stderr);
    assert(r.stderr.includes("launch with mpiexec.mpich"), r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  },
});

Deno.test({
  name: "fewer train.shards than processes is refused with the shards needed (exit 2)",
  ignore: !MPI_OK,
  async fn() {
    const r = await train(2, "few_shards", "--train.shards=1");
    assertEquals(r.code, 2, r.stderr);
    assert(r.stderr.includes("train.shards: 1 shards cannot be split"), r.stderr);
    assert(r.stderr.includes("set train.shards to at least 2"), r.stderr);
  },
});

if (MPI_OK) {
  globalThis.addEventListener("unload", () => Deno.removeSync(TMP, { recursive: true }));
}
