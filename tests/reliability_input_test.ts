/**
 * The bad-input matrix through the CLI: every case exits 2 with one line on stderr that names
 * the file or field and says what to do, and shows a stack trace only with --debug.
 * The loaders' own checks are tested in detail in config_test.ts, data_coco_test.ts,
 * data_h5_test.ts and checkpoint_test.ts; these tests check what a user of the CLI sees.
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { withH5File } from "../pipeline/io/h5.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  errorLines,
  listDir,
  runCli,
  tinyDataset,
  tinyExperiment,
  writeExperiment,
} from "./reliability_fixtures.ts";

const setup = (async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_input_" });
  const data = await tinyDataset(join(root, "data"));
  // A finished one-epoch run, for the resume and evaluate cases.
  const runDir = join(root, "run");
  const exp = await writeExperiment(
    join(root, "run.json"),
    tinyExperiment(data, runDir, { train: { numEpochs: 1 } }),
  );
  const r = await runCli(["train", exp]);
  assertEquals(r.code, 0, r.stderr);
  return { root, data, runDir };
})();

let counter = 0;

/** A copy of the tiny dataset, changed by `change`. */
async function brokenData(change: (dir: string) => Promise<void>): Promise<string> {
  const { root, data } = await setup;
  const dir = join(root, `data-${++counter}`);
  await Deno.mkdir(dir);
  for await (const e of Deno.readDir(data)) {
    await Deno.copyFile(join(data, e.name), join(dir, e.name));
  }
  await change(dir);
  return dir;
}

/** Rewrites one dataset of an HDF5 file (the others are kept). */
async function rewriteDataset(
  path: string,
  name: string,
  edit: (t: Tensor) => Tensor,
): Promise<void> {
  const all = await withH5File(path, "r", (f) => f.keys().map((k) => [k, f.read(k)] as const));
  await withH5File(path, "w", (f) => {
    for (const [k, t] of all) f.write(k, k === name ? edit(t) : t);
  });
}

/** An experiment file training on `dataDir` as COCO data (never regenerated). */
async function experimentOn(dataDir: string, extra: Record<string, unknown> = {}) {
  const { root } = await setup;
  const n = ++counter;
  return await writeExperiment(
    join(root, `exp-${n}.json`),
    tinyExperiment(dataDir, join(root, `run-${n}`), {
      data: { source: "coco" },
      ...extra,
    }),
  );
}

/** A file with the given text, in the test's directory. */
async function fileWith(name: string, text: string): Promise<string> {
  const path = join((await setup).root, name);
  await Deno.writeTextFile(path, text);
  return path;
}

const CAPTIONS = "coco2014_captions.h5", TRAIN_FEATURES = "train2014_vgg16_fc7_pca.h5";

/** Each case: a name, the CLI arguments it builds, and the one line expected. */
const CASES: [string, () => Promise<string[]>, RegExp][] = [
  [
    "malformed JSON",
    async () => ["train", await fileWith("malformed.json", '{ "train": { "batchSize": 10, }\n')],
    /malformed\.json: invalid JSON at line 1/,
  ],
  [
    "an unknown key",
    async () => ["train", await fileWith("unknown.json", '{ "train": { "learnigRate": 0.1 } }')],
    /unknown\.json: .*train\.learnigRate.*(unknown|did you mean).*learningRate/,
  ],
  [
    "a value of the wrong type",
    async () => ["train", await fileWith("type.json", '{ "model": { "hiddenDim": "big" } }')],
    /type\.json: model\.hiddenDim: expected a positive integer, got "big"/,
  ],
  [
    "a value out of range",
    async () => ["train", await fileWith("range.json", '{ "train": { "batchSize": 0 } }')],
    /range\.json: train\.batchSize: expected a positive integer, got 0/,
  ],
  [
    "an out-of-range override",
    async () => ["train", await experimentOn((await setup).data), "--train.momentum=1.5"],
    /--train\.momentum: .*1\.5/,
  ],
  [
    "a missing data dir (source coco)",
    async () => ["train", await experimentOn(join((await setup).root, "no-such-dir"))],
    /no-such-dir\/coco2014_captions\.h5: file not found; put the CS231n COCO captioning files in .*or use data\.source "synthetic"/,
  ],
  [
    "a corrupt HDF5 file",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) => Deno.writeTextFile(join(d, CAPTIONS), "<html>404</html>")),
      ),
    ],
    /coco2014_captions\.h5: not an HDF5 file/,
  ],
  [
    "a truncated HDF5 file",
    async () => [
      "train",
      await experimentOn(
        await brokenData(async (d) => {
          const bytes = await Deno.readFile(join(d, TRAIN_FEATURES));
          await Deno.writeFile(join(d, TRAIN_FEATURES), bytes.subarray(0, bytes.length - 5000));
        }),
      ),
    ],
    /train2014_vgg16_fc7_pca\.h5: the file is truncated/,
  ],
  [
    "an empty HDF5 file",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) =>
          Deno.writeFile(join(d, "val2014_vgg16_fc7_pca.h5"), new Uint8Array())
        ),
      ),
    ],
    /val2014_vgg16_fc7_pca\.h5: .*(empty|not an HDF5 file|truncated)/,
  ],
  [
    "features of the wrong shape",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) =>
          withH5File(
            join(d, TRAIN_FEATURES),
            "w",
            (f) => f.write("features", Tensor.zeros([60, 100], "float32")),
          )
        ),
      ),
    ],
    /train2014_vgg16_fc7_pca\.h5: dataset "features" has shape \[60, 100\], expected \[\*, 512\]/,
  ],
  [
    "captions of the wrong dtype",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) =>
          rewriteDataset(join(d, CAPTIONS), "val_captions", (t) => t.astype("float64"))
        ),
      ),
    ],
    /coco2014_captions\.h5: dataset "val_captions" has dtype float64, expected int32/,
  ],
  [
    "a caption id outside the vocabulary",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) =>
          rewriteDataset(join(d, CAPTIONS), "train_captions", (t) => {
            t.data[17 * 7 + 2] = 9999;
            return t;
          })
        ),
      ),
    ],
    /coco2014_captions\.h5: dataset "train_captions" holds word id 9999 at row 7, outside the vocabulary .*; use the vocabulary file that came with the captions/,
  ],
  [
    "an image index out of range",
    async () => [
      "train",
      await experimentOn(
        await brokenData((d) =>
          rewriteDataset(join(d, CAPTIONS), "val_image_idxs", (t) => {
            t.data[3] = 20;
            return t;
          })
        ),
      ),
    ],
    /coco2014_captions\.h5: dataset "val_image_idxs" holds image index 20, outside the 20 rows of val2014 features; use the features file that matches the captions/,
  ],
  [
    "a checkpoint of another vocabulary (resume on other data)",
    async () => {
      const other = join((await setup).root, "other-data");
      await writeSyntheticDataset({
        dir: other,
        numTrain: 30,
        numVal: 10,
        seed: 99,
        images: false,
      });
      return ["resume", (await setup).runDir, `--data.dir=${other}`];
    },
    /Cannot load checkpoint .*checkpoint\.h5: its vocabulary \(\d+ words\) differs from the data's \(\d+ words\) at index \d+.*; use the dataset the checkpoint was trained on/,
  ],
  [
    "a checkpoint of another model size (resume with a changed config)",
    async () => ["resume", (await setup).runDir, "--model.hiddenDim=32"],
    /Cannot load checkpoint .*checkpoint\.h5: model\.hiddenDim is 16 but the experiment asks for 32/,
  ],
  [
    "a resume with another update rule",
    async () => ["resume", (await setup).runDir, "--train.updateRule=sgd"],
    /Cannot resume from .*checkpoint\.h5: it was trained with train\.updateRule "adam" but the experiment asks for "sgd"; resume with --train\.updateRule=adam, or start a new run/,
  ],
  [
    "a truncated checkpoint (evaluate)",
    async () => {
      const { root, runDir } = await setup;
      const bytes = await Deno.readFile(join(runDir, "checkpoint.h5"));
      const path = join(root, "truncated.h5");
      await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
      return ["evaluate", path];
    },
    /Cannot load checkpoint .*truncated\.h5: .*truncated.*use an earlier checkpoint/,
  ],
  [
    "an output dir that cannot be created (a file is in the way)",
    async () => {
      const { root, data } = await setup;
      const file = await fileWith("not-a-dir", "");
      const exp = await writeExperiment(
        join(root, "blocked.json"),
        tinyExperiment(data, join(file, "run")),
      );
      return ["train", exp];
    },
    /not-a-dir\/run: the output directory is not writable \(.*\); set output\.dir to a writable place/,
  ],
];

for (const [what, build, pattern] of CASES) {
  Deno.test(`CLI: ${what} exits 2 with one line naming it, a stack trace only with --debug`, async () => {
    const args = await build();
    const r = await runCli(args);
    assertEquals(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
    const lines = errorLines(r.stderr);
    assertEquals(lines.length, 1, `${what}: one line\n${r.stderr}`);
    assert(lines[0].startsWith("error: "), lines[0]);
    assert(pattern.test(lines[0]), `${what}: ${lines[0]}`);
    assert(!r.stderr.includes("    at "), `${what}: no stack trace`);
    if (what.startsWith("malformed")) {
      // --debug adds the stack trace (same exit code).
      const d = await runCli([...args, "--debug"]);
      assertEquals(d.code, 2);
      assert(d.stderr.includes("    at "), `--debug shows the stack: ${d.stderr}`);
    }
  });
}

Deno.test("CLI: a resume rejected for bad input leaves the run's config.json as it was", async () => {
  const { root, runDir } = await setup;
  const before = await Deno.readTextFile(join(runDir, "config.json"));
  const other = join(root, "other-data-2");
  await writeSyntheticDataset({ dir: other, numTrain: 30, numVal: 10, seed: 98, images: false });
  const overrides = [`--data.dir=${other}`, "--model.wordvecDim=4", "--train.updateRule=sgd"];
  for (const override of overrides) {
    const r = await runCli(["resume", runDir, override]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(await Deno.readTextFile(join(runDir, "config.json")), before, override);
  }
});

/** Whether this process may mount a tmpfs (root in a privileged container, typically). */
function canMountTmpfs(): boolean {
  try {
    const dir = Deno.makeTempDirSync({ prefix: "recap_mount_probe_" });
    const ok = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
    if (ok) new Deno.Command("umount", { args: [dir] }).outputSync();
    Deno.removeSync(dir);
    return ok;
  } catch {
    return false;
  }
}

const MOUNT = canMountTmpfs();

/** Runs `fn` with a fresh tmpfs of `options` mounted on a new directory. */
async function withTmpfs(options: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "recap_tmpfs_" });
  const m = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", options, "tmpfs", dir] })
    .output();
  assert(m.success, new TextDecoder().decode(m.stderr));
  try {
    await fn(dir);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir);
  }
}

Deno.test({
  name: "CLI: an output dir on a read-only file system exits 2 with one line",
  ignore: !MOUNT,
  fn: async () => {
    const { root, data } = await setup;
    await withTmpfs("ro,size=64k", async (dir) => {
      const exp = await writeExperiment(join(root, "ro.json"), tinyExperiment(data, dir));
      const r = await runCli(["train", exp]);
      assertEquals(r.code, 2, r.stderr);
      const lines = errorLines(r.stderr);
      assertEquals(lines.length, 1, r.stderr);
      assert(
        /the output directory is not writable \(.*Read-only file system.*\); set output\.dir/
          .test(lines[0]),
        lines[0],
      );
    });
  },
});

Deno.test({
  name: "CLI: a disk that fills up during a checkpoint exits 2 and keeps the previous checkpoint",
  ignore: !MOUNT,
  fn: async () => {
    const { root, data } = await setup;
    // Room for one checkpoint of the tiny model (~190 kB) but not for the next one's temporary.
    await withTmpfs("size=320k", async (dir) => {
      const exp = await writeExperiment(
        join(root, "full.json"),
        tinyExperiment(data, dir, { train: { checkpointEvery: 1 } }),
      );
      const r = await runCli(["train", exp]);
      assertEquals(r.code, 2, r.stderr);
      const lines = errorLines(r.stderr);
      assertEquals(lines.filter((l) => l.startsWith("error: ")).length, 1, r.stderr);
      const error = lines.find((l) => l.startsWith("error: "))!;
      assert(
        /^error: Cannot write checkpoint .*checkpoint\.h5: .*(No space left on device|write failed).*; the previous checkpoint \(if any\) is intact — check that the directory is writable and the disk has space$/
          .test(error),
        error,
      );
      assert(!r.stderr.includes("    at "), "no stack trace");
      assert(
        /Training stopped by an error after iteration 2; the last checkpoint \(iteration 1\)/
          .test(r.stderr),
        r.stderr,
      );
      const ckpt = await loadCheckpoint(join(dir, "checkpoint.h5"));
      assertEquals(ckpt.solver!.iteration, 1);
      assertEquals(
        (await listDir(dir)).filter((n) => n.includes(".tmp-")),
        [],
        "the partial temporary file is removed",
      );
    });
  },
});

Deno.test({
  name: "CLI: a synthetic dataset to generate on a read-only file system exits 2 with one line",
  ignore: !MOUNT,
  fn: async () => {
    const { root } = await setup;
    await withTmpfs("ro,size=64k", async (dir) => {
      const exp = await writeExperiment(
        join(root, "ro-data.json"),
        tinyExperiment(join(dir, "synthetic"), join(root, "ro-data-run")),
      );
      const r = await runCli(["train", exp]);
      assertEquals(r.code, 2, r.stderr);
      const lines = errorLines(r.stderr);
      assertEquals(lines.length, 1, r.stderr);
      assert(
        /^error: Read-only file system \(os error 30\): mkdir '.*synthetic.*'; use a writable directory \(data\.dir or output\.dir\)$/
          .test(lines[0]),
        lines[0],
      );
    });
  },
});

Deno.test({
  name: "CLI: a disk that fills up while metrics are written exits 2 with one line",
  ignore: !MOUNT,
  fn: async () => {
    const { root, data } = await setup;
    await withTmpfs("size=64k", async (dir) => {
      await Deno.writeFile(join(dir, "filler"), new Uint8Array(56 * 1024)); // 8 kB left
      const exp = await writeExperiment(
        join(root, "full-metrics.json"),
        tinyExperiment(data, join(dir, "run"), { train: { checkpointEvery: 1_000_000 } }),
      );
      const r = await runCli(["train", exp]);
      assertEquals(r.code, 2, r.stderr);
      const errors = errorLines(r.stderr).filter((l) => l.startsWith("error: "));
      assertEquals(errors, [
        `error: ${join(dir, "run", "metrics.jsonl")}: cannot append the metrics log (No space ` +
        `left on device (os error 28)); free disk space or make the run directory writable`,
      ]);
      assert(!r.stderr.includes("    at "), r.stderr);
    });
  },
});

Deno.test("input test cleanup: remove the temporary files", async () => {
  await Deno.remove((await setup).root, { recursive: true });
});
