/**
 * The hostile-user probe of issue 12, kept: every case a careful user was able to break
 * recap with — data loss, hangs, stack traces, bad input accepted silently, unhelpful
 * messages — run again, each with the behaviour the README promises (one line naming the file
 * and field, exit 2, nothing lost; or the documented exit code). docs/errors.md lists them.
 * @module
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { type H5File, withH5File } from "../pipeline/io/h5.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { loadCheckpoint, saveCheckpoint } from "../pipeline/train/checkpoint.ts";
import { WorkerFailure } from "../workers/pool.ts";
import { assert, assertEquals } from "./assert.ts";
import { faultyWorkerUrl } from "./faulty_worker.ts";
import { cli } from "./cli_run.ts";
import {
  CLI,
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
  const trained = await cli(["train", experiment]);
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
  const run = await cli([
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
    const second = await cli(["resume", runDir]);
    assertOneLine(second, `in use by another recap process (pid ${first.child.pid}`);
    const third = await cli(["train", experiment, "--force"]);
    assertOneLine(third, `in use by another recap process (pid ${first.child.pid}`);
  } finally {
    first.child.kill("SIGKILL");
    await first.done;
  }
  // The killed process's lock is taken over by the next run.
  assert((await listDir(runDir)).includes(".lock"), "the killed run left its lock");
  const next = await cli(["train", experiment, "--force", "--train.numEpochs=1"]);
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
    const run = await cli(["train", experiment, "--force", ...overrides]);
    assertOneLine(run, message);
    assertEquals(await snapshot(runDir), before, "checkpoints, config and log are untouched");
  });
}

// 4. A rejected resume writes nothing.
Deno.test("probe: a resume that is refused leaves metrics.jsonl and the run as they were", async () => {
  const { runDir: trained } = await setup;
  const { runDir } = await copyRun(trained);
  const before = await snapshot(runDir);
  const wrongModel = await cli(["resume", runDir, "--model.hiddenDim=64"]);
  assertOneLine(wrongModel, "model.hiddenDim");
  assertEquals(await snapshot(runDir), before);
  // A checkpoint of another run (another vocabulary) in the directory.
  const other = freshPath("other-data");
  await tinyDataset(other, 11);
  const foreignRun = freshPath("foreign");
  const foreign = await cli([
    "train",
    await writeExperiment(
      `${foreignRun}.json`,
      tinyExperiment(other, foreignRun, { train: { numEpochs: 1 } }),
    ),
  ]);
  assertEquals(foreign.code, 0, foreign.stderr.join("\n"));
  await Deno.copyFile(join(foreignRun, "checkpoint.h5"), join(runDir, "checkpoint.h5"));
  const withForeign = await snapshot(runDir);
  const refused = await cli(["resume", runDir]);
  assertOneLine(refused, "vocabulary");
  assertEquals(await snapshot(runDir), withForeign);
});

/** A copy of the tiny dataset, changed by `change` (to break it in one way). */
async function brokenDataset(change: (dir: string) => Promise<void>): Promise<string> {
  const { data } = await setup;
  const dir = freshPath("broken-data");
  await Deno.mkdir(dir);
  for (const name of await listDir(data)) await Deno.copyFile(join(data, name), join(dir, name));
  await change(dir);
  return dir;
}

/** Rewrites datasets of a dataset's captions file (null removes one). */
async function rewriteCaptions(dir: string, changes: Record<string, Tensor | null>): Promise<void> {
  const path = join(dir, "coco2014_captions.h5");
  const all = await withH5File(path, "r", (f) => f.keys().map((k) => [k, f.read(k)] as const));
  await withH5File(path, "w", (f) => {
    for (const [k, t] of all) {
      const v = k in changes ? changes[k] : t;
      if (v) f.write(k, v);
    }
  });
}

/** The tiny dataset's train features with one value changed. */
async function poisonFeatures(dir: string, value: number): Promise<void> {
  const path = join(dir, "train2014_vgg16_fc7_pca.h5");
  const features = await withH5File(path, "r", (f) => f.read("features", "float32"));
  features.data[3 * 512 + 7] = value;
  await withH5File(path, "w", (f) => f.write("features", features));
}

/** A tiny experiment on a dataset, written to a file: the arguments of `train`. */
async function experimentOn(dataDir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const runDir = freshPath("run");
  return await writeExperiment(`${runDir}.json`, tinyExperiment(dataDir, runDir, extra));
}

/** A checkpoint of the trained run, changed by `change` (attributes or datasets rewritten). */
async function brokenCheckpoint(change: (f: H5File) => void): Promise<string> {
  const { runDir } = await setup;
  const path = `${freshPath("ckpt")}.h5`;
  await Deno.copyFile(join(runDir, "checkpoint.h5"), path);
  await withH5File(path, "a", change);
  return path;
}

// 5, 6, 7, 8, 10: bad input, each refused on one line with exit 2 (nothing else to check).
const REFUSED: [string, () => Promise<string[]>, string | RegExp][] = [
  // 5. Bounds on what decoding may be asked for.
  [
    "an in-training maxLength of 100000000",
    async () => ["train", await experimentOn((await setup).data), "--evaluate.maxLength=100000000"],
    "--evaluate.maxLength: expected an integer in [1, 100]",
  ],
  [
    "evaluate --maxLength 1000000000",
    async () => [
      "evaluate",
      join((await setup).runDir, "checkpoint.h5"),
      "--maxLength",
      "1000000000",
    ],
    "--maxLength: expected an integer in [1, 100]",
  ],
  // 6. Anything but a regular file of a sane size is refused before it is read.
  [
    "a vocabulary that is /dev/zero",
    async () => {
      const dir = await brokenDataset(async (d) => {
        await Deno.remove(join(d, "coco2014_vocab.json"));
        await Deno.symlink("/dev/zero", join(d, "coco2014_vocab.json"));
      });
      return ["train", await experimentOn(dir)];
    },
    "coco2014_vocab.json: expected a file, got a device",
  ],
  [
    "a URL file that is a FIFO",
    async () => {
      const dir = await brokenDataset(async (d) => {
        await Deno.remove(join(d, "val2014_urls.txt"));
        await new Deno.Command("mkfifo", { args: [join(d, "val2014_urls.txt")] }).output();
      });
      return ["train", await experimentOn(dir)];
    },
    "val2014_urls.txt: expected a file, got a FIFO",
  ],
  [
    "an experiment file that is /dev/zero",
    () => Promise.resolve(["train", "/dev/zero"]),
    "/dev/zero: expected an experiment JSON file, got a device",
  ],
  [
    "a checkpoint that is a FIFO",
    async () => {
      const path = freshPath("fifo.h5");
      await new Deno.Command("mkfifo", { args: [path] }).output();
      return ["evaluate", path];
    },
    "expected a file, got a FIFO",
  ],
  [
    "a features file that is a directory",
    async () => {
      const dir = await brokenDataset(async (d) => {
        await Deno.remove(join(d, "val2014_vgg16_fc7_pca.h5"));
        await Deno.mkdir(join(d, "val2014_vgg16_fc7_pca.h5"));
      });
      return ["train", await experimentOn(dir)];
    },
    "val2014_vgg16_fc7_pca.h5: expected a file, got a directory",
  ],
  [
    "a 50 MB experiment file",
    async () => {
      const path = `${freshPath("huge")}.json`;
      await Deno.writeTextFile(path, JSON.stringify({ description: "x".repeat(50e6) }));
      return ["train", path];
    },
    /the file is 50 MB, more than the 1\.0 MB accepted; an experiment file lists only what it changes/,
  ],
  // 7. What used to end in a stack trace.
  [
    "sample --n 1000000000",
    async () => ["sample", join((await setup).runDir, "checkpoint.h5"), "--n", "1000000000"],
    "--n: expected an integer in [1, 10000]",
  ],
  [
    "sample --beamSize 1000000",
    async () => [
      "sample",
      join((await setup).runDir, "checkpoint.h5"),
      "--beamSize",
      "1000000",
      "--n",
      "1",
    ],
    "--beamSize: expected an integer in [1, 50]",
  ],
  [
    "sample --n -1",
    async () => ["sample", join((await setup).runDir, "checkpoint.h5"), "--n", "-1"],
    "--n: expected an integer in [1, 10000]",
  ],
  [
    "a model too large for memory",
    async () => ["train", await experimentOn((await setup).data), "--model.hiddenDim=1000000"],
    /model\.hiddenDim: training would need about [\d.]+ GiB/,
  ],
  [
    "word vectors too large for memory",
    async () => ["train", await experimentOn((await setup).data), "--model.wordvecDim=1000000000"],
    /model\.hiddenDim: training would need about .*lower model\.hiddenDim or model\.wordvecDim/,
  ],
  [
    "a Transformer too large for memory",
    async () => [
      "train",
      await experimentOn((await setup).data),
      "--model.cellType=transformer",
      "--model.ffDim=1000000000",
    ],
    /model\.wordvecDim: training would need about .*lower model\.wordvecDim, model\.ffDim or model\.numLayers/,
  ],
  [
    "a batch too large for memory",
    async () => ["train", await experimentOn((await setup).data), "--train.batchSize=1000000000"],
    /train\.batchSize: training would need about .*lower train\.batchSize/,
  ],
  [
    "an empty train split",
    async () => {
      const dir = await brokenDataset((d) =>
        rewriteCaptions(d, {
          train_captions: Tensor.zeros([0, 17], "int32"),
          train_image_idxs: Tensor.zeros([0], "int32"),
        })
      );
      return ["train", await experimentOn(dir)];
    },
    "the train split has no captions, and training needs some",
  ],
  [
    "an empty val split to evaluate",
    async () => {
      const dir = await brokenDataset((d) =>
        rewriteCaptions(d, {
          val_captions: Tensor.zeros([0, 17], "int32"),
          val_image_idxs: Tensor.zeros([0], "int32"),
        })
      );
      return ["train", await experimentOn(dir, { stages: ["train", "evaluate"] })];
    },
    "the val split has no captions, and evaluate.splits needs some",
  ],
  [
    "NaN in the training features",
    async () => ["train", await experimentOn(await brokenDataset((d) => poisonFeatures(d, NaN)))],
    /train2014_vgg16_fc7_pca\.h5 \(dataset "features"\): row 3 holds NaN at column 7; features must be finite/,
  ],
  [
    "a checkpoint whose features are narrower than the data's",
    async () => {
      const { data } = await setup;
      const path = `${freshPath("narrow")}.h5`;
      const vocab = JSON.parse(await Deno.readTextFile(join(data, "coco2014_vocab.json")));
      const model = new CaptioningRNN({ wordToIdx: vocab.word_to_idx, inputDim: 8 });
      await saveCheckpoint(path, model, {
        experiment: resolveExperiment(tinyExperiment(data, freshPath("run")), "narrow.json"),
      });
      return ["evaluate", path];
    },
    /it reads 8-d image features but .* has 512-d ones/,
  ],
  [
    "a checkpoint with NaN weights",
    async () => [
      "evaluate",
      await brokenCheckpoint((f) => {
        const w = f.read("W_vocab", "float32");
        w.data[5] = NaN;
        f.writeRows("W_vocab", 0, w.data);
      }),
    ],
    /dataset "W_vocab" holds NaN at element 5/,
  ],
  [
    "a checkpoint whose saved experiment is invalid",
    async () => [
      "evaluate",
      await brokenCheckpoint((f) => {
        const exp = f.getJsonAttr("/", "experiment") as Record<string, Record<string, unknown>>;
        exp.train.batchSize = "ten";
        f.setJsonAttr("/", "experiment", exp);
      }),
    ],
    /its saved experiment: train\.batchSize: expected a positive integer, got "ten"/,
  ],
  [
    "dataset synth --train 1000000000",
    () =>
      Promise.resolve(["dataset", "synth", "--dir", freshPath("synth"), "--train", "1000000000"]),
    "--train: expected an integer in [1, 1000000]",
  ],
  // 8. What used to be accepted silently.
  [
    "a vocabulary word that is not a string",
    async () => {
      const dir = await brokenDataset(async (d) => {
        const path = join(d, "coco2014_vocab.json");
        const v = JSON.parse(await Deno.readTextFile(path));
        v.idx_to_word[5] = 12345;
        await Deno.writeTextFile(path, JSON.stringify(v));
      });
      return ["train", await experimentOn(dir)];
    },
    "idx_to_word[5] is 12345; every word must be a non-empty string",
  ],
  [
    "resume --output.dir",
    async () => ["resume", (await copyRun((await setup).runDir)).runDir, "--output.dir=elsewhere"],
    "--output.dir: a resumed run stays in its directory",
  ],
  [
    "a resume that shrinks the run",
    async () => ["resume", (await copyRun((await setup).runDir)).runDir, "--train.batchSize=150"],
    /train\.numEpochs: the checkpoint is at iteration 30, past the 2 iterations/,
  ],
  [
    "a checkpoint whose solver iteration is a word",
    async () => {
      const { runDir } = await copyRun((await setup).runDir);
      await withH5File(join(runDir, "checkpoint.h5"), "a", (f) => {
        f.setJsonAttr("/", "solver", {
          ...(f.getJsonAttr("/", "solver") as object),
          iteration: "ten",
        });
      });
      return ["resume", runDir];
    },
    'solver.iteration: expected a non-negative integer, got "ten"',
  ],
  [
    "an integer written 0x19",
    async () => ["train", await experimentOn((await setup).data), "--train.batchSize=0x19"],
    '--train.batchSize: expected a positive integer, got "0x19"',
  ],
  [
    'an integer written " 2"',
    async () => ["train", await experimentOn((await setup).data), "--train.numEpochs", " 2"],
    '--train.numEpochs: expected a positive integer, got " 2"',
  ],
  // 10. Messages that point at the problem.
  [
    "1e999 in an experiment file",
    async () => {
      const path = `${freshPath("big-number")}.json`;
      await Deno.writeTextFile(path, '{\n  "train": { "learningRate": 1e999 }\n}\n');
      return ["train", path];
    },
    "invalid JSON at line 2, column 30: the number 1e999 is too large for a 64-bit float",
  ],
  [
    "NaN in an experiment file",
    async () => {
      const path = `${freshPath("nan")}.json`;
      await Deno.writeTextFile(path, '{\n  "train": {\n    "gradClip": NaN\n  }\n}\n');
      return ["train", path];
    },
    'invalid JSON at line 3, column 17: unexpected "N" (NaN and Infinity are not JSON numbers)',
  ],
  [
    "a checkpoint whose update rule is unknown",
    async () => {
      const { runDir } = await copyRun((await setup).runDir);
      await withH5File(join(runDir, "checkpoint.h5"), "a", (f) => {
        f.setJsonAttr("/", "optimizer", {
          ...(f.getJsonAttr("/", "optimizer") as object),
          rule: "adamw",
        });
      });
      return ["resume", runDir];
    },
    'optimizer.rule: expected one of sgd, sgd_momentum, rmsprop, adam, got "adamw"',
  ],
  [
    "stream + maxTrain in an experiment file",
    async () => [
      "train",
      await experimentOn((await setup).data, { data: { stream: true, maxTrain: 50 } }),
    ],
    /run-\d+\.json: data\.maxTrain: cannot be combined with data\.stream/,
  ],
];

for (const [what, args, message] of REFUSED) {
  Deno.test(`probe: ${what} is refused with one line and exit 2`, async () => {
    assertOneLine(await cli(await args()), message);
  });
}

Deno.test("probe: an experiment file with a byte-order mark is read", async () => {
  const path = `${freshPath("bom")}.json`;
  const { data } = await setup;
  await Deno.writeTextFile(path, "\ufeff" + JSON.stringify(tinyExperiment(data, freshPath("run"))));
  const run = await cli(["train", path]);
  assertEquals(run.code, 0, run.stderr.join("\n"));
});

Deno.test("probe: a bad backend in the environment is refused with one line and exit 2", async () => {
  const { runDir } = await setup;
  const checkpoint = join(runDir, "checkpoint.h5");
  for (
    const [env, args, message] of [
      [
        { RECAP_BACKEND: "bogus" },
        ["evaluate", checkpoint],
        'RECAP_BACKEND: unknown backend "bogus"',
      ],
      [
        { RECAP_BLAS: "/nonexistent.so" },
        ["train", await experimentOn((await setup).data), "--train.backend=blas"],
        "RECAP_BLAS=/nonexistent.so:",
      ],
    ] as const
  ) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      env,
      stdout: "null",
      stderr: "piped",
    }).output();
    const lines = errorLines(new TextDecoder().decode(r.stderr));
    assertEquals(r.code, 2, lines.join("\n"));
    assertEquals(lines.length, 1, lines.join("\n"));
    assert(lines[0].includes(message), lines[0]);
  }
});

Deno.test("probe: SIGHUP (the terminal closed) stops training with a checkpoint, like SIGTERM", async () => {
  const { data } = await setup;
  const runDir = freshPath("hup");
  const experiment = await writeExperiment(
    `${runDir}.json`,
    tinyExperiment(data, runDir, { train: { numEpochs: 50 } }),
  );
  const run = spawnCli(["train", experiment]);
  await waitForTrainRecord(runDir, 1);
  run.child.kill("SIGHUP");
  const done = await run.done;
  assertEquals(done.code, 130, done.stderr);
  assert((await listDir(runDir)).includes("checkpoint.h5"));
});

Deno.test("probe: a worker stuck in a job stops the run with the worker and phase named; the last good checkpoint is saved", async () => {
  const { data } = await setup;
  const runDir = freshPath("stuck");
  const config = resolveExperiment(
    tinyExperiment(data, runDir, {
      train: { workers: 2, workerTimeout: 2, checkpointEvery: 1_000_000 },
    }),
    "stuck.json",
  );
  const err = await runExperiment(config, {
    log: () => {},
    progressWrite: () => {},
    isTTY: false,
    handleSignals: false,
    workerUrl: faultyWorkerUrl({ step: 5, worker: 1, phase: "loss", hang: "wait" }),
  }).then(() => null, (e: Error) => e);
  assert(err instanceof WorkerFailure, String(err));
  assert(
    err.message.includes("Compute worker 1 did not finish the loss phase within 2 s"),
    err.message,
  );
  const ckpt = await loadCheckpoint(join(runDir, "checkpoint.h5"));
  assertEquals(ckpt.solver!.iteration, 4, "the parameters of the last finished step are kept");
});

Deno.test("probe cleanup: remove the temporary runs", async () => {
  await Deno.remove(root, { recursive: true });
});
