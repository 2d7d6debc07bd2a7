import { Rng } from "../layers/random.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { gatherRows } from "../layers/tensor.ts";
import type { LoadedCaptionData } from "../pipeline/data/caption_data.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { loadCocoForStreaming } from "../pipeline/data/coco_subset.ts";
import { InputError } from "../pipeline/errors.ts";
import { evaluateSplit, type SplitEvaluation } from "../pipeline/eval/evaluate.ts";
import { H5File, withH5File } from "../pipeline/io/h5.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { StreamBatches } from "../pipeline/data/stream/stream_batches.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";

const T = 17;

/** Rewrites the captions file with some datasets replaced (removed when the value is null). */
async function rewriteCaptions(dir: string, changes: Record<string, Tensor | null>): Promise<void> {
  const path = `${dir}/coco2014_captions.h5`;
  const all = await withH5File(path, "r", (f) => f.keys().map((k) => [k, f.read(k)] as const));
  await withH5File(path, "w", (f) => {
    for (const [k, t] of all) {
      const v = k in changes ? changes[k] : t;
      if (v) f.write(k, v);
    }
  });
}

/**
 * A tiny dataset whose caption rows are shuffled (the synthetic writer lists images in order),
 * so caption order, file row order and the loaded rows all differ.
 */
const base = (async () => {
  const dir = await Deno.makeTempDir({ prefix: "recap_subset_" });
  await writeSyntheticDataset({ dir, numTrain: 40, numVal: 16, seed: 5, images: false });
  const changes: Record<string, Tensor> = {};
  const rng = new Rng(3);
  for (const split of ["train", "val"]) {
    const [caps, idxs] = await withH5File(`${dir}/coco2014_captions.h5`, "r", (f) => [
      f.read(`${split}_captions`, "int32"),
      f.read(`${split}_image_idxs`, "int32"),
    ]);
    const perm = rng.shuffle(Array.from({ length: idxs.shape[0] }, (_, i) => i));
    changes[`${split}_captions`] = gatherRows(caps, perm);
    changes[`${split}_image_idxs`] = gatherRows(idxs, perm);
  }
  await rewriteCaptions(dir, changes);
  return dir;
})();
addEventListener("unload", async () => {
  try {
    Deno.removeSync(await base, { recursive: true });
  } catch {
    // already gone
  }
});

/** The images of a split in order of first caption (as referencesByImage lists them). */
function firstSeen(idxs: Tensor<"int32">): number[] {
  const seen = new Set<number>();
  for (const i of idxs.data) seen.add(i);
  return [...seen];
}

/** A small model trained a little on the full data, so its captions depend on the image. */
const trained = (async () => {
  const full = await loadCocoData({ baseDir: await base });
  const model = new CaptioningRNN({
    wordToIdx: full.word_to_idx,
    inputDim: 512,
    wordvecDim: 16,
    hiddenDim: 32,
    cellType: "lstm",
    seed: 1,
  });
  const solver = new CaptioningSolver(model, full, {
    updateRule: "adam",
    optimConfig: { learningRate: 1e-2 },
    batchSize: 50,
    numEpochs: 15,
    verbose: false,
    valCaptions: 0,
  });
  await solver.train();
  return { full, model };
})();

Deno.test("loadCocoForStreaming() holds every train caption but only the first images' features", async () => {
  const baseDir = await base;
  const full = await loadCocoData({ baseDir });
  const sub = await loadCocoForStreaming({ baseDir, numImages: { train: 7, val: 5 } });
  // Train: all captions in file order, image indices renumbered by first caption.
  assertEquals(sub.train_captions.data, full.train_captions.data);
  const order = firstSeen(full.train_image_idxs);
  assert(order.slice(0, 7).join() !== "0,1,2,3,4,5,6", "the shuffle moved the first images");
  assertEquals([...sub.subset.train.imageRows], order);
  assertEquals(
    Array.from(sub.train_image_idxs.data, (i) => sub.subset.train.imageRows[i]),
    [...full.train_image_idxs.data],
  );
  assertEquals(sub.train_features.shape, [7, 512]);
  assertEquals(sub.train_urls, order.map((r) => full.train_urls[r]));
  for (let j = 0; j < 7; j++) {
    assertEquals(
      sub.train_features.data.subarray(j * 512, (j + 1) * 512),
      full.train_features.data.subarray(order[j] * 512, (order[j] + 1) * 512),
    );
  }
  assertEquals(sub.subset.train.loadedImages, 7);
  assertEquals(sub.subset.train.totalImages, 40);
  assertEquals(sub.subset.train.totalCaptions, full.train_captions.shape[0]);
  // Val: only the captions of the 5 loaded images, all pointing inside val_features.
  const valOrder = firstSeen(full.val_image_idxs).slice(0, 5);
  const keep = [...full.val_image_idxs.data.keys()].filter((i) =>
    valOrder.includes(full.val_image_idxs.data[i])
  );
  assertEquals(sub.val_captions.data, gatherRows(full.val_captions, keep).data);
  assertEquals(
    Array.from(sub.val_image_idxs.data, (i) => valOrder[i]),
    keep.map((i) => full.val_image_idxs.data[i]),
  );
  assert(sub.val_image_idxs.data.every((i) => i >= 0 && i < 5), "val indices inside the features");
  assertEquals([...sub.subset.val.imageRows], valOrder);
  assertEquals(sub.val_urls, valOrder.map((r) => full.val_urls[r]));
  for (let j = 0; j < 5; j++) {
    assertEquals(
      sub.val_features.data.subarray(j * 512, (j + 1) * 512),
      full.val_features.data.subarray(valOrder[j] * 512, (valOrder[j] + 1) * 512),
    );
  }
  // 40 rows of 2 KB lie within the merge gap: one read per split.
  assertEquals([sub.subset.train.featureReads, sub.subset.val.featureReads], [1, 1]);
});

Deno.test("loadCocoForStreaming() loads the 4096-d features and defaults to no train images", async () => {
  const baseDir = await Deno.makeTempDir({ prefix: "recap_subset_full_" });
  try {
    await writeSyntheticDataset({
      dir: baseDir,
      numTrain: 12,
      numVal: 6,
      seed: 2,
      images: false,
      fullFeatures: true,
    });
    const full = await loadCocoData({ baseDir, pcaFeatures: false });
    const sub = await loadCocoForStreaming({ baseDir, pcaFeatures: false, numImages: { val: 50 } });
    assertEquals(sub.train_features.shape, [0, 4096]);
    assertEquals(sub.subset.train.featureReads, 0);
    // More images asked than the split has: all of them.
    assertEquals(sub.subset.val.loadedImages, 6);
    assertEquals(sub.val_captions.shape[0], full.val_captions.shape[0]);
    const rows = sub.subset.val.imageRows;
    assertEquals(sub.val_features.data, gatherRows(full.val_features, rows).data);
  } finally {
    await Deno.remove(baseDir, { recursive: true });
  }
});

Deno.test("loadCocoForStreaming() rejects a numImages that is not a non-negative integer", async () => {
  const baseDir = await base;
  await assertRejects(
    () => loadCocoForStreaming({ baseDir, numImages: { val: -1 } }),
    RangeError,
    "numImages.val must be a non-negative integer, got -1",
  );
  await assertRejects(
    () => loadCocoForStreaming({ baseDir, numImages: { train: 2.5, val: 1 } }),
    RangeError,
    "numImages.train must be a non-negative integer, got 2.5",
  );
});

/** The evaluation with file feature rows as image indices, to compare with the in-memory one. */
function inFileRows(
  ev: SplitEvaluation,
  sub: LoadedCaptionData & { subset: NonNullable<LoadedCaptionData["subset"]> },
): SplitEvaluation {
  const rows = sub.subset[ev.split]!.imageRows;
  return { ...ev, images: ev.images.map((im) => ({ ...im, imageIdx: rows[im.imageIdx] })) };
}

for (const [split, loaded, evaluated] of [["val", 6, 6], ["val", 6, 4], ["train", 5, 5]] as const) {
  Deno.test(`evaluateSplit() on the ${split} subset (${evaluated} of ${loaded} loaded images) equals the in-memory evaluation`, async () => {
    const { full, model } = await trained;
    const sub = await loadCocoForStreaming({
      baseDir: await base,
      numImages: split === "train" ? { train: loaded, val: 1 } : { val: loaded },
    });
    const options = {
      split,
      numImages: evaluated,
      beamSize: 2,
      maxLength: 16,
      metrics: ["bleu1", "bleu4", "cider"] as const,
    };
    const want = await evaluateSplit(model, full, options);
    const got = await evaluateSplit(model, sub, options);
    assertEquals(new Set(want.images.map((i) => i.greedy)).size > 1, true, "captions vary");
    assert(want.greedy.bleu1! > 0, "the model learnt something");
    assertEquals(got.numImages, evaluated);
    assertEquals(inFileRows(got, sub), want);
  });
}

/** The full data with only the given val caption rows (file image indices kept). */
function withValRows(full: LoadedCaptionData, rows: number[]): LoadedCaptionData {
  return {
    ...full,
    val_captions: gatherRows(full.val_captions, rows),
    val_image_idxs: gatherRows(full.val_image_idxs, rows),
  };
}

Deno.test("CaptioningSolver trains from StreamBatches on the subset and measures validation on the loaded images", async () => {
  const baseDir = await base;
  const full = await loadCocoData({ baseDir });
  const sub = await loadCocoForStreaming({ baseDir, numImages: { val: 4 } });
  const make = (data: LoadedCaptionData, batches?: StreamBatches) => {
    const model = new CaptioningRNN({
      wordToIdx: data.word_to_idx,
      inputDim: data.train_features.shape[1],
      wordvecDim: 8,
      hiddenDim: 12,
      cellType: "lstm",
      seed: 4,
    });
    const solver = new CaptioningSolver(model, data, {
      updateRule: "adam",
      batchSize: 7,
      numEpochs: 1,
      verbose: false,
      ...(batches ? { batches } : {}),
    });
    return { model, solver };
  };
  const streamed = make(sub, await StreamBatches.open({ baseDir, batchSize: 7, seed: 0 }));
  try {
    assertEquals(streamed.solver.iterationsPerEpoch, Math.floor(full.train_captions.shape[0] / 7));
    await streamed.solver.train();
  } finally {
    await streamed.solver.close();
  }
  assertEquals(streamed.solver.lossHistory.length, streamed.solver.iterationsPerEpoch);
  // Same seed in memory: the same batches, so the same parameters.
  const memory = make(full);
  await memory.solver.train();
  assertEquals(streamed.model.flat, memory.model.flat);
  // The validation subset is every caption of the 4 loaded val images (fewer than 1000), and
  // its loss is theirs with their true features.
  const order = firstSeen(full.val_image_idxs).slice(0, 4);
  const rows = [...full.val_image_idxs.data.keys()].filter((i) =>
    order.includes(full.val_image_idxs.data[i])
  );
  assertEquals(sub.val_captions.shape[0], rows.length);
  const reference = make(withValRows(full, rows));
  reference.model.flat.set(memory.model.flat);
  const want = await reference.solver.validationLoss();
  assert(want !== null && Number.isFinite(want), "a validation loss");
  assertEquals(streamed.solver.valLossHistory, [{ epoch: 1, iteration: 28, loss: want }]);
  assertEquals(await streamed.solver.validationLoss(), want);
});

async function copyDataset(): Promise<string> {
  const src = await base;
  const dir = await Deno.makeTempDir({ prefix: "recap_subset_bad_" });
  for await (const e of Deno.readDir(src)) {
    if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
  }
  return dir;
}

async function readCaptions(dir: string, name: string): Promise<Tensor<"int32">> {
  return await withH5File(`${dir}/coco2014_captions.h5`, "r", (f) => f.read(name, "int32"));
}

const BAD: [string, (dir: string) => Promise<void>][] = [
  ["a missing vocabulary", (d) => Deno.remove(`${d}/coco2014_vocab.json`)],
  ["a missing val features file", (d) => Deno.remove(`${d}/val2014_vgg16_fc7_pca.h5`)],
  ["a missing captions file", (d) => Deno.remove(`${d}/coco2014_captions.h5`)],
  [
    "a file that is not HDF5",
    (d) => Deno.writeTextFile(`${d}/coco2014_captions.h5`, "<html>not found</html>"),
  ],
  ["a truncated features file", async (d) => {
    const p = `${d}/train2014_vgg16_fc7_pca.h5`, bytes = await Deno.readFile(p);
    await Deno.writeFile(p, bytes.subarray(0, bytes.length - 5000));
  }],
  ["a missing dataset", (d) => rewriteCaptions(d, { val_image_idxs: null })],
  ["captions of the wrong dtype", async (d) => {
    const t = await readCaptions(d, "train_captions");
    await rewriteCaptions(d, { train_captions: t.astype("float32") });
  }],
  ["image indices of the wrong length", async (d) => {
    const t = await readCaptions(d, "val_image_idxs");
    await rewriteCaptions(d, { val_image_idxs: gatherRows(t, [0, 1, 2]) });
  }],
  [
    "features of the wrong width",
    (d) =>
      withH5File(
        `${d}/val2014_vgg16_fc7_pca.h5`,
        "w",
        (f) => f.write("features", Tensor.zeros([16, 100], "float32")),
      ),
  ],
  ["a caption id outside the vocabulary", async (d) => {
    const t = await readCaptions(d, "val_captions");
    t.data[30 * T + 3] = 5000;
    await rewriteCaptions(d, { val_captions: t });
  }],
  ["an image index outside the feature rows", async (d) => {
    const t = await readCaptions(d, "train_image_idxs");
    t.data[t.shape[0] - 1] = 40;
    await rewriteCaptions(d, { train_image_idxs: t });
  }],
  ["a negative image index", async (d) => {
    const t = await readCaptions(d, "val_image_idxs");
    t.data[0] = -1;
    await rewriteCaptions(d, { val_image_idxs: t });
  }],
  ["a caption that does not start with <START>", async (d) => {
    const t = await readCaptions(d, "train_captions");
    t.data[17 * T] = 3;
    await rewriteCaptions(d, { train_captions: t });
  }],
  ["an inconsistent vocabulary", async (d) => {
    const v = JSON.parse(await Deno.readTextFile(`${d}/coco2014_vocab.json`));
    v.word_to_idx[v.idx_to_word[10]] = 11;
    await Deno.writeTextFile(`${d}/coco2014_vocab.json`, JSON.stringify(v));
  }],
  ["a URL file of the wrong length", async (d) => {
    const lines = (await Deno.readTextFile(`${d}/train2014_urls.txt`)).trim().split("\n");
    await Deno.writeTextFile(`${d}/train2014_urls.txt`, lines.slice(1).join("\n"));
  }],
];

for (const [what, breakIt] of BAD) {
  Deno.test(`loadCocoForStreaming() rejects ${what} with loadCocoData's InputError`, async () => {
    const dir = await copyDataset();
    try {
      await breakIt(dir);
      const want = await assertRejects(() => loadCocoData({ baseDir: dir }), InputError);
      const got = await assertRejects(
        () => loadCocoForStreaming({ baseDir: dir, numImages: { train: 3, val: 3 } }),
        InputError,
      );
      assertEquals(got.message, want.message);
      // The file can be opened for writing again: nothing holds it.
      for await (const e of Deno.readDir(dir)) {
        if (!e.name.endsWith(".h5")) continue;
        try {
          (await H5File.open(`${dir}/${e.name}`, "a")).close();
        } catch (err) {
          assert(err instanceof InputError, `${e.name} is only broken, not held: ${err}`);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
