/**
 * Numerical faults and worker faults during training: the run stops with a clear message
 * (one line through the CLI, exit 1), within a bounded time, and the last good checkpoint on
 * disk stays intact and loadable.
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { withH5File } from "../pipeline/io/h5.ts";
import { RUN_FILES } from "../pipeline/run/files.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { type Fault, faultyWorkerUrl } from "./faulty_worker.ts";
import { threadNames, workerThreadsAfter } from "./threads.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  errorLines,
  listDir,
  loggedIterations,
  runCli,
  tinyDataset,
  tinyExperiment,
  writeExperiment,
} from "./reliability_fixtures.ts";

const setup = (async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_faults_" });
  return { root, data: await tinyDataset(join(root, "data")) };
})();

/** A copy of the tiny dataset whose train features are all `value`. */
async function poisonedDataset(root: string, name: string, value: number): Promise<string> {
  const { data } = await setup;
  const dir = join(root, name);
  await Deno.mkdir(dir);
  for await (const e of Deno.readDir(data)) {
    await Deno.copyFile(join(data, e.name), join(dir, e.name));
  }
  const path = join(dir, "train2014_vgg16_fc7_pca.h5");
  const shape = await withH5File(path, "r", (f) => f.info("features").shape);
  const bad = Tensor.zeros(shape as [number, number], "float32");
  bad.data.fill(value);
  await withH5File(path, "w", (f) => f.write("features", bad));
  return dir;
}

/** Every parameter and every recorded loss of a checkpoint is finite. */
function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

Deno.test("an exploding loss stops the CLI with exit 1, a one-line hint, and the last good checkpoint", async () => {
  const { root, data } = await setup;
  const runDir = join(root, "explode");
  const exp = await writeExperiment(
    join(root, "explode.json"),
    tinyExperiment(data, runDir, {
      train: { updateRule: "sgd", learningRate: 50, checkpointEvery: 1 },
    }),
  );
  const r = await runCli(["train", exp]);
  assertEquals(r.code, 1, r.stderr);
  const errors = errorLines(r.stderr);
  assertEquals(errors.length, 1, r.stderr);
  const m =
    /^error: Training diverged at iteration (\d+): the loss [\d.]+ is over 20x the first iteration's \([\d.]+\)\. Try a lower learning rate \(now 50\) or gradient clipping \(gradClip: 5\); the last checkpoint \(iteration (\d+)\) is .*checkpoint\.h5$/
      .exec(errors[0]);
  assert(m, errors[0]);
  const [at, kept] = [Number(m[1]), Number(m[2])];
  assert(at >= 2 && kept === at - 1, errors[0]);
  const ckpt = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
  assertEquals(ckpt.solver!.iteration, kept);
  assert(allFinite(ckpt.model.flat) && allFinite(ckpt.solver!.lossHistory));
  assertEquals(await listDir(runDir), ["checkpoint.h5", "config.json", "metrics.jsonl"]);
});

for (const [what, value] of [["NaN", NaN], ["Inf", Infinity]] as const) {
  Deno.test(`${what} in the features on resume is refused with the file and row; the checkpoint stays as it was`, async () => {
    const { root, data } = await setup;
    const runDir = join(root, `poison-${what}`);
    const exp = await writeExperiment(
      join(root, `poison-${what}.json`),
      tinyExperiment(data, runDir, { train: { numEpochs: 1 } }),
    );
    const first = await runCli(["train", exp]);
    assertEquals(first.code, 0, first.stderr);
    const ckptPath = join(runDir, RUN_FILES.checkpoint);
    const before = await Deno.readFile(ckptPath);
    // The same data but with poisoned features; two more epochs.
    const poisoned = await poisonedDataset(root, `data-${what}`, value);
    const r = await runCli(["resume", runDir, `--data.dir=${poisoned}`, "--train.numEpochs=3"]);
    assertEquals(r.code, 2, r.stderr);
    const errors = errorLines(r.stderr);
    assertEquals(errors.length, 1, r.stderr);
    assert(
      /^error: .*train2014_vgg16_fc7_pca\.h5 \(dataset "features"\): row 0 holds (NaN|Infinity) at column 0; features must be finite numbers \(fix or drop that image's features\)$/
        .test(errors[0]),
      errors[0],
    );
    assertEquals(await Deno.readFile(ckptPath), before, "the checkpoint is untouched");
  });
}

Deno.test("resume applies a changed learning rate (decayed to the current epoch) and keeps the rest", async () => {
  const { root, data } = await setup;
  const runDir = join(root, "lower-lr");
  const exp = await writeExperiment(
    join(root, "lower-lr.json"),
    tinyExperiment(data, runDir, { train: { numEpochs: 1, learningRate: 5e-3, lrDecay: 0.5 } }),
  );
  assertEquals((await runCli(["train", exp])).code, 0);
  const first = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
  assertEquals(first.solver!.optimizer.config.learningRate, 2.5e-3);
  const r = await runCli(["resume", runDir, "--train.learningRate=1e-3", "--train.numEpochs=2"]);
  assertEquals(r.code, 0, r.stderr);
  assert(
    r.stdout.includes("Resuming with train.learningRate 0.001 (was 0.005): now 0.0005"),
    r.stdout,
  );
  const final = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
  assertEquals(final.solver!.optimizer.config.learningRate, 2.5e-4);
  assertEquals(final.solver!.optimizer.config.beta1, first.solver!.optimizer.config.beta1);
  assertEquals(final.solver!.lossHistory.slice(0, 30), first.solver!.lossHistory);
  assertEquals(final.solver!.iteration, 60);
});

/** The files under `dir` this process holds open (on Linux). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (target.startsWith(dir)) out.push(target);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** A run that must settle within `ms`, or the test fails instead of hanging. */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms (hang)`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const WORKER_FAULTS: { label: string; name: string; faultAt: Fault }[] = [
  { label: "throws in the loss phase", name: "loss", faultAt: { step: 7, worker: 1 } },
  {
    label: "throws in the update phase",
    name: "update",
    faultAt: { step: 7, worker: 0, phase: "update" },
  },
  {
    label: "dies (uncaught error) mid-step",
    name: "uncaught",
    faultAt: { step: 7, worker: 1, uncaught: true },
  },
];

for (const { label, name, faultAt } of WORKER_FAULTS) {
  Deno.test(`a compute worker that ${label} stops the run promptly with its error; the checkpoint stays intact`, async () => {
    const { root, data } = await setup;
    const runDir = join(root, `worker-${name}`);
    const config = resolveExperiment(
      tinyExperiment(data, runDir, { train: { workers: 2, checkpointEvery: 3 } }),
      "workers.json",
    );
    const before = { threads: threadNames().length };
    const lines: string[] = [];
    const started = performance.now();
    const err = await within(
      60_000,
      runExperiment(config, {
        log: (l) => lines.push(l),
        progressWrite: (t) => lines.push(t),
        isTTY: false,
        handleSignals: false,
        workerUrl: faultyWorkerUrl(faultAt),
      }).then(() => null, (e: Error) => e),
    );
    assert(err instanceof Error, "the run rejects");
    assert(/Compute worker \d failed/.test(err.message), err.message);
    if (!faultAt.uncaught) assert(err.message.includes("Injected fault"), err.message);
    assert(performance.now() - started < 60_000);
    assert(
      lines.some((l) =>
        l.includes(
          "Training stopped by an error after iteration 6; the last checkpoint (iteration 6)",
        )
      ),
      lines.join(""),
    );
    // No worker thread or file descriptor outlives the failed run.
    assertEquals(await workerThreadsAfter(), [], "worker threads are gone");
    assert(threadNames().length <= before.threads, `threads: ${threadNames()}`);
    assertEquals(openFilesUnder(root), [], "no file of the run or its data is left open");
    const ckpt = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
    assertEquals(ckpt.solver!.iteration, 6);
    assert(allFinite(ckpt.model.flat));
    assertEquals(await listDir(runDir), ["checkpoint.h5", "config.json", "metrics.jsonl"]);
  });
}

Deno.test("a finished run on the worker pool leaves no worker thread and no open file", async () => {
  const { root, data } = await setup;
  const runDir = join(root, "pool-clean");
  await runExperiment(
    resolveExperiment(
      tinyExperiment(data, runDir, {
        train: { workers: 2, numEpochs: 1, evalEvery: 0 },
        stages: ["train", "evaluate", "report"],
      }),
      "clean.json",
    ),
    { log: () => {}, progressWrite: () => {}, handleSignals: false },
  );
  assertEquals(await workerThreadsAfter(), []);
  assertEquals(openFilesUnder(root), []);
  assert((await listDir(runDir)).includes("report.html"));
});

Deno.test("a metrics line cut short (full disk, kill) does not break the resumed run or its report", async () => {
  const { root, data } = await setup;
  const runDir = join(root, "cut-metrics");
  const exp = await writeExperiment(
    join(root, "cut-metrics.json"),
    tinyExperiment(data, runDir, { train: { numEpochs: 1 } }),
  );
  assertEquals((await runCli(["train", exp])).code, 0);
  // Records past the checkpoint and half a line, as a run killed after iteration 30 leaves.
  await Deno.writeTextFile(
    join(runDir, RUN_FILES.metrics),
    '{"kind":"train","iteration":31,"loss":1}\n{"kind":"train","itera',
    { append: true },
  );
  const r = await runCli(["resume", runDir, "--train.numEpochs=2", "--stages=train,report"]);
  assertEquals(r.code, 0, r.stderr);
  const range = Array.from({ length: 60 }, (_, i) => i + 1);
  assertEquals(await loggedIterations(runDir, "train"), range);
  assert((await listDir(runDir)).includes("report.html"));
  // Training afresh in the same directory is refused (it would overwrite the trained run)...
  const refused = await runCli(["train", exp]);
  assertEquals(refused.code, 2);
  assert(refused.stderr.includes("already holds a trained run"), refused.stderr);
  // ...and when forced, starts a new log, not a mixed one.
  assertEquals((await runCli(["train", exp, "--force"])).code, 0);
  assertEquals(await loggedIterations(runDir, "train"), range.slice(0, 30));
});

Deno.test("faults test cleanup: remove the temporary runs", async () => {
  await Deno.remove((await setup).root, { recursive: true });
});
