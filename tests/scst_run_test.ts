/**
 * Self-critical training in a run, end to end on the tiny synthetic dataset: after the
 * cross-entropy epochs (or from another run's checkpoint), what it writes (scst_best.h5, the
 * cached document frequencies, `scst` records, both checkpoints side by side in
 * evaluation.json and the report); the same bits on 1 and 2 workers; and a resumed run —
 * after more epochs are asked for, or after Ctrl-C — equal to an uninterrupted one.
 */
import { join } from "node:path";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { RUN_FILES } from "../pipeline/run/files.ts";
import { readMetricsLog } from "../pipeline/run/metrics_log.ts";
import { runExperiment, type RunOptions } from "../pipeline/run/run.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  runCli,
  spawnCli,
  tinyDataset,
  tinyExperiment,
  waitForTrainRecord,
  writeExperiment,
} from "./reliability_fixtures.ts";

const quiet: RunOptions = {
  log: () => {},
  progressWrite: () => {},
  isTTY: false,
  handleSignals: false,
};

/** 2 cross-entropy epochs (60 iterations), then 3 SCST epochs of 6 steps (10 images × 3). */
function experiment(data: string, runDir: string, scst: Record<string, unknown> = {}, extra = {}) {
  return tinyExperiment(data, runDir, {
    train: {
      numEpochs: 2,
      scst: {
        numEpochs: 3,
        batchSize: 10,
        samples: 3,
        maxLength: 8,
        learningRate: 5e-3,
        baseline: "greedy", // the baseline that also records the greedy reward
        ...scst,
      },
    },
    evaluate: { numImages: 10, beamSize: 2 },
    stages: ["train", "evaluate", "report"],
    ...extra,
  });
}

/** The records of a metrics.jsonl without their times. */
async function records(runDir: string): Promise<Record<string, unknown>[]> {
  return (await readMetricsLog(join(runDir, RUN_FILES.metrics))).map(({ time: _, ...r }) => r);
}

const setup = (async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_scst_" });
  const data = await tinyDataset(join(root, "data"));
  const refDir = join(root, "ref");
  const result = await runExperiment(
    resolveExperiment(experiment(data, refDir), "ref.json"),
    quiet,
  );
  const reference = await loadCheckpoint(join(refDir, RUN_FILES.checkpoint));
  return { root, data, refDir, result, reference, records: await records(refDir) };
})();

Deno.test("SCST after cross-entropy: scst_best.h5, scst records, both checkpoints evaluated side by side", async () => {
  const { refDir, result, reference, records } = await setup;
  assertEquals(result.iterations, 78);
  for (const f of [RUN_FILES.best, RUN_FILES.scstBest, RUN_FILES.ciderDf, RUN_FILES.checkpoint]) {
    assert((await Deno.stat(join(refDir, f))).isFile, f);
  }
  // The checkpoint is the SCST phase's: its solver counts 18 steps after iteration 60.
  assertEquals(reference.scst, { startIteration: 60, from: join(refDir, RUN_FILES.best) });
  assertEquals(reference.solver!.iteration, 18);
  assertEquals(reference.solver!.lossHistory.length, 18);
  // metrics.jsonl: train records up to 60, scst records 61…78 with their rewards.
  const train = records.filter((r) => r.kind === "train").map((r) => r.iteration);
  assertEquals(train, Array.from({ length: 60 }, (_, i) => i + 1));
  const scst = records.filter((r) => r.kind === "scst");
  assertEquals(scst.map((r) => r.iteration), Array.from({ length: 18 }, (_, i) => 61 + i));
  for (const r of scst) {
    assert(typeof r.reward === "number" && r.reward >= 0, JSON.stringify(r));
    assert(typeof r.baseline === "number" && typeof r.greedyReward === "number");
    assert((r.beatBaseline as number) >= 0 && (r.beatBaseline as number) <= 1);
    assert((r.meanLength as number) > 0);
  }
  assert(scst.some((r) => r.beatBaseline as number > 0), "some samples beat the greedy baseline");
  const duringScst = records.filter((r) => r.kind === "eval" && r.phase === "scst");
  assertEquals(duringScst.map((r) => r.iteration), [78]);
  // Evaluated side by side: the cross-entropy best.h5 and the SCST best.
  const saved = JSON.parse(await Deno.readTextFile(join(refDir, RUN_FILES.evaluation)));
  assertEquals(saved.checkpoint, "self-critical best (iter 78)");
  assertEquals(saved.compared.map((c: { checkpoint: string }) => c.checkpoint), [
    "cross-entropy best (iter 60)",
  ]);
  assertEquals(result.compared!.length, 1);
  const evals = records.filter((r) => r.kind === "eval" && r.checkpoint !== "training");
  assertEquals(
    evals.map((r) => `${r.checkpoint} ${r.decoder}`),
    ["greedy", "beam"].map((d) => `cross-entropy best (iter 60) ${d}`).concat(
      ["greedy", "beam"].map((d) => `self-critical best (iter 78) ${d}`),
    ),
  );
  const report = await Deno.readTextFile(join(refDir, RUN_FILES.report));
  assert(report.includes('<section id="scst">'), "the reward chart");
  assert(
    report.includes("cross-entropy best (iter 60)") &&
      report.includes("self-critical best (iter 78)"),
  );
  assert(report.includes("iteration 78 (self-critical)"));
  assert(report.includes("ROUGE-L") && report.includes("% repeated trigram"));
});

Deno.test("SCST gives the same bits on 2 workers as on 1", async () => {
  const { root, data, reference, records: want } = await setup;
  const dir = join(root, "two");
  const exp = experiment(data, dir);
  (exp.train as Record<string, unknown>).workers = 2;
  await runExperiment(resolveExperiment(exp, "two.json"), quiet);
  const two = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  assertEquals(two.solver!.lossHistory, reference.solver!.lossHistory);
  assertEquals(two.model.flat, reference.model.flat);
  assertEquals(await records(dir), want);
});

Deno.test("a resumed SCST run (more epochs asked for) equals the uninterrupted one bit for bit", async () => {
  const { root, data, reference, records: want } = await setup;
  const dir = join(root, "resumed");
  await runExperiment(resolveExperiment(experiment(data, dir, { numEpochs: 1 }), "r.json"), quiet);
  const partial = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  assertEquals(partial.solver!.iteration, 6);
  const lines: string[] = [];
  await runExperiment(resolveExperiment(experiment(data, dir), "r.json"), {
    ...quiet,
    resume: true,
    log: (l) => lines.push(l),
  });
  assert(
    lines.includes("Resuming at iteration 6 of 18 of self-critical training"),
    lines.join("\n"),
  );
  const final = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  assertEquals(final.solver!.lossHistory, reference.solver!.lossHistory);
  assertEquals(final.solver!.optimizer.moments, reference.solver!.optimizer.moments);
  assertEquals(final.model.flat, reference.model.flat);
  // The training records too (the shorter run also scored its last parameters, at 66).
  const training = (rs: Record<string, unknown>[]) => rs.filter((r) => r.kind !== "eval");
  assertEquals(training(await records(dir)), training(want));
});

Deno.test("Ctrl-C during SCST saves its checkpoint; resume continues it bit for bit", async () => {
  const { root, data } = await setup;
  // Longer, so the signal lands mid-phase: 20 SCST epochs of 6 steps.
  const long = { numEpochs: 20 };
  const refDir = join(root, "long-ref");
  await runExperiment(resolveExperiment(experiment(data, refDir, long), "l.json"), quiet);
  const reference = await loadCheckpoint(join(refDir, RUN_FILES.checkpoint));
  const dir = join(root, "long");
  const exp = await writeExperiment(join(root, "long.json"), experiment(data, dir, long));
  const { child, done } = spawnCli(["train", exp]);
  await waitForTrainRecord(dir, 64, 60_000, "scst");
  child.kill("SIGINT");
  const interrupted = await done;
  assertEquals(interrupted.code, 130, interrupted.stderr);
  const partial = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  const k = partial.solver!.iteration;
  assert(partial.scst !== undefined && k >= 4 && k < 120, `interrupted mid-SCST, at step ${k}`);
  const resumed = await runCli(["resume", dir]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assert(resumed.stdout.includes(`Resuming at iteration ${k} of 120 of self-critical training`));
  const final = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  assertEquals(final.solver!.lossHistory, reference.solver!.lossHistory);
  assertEquals(final.model.flat, reference.model.flat);
  assertEquals(
    (await records(dir)).filter((r) => r.kind === "scst"),
    (await records(refDir)).filter((r) => r.kind === "scst"),
  );
});

Deno.test("SCST from another run's checkpoint: iterations continue its count, both checkpoints evaluated", async () => {
  const { root, data, refDir, reference } = await setup;
  const from = join(refDir, RUN_FILES.best);
  const dir = join(root, "from");
  const result = await runExperiment(
    resolveExperiment(experiment(data, dir, { from, numEpochs: 1 }), "from.json"),
    quiet,
  );
  assertEquals(result.iterations, 66);
  const ckpt = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
  assertEquals(ckpt.scst, { startIteration: 60, from });
  // The same start, seed and steps as the reference's first SCST epoch.
  assertEquals(ckpt.solver!.lossHistory, reference.solver!.lossHistory.slice(0, 6));
  const saved = JSON.parse(await Deno.readTextFile(join(dir, RUN_FILES.evaluation)));
  assertEquals(saved.compared[0].checkpoint, `cross-entropy ${from} (iter 60)`);
  assertEquals((await records(dir)).filter((r) => r.kind === "train"), []);
  // A checkpoint that is not there is refused before any work.
  const missing = resolveExperiment(
    experiment(data, join(root, "missing"), { from: join(root, "nope.h5") }),
    "m.json",
  );
  let message = "";
  await runExperiment(missing, quiet).catch((e) => message = e.message);
  assert(
    message.startsWith(`train.scst.from: ${join(root, "nope.h5")}: no such checkpoint`),
    message,
  );
});

Deno.test("SCST test cleanup: remove the temporary runs", async () => {
  await Deno.remove((await setup).root, { recursive: true });
});
