import { assert, assertEquals, assertRejects } from "./assert.ts";
import { gatherRows } from "../layers/tensor.ts";
import { loadCocoData, sampleCocoMinibatch } from "../pipeline/data/coco.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { H5File, withH5File } from "../pipeline/io/h5.ts";
import { InputError } from "../pipeline/errors.ts";
import { Rng } from "../layers/random.ts";
import { Tensor } from "../layers/tensor.ts";

/** A tiny synthetic dataset shared by the tests of this file. */
const base = (async () => {
  const dir = await Deno.makeTempDir({ prefix: "recap_coco_" });
  await writeSyntheticDataset({ dir, numTrain: 200, numVal: 50, seed: 3, images: false });
  return dir;
})();

async function copyDataset(): Promise<string> {
  const src = await base;
  const dir = await Deno.makeTempDir({ prefix: "recap_bad_" });
  for await (const e of Deno.readDir(src)) {
    if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
  }
  return dir;
}

/** Rewrites the captions file with one dataset replaced (or removed when value is null). */
async function rewriteCaptions(dir: string, name: string, value: Tensor | null): Promise<void> {
  const path = `${dir}/coco2014_captions.h5`;
  const all = await withH5File(path, "r", (f) => f.keys().map((k) => [k, f.read(k)] as const));
  await withH5File(path, "w", (f) => {
    for (const [k, t] of all) {
      if (k !== name) f.write(k, t);
      else if (value) f.write(k, value);
    }
  });
}

Deno.test("loadCocoData() loads the exercise's dictionary and the rows in the files", async () => {
  const baseDir = await base;
  const data = await loadCocoData({ baseDir });
  assertEquals(data.train_captions.shape, [1000, 17]);
  assertEquals(data.train_image_idxs.shape, [1000]);
  assertEquals(data.val_captions.shape, [250, 17]);
  assertEquals(data.train_features.shape, [200, 512]);
  assertEquals(data.val_features.shape, [50, 512]);
  assertEquals(data.train_urls.length, 200);
  assertEquals(data.val_urls[7], "images/val/000007.svg");
  assertEquals(data.idx_to_word[1], "<START>");
  assertEquals(data.word_to_idx["<END>"], 2);
  await withH5File(`${baseDir}/coco2014_captions.h5`, "r", (f) => {
    assertEquals(data.val_captions.data, f.readRows("val_captions"));
  });
  await withH5File(`${baseDir}/train2014_vgg16_fc7_pca.h5`, "r", (f) => {
    assertEquals(data.train_features.data, f.readRows("features"));
  });
});

Deno.test("loadCocoData() subsamples train captions like the exercise's max_train", async () => {
  const baseDir = await base;
  const full = await loadCocoData({ baseDir });
  const sub = await loadCocoData({ baseDir, maxTrain: 64, rng: new Rng(11) });
  const mask = Array.from({ length: 64 }, ((r) => () => r.randint(1000))(new Rng(11)));
  assertEquals(sub.train_captions.data, gatherRows(full.train_captions, mask).data);
  assertEquals(sub.train_image_idxs.data, gatherRows(full.train_image_idxs, mask).data);
  assertEquals(sub.train_features.shape, [200, 512], "features are not subsampled");
  assertEquals(sub.val_captions.shape, [250, 17]);
});

Deno.test("sampleCocoMinibatch() draws seeded rows and pairs each caption with its image", async () => {
  const data = await loadCocoData({ baseDir: await base });
  const a = sampleCocoMinibatch(data, { batchSize: 25, split: "val", rng: new Rng(5) });
  const b = sampleCocoMinibatch(data, { batchSize: 25, split: "val", rng: new Rng(5) });
  assertEquals(a.captions.data, b.captions.data);
  assertEquals(a.captions.shape, [25, 17]);
  assertEquals(a.features.shape, [25, 512]);
  const rng = new Rng(5);
  for (let i = 0; i < 25; i++) {
    const row = rng.randint(250);
    assertEquals(a.captionIdxs![i], row);
    assertEquals(
      a.captions.data.subarray(i * 17, i * 17 + 17),
      data.val_captions.data.subarray(row * 17, row * 17 + 17),
    );
    const img = data.val_image_idxs.data[row];
    assertEquals(a.imageIdxs[i], img);
    assertEquals(
      a.features.data.subarray(i * 512, i * 512 + 512),
      data.val_features.data.subarray(img * 512, img * 512 + 512),
    );
    assertEquals(a.urls![i], data.val_urls[img]);
  }
});

/** Every bad-data case: how to break a copy of the dataset, and the message expected. */
const BAD: [string, (dir: string) => Promise<void>, RegExp][] = [
  [
    "a missing features file",
    (d) => Deno.remove(`${d}/val2014_vgg16_fc7_pca.h5`),
    /val2014_vgg16_fc7_pca\.h5 does not exist; .*: deno task dataset synth --dir <dir>$/,
  ],
  [
    "a missing vocabulary",
    (d) => Deno.remove(`${d}/coco2014_vocab.json`),
    /coco2014_vocab\.json does not exist/,
  ],
  [
    "a file that is not HDF5",
    (d) => Deno.writeTextFile(`${d}/coco2014_captions.h5`, "<html>not found</html>"),
    /coco2014_captions\.h5: not an HDF5 file/,
  ],
  ["a truncated file", async (d) => {
    const p = `${d}/train2014_vgg16_fc7_pca.h5`, bytes = await Deno.readFile(p);
    await Deno.writeFile(p, bytes.subarray(0, bytes.length - 5000));
  }, /train2014_vgg16_fc7_pca\.h5: the file is truncated/],
  [
    "a missing dataset",
    (d) => rewriteCaptions(d, "val_image_idxs", null),
    /coco2014_captions\.h5: dataset "val_image_idxs" is missing/,
  ],
  ["captions of the wrong dtype", async (d) => {
    const t = await withH5File(
      `${d}/coco2014_captions.h5`,
      "r",
      (f) => f.read("train_captions", "int32"),
    );
    await rewriteCaptions(d, "train_captions", t.astype("float32"));
  }, /dataset "train_captions" has dtype float32, expected int32/],
  ["captions of the wrong shape", async (d) => {
    const t = await withH5File(
      `${d}/coco2014_captions.h5`,
      "r",
      (f) => f.read("train_captions", "int32"),
    );
    await rewriteCaptions(d, "train_captions", t.reshape([850, 20]));
  }, /dataset "train_captions" has shape \[850, 20\], expected \[\*, 17\]/],
  [
    "features of the wrong width",
    (d) =>
      withH5File(
        `${d}/train2014_vgg16_fc7_pca.h5`,
        "w",
        (f) => f.write("features", Tensor.zeros([200, 100], "float32")),
      ),
    /train2014_vgg16_fc7_pca\.h5: dataset "features" has shape \[200, 100\], expected \[\*, 512\]/,
  ],
  ["a caption id outside the vocabulary", async (d) => {
    const t = await withH5File(
      `${d}/coco2014_captions.h5`,
      "r",
      (f) => f.read("val_captions", "int32"),
    );
    t.data[40 * 17 + 3] = 5000;
    await rewriteCaptions(d, "val_captions", t);
  }, /"val_captions" holds word id 5000 at row 40, outside the vocabulary of \d+ words/],
  ["an image index outside the feature rows", async (d) => {
    const t = await withH5File(
      `${d}/coco2014_captions.h5`,
      "r",
      (f) => f.read("train_image_idxs", "int32"),
    );
    t.data[999] = 200;
    await rewriteCaptions(d, "train_image_idxs", t);
  }, /"train_image_idxs" holds image index 200, outside the 200 rows of train2014 features/],
  [
    "a vocabulary from another dataset",
    async (d) => {
      const other = await Deno.makeTempDir();
      await writeSyntheticDataset({ dir: other, numTrain: 8, numVal: 2, seed: 1, images: false });
      await Deno.copyFile(`${other}/coco2014_vocab.json`, `${d}/coco2014_vocab.json`);
      await Deno.remove(other, { recursive: true });
    },
    /outside the vocabulary of \d+ words in coco2014_vocab\.json; use the vocabulary file that came with the captions/,
  ],
  [
    "captions that do not start with <START>",
    async (d) => {
      const t = await withH5File(
        `${d}/coco2014_captions.h5`,
        "r",
        (f) => f.read("train_captions", "int32"),
      );
      for (let r = 0; r < 1000; r++) {
        t.data[r * 17] = 3;
      }
      await rewriteCaptions(d, "train_captions", t);
    },
    /row 0 starts with id 3, not <START> \(1\); the vocabulary coco2014_vocab\.json does not match the captions/,
  ],
  ["an inconsistent vocabulary", async (d) => {
    const v = JSON.parse(await Deno.readTextFile(`${d}/coco2014_vocab.json`));
    v.word_to_idx[v.idx_to_word[10]] = 11;
    await Deno.writeTextFile(`${d}/coco2014_vocab.json`, JSON.stringify(v));
  }, /coco2014_vocab\.json: word_to_idx\[".*"\] is 11, but idx_to_word\[10\] is that word/],
  ["a URL file of the wrong length", async (d) => {
    const lines = (await Deno.readTextFile(`${d}/val2014_urls.txt`)).trim().split("\n");
    await Deno.writeTextFile(`${d}/val2014_urls.txt`, lines.slice(1).join("\n"));
  }, /val2014_urls\.txt has 49 lines but val2014_vgg16_fc7\*\.h5 has 50 feature rows/],
];

for (const [what, breakIt, message] of BAD) {
  Deno.test(`loadCocoData() rejects ${what} with a one-line InputError`, async () => {
    const dir = await copyDataset();
    try {
      await breakIt(dir);
      const e = await assertRejects(() => loadCocoData({ baseDir: dir }), InputError, message);
      assert(!e.message.includes("\n"), `one line: ${e.message}`);
      assert(e.message.includes(dir) || /vocab/.test(what), `names the file: ${e.message}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("loadCocoData() leaves no file open after an error", async () => {
  const dir = await copyDataset();
  try {
    await rewriteCaptions(dir, "val_image_idxs", null);
    await assertRejects(() => loadCocoData({ baseDir: dir }), InputError);
    // The file can be opened for writing again: nothing holds it.
    const f = await H5File.open(`${dir}/coco2014_captions.h5`, "a");
    f.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "data test cleanup: remove the shared tiny dataset",
  fn: async () => {
    await Deno.remove(await base, { recursive: true });
  },
});
