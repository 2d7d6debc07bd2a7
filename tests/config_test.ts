import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import {
  defaultExperiment,
  loadExperiment,
  parseOverrides,
  resolveExperiment,
} from "../pipeline/config/config.ts";
import {
  EXPERIMENT_SCHEMA,
  experimentHelp,
  experimentJsonSchema,
  forEachOption,
  JSON_SCHEMA_PATH,
  OPTIONS_DOC_PATH,
  withGeneratedOptions,
} from "../pipeline/config/schema.ts";
import { InputError } from "../pipeline/errors.ts";
import { suggestName } from "../layers/options.ts";
import { OPTIM_HYPERPARAMS } from "../layers/optim.ts";

async function withFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/exp.json`;
  await Deno.writeTextFile(path, text);
  try {
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the committed experiment.schema.json equals a fresh generation (run `deno task schema`)", async () => {
  const committed = await Deno.readTextFile(new URL(`../${JSON_SCHEMA_PATH}`, import.meta.url));
  assertEquals(committed, experimentJsonSchema());
});

Deno.test("the options table in docs/experiments.md is current (run `deno task schema`)", async () => {
  const doc = await Deno.readTextFile(new URL(`../${OPTIONS_DOC_PATH}`, import.meta.url));
  assertEquals(doc, withGeneratedOptions(doc));
  assert(doc.includes("| `train.learningRate`"));
});

Deno.test("the JSON Schema lists every option with its default, and rejects extra keys", () => {
  const schema = JSON.parse(experimentJsonSchema());
  let count = 0;
  forEachOption((path, spec) => {
    let node = schema;
    for (const p of path) node = node.properties[p];
    assertEquals(node.default, spec.default, path.join("."));
    count++;
  });
  assertEquals(count, 71);
  assertEquals(schema.additionalProperties, false);
  assertEquals(schema.properties.train.additionalProperties, false);
  assertEquals(schema.properties.train.properties.learningRate.exclusiveMinimum, 0);
  assertEquals(schema.properties.train.properties.momentum.exclusiveMaximum, 1);
  assertEquals(schema.properties.model.properties.cellType.enum, [
    "rnn",
    "lstm",
    "gru",
    "transformer",
  ]);
  assertEquals(schema.properties.train.properties.workers.anyOf[1], { const: "auto" });
});

Deno.test("defaultExperiment() fills derived defaults from the source and the name", () => {
  const cfg = defaultExperiment("demo");
  assertEquals(cfg.name, "demo");
  assertEquals(cfg.data.source, "synthetic");
  assertEquals(cfg.data.dir, "datasets/synthetic");
  assertEquals(cfg.output.dir, "runs/demo");
  assertEquals(cfg.model.cellType, "lstm");
  assertEquals(cfg.train.workers, "auto");
  assertEquals(cfg.stages, ["train", "evaluate", "sample", "report"]);
  const coco = resolveExperiment({ data: { source: "coco" } }, "dir/real.json");
  assertEquals(coco.data.dir, "datasets/coco_captioning");
  assertEquals(coco.name, "real");
  assertEquals(resolveExperiment({}, "runs/my exp (2).json").name, "my_exp_2_");
  assertEquals(resolveExperiment({}, "..json").name, "experiment");
});

Deno.test("resolveExperiment() deep-merges a partial file over the defaults", () => {
  const cfg = resolveExperiment(
    { train: { batchSize: 25 }, data: { synthetic: { numTrain: 50 } }, name: "x" },
    "e.json",
  );
  assertEquals(cfg.train.batchSize, 25);
  assertEquals(cfg.train.learningRate, 5e-3);
  assertEquals(cfg.data.synthetic, { numTrain: 50, numVal: 500, seed: 0 });
  // The defaults are not shared between calls.
  cfg.stages.push("train");
  assertEquals(defaultExperiment().stages.length, 4);
});

Deno.test("resolveExperiment() rejects bad values with one line naming the file and field", () => {
  const cases: [unknown, string][] = [
    [
      { train: { learningRate: "fast" } },
      `exp.json: train.learningRate: expected a positive number, got "fast"`,
    ],
    [
      { train: { learningRate: 0 } },
      "exp.json: train.learningRate: expected a positive number, got 0",
    ],
    [
      { train: { batchSize: 2.5 } },
      "exp.json: train.batchSize: expected a positive integer, got 2.5",
    ],
    [{ train: { momentum: 1 } }, "exp.json: train.momentum: expected a number in [0, 1), got 1"],
    [
      { train: { workers: "many" } },
      `exp.json: train.workers: expected a positive integer or "auto", got "many"`,
    ],
    [
      { model: { cellType: "gpt" } },
      `exp.json: model.cellType: expected one of "rnn", "lstm", "gru", "transformer", got "gpt"`,
    ],
    [
      { data: { pcaFeatures: "yes" } },
      `exp.json: data.pcaFeatures: expected true or false, got "yes"`,
    ],
    [
      { data: { maxTrain: 0 } },
      "exp.json: data.maxTrain: expected a positive integer or null, got 0",
    ],
    [
      { evaluate: { metrics: ["bleu5"] } },
      `exp.json: evaluate.metrics: expected a non-empty list of`,
    ],
    [{ stages: [] }, "exp.json: stages: expected a non-empty list of"],
    [{ stages: ["train", "train"] }, `exp.json: stages: "train" is listed twice`],
    [{ train: 3 }, "exp.json: train: expected an object, got 3"],
    [[1, 2], "exp.json: expected an object, got [1,2]"],
    [{ name: "a b" }, `exp.json: name: expected letters, digits`],
    [{ name: ".." }, `exp.json: name: expected letters, digits`],
    [{ model: { dropout: 1 } }, "exp.json: model.dropout: expected a number in [0, 1), got 1"],
    [
      { model: { cellType: "transformer", numHeads: 3 } },
      "exp.json: model.numHeads: 3 heads do not divide model.wordvecDim 256; pick a divisor of it",
    ],
    [
      { model: { cellType: "transformer", wordvecDim: 255, numHeads: 5 } },
      "exp.json: model.wordvecDim: the Transformer's positional encoding needs an even width, got 255",
    ],
    [
      { model: { cellType: "transformer", maxLength: 20 } },
      "exp.json: evaluate.maxLength: 30 words is more than the Transformer's model.maxLength (20 positions)",
    ],
    [
      {
        model: { cellType: "transformer", maxLength: 20 },
        evaluate: { maxLength: 20 },
        train: { scst: { numEpochs: 1, maxLength: 25 } },
      },
      "exp.json: train.scst.maxLength: 25 words is more than the Transformer's model.maxLength (20 positions)",
    ],
  ];
  for (const [input, message] of cases) {
    const e = assertThrows(() => resolveExperiment(input, "exp.json"), InputError, message);
    assert(!e.message.includes("\n"), e.message);
  }
});

Deno.test("the Transformer's cross-option checks apply to the Transformer only", () => {
  const lstm = resolveExperiment({ model: { numHeads: 3, maxLength: 20 } }, "exp.json");
  assertEquals(lstm.model.cellType, "lstm");
  const tf = resolveExperiment({ model: { cellType: "transformer", numHeads: 8 } }, "exp.json");
  assertEquals([tf.model.numHeads, tf.model.numLayers, tf.model.ffDim], [8, 2, 2048]);
});

Deno.test("resolveExperiment() rejects unknown keys with a did-you-mean for near misses", () => {
  assertThrows(
    () => resolveExperiment({ train: { lerningRate: 1 } }, "exp.json"),
    InputError,
    `exp.json: train.lerningRate: unknown option (did you mean "train.learningRate"?)`,
  );
  assertThrows(
    () => resolveExperiment({ modle: {} }, "exp.json"),
    InputError,
    `exp.json: modle: unknown option (did you mean "model"?)`,
  );
  assertThrows(
    () => resolveExperiment({ data: { synthetic: { numtrain: 3 } } }, "exp.json"),
    InputError,
    `data.synthetic.numtrain: unknown option (did you mean "data.synthetic.numTrain"?)`,
  );
  assertThrows(
    () => resolveExperiment({ model: { zzzzzzzz: 1 } }, "exp.json"),
    InputError,
    "exp.json: model.zzzzzzzz: unknown option (valid here: cellType, activation,",
  );
});

Deno.test("suggestName() suggests only near misses", () => {
  assertEquals(suggestName("batchsize", ["batchSize", "seed"]), "batchSize");
  assertEquals(suggestName("learnignRate", ["learningRate"]), "learningRate");
  assertEquals(suggestName("optimizer", ["learningRate", "seed"]), undefined);
});

Deno.test("parseOverrides() types values like the defaults", () => {
  assertEquals(
    parseOverrides([
      "--train.learningRate=1e-3",
      "--train.workers",
      "2",
      "--data.pcaFeatures",
      "--evaluate.splits=train,val",
      "--data.maxTrain=null",
      "--model.cellType",
      "rnn",
      "--train.gradClip=-0", // a number, even though it starts like a flag
    ]),
    {
      train: { learningRate: 1e-3, workers: 2, gradClip: -0 },
      data: { pcaFeatures: true, maxTrain: null },
      evaluate: { splits: ["train", "val"] },
      model: { cellType: "rnn" },
    },
  );
  assertEquals(parseOverrides(["--train.workers=auto", "--data.pcaFeatures=false"]), {
    train: { workers: "auto" },
    data: { pcaFeatures: false },
  });
});

Deno.test("parseOverrides() rejects unknown options, missing and mistyped values", () => {
  assertThrows(
    () => parseOverrides(["--train.lr=1"]),
    InputError,
    "command line: --train.lr: unknown option",
  );
  assertThrows(
    () => parseOverrides(["--train.learningrate=1"]),
    InputError,
    "(did you mean --train.learningRate?)",
  );
  assertThrows(
    () => parseOverrides(["--train.batchSize=ten"]),
    InputError,
    `command line: --train.batchSize: expected a positive integer, got "ten"`,
  );
  assertThrows(
    () => parseOverrides(["--train.batchSize"]),
    InputError,
    "command line: --train.batchSize: missing value",
  );
  assertThrows(
    () => parseOverrides(["--model.dtype=float16"]),
    InputError,
    `expected one of "float32", "float64", got "float16"`,
  );
  assertThrows(() => parseOverrides(["train.seed=1"]), InputError, "unexpected argument");
});

Deno.test("loadExperiment() reads a file, applies overrides and validates", async () => {
  await withFile(
    JSON.stringify({ $schema: "./experiment.schema.json", train: { batchSize: 25 } }),
    async (path) => {
      const cfg = await loadExperiment(path, ["--train.learningRate=1e-3", "--train.workers", "2"]);
      assertEquals(cfg.train.batchSize, 25);
      assertEquals(cfg.train.learningRate, 1e-3);
      assertEquals(cfg.train.workers, 2);
      assertEquals(cfg.name, "exp");
      assertEquals(cfg.output.dir, "runs/exp");
      const coco = await loadExperiment(path, ["--data.source=coco"]);
      assertEquals(coco.data.dir, "datasets/coco_captioning");
    },
  );
});

Deno.test("loadExperiment() names the file in errors: bad field, malformed JSON, missing file", async () => {
  await withFile(`{"train": {"learningRate": "fast"}}`, async (path) => {
    await assertRejects(
      () => loadExperiment(path),
      InputError,
      `${path}: train.learningRate: expected a positive number, got "fast"`,
    );
  });
  await withFile(`{\n  "train": {\n    "batchSize": 25,\n  }\n}\n`, async (path) => {
    const e = await assertRejects(
      () => loadExperiment(path),
      InputError,
      `${path}: invalid JSON at line 4, column 3`,
    );
    assert(!e.message.includes("\n"));
  });
  await withFile(`{"train": {"batchSize": 25}`, async (path) => {
    await assertRejects(
      () => loadExperiment(path),
      InputError,
      `${path}: invalid JSON at line 1, column`,
    );
  });
  await assertRejects(
    () => loadExperiment("/nonexistent/dir/exp.json"),
    InputError,
    "/nonexistent/dir/exp.json: experiment file not found",
  );
});

Deno.test("options that must agree are checked together, after the command-line overrides", async () => {
  assertThrows(
    () => resolveExperiment({ evaluate: { beamSize: 2, nBest: 3 } }, "x.json"),
    InputError,
    "x.json: evaluate.nBest: expected at most evaluate.beamSize (2), got 3",
  );
  assertThrows(
    () => resolveExperiment({ evaluate: { beamSize: 4, beamGroups: 3 } }, "x.json"),
    InputError,
    "x.json: evaluate.beamGroups: expected a divisor of evaluate.beamSize (4), got 3",
  );
  assertThrows(
    () =>
      resolveExperiment({ data: { stream: true }, train: { scst: { numEpochs: 2 } } }, "x.json"),
    InputError,
    "x.json: train.scst: self-critical training samples from the training features in memory",
  );
  assertThrows(
    () => resolveExperiment({ train: { scst: { from: "runs/a/best.h5" } } }, "x.json"),
    InputError,
    "x.json: train.scst.numEpochs: expected a positive integer with train.scst.from, got 0",
  );
  const cfg = resolveExperiment(
    { train: { scst: { numEpochs: 2, baseline: "greedy" } } },
    "x.json",
  );
  assertEquals(cfg.train.scst.baseline, "greedy");
  assertEquals(cfg.train.scst.samples, 5);
  assertThrows(
    () => resolveExperiment({ train: { scst: { baseline: "max" } } }, "x.json"),
    InputError,
    'x.json: train.scst.baseline: expected one of "mean", "greedy", got "max"',
  );
  // A file that an override settles is fine: the checks between options wait for it.
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/exp.json`;
    await Deno.writeTextFile(file, JSON.stringify({ evaluate: { beamSize: 2, nBest: 2 } }));
    const loaded = await loadExperiment(file, ["--evaluate.beamSize=3"]);
    assertEquals(loaded.evaluate.nBest, 2);
    await assertRejects(
      () => loadExperiment(file, ["--evaluate.beamSize=1"]),
      InputError,
      "evaluate.nBest: expected at most evaluate.beamSize (1), got 2",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("experimentHelp() lists every option with its default", () => {
  const help = experimentHelp();
  assert(help.includes("--train.learningRate"));
  assert(help.includes("(default 0.005)"));
  assert(help.includes(`--model.cellType`));
  assertEquals(help.split("\n").filter((l) => l.startsWith("  --")).length, 70);
  assertEquals(typeof EXPERIMENT_SCHEMA.train.batchSize.help, "string");
});

Deno.test("every experiment file in experiments/ is valid and points editors at the schema", async () => {
  const dir = new URL("../experiments/", import.meta.url);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.endsWith(".json") && n !== "experiment.schema.json").sort();
  assertEquals(files, [
    "coco_lstm.json",
    "overfit_gru.json",
    "overfit_lstm.json",
    "overfit_rnn.json",
    "overfit_rnn_sigmoid.json",
    "overfit_transformer.json",
    "synthetic_lstm.json",
    "synthetic_lstm_scst.json",
    "synthetic_transformer.json",
  ]);
  for (const name of files) {
    const path = new URL(name, dir).pathname;
    const cfg = await loadExperiment(path);
    assertEquals(cfg.name, name.replace(/\.json$/, ""));
    assertEquals(JSON.parse(await Deno.readTextFile(path)).$schema, "./experiment.schema.json");
  }
  // The exercise's overfit runs: 50 captions, batch 25, adam 5e-3, tanh vs sigmoid.
  const sigmoid = await loadExperiment(new URL("overfit_rnn_sigmoid.json", dir).pathname);
  assertEquals([sigmoid.data.maxTrain, sigmoid.train.batchSize, sigmoid.model.activation], [
    50,
    25,
    "sigmoid",
  ]);
  // SCST from the default run's best checkpoint, on the default run's data and model.
  const scst = await loadExperiment(new URL("synthetic_lstm_scst.json", dir).pathname);
  const defaults = defaultExperiment();
  assertEquals(scst.train.scst.from, `${defaults.output.dir}/best.h5`);
  assertEquals([scst.data, scst.model], [defaults.data, defaults.model]);
  assert(scst.train.scst.numEpochs > 0);
});

Deno.test("the train section has an option for every hyper-parameter of the update rules", () => {
  for (const key of OPTIM_HYPERPARAMS) {
    assert(key in EXPERIMENT_SCHEMA.train, `train.${key} is missing from the schema`);
  }
});
