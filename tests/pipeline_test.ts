import { join } from "node:path";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { readMetricsLog } from "../pipeline/run/metrics_log.ts";
import { escapeHtml } from "../pipeline/run/report.ts";
import { RUN_FILES } from "../pipeline/run/files.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { InputError } from "../pipeline/errors.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";

const CLI = new URL("../pipeline/cli/main.ts", import.meta.url).pathname;

/** A tiny experiment on a tiny synthetic dataset, in a temporary directory. */
function tinyExperiment(root: string, extra: Record<string, unknown> = {}) {
  return resolveExperiment({
    name: "tiny",
    data: {
      source: "synthetic",
      dir: join(root, "data"),
      synthetic: { numTrain: 60, numVal: 20, seed: 3 },
    },
    model: { cellType: "lstm", hiddenDim: 32, wordvecDim: 16 },
    train: { numEpochs: 2, batchSize: 50, printEvery: 2, workers: 1 },
    evaluate: { splits: ["val"], numImages: 20, beamSize: 2, maxLength: 12 },
    output: { dir: join(root, "run") },
    ...extra,
  }, "tiny.json");
}

Deno.test("a short run on a tiny synthetic dataset leaves checkpoint, metrics.jsonl and report.html", async () => {
  const root = await Deno.makeTempDir();
  const lines: string[] = [];
  const progress: string[] = [];
  const result = await runExperiment(tinyExperiment(root), {
    log: (l) => lines.push(l),
    progressWrite: (t) => progress.push(t),
    isTTY: false,
    handleSignals: false,
  });
  const run = join(root, "run");
  assertEquals(result.runDir, run);
  assertEquals(result.iterations, 12); // 300 captions / 50 per batch × 2 epochs
  const training = lines.find((l) => l.startsWith("Training "));
  assert(training?.includes("worker(s)"), `the training line: ${training}`);
  // Every file of a run directory, but those of self-critical training (train.scst).
  const files = Object.values(RUN_FILES).filter((f) =>
    f !== RUN_FILES.scstBest && f !== RUN_FILES.ciderDf
  );
  for (const f of files) assert((await Deno.stat(join(run, f))).isFile, f);
  // The checkpoint resumes: it holds the solver state at the last iteration.
  const ckpt = await loadCheckpoint(join(run, RUN_FILES.checkpoint));
  assertEquals(ckpt.solver!.iteration, 12);
  assertEquals(ckpt.solver!.lossHistory.length, 12);
  const records = await readMetricsLog(join(run, RUN_FILES.metrics));
  const kinds = new Set(records.map((r) => r.kind));
  assertEquals([...kinds].sort(), ["eval", "train", "val"]);
  assertEquals(records.filter((r) => r.kind === "val").length, 2);
  const evaluation = JSON.parse(await Deno.readTextFile(join(run, RUN_FILES.evaluation)));
  const ev = evaluation.evaluations[0];
  assertEquals(ev.split, "val");
  assertEquals(ev.numImages, 20);
  for (const k of ["bleu1", "bleu4", "cider"]) {
    assert(
      typeof ev.greedy[k] === "number" && typeof ev.beam[k] === "number" &&
        typeof ev.baseline[k] === "number",
      k,
    );
  }
  assert(ev.images[0].references.length === 5, "all five captions of an image are its references");
  const html = await Deno.readTextFile(join(run, RUN_FILES.report));
  assert(
    html.includes("<svg") && html.includes("baseline") &&
      html.includes(escapeHtml(ev.images[0].references[0])),
  );
  assert(html.includes('src="../data/images/val/'), "sample images point at the dataset's SVGs");
  // A metrics table per checkpoint scored during training, besides the final evaluation.
  assert(html.includes("val during training (first 20 images)"), "training checkpoints table");
  assert(html.includes("iteration 6") && html.includes("iteration 12"), "one row per checkpoint");
  assert(lines.some((l) => l.startsWith("Evaluation on val (20 images)")), lines.join("\n"));
  assert(
    progress.some((p) => p.includes("(Iteration 12 / 12) loss:")),
    "plain progress lines when not a terminal",
  );
  await Deno.remove(root, { recursive: true });
});

async function cli(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the CLI exits 2 with a one-line message for bad input, and 0 for --help", async () => {
  const root = await Deno.makeTempDir();
  const bad = join(root, "bad.json");
  await Deno.writeTextFile(bad, JSON.stringify({ train: { learningRate: "fast" } }));
  const cases: Array<[string[], RegExp]> = [
    [["train", bad], /bad\.json: train\.learningRate: expected a positive number, got "fast"/],
    [["train", join(root, "missing.json")], /missing\.json: experiment file not found/],
    [
      ["train", "--train.batchSise=3"],
      /--train\.batchSise: unknown option \(did you mean --train\.batchSize\?\)/,
    ],
    [["evaluate", join(root, "nope.h5")], /nope\.h5: the file does not exist/],
    [["resume", root], /config\.json: not found/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli(args, root);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(pattern.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    assert(!r.stderr.includes("    at "), "no stack trace");
  }
  for (const verb of ["train", "evaluate", "sample", "resume", "dataset"]) {
    const r = await cli([verb, "--help"]);
    assertEquals(r.code, 0, `${verb} --help: ${r.stderr}`);
    assert(r.stdout.includes("Usage") || r.stdout.includes("usage"), `${verb}: ${r.stdout}`);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("evaluate and sample read a run's checkpoint and its data", async () => {
  const root = await Deno.makeTempDir();
  await runExperiment(tinyExperiment(root, { stages: ["train"] }), {
    log: () => {},
    progressWrite: () => {},
    handleSignals: false,
  });
  const ckpt = join(root, "run", RUN_FILES.checkpoint);
  const ev = await cli(["evaluate", ckpt, "--numImages", "10", "--beamSize", "2"]);
  assertEquals(ev.code, 0, ev.stderr);
  assert(/on val \(10 images\)/.test(ev.stdout) && /beam\s+bleu1/.test(ev.stdout), ev.stdout);
  const sample = await cli(["sample", ckpt, "--n", "3"]);
  assertEquals(sample.code, 0, sample.stderr);
  assertEquals(sample.stdout.split("\n").filter((l) => l.includes("generated:")).length, 3);
  // A report-only run shows the saved evaluation and leaves the run's config.json as it was.
  const configPath = join(root, "run", RUN_FILES.config);
  const configBefore = await Deno.readTextFile(configPath);
  await runExperiment(tinyExperiment(root, { stages: ["report"] }), {
    log: () => {},
    progressWrite: () => {},
    handleSignals: false,
  });
  assertEquals(await Deno.readTextFile(configPath), configBefore);
  assert((await Deno.readTextFile(join(root, "run", RUN_FILES.report))).includes("iteration 6"));
  const badSplit = await cli(["sample", ckpt, "--split", "dev"]);
  assertEquals(badSplit.code, 2);
  assert(badSplit.stderr.includes('--split: expected "train", "val" or "test"'), badSplit.stderr);
  // The CS231n layout (the synthetic set here) has no test split: refused by name.
  const noTest = await cli(["sample", ckpt, "--split", "test"]);
  assertEquals(noTest.code, 2);
  assert(noTest.stderr.includes("--split: ") && noTest.stderr.includes('has no "test" split'));
  await Deno.remove(root, { recursive: true });
});

Deno.test("a fresh train never overwrites a trained run unless forced", async () => {
  const root = await Deno.makeTempDir();
  const quiet = { log: () => {}, progressWrite: () => {}, handleSignals: false };
  const config = tinyExperiment(root, {
    stages: ["train"],
    train: { numEpochs: 1, batchSize: 50, workers: 1 },
  });
  await runExperiment(config, quiet);
  const ckpt = join(root, "run", RUN_FILES.checkpoint);
  const before = await Deno.readFile(ckpt);
  await assertRejects(
    () => runExperiment(config, quiet),
    InputError,
    `this run directory already holds a trained run; continue it with deno task resume ${
      join(root, "run")
    }, start over with --force`,
  );
  assertEquals(await Deno.readFile(ckpt), before);
  const again = await runExperiment(config, { ...quiet, overwrite: true });
  assertEquals(again.iterations, 6);
  const forced = await cli([
    "train",
    "--force",
    "--output.dir",
    join(root, "run"),
    "--data.dir",
    join(root, "data"),
    "--stages",
    "train",
    "--train.numEpochs",
    "1",
    "--model.hiddenDim",
    "16",
    "--model.wordvecDim",
    "8",
    "--train.workers",
    "1",
  ]);
  assertEquals(forced.code, 0, forced.stderr);
  const refused = await cli([
    "train",
    "--output.dir",
    join(root, "run"),
    "--data.dir",
    join(root, "data"),
    "--stages",
    "train",
  ]);
  assertEquals(refused.code, 2);
  assert(refused.stderr.includes("start over with --force"), refused.stderr);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a streamed run (data.stream) trains and evaluates exactly like an in-memory one", async () => {
  const root = await Deno.makeTempDir();
  const quiet = { log: () => {}, progressWrite: () => {}, handleSignals: false };
  const run = async (stream: boolean) => {
    const config = tinyExperiment(root, {
      output: { dir: join(root, stream ? "streamed" : "memory") },
      stages: ["train", "evaluate"],
    });
    config.data.stream = stream;
    const lines: string[] = [];
    await runExperiment(config, { ...quiet, log: (l) => lines.push(l) });
    assertEquals(lines.some((l) => l.startsWith("Streaming training minibatches")), stream);
    const ckpt = await loadCheckpoint(join(config.output.dir, RUN_FILES.checkpoint));
    const ev = JSON.parse(await Deno.readTextFile(join(config.output.dir, RUN_FILES.evaluation)));
    return { ckpt, ev: ev.evaluations[0] };
  };
  const memory = await run(false), streamed = await run(true);
  assertEquals(streamed.ckpt.solver!.lossHistory, memory.ckpt.solver!.lossHistory);
  assertEquals(streamed.ckpt.solver!.valLossHistory, memory.ckpt.solver!.valLossHistory);
  assertEquals(streamed.ckpt.model.flat, memory.ckpt.model.flat);
  assertEquals(streamed.ev.greedy, memory.ev.greedy);
  assertEquals(streamed.ev.baseline, memory.ev.baseline);
  assertEquals(
    streamed.ev.images.map((i: { greedy: string }) => i.greedy),
    memory.ev.images.map((i: { greedy: string }) => i.greedy),
  );
  const bad = tinyExperiment(root, { output: { dir: join(root, "bad") }, data: { maxTrain: 10 } });
  bad.data.stream = true;
  await assertRejects(
    () => runExperiment(bad, quiet),
    InputError,
    "data.maxTrain: cannot be combined with data.stream",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("train.shards fixes the result for any worker count, and changes it when changed", async () => {
  const root = await Deno.makeTempDir();
  const lines: string[] = [];
  const quiet = {
    log: (l: string) => lines.push(l),
    progressWrite: () => {},
    handleSignals: false,
  };
  const losses = async (shards: number, workers: number) => {
    const dir = join(root, `s${shards}w${workers}`);
    const config = tinyExperiment(root, {
      output: { dir },
      stages: ["train"],
      train: { numEpochs: 1, batchSize: 50, workers, shards },
    });
    lines.length = 0;
    await runExperiment(config, quiet);
    return (await loadCheckpoint(join(dir, RUN_FILES.checkpoint))).solver!.lossHistory;
  };
  const training = () => lines.find((l) => l.startsWith("Training ")) ?? "";
  const two = await losses(2, 1);
  assertEquals(await losses(2, 2), two);
  assert(training().includes("2 worker(s),") || training().endsWith("2 worker(s)"), training());
  const three = await losses(3, 1);
  assertEquals(await losses(3, 2), three);
  // 3 shards do not divide among 2 workers: they compute each shard's step together.
  assert(training().includes("2 worker(s) sharing each step"), training());
  assert(
    JSON.stringify(three) !== JSON.stringify(two),
    "a different shard count sums in another order",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("resume continues the run directory it is given, also after the run was moved", async () => {
  const root = await Deno.makeTempDir();
  await runExperiment(
    tinyExperiment(root, { stages: ["train"], train: { numEpochs: 1, batchSize: 50, workers: 1 } }),
    {
      log: () => {},
      progressWrite: () => {},
      handleSignals: false,
    },
  );
  const moved = join(root, "moved");
  await Deno.rename(join(root, "run"), moved);
  const r = await cli(["resume", moved, "--train.numEpochs=2"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await loadCheckpoint(join(moved, RUN_FILES.checkpoint))).solver!.iteration, 12);
  await assertRejects(() => Deno.stat(join(root, "run")), Deno.errors.NotFound);
  await Deno.remove(root, { recursive: true });
});

Deno.test("metrics.jsonl logs the learning rate each step used, and one final evaluation per run", async () => {
  const root = await Deno.makeTempDir();
  const quiet = { log: () => {}, progressWrite: () => {}, handleSignals: false };
  const config = tinyExperiment(root, {
    stages: ["train", "evaluate"],
    train: {
      numEpochs: 1,
      batchSize: 50,
      printEvery: 1,
      lrDecay: 0.5,
      learningRate: 4e-3,
      workers: 1,
    },
  });
  await runExperiment(config, quiet);
  const resumed = structuredClone(config);
  resumed.train.numEpochs = 2;
  await runExperiment(resumed, { ...quiet, resume: true });
  const records = await readMetricsLog(join(root, "run", RUN_FILES.metrics));
  const lr = (it: number) =>
    records.find((r) => r.kind === "train" && r.iteration === it) as { learningRate: number };
  assertEquals(lr(6).learningRate, 4e-3); // the last step of epoch 1, before the decay
  assertEquals(lr(7).learningRate, 2e-3);
  const finals = records.filter((r) => r.kind === "eval" && r.checkpoint !== "training");
  assertEquals(finals.map((r) => (r as { decoder: string }).decoder), ["greedy", "beam"]);
  assertEquals(finals.map((r) => r.iteration), [12, 12]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("stages without train need a trained run, and are refused before anything is written", async () => {
  const root = await Deno.makeTempDir();
  const config = tinyExperiment(root, { stages: ["report"] });
  await assertRejects(
    () => runExperiment(config, { log: () => {}, handleSignals: false }),
    InputError,
    "no trained checkpoint for the report stage",
  );
  assertEquals([...Deno.readDirSync(join(root, "run"))].map((e) => e.name), []);
  await Deno.remove(root, { recursive: true });
});

for (const cellType of ["gru", "transformer"]) {
  Deno.test(`a ${cellType} run trains, evaluates, writes its checkpoint and resumes, as an lstm run does`, async () => {
    const root = await Deno.makeTempDir();
    const model = { cellType, hiddenDim: 32, wordvecDim: 16, numHeads: 2, ffDim: 32 };
    const options = { log: () => {}, progressWrite: () => {}, isTTY: false, handleSignals: false };
    const result = await runExperiment(tinyExperiment(root, { model }), options);
    assertEquals(result.iterations, 12);
    const run = join(root, "run");
    const ckpt = await loadCheckpoint(join(run, RUN_FILES.checkpoint));
    assertEquals(ckpt.model.config.cellType, cellType);
    const ev = JSON.parse(await Deno.readTextFile(join(run, RUN_FILES.evaluation))).evaluations[0];
    assert(typeof ev.greedy.cider === "number" && typeof ev.beam.bleu4 === "number", "scored");
    // Two more epochs from the checkpoint.
    const more = tinyExperiment(root, {
      model,
      train: { numEpochs: 4, batchSize: 50, workers: 1 },
    });
    const resumed = await runExperiment(more, { ...options, resume: true });
    assertEquals(resumed.iterations, 24);
    await Deno.remove(root, { recursive: true });
  });
}

Deno.test("a Transformer with fewer positions than the captions is refused before training", async () => {
  const root = await Deno.makeTempDir();
  const cfg = tinyExperiment(root, {
    model: { cellType: "transformer", wordvecDim: 16, numHeads: 2, ffDim: 32, maxLength: 12 },
  });
  // Past resolveExperiment's own check of evaluate.maxLength: the captions are longer still.
  cfg.model.maxLength = 3;
  cfg.evaluate.maxLength = 3;
  cfg.train.scst.maxLength = 3;
  await assertRejects(
    () => runExperiment(cfg, { log: () => {}, isTTY: false, handleSignals: false }),
    InputError,
    "model.maxLength: the captions have",
  );
  await Deno.remove(root, { recursive: true });
});
