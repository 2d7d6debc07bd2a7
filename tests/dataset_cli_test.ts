/**
 * `deno task dataset synth`: its defaults are the experiments' synthetic data, it never
 * overwrites a dataset without --force, an interrupted generation leaves no half dataset, and
 * --debug (which the unified CLI appends) is accepted.
 */
import { join } from "node:path";
import { H5File } from "../pipeline/io/h5.ts";
import { SYNTH_DEFAULTS } from "../pipeline/cli/synth.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { assert, assertEquals } from "./assert.ts";
import { CLI, listDir, runCli, spawnCli } from "./reliability_fixtures.ts";

const SMALL = ["--train", "3", "--val", "2", "--no-images", "--quiet"];

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function shape(path: string, name: string): Promise<number[]> {
  const f = await H5File.open(path);
  try {
    return f.info(name).shape;
  } finally {
    f.close();
  }
}

Deno.test("dataset synth defaults to the experiments' synthetic data (datasets/synthetic, 4000/500, seed 0)", async () => {
  assertEquals(SYNTH_DEFAULTS, {
    dir: "datasets/synthetic",
    numTrain: 4000,
    numVal: 500,
    seed: 0,
  });
  const help = await runCli(["dataset", "synth", "--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.includes("Usage: deno task dataset synth"), help.stdout);
  for (const d of ["datasets/synthetic", "4000", "500"]) {
    assert(help.stdout.includes(`(default: ${d})`), `help shows default ${d}:\n${help.stdout}`);
  }
  assert(/--seed N .*\(default: 0\)/.test(help.stdout), help.stdout);
  assert(!help.stdout.includes("(default: datasets/coco"), "help names no COCO default dir");

  const cwd = await Deno.makeTempDir({ prefix: "recap_synth_defaults_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "dataset", "synth", "--no-images", "--quiet"],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(await listDir(join(cwd, "datasets")), ["synthetic"]);
    const dir = join(cwd, "datasets/synthetic");
    assertEquals(await shape(join(dir, "coco2014_captions.h5"), "train_captions"), [20000, 17]);
    assertEquals(await shape(join(dir, "coco2014_captions.h5"), "val_captions"), [2500, 17]);
    // The same data as the experiments generate: seed 0.
    const ref = join(cwd, "ref");
    await writeSyntheticDataset({ dir: ref, numTrain: 4000, numVal: 500, seed: 0, images: false });
    assertEquals(
      await Deno.readTextFile(join(dir, "coco2014_vocab.json")),
      await Deno.readTextFile(join(ref, "coco2014_vocab.json")),
    );
    assertEquals(
      await Deno.readTextFile(join(dir, "val2014_urls.txt")),
      await Deno.readTextFile(join(ref, "val2014_urls.txt")),
    );
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("dataset synth refuses a directory that holds a dataset unless --force", async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_synth_force_" });
  const dir = join(root, "coco");
  try {
    assertEquals(
      (await runCli(["dataset", "synth", "--dir", dir, ...SMALL, "--full-features"])).code,
      0,
    );
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine\n");
    const captions = await Deno.readFile(join(dir, "coco2014_captions.h5"));

    const refused = await runCli(["dataset", "synth", "--dir", dir, ...SMALL, "--seed", "9"]);
    assertEquals(refused.code, 2);
    const lines = refused.stderr.trim().split("\n");
    assertEquals(lines.length, 1, refused.stderr);
    assert(
      /already holds a dataset \(coco2014_captions\.h5.*\).*pass --force to replace it/.test(
        lines[0],
      ),
      lines[0],
    );
    assertEquals(await Deno.readFile(join(dir, "coco2014_captions.h5")), captions);

    const forced = await runCli([
      "dataset",
      "synth",
      "--dir",
      dir,
      "--train",
      "4",
      "--val",
      "2",
      "--no-images",
      "--quiet",
      "--force",
    ]);
    assertEquals(forced.code, 0, forced.stderr);
    assertEquals(await shape(join(dir, "coco2014_captions.h5"), "train_captions"), [20, 17]);
    // The old dataset's 4096-d features went with it; the user's own file stays.
    assert(!(await exists(join(dir, "train2014_vgg16_fc7.h5"))));
    assert(!(await exists(join(dir, "val2014_vgg16_fc7.h5"))));
    assertEquals(await Deno.readTextFile(join(dir, "notes.txt")), "mine\n");
    assertEquals(await listDir(root), ["coco"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("dataset synth killed midway leaves no half dataset, and the next run cleans up", async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_synth_kill_" });
  const dir = join(root, "synthetic");
  const { child, done } = spawnCli([
    "dataset",
    "synth",
    "--dir",
    dir,
    "--train",
    "80000",
    "--val",
    "500",
    "--no-images",
    "--quiet",
  ]);
  try {
    // Kill once the captions file is written, while the features are still being computed.
    const partial = `${dir}.partial-${child.pid}`;
    const until = Date.now() + 60_000;
    while (!(await exists(join(partial, "coco2014_captions.h5")))) {
      assert(Date.now() < until, `${partial}/coco2014_captions.h5 never appeared`);
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    assertEquals((await done).signal, "SIGKILL");
    assert(!(await exists(dir)), "no dataset directory after the kill");

    const again = await runCli(["dataset", "synth", "--dir", dir, ...SMALL]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(await listDir(root), ["synthetic"]);
    assertEquals(await shape(join(dir, "coco2014_captions.h5"), "train_captions"), [15, 17]);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
    await done;
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("dataset synth accepts --debug: the dataset is written, bad input prints a stack trace", async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_synth_debug_" });
  try {
    const ok = await runCli(["dataset", "synth", "--dir", join(root, "d"), ...SMALL, "--debug"]);
    assertEquals(ok.code, 0, ok.stderr);
    assert(await exists(join(root, "d", "coco2014_captions.h5")));

    const bad = await runCli(["dataset", "synth", "--train", "zero", "--debug"]);
    assertEquals(bad.code, 2);
    assert(
      bad.stderr.includes('--train: expected an integer in [1, 1000000], got "zero"'),
      bad.stderr,
    );
    assert(/\n\s+at .*cli\/args\.ts/.test(bad.stderr), `a stack trace:\n${bad.stderr}`);

    const plain = await runCli(["dataset", "synth", "--train", "zero"]);
    assertEquals(plain.code, 2);
    assertEquals(plain.stderr.trim().split("\n").length, 1, plain.stderr);

    // The dataset module run on its own takes --debug too.
    const direct = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../pipeline/cli/dataset.ts", import.meta.url).pathname,
        "synth",
        "--bogus",
        "--debug",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(direct.stderr);
    assertEquals(direct.code, 2, stderr);
    assert(stderr.includes("--bogus: unknown option") && /\n\s+at /.test(stderr), stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
