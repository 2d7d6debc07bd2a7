import { join } from "node:path";
import type { ModelKind } from "../model/captioning_model.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { createCaptioningModel } from "../model/models.ts";
import { loadCheckpoint, saveCheckpoint } from "../pipeline/train/checkpoint.ts";
import { InputError } from "../pipeline/errors.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { randomCaptionData } from "./fixtures_data.ts";
import { pythonWith, runPython } from "./python.ts";

const data = randomCaptionData({ numTrain: 40, numVal: 10, vocab: 30, inputDim: 16, seed: 5 });

function run(numEpochs: number, stopAt?: number) {
  return runOf("lstm", numEpochs, stopAt);
}

Deno.test("a checkpoint round-trips parameters, vocabulary, model arguments and solver state", async () => {
  const dir = await Deno.makeTempDir();
  const { model, solver } = run(1);
  await solver.train();
  const path = join(dir, "checkpoint.h5");
  await saveCheckpoint(path, model, {
    solver: solver.getState(),
    experiment: { name: "x", train: { batchSize: 10 } },
    info: { cider: 0.5 },
  });
  const loaded = await loadCheckpoint(path, { idxToWord: data.idx_to_word });
  assertEquals(loaded.model.flat, model.flat);
  assertEquals(loaded.model.config, model.config);
  assertEquals(loaded.model.idxToWord, model.idxToWord);
  assertEquals(loaded.solver, solver.getState());
  assertEquals(loaded.experiment, { name: "x", train: { batchSize: 10 } });
  assertEquals(loaded.info, { cider: 0.5 });
  // No temporary files are left behind.
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint.h5"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("k iterations + checkpoint + resume + k iterations equals 2k iterations bitwise", async () => {
  const dir = await Deno.makeTempDir();
  const full = run(3);
  await full.solver.train();
  const part = run(3, 5);
  await part.solver.train();
  const path = join(dir, "checkpoint.h5");
  await saveCheckpoint(path, part.model, { solver: part.solver.getState() });
  const loaded = await loadCheckpoint(path);
  const resumed = run(3);
  resumed.model.flat.set(loaded.model.flat);
  resumed.solver.setState(loaded.solver!);
  await resumed.solver.train();
  assertEquals(resumed.solver.lossHistory, full.solver.lossHistory);
  assertEquals(resumed.solver.valLossHistory, full.solver.valLossHistory);
  assertEquals(resumed.model.flat, full.model.flat);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad checkpoints fail with one-line messages naming the file and the problem", async () => {
  const dir = await Deno.makeTempDir();
  const { model } = run(1);
  const path = join(dir, "good.h5");
  await saveCheckpoint(path, model);
  const bytes = Deno.readFileSync(path);
  const truncated = join(dir, "truncated.h5");
  Deno.writeFileSync(truncated, bytes.slice(0, Math.floor(bytes.length / 2)));
  const empty = join(dir, "empty.h5");
  Deno.writeFileSync(empty, new Uint8Array());
  const text = join(dir, "notes.h5");
  Deno.writeTextFileSync(text, "not hdf5 at all\n");
  const json = join(dir, "config.json");
  Deno.writeTextFileSync(json, JSON.stringify({ model: { cellType: "lstm" } }));
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ["missing", () => loadCheckpoint(join(dir, "nope.h5")), /nope\.h5: the file does not exist/],
    [
      "truncated",
      () => loadCheckpoint(truncated),
      /truncated\.h5: it is not a readable HDF5 file .*it may be truncated — use an earlier/,
    ],
    ["empty", () => loadCheckpoint(empty), /empty\.h5: it is not an HDF5 file \(pass a checkpoint/],
    [
      "not hdf5",
      () => loadCheckpoint(text),
      /notes\.h5: it is not an HDF5 file \(pass a checkpoint/,
    ],
    [
      "json",
      () => loadCheckpoint(json),
      /config\.json: it is not an HDF5 file \(pass a checkpoint\.h5 written by recap\)$/,
    ],
    [
      "other vocabulary",
      () => loadCheckpoint(path, { idxToWord: [...data.idx_to_word.slice(0, 5), "zebra"] }),
      /vocabulary \(30 words\) differs from the data's \(6 words\) at index 5 \("w5" vs "zebra"\)/,
    ],
    [
      "other model size",
      () => loadCheckpoint(path, { model: { hiddenDim: 64 } }),
      /good\.h5: model\.hiddenDim is 12 but the experiment asks for 64/,
    ],
  ];
  for (const [what, fn, pattern] of cases) {
    const err = await assertRejects(fn, InputError);
    assert(pattern.test(err.message), `${what}: ${err.message}`);
    assert(!err.message.includes("\n"), `${what}: message is one line`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed checkpoint write leaves the previous checkpoint intact", async () => {
  const dir = await Deno.makeTempDir();
  const { model } = run(1);
  const path = join(dir, "checkpoint.h5");
  await saveCheckpoint(path, model);
  const before = Deno.readFileSync(path);
  await Deno.chmod(dir, 0o500); // no new files: the temporary file cannot be created
  try {
    const isRoot = Deno.uid() === 0;
    if (!isRoot) {
      await assertRejects(() => saveCheckpoint(path, model), InputError, "the previous checkpoint");
    }
  } finally {
    await Deno.chmod(dir, 0o700);
  }
  // Writing into a path whose directory is missing fails the same way.
  await assertRejects(
    () => saveCheckpoint(join(dir, "missing", "checkpoint.h5"), model),
    InputError,
    "Cannot write checkpoint",
  );
  assertEquals(Deno.readFileSync(path), before);
  assertEquals((await loadCheckpoint(path)).model.flat, model.flat);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "a checkpoint is readable by Python's h5py under the exercise's parameter names",
  ignore: pythonWith(["h5py"]) === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const { model, solver } = run(1);
    await solver.train();
    const path = join(dir, "checkpoint.h5");
    await saveCheckpoint(path, model, { solver: solver.getState() });
    const script = `
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
out = {k: [list(f[k].shape), str(f[k].dtype), float(f[k][()].ravel()[0])] for k in
       ["W_proj", "b_proj", "W_embed", "Wx", "Wh", "b", "W_vocab", "b_vocab"]}
out["vocab"] = json.loads(f.attrs["idx_to_word"])[:3]
out["moments"] = sorted(f["optimizer"].keys())
out["iterations"] = int(f["history/loss"].shape[0])
print(json.dumps(out))`;
    const out = JSON.parse(runPython(pythonWith(["h5py"])!, script, [path]));
    assertEquals(out.Wx, [[8, 48], "float32", model.params.Wx.data[0]]);
    assertEquals(out.W_vocab[0], [12, 30]);
    assertEquals(out.vocab, ["<NULL>", "<START>", "<END>"]);
    assertEquals(out.moments, ["m", "v"]);
    assertEquals(out.iterations, 4);
    await Deno.remove(dir, { recursive: true });
  },
});

/** A short run of any model, stopped after `stopAt` iterations when given. */
function runOf(cellType: ModelKind, numEpochs: number, stopAt?: number) {
  const model = createCaptioningModel({
    wordToIdx: data.word_to_idx,
    cellType,
    inputDim: 16,
    wordvecDim: 8,
    hiddenDim: 12,
    numHeads: 2,
    ffDim: 16,
    dropout: 0.2,
    seed: 3,
  });
  const solver: CaptioningSolver = new CaptioningSolver(model, data, {
    updateRule: "adam",
    optimConfig: { learningRate: 5e-3 },
    lrDecay: 0.9,
    numEpochs,
    batchSize: 10,
    verbose: false,
    valCaptions: 10,
    onIteration: (i) => {
      if (i.iteration === stopAt) solver.requestStop();
    },
  });
  return { model, solver };
}

for (const cell of ["gru", "transformer"] as const) {
  Deno.test(`a ${cell} checkpoint round-trips its parameters, config and solver state, and resumes exactly`, async () => {
    const dir = await Deno.makeTempDir();
    const path = join(dir, "checkpoint.h5");
    const full = runOf(cell, 3);
    await full.solver.train();
    const part = runOf(cell, 3, 5);
    await part.solver.train();
    await saveCheckpoint(path, part.model, { solver: part.solver.getState() });
    const loaded = await loadCheckpoint(path, {
      idxToWord: data.idx_to_word,
      model: { cellType: cell },
    });
    assertEquals(loaded.model.config, part.model.config);
    assertEquals(loaded.model.flat, part.model.flat);
    assertEquals(loaded.solver, part.solver.getState());
    assert(loaded.model.layout.slots.every((s, i) => s.name === part.model.layout.slots[i].name));
    const resumed = runOf(cell, 3);
    resumed.model.flat.set(loaded.model.flat);
    resumed.solver.setState(loaded.solver!);
    await resumed.solver.train();
    assertEquals(resumed.solver.lossHistory, full.solver.lossHistory);
    assertEquals(resumed.model.flat, full.model.flat);
    await Deno.remove(dir, { recursive: true });
  });
}

for (const cell of ["rnn", "lstm"] as const) {
  Deno.test(`a version-1 ${cell} checkpoint written before the GRU and the Transformer still loads bit for bit`, async () => {
    // tests/fixtures/checkpoint_v1_*.h5: written by commit 849c946 from a fresh model (seed 9).
    const path = new URL(`./fixtures/checkpoint_v1_${cell}.h5`, import.meta.url).pathname;
    const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "sits": 5 };
    const { model, info } = await loadCheckpoint(path, {
      idxToWord: Object.keys(wordToIdx),
      model: { cellType: cell, hiddenDim: 5, numHeads: 4, ffDim: 2048 }, // the Transformer's ignored
    });
    const fresh = new CaptioningRNN({
      wordToIdx,
      inputDim: 6,
      wordvecDim: 4,
      hiddenDim: 5,
      cellType: cell,
      seed: 9,
    });
    assertEquals(model.config, fresh.config);
    assertEquals(model.flat, fresh.flat);
    assert(String(info?.written_by).startsWith("recap 849c946"));
  });
}

Deno.test("a checkpoint of another kind of model, or other Transformer sizes, is refused naming the option", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "transformer.h5");
  await saveCheckpoint(path, runOf("transformer", 1).model);
  await assertRejects(
    () => loadCheckpoint(path, { model: { cellType: "lstm", hiddenDim: 12 } }),
    InputError,
    `transformer.h5: model.cellType is "transformer" but the experiment asks for "lstm"`,
  );
  await assertRejects(
    () => loadCheckpoint(path, { model: { cellType: "transformer", numHeads: 4 } }),
    InputError,
    "model.numHeads is 2 but the experiment asks for 4",
  );
  // A recurrent model's options are not the Transformer's business.
  const { model } = await loadCheckpoint(path, {
    model: { cellType: "transformer", hiddenDim: 999 },
  });
  assertEquals(model.config.cellType, "transformer");
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "the GRU's and the Transformer's parameters are readable by h5py under their layout names",
  ignore: pythonWith(["h5py"]) === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out: Record<string, number[]> = {};
    for (const cell of ["gru", "transformer"] as const) {
      const { model } = runOf(cell, 1);
      const path = join(dir, `${cell}.h5`);
      await saveCheckpoint(path, model);
      const names = model.layout.slots.map((s) => s.name);
      const script = `
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
print(json.dumps({k: list(f[k].shape) for k in json.loads(sys.argv[2])}))`;
      const text = runPython(pythonWith(["h5py"])!, script, [path, JSON.stringify(names)]);
      Object.assign(out, JSON.parse(text));
      for (const s of model.layout.slots) assertEquals(out[s.name], s.shape, `${cell}: ${s.name}`);
    }
    assertEquals(out.bx, [36]);
    assertEquals(out["layer1/self_attn/Wq"], [8, 8]);
    assertEquals(out["layer0/ffn/W1"], [8, 16]);
    await Deno.remove(dir, { recursive: true });
  },
});
