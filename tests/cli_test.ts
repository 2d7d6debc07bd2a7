/**
 * The command line, checked from its table (pipeline/cli/verbs.ts): every option of every
 * verb runs with its example value and exits 0 (and, where cheap, has its effect); a bad value
 * of each option exits 2 with one line naming the flag; an unknown flag suggests the near
 * miss; each verb's --help lists exactly its table's options. Commands run in-process
 * through main(), on a tiny synthetic dataset and a tiny trained checkpoint.
 */
import { join } from "node:path";
import { parseCommandLine } from "../pipeline/cli/args.ts";
import { type CliOption, num, str } from "../pipeline/cli/command_spec.ts";
import { type VerbName, VERBS } from "../pipeline/cli/verbs.ts";
import { H5File } from "../pipeline/io/h5.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { InputError } from "../pipeline/errors.ts";
import { assert, assertEquals, assertNotEquals, assertThrows } from "./assert.ts";
import { cli, type Run } from "./cli_run.ts";
import { cocoJson, importFixture, writeFeaturesH5 } from "./import_fixtures.ts";
import { importDataset } from "../pipeline/data/import/import_dataset.ts";
import { writeResults } from "../pipeline/eval/results.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { tinyDataset, tinyExperiment, writeExperiment } from "./reliability_fixtures.ts";

const root = await Deno.makeTempDir({ prefix: "recap_cli_" });
let fresh = 0;
/** A path in the temporary directory that nothing uses yet. */
const freshPath = (what: string) => join(root, `${what}-${fresh++}`);

/**
 * The tiny dataset, an experiment on it, and a run trained on it through the CLI; the files
 * of a dataset to import (a Karpathy file, two COCO captions files, the features and an ids
 * file), the imported dataset, and a results file of its test split.
 */
const setup = (async () => {
  const data = await tinyDataset(join(root, "data"));
  const runDir = join(root, "run");
  const experiment = await writeExperiment(
    join(root, "tiny.json"),
    tinyExperiment(data, runDir, { train: { numEpochs: 1, printEvery: 1000 } }),
  );
  const trained = await cli(["train", experiment]);
  assertEquals(trained.code, 0, trained.stderr.join("\n"));
  const own = await Deno.makeTempDir({ dir: root });
  const { images, annotations, features } = await importFixture(own, { train: 20, val: 12 });
  const ids = join(own, "ids.txt");
  await Deno.writeTextFile(ids, images.map((im) => `${im.id}\n`).join(""));
  // The same images as two COCO captions files whose names do not say their split.
  const train = images.filter((im) => im.split === "train");
  const val = images.filter((im) => im.split !== "train");
  const coco = [join(own, "part_a.json"), join(own, "part_b.json")];
  await Deno.writeTextFile(coco[0], JSON.stringify(cocoJson(train)));
  await Deno.writeTextFile(coco[1], JSON.stringify(cocoJson(val)));
  const cocoFeatures = await writeFeaturesH5(join(own, "coco_features.h5"), [...train, ...val]);
  const imported = join(own, "imported");
  await importDataset({ annotations: [annotations], features, dir: imported });
  const results = join(own, "results.json");
  await writeResults(
    results,
    images.filter((im) => im.split === "test").map((im) => ({ image_id: im.id, caption: "a dog" })),
  );
  return {
    data,
    runDir,
    experiment,
    checkpoint: join(runDir, "checkpoint.h5"),
    own: { annotations, features, ids, coco, cocoFeatures, imported, results },
  };
})();

/** A copy of a run directory, to resume without changing the original. */
async function copyDir(from: string, to: string): Promise<string> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(join(from, e.name), join(to, e.name));
    else await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
  return to;
}

/** A verb's arguments: its positionals and its options (`"true"` for a flag given). */
interface Invocation {
  positionals: string[];
  options: Record<string, string>;
}

/** The words of a command line for a verb. */
function commandLine(verb: VerbName, { positionals, options }: Invocation): string[] {
  const flags = Object.entries(options).flatMap(([k, v]) =>
    v === "true" ? [`--${k}`] : [`--${k}`, v]
  );
  return [...verb.split(" "), ...positionals, ...flags];
}

/**
 * What each verb runs with before the option under test is added: the fixtures it needs,
 * small sizes, and a fresh output directory, so runs never disturb one another. A few
 * options need other arguments: a results file is scored without a checkpoint, and splits
 * are given to COCO captions files.
 */
async function baseInvocation(verb: VerbName, option?: string): Promise<Invocation> {
  const { experiment, runDir, checkpoint, own } = await setup;
  if (verb === "evaluate" && option === "results") {
    return { positionals: [], options: { "data.dir": own.imported, split: "test" } };
  }
  if (verb === "caption" && (option === "split" || option === "data.dir")) {
    const split: Record<string, string> = option === "data.dir" ? { split: "val" } : {};
    return {
      positionals: [checkpoint],
      options: { ...split, out: `${freshPath("caption")}.json` },
    };
  }
  if (verb === "dataset import" && option === "split") {
    return {
      positionals: own.coco,
      options: { features: own.cocoFeatures, dir: freshPath("import") },
    };
  }
  switch (verb) {
    case "train":
      return { positionals: [experiment], options: { "output.dir": freshPath("train") } };
    case "resume":
      return { positionals: [await copyDir(runDir, freshPath("resume"))], options: {} };
    case "evaluate":
    case "sample":
      return { positionals: [checkpoint], options: {} };
    case "caption":
      return {
        positionals: [checkpoint],
        options: { features: own.features, out: `${freshPath("caption")}.json` },
      };
    case "dataset import":
      return {
        positionals: [own.annotations],
        options: { features: own.features, dir: freshPath("import") },
      };
    case "dataset synth":
      return { positionals: [], options: { dir: freshPath("synth"), train: "3", val: "2" } };
  }
}

/** The example value of an option, with the fixtures' paths for path options. */
async function exampleValue(name: string, option: CliOption): Promise<string> {
  if (option.type !== "path") return option.example;
  const { own } = await setup;
  const paths: Record<string, () => Promise<string> | string> = {
    "data.dir": async () => (await setup).data,
    dir: () => freshPath("dataset"),
    features: () => own.features,
    ids: () => own.ids,
    results: () => own.results,
    out: () => `${freshPath("out")}.json`,
  };
  assert(name in paths, `--${name}: give the test a fixture path for this path option`);
  return await paths[name]();
}

/** The options of a verb, as [name, option] pairs. */
const optionsOf = (verb: VerbName) => Object.entries(VERBS[verb].options) as [string, CliOption][];
const VERB_NAMES = Object.keys(VERBS) as VerbName[];

/** Reads one dataset of an HDF5 file. */
async function readDataset(file: string, name: string) {
  const f = await H5File.open(file);
  try {
    return f.read(name);
  } finally {
    f.close();
  }
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const generatedLines = (r: Run) => r.stdout.split("\n").filter((l) => l.includes("generated:"));
const wordCount = (line: string) =>
  line.replace(/^\s*generated:/, "").split(/\s+/).filter((w) => w !== "").length;

/** What a run with the option at its example value must show, beyond exiting 0. */
const EFFECTS: Record<string, (r: Run, given: Invocation) => Promise<void> | void> = {
  "train --force": (_, given) => refusedWithout("train", given, "start over with --force"),
  "evaluate --split": (r) => assert(r.stdout.includes("Evaluation on train"), r.stdout),
  "evaluate --beamSize": (r) => assert(/^\s+beam\s/m.test(r.stdout), r.stdout),
  "evaluate --numImages": (r) => assert(r.stdout.includes("(7 images)"), r.stdout),
  "evaluate --sample": (r) => assert(/^\s+sample\s/m.test(r.stdout), r.stdout),
  "evaluate --temperature": (r) => assert(/^\s+sample\s/m.test(r.stdout), r.stdout),
  "evaluate --nBest": (r) => assert(/^\s+beam\s/m.test(r.stdout), r.stdout),
  "evaluate --lengthPenalty": (r) => assert(/^\s+beam\s/m.test(r.stdout), r.stdout),
  "evaluate --plainBeam": (r) => assert(/^\s+beam\s/m.test(r.stdout), r.stdout),
  "evaluate --blockTrigrams": async (r) => {
    const repeats = (out: string) => /greedy .*, ([\d.]+)% repeat a trigram/.exec(out)?.[1];
    assertEquals(repeats(r.stdout), "0.0", r.stdout);
    const plain = await cli(commandLine("evaluate", await baseInvocation("evaluate")));
    assertNotEquals(repeats(plain.stdout), "0.0", plain.stdout);
  },
  "sample --n": (r) => assertEquals(generatedLines(r).length, 3, r.stdout),
  "sample --nBest": (r) => assertEquals(generatedLines(r).length, 20, r.stdout),
  "sample --samples": (r) => assertEquals(generatedLines(r).length, 30, r.stdout),
  "sample --decoder": async (r) => {
    const greedy = await cli(commandLine("sample", await baseInvocation("sample")));
    assertNotEquals(generatedLines(r), generatedLines(greedy));
  },
  "sample --blockTrigrams": async (r) => {
    const repeats = (line: string) => {
      const w = line.replace(/^\s*generated:/, "").trim().split(/\s+/);
      const seen = new Set<string>();
      for (let i = 0; i + 3 <= w.length; i++) {
        const key = w.slice(i, i + 3).join(" ");
        if (seen.has(key)) return true;
        seen.add(key);
      }
      return false;
    };
    assert(!generatedLines(r).some(repeats), r.stdout);
    const plain = await cli(commandLine("sample", await baseInvocation("sample")));
    assert(generatedLines(plain).some(repeats), plain.stdout);
  },
  "sample --split": (r) => {
    const headers = r.stdout.split("\n").filter((l) => /^\w+ image /.test(l));
    assertEquals(headers.length, 10, r.stdout);
    assert(headers.every((l) => l.startsWith("train image")), r.stdout);
  },
  "sample --maxLength": async (r) => {
    assert(Math.max(...generatedLines(r).map(wordCount)) <= 5, r.stdout);
    // The checkpoint's own maxLength (8) gives longer captions: the option had its effect.
    const saved = await cli(commandLine("sample", await baseInvocation("sample")));
    assert(Math.max(...generatedLines(saved).map(wordCount)) > 5, saved.stdout);
  },
  "sample --seed": async (r) => {
    const seed0 = await cli(commandLine("sample", await baseInvocation("sample")));
    assertNotEquals(r.stdout, seed0.stdout);
  },
  "evaluate --results": async (r, { options }) => {
    assert(/^\s+results\s+bleu1/m.test(r.stdout), r.stdout);
    const { own } = await setup;
    const scores = await readJson(own.results.replace(/\.json$/, ".test.scores.json"));
    assertEquals(scores.split, options.split);
    assertEquals(Object.keys(scores.scored.results.imgToEval).length, scores.numImages);
  },
  "evaluate --out": async (_, { options }) => {
    const scores = await readJson(options.out);
    assertEquals(Object.keys(scores.scored.greedy.imgToEval).length, scores.numImages);
  },
  "caption --features": async (_, { options }) => {
    const results = await readJson(options.out);
    assertEquals(results.map((r: { image_id: number }) => r.image_id), [...results.keys()]);
  },
  "caption --ids": async (_, { options }) => {
    const ids = (await Deno.readTextFile(options.ids)).trim().split("\n").map(Number);
    assertEquals((await readJson(options.out)).map((r: { image_id: number }) => r.image_id), ids);
  },
  "caption --maxLength": async (_, { options }) => {
    const results: { caption: string }[] = await readJson(options.out);
    assert(Math.max(...results.map((r) => wordCount(r.caption))) <= 5);
  },
  "caption --out": async (_, { options }) => assert(await exists(options.out), options.out),
  "caption --split": async (_, { options }) => {
    const valImages = (await loadCocoData({ baseDir: (await setup).data })).val_features.shape[0];
    assertEquals((await readJson(options.out)).length, valImages);
  },
  "caption --data.dir": async (_, { options }) =>
    assertEquals((await readJson(options.out)).length, 20, "the tiny dataset's val images"),
  "caption --quiet": (r) => assertEquals(r.stderr, []),
  "dataset import --dir": async (_, { options }) =>
    assert(await exists(join(options.dir, "dataset.json")), options.dir),
  "dataset import --split": async (_, { options }) =>
    assertEquals(Object.keys((await readJson(join(options.dir, "dataset.json"))).splits), [
      "train",
      "val",
    ]),
  "dataset import --minCount": async (_, { options }) => {
    const vocabSize = async (dir: string) =>
      (await readJson(join(dir, "vocab.json"))).idx_to_word.length;
    assert(await vocabSize(options.dir) > await vocabSize((await setup).own.imported));
  },
  "dataset import --maxLength": async (_, { options }) =>
    assertEquals((await readJson(join(options.dir, "dataset.json"))).captionLength, 14),
  "dataset import --force": (_, given) =>
    refusedWithout("dataset import", given, "pass --force to replace it"),
  "dataset import --quiet": (r) => assertEquals(r.stderr, []),
  "dataset synth --dir": async (_, given) =>
    assert(await exists(join(given.options.dir, "coco2014_captions.h5")), given.options.dir),
  "dataset synth --train": async (_, { options }) =>
    assertEquals(
      (await readDataset(join(options.dir, "coco2014_captions.h5"), "train_captions")).shape,
      [60, 17],
    ),
  "dataset synth --val": async (_, { options }) =>
    assertEquals(
      (await readDataset(join(options.dir, "coco2014_captions.h5"), "val_captions")).shape,
      [15, 17],
    ),
  "dataset synth --seed": async (_, { options }) => {
    const other = await baseDataset();
    const captions = (dir: string) =>
      readDataset(join(dir, "coco2014_captions.h5"), "train_captions");
    assertNotEquals((await captions(options.dir)).data, (await captions(other)).data);
  },
  "dataset synth --full-features": async (_, { options }) =>
    assert(await exists(join(options.dir, "train2014_vgg16_fc7.h5"))),
  "dataset synth --no-images": async (_, { options }) => {
    assert(!(await exists(join(options.dir, "images"))), "no images/");
    assert(await exists(join(await baseDataset(), "images")), "images/ without the flag");
  },
  "dataset synth --min-count": async (_, { options }) => {
    const vocabSize = async (dir: string) =>
      JSON.parse(await Deno.readTextFile(join(dir, "coco2014_vocab.json"))).idx_to_word.length;
    assert(await vocabSize(options.dir) > await vocabSize(await baseDataset()));
  },
  "dataset synth --force": (_, given) =>
    refusedWithout("dataset synth", given, "pass --force to replace it"),
  "dataset synth --quiet": async (r) => {
    assertEquals(r.stderr, []);
    const chatty = await cli(commandLine("dataset synth", await baseInvocation("dataset synth")));
    assert(chatty.stderr.length > 0, "progress without --quiet");
  },
};

/**
 * Checks that a run that needed --force is refused without it (its directory now holds what
 * the forced run wrote).
 */
async function refusedWithout(verb: VerbName, given: Invocation, hint: string): Promise<void> {
  const { force: _, ...options } = given.options;
  const refused = await cli(commandLine(verb, { ...given, options }));
  assertEquals(refused.code, 2, refused.stderr.join("\n"));
  assert(refused.stderr[0].includes(hint), refused.stderr[0]);
}

let baseDatasetDir: Promise<string> | undefined;
/** A dataset written with the base options alone (for comparisons); its directory. */
function baseDataset(): Promise<string> {
  return baseDatasetDir ??= (async () => {
    const base = await baseInvocation("dataset synth");
    const r = await cli(commandLine("dataset synth", base));
    assertEquals(r.code, 0, r.stderr.join("\n"));
    return base.options.dir;
  })();
}

for (const verb of VERB_NAMES) {
  Deno.test(`${verb}: every option runs with its example value and exits 0`, async () => {
    for (const [name, option] of optionsOf(verb)) {
      const base = await baseInvocation(verb, name);
      const given = {
        ...base,
        options: { ...base.options, [name]: await exampleValue(name, option) },
      };
      const r = await cli(commandLine(verb, given));
      assertEquals(r.code, 0, `${verb} --${name}: ${r.stderr.join("\n")}`);
      if (name === "help") assert(r.stdout.startsWith(`Usage: deno task ${verb} `), r.stdout);
      await EFFECTS[`${verb} --${name}`]?.(r, given);
    }
  });
}

Deno.test("the option effects checked name options of the table", () => {
  const known = VERB_NAMES.flatMap((v) => optionsOf(v).map(([name]) => `${v} --${name}`));
  assertEquals(Object.keys(EFFECTS).filter((k) => !known.includes(k)), []);
});

Deno.test("sample --maxLength is taken (issue 11: it was an unknown option)", async () => {
  const { checkpoint } = await setup;
  const r = await cli(["sample", checkpoint, "--maxLength", "5", "--n", "3"]);
  assertEquals(r.code, 0, r.stderr.join("\n"));
  assertEquals(generatedLines(r).length, 3);
});

/** Values an option must refuse, by type. */
function badValues(option: CliOption): string[] {
  switch (option.type) {
    case "int":
      return ["0x19", " 2", "1e3", "2.5", "", "ten", String((option.min ?? 0) - 1)];
    case "number":
      return ["0x19", " 2", "", "1e", String((option.min ?? 0) - 1)];
    case "enum":
      return ["nope", ""];
    case "list":
      return ["nope", "", "train,nope"];
    case "string":
    case "path":
      return [""];
    case "bool":
      return [];
  }
}

/** Arguments for a verb that must never be reached: each run below fails at the command line. */
async function unreachable(verb: VerbName): Promise<Invocation> {
  return verb === "dataset synth"
    ? await baseInvocation(verb)
    : { positionals: VERBS[verb].args.map(() => join(root, "never-read")), options: {} };
}

for (const verb of VERB_NAMES) {
  Deno.test(`${verb}: a bad value of any option exits 2 with one line naming the flag`, async () => {
    for (const [name, option] of optionsOf(verb)) {
      const base = await unreachable(verb);
      const cases = option.type === "bool" ? [[`--${name}=yes`, "takes no value"]] : [
        ...badValues(option).map((bad) => [`--${name}=${bad}`, `got ${JSON.stringify(bad)}`]),
        [`--${name}`, "missing value"],
      ];
      for (const [arg, detail] of cases) {
        const r = await cli([...commandLine(verb, base), arg]);
        const what = `${verb} ${JSON.stringify(arg)}`;
        assertEquals(r.code, 2, `${what}: exit ${r.code}`);
        assertEquals(r.stderr.length, 1, `${what}: ${r.stderr.join("\n")}`);
        assert(!r.stderr[0].includes("\n"), `${what}: one line: ${r.stderr[0]}`);
        assert(r.stderr[0].startsWith(`error: command line: --${name}: `), r.stderr[0]);
        assert(r.stderr[0].includes(detail), `${what}: ${r.stderr[0]}`);
      }
    }
  });
}

Deno.test("an unknown flag exits 2 naming it and the option it nearly spells", async () => {
  for (const verb of VERB_NAMES) {
    const base = await unreachable(verb);
    for (const [name] of optionsOf(verb).filter(([n]) => n.length >= 3)) {
      const typo = name[0] + name.slice(2); // one letter left out
      const r = await cli([...commandLine(verb, base), `--${typo}`]);
      assertEquals(r.code, 2, `${verb} --${typo}`);
      assertEquals(r.stderr, [
        `error: command line: --${typo}: unknown option (did you mean --${name}?); see --help`,
      ]);
    }
  }
  const cut = await cli(["sample", join(root, "never-read"), "--maxLen", "5"]);
  assertEquals(cut.stderr, [
    "error: command line: --maxLen: unknown option (did you mean --maxLength?); see --help",
  ]);
  const inherited = await cli(["sample", join(root, "never-read"), "--constructor", "1"]);
  assertEquals(inherited.stderr, [
    "error: command line: --constructor: unknown option; see --help",
  ]);
  const override = await cli(["train", "--train.lerningRate=1e-3"]);
  assert(override.stderr[0].includes("(did you mean --train.learningRate?)"), override.stderr[0]);
  const command = await cli(["trian"]);
  assertEquals(command.code, 2);
  assert(command.stderr[0].includes(`unknown command "trian" (did you mean "train"?)`));
});

Deno.test("each verb's --help lists exactly the options of its table", async () => {
  for (const verb of VERB_NAMES) {
    const r = await cli([...verb.split(" "), "--help"]);
    assertEquals(r.code, 0);
    const lines = r.stdout.split("\n");
    const start = lines.indexOf("Options:") + 1;
    const block = lines.slice(start, lines.indexOf("", start) >>> 0);
    const listed = block.map((l) => /^ {2}--([\w.-]+)/.exec(l)?.[1]);
    assertEquals(listed, optionsOf(verb).map(([name]) => name), `${verb}:\n${r.stdout}`);
    if (VERBS[verb].passThrough) assert(r.stdout.includes("--train.learningRate"), verb);
  }
});

Deno.test("deno task recap --help lists every verb of the table", async () => {
  const r = await cli(["--help"]);
  assertEquals(r.code, 0);
  const lines = r.stdout.split("\n");
  for (const verb of VERB_NAMES) {
    const line = lines.find((l) => l.startsWith(`  ${verb} `));
    assert(line?.endsWith(VERBS[verb].brief), `${verb}:\n${r.stdout}`);
  }
  assertEquals((await cli([])).code, 2);
});

Deno.test("--debug adds the stack trace to a bad input, same exit code", async () => {
  for (const verb of VERB_NAMES) {
    const args = [...commandLine(verb, await unreachable(verb)), "--bogus"];
    const plain = await cli(args), debug = await cli([...args, "--debug"]);
    assertEquals([plain.code, debug.code], [2, 2], verb);
    assert(!plain.stderr.join("\n").includes("    at "), `${verb}: no stack trace`);
    assert(debug.stderr.join("\n").includes("    at "), `${verb} --debug: ${debug.stderr}`);
  }
});

Deno.test("train and resume take the experiment's dotted overrides beside their own flags", async () => {
  const { experiment, runDir } = await setup;
  const out = freshPath("train");
  const trained = await cli([
    "train",
    "--force",
    experiment,
    "--output.dir",
    out,
    "--train.batchSize=20",
  ]);
  assertEquals(trained.code, 0, trained.stderr.join("\n"));
  assertEquals((await loadCheckpoint(join(out, "checkpoint.h5"))).solver!.iteration, 15);
  const dir = await copyDir(runDir, freshPath("resume"));
  const resumed = await cli(["resume", dir, "--train.numEpochs", "2", "--debug"]);
  assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
  assertEquals((await loadCheckpoint(join(dir, "checkpoint.h5"))).solver!.iteration, 60);
  const bad = await cli(["resume", dir, "--train.batchSize=ten"]);
  assertEquals(bad.stderr, [
    `error: command line: --train.batchSize: expected a positive integer, got "ten"`,
  ]);
});

Deno.test("parseCommandLine() validates numbers and text, and splits off pass-through options", () => {
  const spec = {
    command: "deno run script.ts",
    args: ["[file]"],
    summary: "A script.",
    options: { rate: num(0.5, 0, "A rate", "0.1"), label: str(undefined, "A label", "x") },
  };
  const parse = (...args: string[]) => parseCommandLine(spec, args).values;
  assertEquals(parse("--rate", "1e-3", "--label=a b"), { rate: 1e-3, label: "a b" });
  assertEquals(parse("--rate=.5"), { rate: 0.5, label: undefined });
  for (const bad of ["0x19", " 2", "1e", "-1", "Infinity"]) {
    assertThrows(() => parse(`--rate=${bad}`), InputError, `--rate: expected a number >= 0`);
  }
  assertThrows(() => parse("--label="), InputError, `--label: expected a non-empty text, got ""`);
  assertThrows(() => parse("a", "b"), InputError, `unexpected argument "b"`);

  const train = parseCommandLine(VERBS.train, [
    "exp.json",
    "--force",
    "--train.learningRate",
    "1e-3",
    "--stages",
    "train",
  ]);
  assertEquals(train.values.force, true);
  assertEquals(train.positionals, ["exp.json"]);
  assertEquals(train.passedThrough, ["--train.learningRate", "1e-3", "--stages", "train"]);
  assertEquals(parseCommandLine(VERBS.train, ["--stages", "train"]).positionals, []);
});

Deno.test("cli test cleanup: remove the temporary files", async () => {
  await setup;
  await Deno.remove(root, { recursive: true });
});
