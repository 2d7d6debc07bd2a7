/**
 * Ctrl-C and SIGTERM while the CLI trains: a checkpoint is written, the process exits 130,
 * `resume` continues, and interrupted + resumed equals an uninterrupted run bit for bit.
 */
import { join } from "node:path";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { RUN_FILES } from "../pipeline/run/files.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  listDir,
  loggedIterations,
  runCli,
  spawnCli,
  tinyDataset,
  tinyExperiment,
  waitForTrainRecord,
  writeExperiment,
} from "./reliability_fixtures.ts";

/** 10 epochs of 30 iterations: a few seconds, so a signal sent early lands mid-training. */
const EPOCHS = 10, ITERATIONS = 300;

const setup = (async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_interrupt_" });
  const data = await tinyDataset(join(root, "data"));
  // The uninterrupted reference, in this process.
  const ref = tinyExperiment(data, join(root, "ref"), { train: { numEpochs: EPOCHS } });
  await runExperiment(resolveExperiment(ref, "ref.json"), {
    log: () => {},
    progressWrite: () => {},
    handleSignals: false,
  });
  const reference = await loadCheckpoint(join(root, "ref", RUN_FILES.checkpoint));
  assertEquals(reference.solver!.iteration, ITERATIONS);
  return { root, data, reference };
})();

const CASES: [Deno.Signal, number, number][] = [
  // [signal, checkpointEvery, workers]: no checkpoint due while training (the signal must get
  // through between steps on this thread), frequent saves, and the worker pool.
  ["SIGINT", 1_000_000, 1],
  ["SIGTERM", 2, 1],
  ["SIGINT", 7, 2],
];

for (const [signal, checkpointEvery, workers] of CASES) {
  Deno.test(`${signal} during training (checkpointEvery ${checkpointEvery}, ${workers} worker(s)) saves, exits 130, and resume continues bitwise`, async () => {
    const { root, data, reference } = await setup;
    const runDir = join(root, `${signal}-${workers}`);
    const exp = await writeExperiment(
      join(root, `${signal}-${workers}.json`),
      tinyExperiment(data, runDir, { train: { numEpochs: EPOCHS, checkpointEvery, workers } }),
    );
    const { child, done } = spawnCli(["train", exp]);
    await waitForTrainRecord(runDir, 5);
    child.kill(signal);
    const interrupted = await done;
    assertEquals(interrupted.code, 130, interrupted.stderr);
    assert(
      /Interrupted at iteration \d+ of 300; checkpoint saved to .*Resume with: deno task resume/
        .test(interrupted.stdout),
      interrupted.stdout,
    );
    assert(interrupted.stderr.includes("Stopping after this step to save a checkpoint"));
    const partial = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
    const k = partial.solver!.iteration;
    assert(k >= 5 && k < ITERATIONS, `interrupted mid-training, at iteration ${k}`);
    assertEquals(partial.solver!.lossHistory, reference.solver!.lossHistory.slice(0, k));
    // Only finished files: no temporary checkpoint left behind.
    assertEquals(await listDir(runDir), ["checkpoint.h5", "config.json", "metrics.jsonl"]);

    const resumed = await runCli(["resume", runDir]);
    assertEquals(resumed.code, 0, resumed.stderr);
    assert(resumed.stdout.includes(`Resuming at iteration ${k} of 300`), resumed.stdout);
    const final = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
    assertEquals(final.solver!.iteration, ITERATIONS);
    assertEquals(final.solver!.lossHistory, reference.solver!.lossHistory);
    assertEquals(final.solver!.valLossHistory, reference.solver!.valLossHistory);
    assertEquals(final.solver!.optimizer.moments, reference.solver!.optimizer.moments);
    assertEquals(final.model.flat, reference.model.flat);
    const iterations = await loggedIterations(runDir, "train");
    assertEquals(iterations, Array.from({ length: ITERATIONS }, (_, i) => i + 1));
  });
}

Deno.test("interrupt test cleanup: remove the temporary runs", async () => {
  await Deno.remove((await setup).root, { recursive: true });
});
