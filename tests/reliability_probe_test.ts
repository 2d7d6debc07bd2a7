/**
 * The hostile-user probe of issue 12, kept: every case a careful user was able to break
 * recap with — data loss, hangs, stack traces, bad input accepted silently, unhelpful
 * messages — run again, each with the behaviour the README promises (one line naming the file
 * and field, exit 2, nothing lost; or the documented exit code). docs/errors.md lists them.
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import {
  cliInProcess,
  errorLines,
  listDir,
  spawnCli,
  tinyDataset,
  tinyExperiment,
  waitForTrainRecord,
  writeExperiment,
} from "./reliability_fixtures.ts";

const root = await Deno.makeTempDir({ prefix: "recap_probe_" });
let fresh = 0;
/** A path in the temporary directory that nothing uses yet. */
const freshPath = (what: string) => join(root, `${what}-${fresh++}`);

/** The tiny dataset and a run trained on it (copied by the tests that change a run). */
const setup = (async () => {
  const data = await tinyDataset(join(root, "data"));
  const runDir = join(root, "trained");
  const experiment = await writeExperiment(
    join(root, "trained.json"),
    tinyExperiment(data, runDir, { train: { numEpochs: 1, printEvery: 1000, evalEvery: 0 } }),
  );
  const trained = await cliInProcess(["train", experiment]);
  assertEquals(trained.code, 0, trained.stderr.join("\n"));
  return { data, runDir, experiment };
})();

/** Every file of a directory with its bytes, to show that nothing changed. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await listDir(dir)) {
    const bytes = await Deno.readFile(join(dir, name));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    out[name] = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}

/** A copy of a run directory and an experiment file that points at the copy. */
async function copyRun(from: string): Promise<{ runDir: string; experiment: string }> {
  const { data } = await setup;
  const runDir = freshPath("run");
  await Deno.mkdir(runDir);
  for (const name of await listDir(from)) {
    await Deno.copyFile(join(from, name), join(runDir, name));
  }
  const experiment = await writeExperiment(
    `${runDir}.json`,
    tinyExperiment(data, runDir, { train: { numEpochs: 1, printEvery: 1000, evalEvery: 0 } }),
  );
  return { runDir, experiment };
}

/** Asserts a CLI run failed with exit 2 and one line that includes `text`. */
function assertOneLine(run: { code: number; stderr: string[] }, text: string | RegExp): void {
  assertEquals(run.code, 2, run.stderr.join("\n"));
  const lines = errorLines(run.stderr.join("\n"));
  assertEquals(lines.length, 1, `one line, got:\n${lines.join("\n")}`);
  const ok = typeof text === "string" ? lines[0].includes(text) : text.test(lines[0]);
  assert(ok, `expected ${text} in: ${lines[0]}`);
}

// 1. A user's dataset directory is never written into.
Deno.test("probe: the synthetic dataset is never written into an existing directory without a dataset", async () => {
  const dir = freshPath("users-data");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "train2014_urls.txt"), "notes\n");
  const before = await snapshot(dir);
  const runDir = freshPath("run");
  const run = await cliInProcess([
    "train",
    "experiments/overfit_lstm.json",
    `--data.dir=${dir}`,
    "--data.maxTrain=null",
    "--data.synthetic.numTrain=20",
    "--data.synthetic.numVal=5",
    "--stages=train",
    `--output.dir=${runDir}`,
  ]);
  assertOneLine(run, "data.dir exists but holds no dataset");
  assertEquals(await snapshot(dir), before, "the user's files are untouched");
});

// 2. One process at a time in a run directory.
Deno.test("probe: a second process is refused at once while a run holds its directory, and a stale lock does not block", async () => {
  const { data } = await setup;
  const runDir = freshPath("locked");
  const experiment = await writeExperiment(
    `${runDir}.json`,
    tinyExperiment(data, runDir, { train: { numEpochs: 50 } }),
  );
  const first = spawnCli(["train", experiment]);
  try {
    await waitForTrainRecord(runDir, 1);
    const second = await cliInProcess(["resume", runDir]);
    assertOneLine(second, `in use by another recap process (pid ${first.child.pid}`);
    const third = await cliInProcess(["train", experiment, "--force"]);
    assertOneLine(third, `in use by another recap process (pid ${first.child.pid}`);
  } finally {
    first.child.kill("SIGKILL");
    await first.done;
  }
  // The killed process's lock is taken over by the next run.
  assert((await listDir(runDir)).includes(".lock"), "the killed run left its lock");
  const next = await cliInProcess(["train", experiment, "--force", "--train.numEpochs=1"]);
  assertEquals(next.code, 0, next.stderr.join("\n"));
  assert(!(await listDir(runDir)).includes(".lock"), "the lock is released at the end");
});

// 3. --force replaces the old run only once the new one has started.
for (
  const [what, overrides, message] of [
    ["a stream + maxTrain config", ["--data.stream=true", "--data.maxTrain=50"], "data.maxTrain"],
    ["a model too large for memory", ["--model.hiddenDim=1000000"], "model.hiddenDim"],
    ["a batch too large for memory", ["--train.batchSize=1000000000"], "train.batchSize"],
    ["a missing data file", ["--data.source=coco", "--data.dir=/nonexistent"], "/nonexistent"],
  ] as const
) {
  Deno.test(`probe: --force with ${what} fails with one line and keeps the trained run`, async () => {
    const { runDir: trained } = await setup;
    const { runDir, experiment } = await copyRun(trained);
    const before = await snapshot(runDir);
    const run = await cliInProcess(["train", experiment, "--force", ...overrides]);
    assertOneLine(run, message);
    assertEquals(await snapshot(runDir), before, "checkpoints, config and log are untouched");
  });
}

// 4. A rejected resume writes nothing.
Deno.test("probe: a resume that is refused leaves metrics.jsonl and the run as they were", async () => {
  const { runDir: trained } = await setup;
  const { runDir } = await copyRun(trained);
  const before = await snapshot(runDir);
  const wrongModel = await cliInProcess(["resume", runDir, "--model.hiddenDim=64"]);
  assertOneLine(wrongModel, "model.hiddenDim");
  assertEquals(await snapshot(runDir), before);
  // A checkpoint of another run (another vocabulary) in the directory.
  const other = freshPath("other-data");
  await tinyDataset(other, 11);
  const foreignRun = freshPath("foreign");
  const foreign = await cliInProcess([
    "train",
    await writeExperiment(
      `${foreignRun}.json`,
      tinyExperiment(other, foreignRun, { train: { numEpochs: 1 } }),
    ),
  ]);
  assertEquals(foreign.code, 0, foreign.stderr.join("\n"));
  await Deno.copyFile(join(foreignRun, "checkpoint.h5"), join(runDir, "checkpoint.h5"));
  const withForeign = await snapshot(runDir);
  const refused = await cliInProcess(["resume", runDir]);
  assertOneLine(refused, "vocabulary");
  assertEquals(await snapshot(runDir), withForeign);
});

Deno.test("probe cleanup: remove the temporary runs", async () => {
  await Deno.remove(root, { recursive: true });
});
