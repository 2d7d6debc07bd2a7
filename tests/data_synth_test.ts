import { assert, assertEquals, assertNotEquals } from "./assert.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { synthMain } from "../pipeline/cli/synth.ts";
import { writeCaption } from "../pipeline/data/synth/captions.ts";
import { sampleScene } from "../pipeline/data/synth/scene.ts";
import { FeatureProjector, PCA_DIM } from "../pipeline/data/synth/features.ts";
import { H5File, withH5File } from "../pipeline/io/h5.ts";
import { InputError } from "../pipeline/errors.ts";
import { Rng } from "../layers/random.ts";

const LAYOUT: [string, string, "int32" | "float32", (n: number) => number[]][] = [
  ["coco2014_captions.h5", "train_captions", "int32", () => [1000, 17]],
  ["coco2014_captions.h5", "train_image_idxs", "int32", () => [1000]],
  ["coco2014_captions.h5", "val_captions", "int32", () => [250, 17]],
  ["coco2014_captions.h5", "val_image_idxs", "int32", () => [250]],
  ["train2014_vgg16_fc7_pca.h5", "features", "float32", () => [200, 512]],
  ["val2014_vgg16_fc7_pca.h5", "features", "float32", () => [50, 512]],
  ["train2014_vgg16_fc7.h5", "features", "float32", () => [200, 4096]],
  ["val2014_vgg16_fc7.h5", "features", "float32", () => [50, 4096]],
];

async function datasets(dir: string): Promise<Map<string, ArrayLike<number>>> {
  const out = new Map<string, ArrayLike<number>>();
  for (const [file, name] of LAYOUT) {
    out.set(`${file}:${name}`, await withH5File(`${dir}/${file}`, "r", (f) => f.readRows(name)));
  }
  return out;
}

Deno.test("writeSyntheticDataset() writes the exact COCO captioning layout, deterministic for a seed", async () => {
  const [a, b, c] = [await Deno.makeTempDir(), await Deno.makeTempDir(), await Deno.makeTempDir()];
  try {
    const opts = { numTrain: 200, numVal: 50, seed: 7, fullFeatures: true };
    const sa = await writeSyntheticDataset({ dir: a, ...opts });
    await writeSyntheticDataset({ dir: b, ...opts });
    await writeSyntheticDataset({ dir: c, ...opts, seed: 8, images: false });
    assertEquals(sa.trainCaptions, 1000);
    assertEquals(sa.valCaptions, 250);
    for (const [file, name, dtype, shape] of LAYOUT) {
      await withH5File(`${a}/${file}`, "r", (f) => f.expect(name, dtype, shape(0)));
    }
    const [da, db, dc] = [await datasets(a), await datasets(b), await datasets(c)];
    for (const key of da.keys()) {
      assertEquals(da.get(key), db.get(key), `${key} differs between two runs with one seed`);
      assertNotEquals(da.get(key), dc.get(key), `${key} is the same for another seed`);
    }
    for (
      const f of [
        "coco2014_vocab.json",
        "train2014_urls.txt",
        "val2014_urls.txt",
        "images/train/000123.svg",
      ]
    ) {
      assertEquals(await Deno.readTextFile(`${a}/${f}`), await Deno.readTextFile(`${b}/${f}`), f);
    }
    // Vocabulary: special tokens first, consistent maps, at tiny scale smaller than full size.
    const vocab = JSON.parse(await Deno.readTextFile(`${a}/coco2014_vocab.json`));
    assertEquals(vocab.idx_to_word.slice(0, 4), ["<NULL>", "<START>", "<END>", "<UNK>"]);
    assertEquals(vocab.idx_to_word.length, sa.vocabSize);
    vocab.idx_to_word.forEach((w: string, i: number) => assertEquals(vocab.word_to_idx[w], i));
    assert(sa.vocabSize > 150 && sa.vocabSize < 700, `tiny vocabulary ${sa.vocabSize}`);
    // Caption rows: <START> words <END> <NULL>..., ids inside the vocabulary, some <UNK>.
    const caps = da.get("coco2014_captions.h5:train_captions") as Int32Array;
    let unk = 0;
    for (let r = 0; r < 1000; r++) {
      const row = caps.subarray(r * 17, r * 17 + 17);
      assertEquals(row[0], 1);
      const end = row.indexOf(2);
      assert(end >= 3, `row ${r} has an <END> after some words`);
      for (let t = 1; t < end; t++) assert(row[t] >= 3 && row[t] < sa.vocabSize);
      for (let t = end + 1; t < 17; t++) assertEquals(row[t], 0);
      for (let t = 1; t < end; t++) unk += row[t] === 3 ? 1 : 0;
    }
    assert(unk > 0, "rare words become <UNK>");
    // Five captions per image, image indices inside the feature rows, URLs aligned.
    const idxs = da.get("coco2014_captions.h5:train_image_idxs") as Int32Array;
    const per = new Int32Array(200);
    for (const i of idxs) per[i]++;
    assert(per.every((n) => n === 5));
    const urls = (await Deno.readTextFile(`${a}/train2014_urls.txt`)).trim().split("\n");
    assertEquals(urls.length, 200);
    assertEquals(urls[123], "images/train/000123.svg");
    const svg = await Deno.readTextFile(`${a}/${urls[123]}`);
    assert(svg.startsWith("<svg") && svg.includes("<title>"));
    // The 4096-d features are non-negative, like fc7 after its ReLU.
    assert((da.get("train2014_vgg16_fc7.h5:features") as Float32Array).every((v) => v >= 0));
  } finally {
    for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("writeCaption() describes one scene with varied sentences and synonyms", () => {
  const rng = new Rng(5);
  let distinct = 0, total = 0;
  for (let i = 0; i < 200; i++) {
    const scene = sampleScene(rng);
    const caps = new Set(Array.from({ length: 5 }, () => writeCaption(rng, scene).join(" ")));
    distinct += caps.size;
    total += 5;
    for (const c of caps) assert(c.split(" ").length <= 15, c);
  }
  assert(
    distinct / total > 0.9,
    `captions of one scene are mostly different (${distinct}/${total})`,
  );
});

Deno.test("FeatureProjector features carry the scene: same scene closer than different scenes", () => {
  const proj = new FeatureProjector(1);
  const rng = new Rng(2), noise = new Rng(3);
  const dist = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
  let same = 0, other = 0;
  for (let i = 0; i < 50; i++) {
    const s1 = sampleScene(rng), s2 = sampleScene(rng);
    const [a, b, c] = [
      new Float32Array(PCA_DIM),
      new Float32Array(PCA_DIM),
      new Float32Array(PCA_DIM),
    ];
    proj.project(s1, noise, a, 0, null, 0);
    proj.project(s1, noise, b, 0, null, 0);
    proj.project(s2, noise, c, 0, null, 0);
    same += dist(a, b);
    other += dist(a, c);
    assert(a.some((v, k) => v !== b[k]), "noise makes two images of one scene differ");
  }
  assert(same < other * 0.5, `same-scene distance ${same} vs other ${other}`);
});

Deno.test("synthMain() parses its flags and rejects unknown ones with an InputError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await synthMain([
      "--dir",
      dir,
      "--train=12",
      "--val",
      "3",
      "--seed",
      "4",
      "--no-images",
      "--quiet",
    ]);
    const f = await H5File.open(`${dir}/coco2014_captions.h5`);
    assertEquals(f.info("train_captions").shape, [60, 17]);
    f.close();
    let err: unknown;
    try {
      await synthMain(["--dir", dir, "--bogus"]);
    } catch (e) {
      err = e;
    }
    assert(err instanceof InputError && err.message.includes("--bogus: unknown option"));
    try {
      await synthMain(["--train", "zero"]);
    } catch (e) {
      err = e;
    }
    assert(err instanceof InputError && err.message.includes("--train"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
