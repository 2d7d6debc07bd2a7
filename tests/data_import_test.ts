/**
 * `dataset import`: each annotation format and each kind of features file becomes a dataset
 * the loaders read back exactly (features row for row, raw references, ids, the vocabulary
 * from train only); every kind of bad input is one line naming the file and the field or row,
 * exit 2, and nothing written.
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { decodeCaptions } from "../model/decode.ts";
import { type LoadedCaptionData, splitOf } from "../pipeline/data/caption_data.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { loadCocoForStreaming } from "../pipeline/data/coco_subset.ts";
import { importDataset } from "../pipeline/data/import/import_dataset.ts";
import { tokenizeCaption } from "../pipeline/data/tokenize.ts";
import { writeResults } from "../pipeline/eval/results.ts";
import { InputError } from "../pipeline/errors.ts";
import { H5File } from "../pipeline/io/h5.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { cli } from "./cli_run.ts";
import {
  cocoJson,
  type FixtureImage,
  fixtureImages,
  importFixture,
  karpathyJson,
  writeFeaturesH5,
} from "./import_fixtures.ts";
import { pythonWith, runPython } from "./python.ts";
import { listDir } from "./reliability_fixtures.ts";

const numpy = pythonWith(["numpy"]);
const images = fixtureImages({ restval: 5, captionless: 3 });

/** The images of a split in annotation order, as an import lays them out. */
const ofSplit = (all: readonly FixtureImage[], split: string) =>
  all.filter((im) => (im.split === "restval" ? "train" : im.split) === split);

/** Checks a loaded import against the fixture: features, ids, references, caption rows. */
function assertImported(data: LoadedCaptionData, all: readonly FixtureImage[]): void {
  for (const split of ["train", "val", "test"] as const) {
    const want = ofSplit(all, split);
    const { features, imageIds, references, captions, imageIdxs } = splitOf(data, split);
    const D = features.shape[1];
    assertEquals(features.shape[0], want.length, split);
    want.forEach((im, i) => {
      assertEquals(features.data.subarray(i * D, (i + 1) * D), im.features, `${split} row ${i}`);
    });
    assertEquals(imageIds, want.map((im) => im.id));
    assertEquals(references, want.map((im) => im.raw));
    // Caption rows: each image's captions, in order, its words as the tokeniser gives them.
    const texts = decodeCaptions(captions, data.idx_to_word);
    let row = 0;
    want.forEach((im, i) => {
      for (const raw of im.raw) {
        assertEquals(imageIdxs.data[row], i);
        const words = tokenizeCaption(raw).map((w) => w in data.word_to_idx ? w : "<UNK>");
        assertEquals(texts[row].split(" ").filter((w) => !/^<(START|END|NULL)>$/.test(w)), words);
        row++;
      }
    });
    assertEquals(row, captions.shape[0]);
  }
}

Deno.test("a Karpathy split file and an HDF5 matrix import into a dataset loadCocoData reads back exactly", async () => {
  const dir = await Deno.makeTempDir();
  const fx = await importFixture(dir, { restval: 5, captionless: 3 });
  const out = join(dir, "data");
  const s = await importDataset({
    annotations: [fx.annotations],
    features: fx.features,
    dir: out,
    minCount: 2,
  });
  assertEquals([s.splits.train?.images, s.splits.val?.images, s.splits.test?.images], [60, 20, 20]);
  assertEquals([s.restval, s.splits.test?.uncaptioned, s.featureDim], [5, 3, 512]);
  const data = await loadCocoData({ baseDir: out });
  assertImported(data, fx.images);
  assertEquals(data.train_captions.shape[1], 18, "16 words, <START> and <END>");
  // The vocabulary comes from train captions only: a word seen only in val and test is <UNK>.
  const trainWords = new Set(
    ofSplit(fx.images, "train").flatMap((im) => im.raw.flatMap(tokenizeCaption)),
  );
  assert(data.idx_to_word.slice(4).every((w) => trainWords.has(w)));
  assert(!("thingamajig" in data.word_to_idx) && !trainWords.has("thingamajig"));
  assert(data.val_references!.flat().some((r) => r.includes("thingamajig")), "raw refs");
  // A streamed run's subset keeps the ids, references and features of the images it loads:
  // the first test images that have captions.
  const sub = await loadCocoForStreaming({ baseDir: out, numImages: { val: 4, test: 5 } });
  const rows = [...sub.subset.test!.imageRows];
  assertEquals(rows.length, 5);
  assert(rows.every((r) => data.test_references![r].length > 0));
  assertEquals(sub.test_image_ids, rows.map((r) => data.test_image_ids![r]));
  assertEquals(sub.test_references, rows.map((r) => data.test_references![r]));
  assertEquals(
    sub.test_features!.data,
    Float32Array.from(
      rows.flatMap((r) => [...data.test_features!.data.subarray(r * 512, (r + 1) * 512)]),
    ),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokens are the annotation's when given, else the PTB tokenisation of the raw text; long captions are cut", async () => {
  const dir = await Deno.makeTempDir();
  const sentence = (raw: string, tokens?: string[]) => ({ raw, ...(tokens ? { tokens } : {}) });
  const annotations = join(dir, "a.json");
  await Deno.writeTextFile(
    annotations,
    JSON.stringify({
      images: [
        {
          filename: "a.jpg",
          imgid: 0,
          split: "train",
          sentences: [sentence("X", ["a", "dog", "runs"])],
        },
        {
          filename: "b.jpg",
          imgid: 1,
          split: "train",
          sentences: [sentence("A dog's ball, it's RED!")],
        },
        {
          filename: "c.jpg",
          imgid: 2,
          split: "val",
          sentences: [sentence("one two three four five six")],
        },
        { filename: "d.jpg", imgid: 3, split: "train", sentences: [sentence("...", [])] },
      ],
    }),
  );
  const features = join(dir, "f.h5");
  const f = await H5File.open(features, "w");
  f.write("features", Tensor.zeros([4, 3], "float32"));
  f.close();
  const s = await importDataset({
    annotations: [annotations],
    features,
    dir: join(dir, "d"),
    minCount: 1,
    maxLength: 4,
  });
  assertEquals([s.emptyCaptions, s.truncated, s.splits.train?.uncaptioned], [1, 2, 1]);
  const data = await loadCocoData({ baseDir: join(dir, "d") });
  const texts = decodeCaptions(data.train_captions, data.idx_to_word);
  assertEquals(texts, [
    "<START> a dog runs <END>",
    "<START> a dog 's ball <END>",
  ]);
  assertEquals(decodeCaptions(data.val_captions, data.idx_to_word), [
    "<START> <UNK> <UNK> <UNK> <UNK> <END>",
  ]);
  // References stay raw and whole.
  assertEquals(data.train_references, [["X"], ["A dog's ball, it's RED!"], []]);
  assertEquals(data.val_references, [["one two three four five six"]]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("COCO captions files import one per split, the split from --split or the file's name", async () => {
  const dir = await Deno.makeTempDir();
  const all = await images;
  const train = all.filter((im) => im.split === "train" || im.split === "restval");
  const val = all.filter((im) => im.split === "val"),
    test = all.filter((im) => im.split === "test");
  const files = {
    train: join(dir, "captions_train2014.json"),
    val: join(dir, "captions_val2014.json"),
    test: join(dir, "image_info_test2014.json"),
  };
  await Deno.writeTextFile(files.train, JSON.stringify(cocoJson(train)));
  await Deno.writeTextFile(files.val, JSON.stringify(cocoJson(val)));
  await Deno.writeTextFile(files.test, JSON.stringify(cocoJson(test, false)));
  const features = await writeFeaturesH5(join(dir, "f.h5"), [...train, ...val, ...test]);
  const out = join(dir, "by-name");
  const r = await cli([
    "dataset",
    "import",
    files.train,
    files.val,
    files.test,
    "--features",
    features,
    "--dir",
    out,
    "--minCount",
    "2",
    "--quiet",
  ]);
  assertEquals(r.code, 0, r.stderr.join("\n"));
  assert(r.stdout.includes("test  20 images, 0 captions, 20 images without captions"), r.stdout);
  const data = await loadCocoData({ baseDir: out });
  assertEquals(data.val_references, val.map((im) => im.raw));
  assertEquals(data.test_captions!.shape[0], 0);
  assertEquals(data.test_image_ids, test.map((im) => im.id));
  assertEquals(data.train_features.data.subarray(0, 512), train[0].features);
  // A split shipped without captions can be captioned, not scored.
  const results = join(dir, "results.json");
  await writeResults(results, test.map((im) => ({ image_id: im.id, caption: "a dog" })));
  const scored = await cli([
    "evaluate",
    "--results",
    results,
    "--data.dir",
    out,
    "--split",
    "test",
  ]);
  assertEquals(scored.code, 2);
  assert(
    scored.stderr[0].endsWith(
      `none of its 20 images has reference captions in the test split of ${out}; score it against the split it captioned`,
    ),
    scored.stderr[0],
  );
  // Names that do not say the split need --split, one per file.
  const a = join(dir, "part_a.json"), b = join(dir, "part_b.json");
  await Deno.copyFile(files.train, a);
  await Deno.copyFile(files.val, b);
  const ab = await writeFeaturesH5(join(dir, "ab.h5"), [...train, ...val]);
  const unnamed = await cli([
    "dataset",
    "import",
    a,
    b,
    "--features",
    ab,
    "--dir",
    join(dir, "x"),
    "--quiet",
  ]);
  assertEquals(unnamed.stderr, [
    `error: command line: --split: which split is ${a}? its name does not say; pass --split with one of train, val, test per COCO captions file`,
  ]);
  const named = await cli([
    "dataset",
    "import",
    a,
    b,
    "--split",
    "train,val",
    "--features",
    ab,
    "--dir",
    join(dir, "ab"),
    "--quiet",
  ]);
  assertEquals(named.code, 0, named.stderr.join("\n"));
  assertEquals(
    (await loadCocoData({ baseDir: join(dir, "ab") })).val_image_ids,
    val.map((im) => im.id),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--ids maps feature rows in any order to their images, by id, file name or stem", async () => {
  const dir = await Deno.makeTempDir();
  const fx = await importFixture(dir, { restval: 5, captionless: 3 });
  const shuffled = [...fx.images].reverse();
  const features = await writeFeaturesH5(join(dir, "shuffled.h5"), shuffled, "fc7");
  const ids = join(dir, "ids.txt");
  await Deno.writeTextFile(
    ids,
    shuffled.map((im, i) => [String(im.id), im.file, im.file.replace(/\.jpg$/, "")][i % 3]).join(
      "\n",
    ),
  );
  const out = join(dir, "data");
  await importDataset({
    annotations: [fx.annotations],
    features,
    featuresDataset: "fc7",
    ids,
    dir: out,
    minCount: 2,
  });
  const data = await loadCocoData({ baseDir: out });
  // Each split's images follow the feature rows' order.
  assertImported(data, shuffled);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "a .npy matrix (float64) and a directory of per-image .npy written by NumPy import like the HDF5 matrix",
  ignore: numpy === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const fx = await importFixture(dir, { captionless: 2 });
    const perImage = join(dir, "per_image");
    await Deno.mkdir(perImage);
    runPython(
      numpy!,
      `
import sys, os, json, numpy as np
rows = np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, 512)
np.save(sys.argv[2], rows.astype("<f8"))
for i, name in enumerate(json.loads(sys.argv[4])):
    np.save(os.path.join(sys.argv[3], name + ".npy"), rows[i])`,
      [
        await rawFeatures(join(dir, "rows.bin"), fx.images),
        join(dir, "f.npy"),
        perImage,
        // By id for some images, by file stem for others.
        JSON.stringify(
          fx.images.map((im, i) => i % 2 ? String(im.id) : im.file.replace(".jpg", "")),
        ),
      ],
    );
    const base = join(dir, "h5");
    await importDataset({
      annotations: [fx.annotations],
      features: fx.features,
      dir: base,
      minCount: 2,
    });
    const want = await loadCocoData({ baseDir: base });
    for (const [name, features] of [["npy", join(dir, "f.npy")], ["dir", perImage]]) {
      const out = join(dir, name);
      await importDataset({ annotations: [fx.annotations], features, dir: out, minCount: 2 });
      const got = await loadCocoData({ baseDir: out });
      for (const split of ["train", "val", "test"] as const) {
        assertEquals(
          got[`${split}_features`]!.data,
          want[`${split}_features`]!.data,
          `${name} ${split}`,
        );
        assertEquals(got[`${split}_captions`]!.data, want[`${split}_captions`]!.data);
      }
    }
    await Deno.remove(dir, { recursive: true });
  },
});

/** The images' features as raw float32 bytes, for Python to read. */
async function rawFeatures(path: string, all: readonly FixtureImage[]): Promise<string> {
  const bytes = new Uint8Array(all.length * 512 * 4);
  all.forEach((im, i) =>
    bytes.set(new Uint8Array(im.features.buffer, im.features.byteOffset, 2048), i * 2048)
  );
  await Deno.writeFile(path, bytes);
  return path;
}

/** A bad import: how to make the files, and what the one line must say. */
interface BadCase {
  what: string;
  /** Writes the inputs into `dir`; returns the arguments after `dataset import`. */
  make: (dir: string, all: FixtureImage[]) => Promise<string[]>;
  message: RegExp;
}

const karpathy = (dir: string, all: unknown) =>
  Deno.writeTextFile(join(dir, "a.json"), JSON.stringify(all)).then(() => join(dir, "a.json"));
const withImages = async (
  dir: string,
  all: FixtureImage[],
  edit: (json: { images: Record<string, unknown>[] }) => void,
) => {
  const json = karpathyJson(all) as { images: Record<string, unknown>[] };
  edit(json);
  return [await karpathy(dir, json), "--features", await writeFeaturesH5(join(dir, "f.h5"), all)];
};

const BAD: BadCase[] = [
  {
    what: "an image without a split",
    make: (d, all) => withImages(d, all, (j) => delete j.images[3].split),
    message: /a\.json: images\[3\]\.split: missing; expected "train", "val", "test" or "restval"$/,
  },
  {
    what: "an unknown split",
    make: (d, all) => withImages(d, all, (j) => (j.images[7].split = "dev")),
    message: /a\.json: images\[7\]\.split: "dev" is not a split; expected/,
  },
  {
    what: "a duplicate image id",
    make: (d, all) => withImages(d, all, (j) => (j.images[9].cocoid = j.images[2].cocoid)),
    message:
      /a\.json: images\[9\]: image id \d+ is listed twice \(first at .*a\.json: images\[2\]\); every image must appear once$/,
  },
  {
    what: "feature rows that are not the images",
    make: async (
      d,
      all,
    ) => [
      await karpathy(d, karpathyJson(all)),
      "--features",
      await writeFeaturesH5(join(d, "f.h5"), all.slice(1)),
    ],
    message:
      /f\.h5 \(dataset "features"\): 99 feature rows but the annotations list 100 images; .*pass --ids FILE/,
  },
  {
    what: "--ids naming an unknown image",
    make: async (d, all) => {
      await Deno.writeTextFile(
        join(d, "ids.txt"),
        all.map((im, i) => i === 4 ? "nobody.jpg" : im.id).join("\n"),
      );
      return [...await withImages(d, all, () => {}), "--ids", join(d, "ids.txt")];
    },
    message:
      /ids\.txt: line 5: "nobody\.jpg" names no image of the annotations \(by id, file name or file stem\)$/,
  },
  {
    what: "--ids naming an image twice",
    make: async (d, all) => {
      await Deno.writeTextFile(
        join(d, "ids.txt"),
        all.map((im, i) => i === 6 ? all[1].file : im.id).join("\n"),
      );
      return [...await withImages(d, all, () => {}), "--ids", join(d, "ids.txt")];
    },
    message: /ids\.txt: line 7: image \d+ is named twice \(first on line 2\)/,
  },
  {
    what: "--ids with fewer lines than rows",
    make: async (d, all) => {
      await Deno.writeTextFile(join(d, "ids.txt"), all.slice(2).map((im) => im.id).join("\n"));
      return [...await withImages(d, all, () => {}), "--ids", join(d, "ids.txt")];
    },
    message: /ids\.txt: 98 lines but .*f\.h5 \(dataset "features"\) has 100 rows/,
  },
  {
    what: "a NaN in the last feature row",
    make: async (d, all) => {
      const bad = all.map((im, i) =>
        i === all.length - 1
          ? { ...im, features: im.features.map((v, j) => j === 9 ? NaN : v) }
          : im
      );
      return [
        await karpathy(d, karpathyJson(all)),
        "--features",
        await writeFeaturesH5(join(d, "f.h5"), bad),
      ];
    },
    message: /f\.h5 \(dataset "features"\): row 99 holds NaN at column 9; features must be finite/,
  },
  {
    what: "features that are not 2-D",
    make: async (d, all) => {
      const f = await H5File.open(join(d, "f.h5"), "w");
      f.write("features", Tensor.zeros([100, 4, 2], "float32"));
      f.close();
      return [await karpathy(d, karpathyJson(all)), "--features", join(d, "f.h5")];
    },
    message:
      /f\.h5 \(dataset "features"\): shape \(100, 4, 2\): expected a 2-D \(images, D\) array/,
  },
  {
    what: "an empty train split",
    make: (d, all) =>
      withImages(
        d,
        all,
        (j) =>
          j.images.forEach((im) => /train|restval/.test(im.split as string) && (im.split = "val")),
      ),
    message: /a\.json: no train image has a caption; recap trains on train/,
  },
  {
    what: "no val images",
    make: (d, all) =>
      withImages(
        d,
        all,
        (j) => j.images.forEach((im) => im.split === "val" && (im.split = "test")),
      ),
    message: /a\.json: no val image has a caption/,
  },
  {
    what: "a vocabulary with no word",
    make: async (d, all) => [...await withImages(d, all, () => {}), "--minCount", "100000"],
    message:
      /a\.json: no word of the train captions is seen 100000 times, so the vocabulary would be empty; lower --minCount$/,
  },
  {
    what: "--split given for a Karpathy file",
    make: async (d, all) => [...await withImages(d, all, () => {}), "--split", "train"],
    message:
      /command line: --split: .*a\.json is a Karpathy split file, whose images name their own splits/,
  },
  {
    what: "--split with the wrong number of splits",
    make: async (d, all) => [...await withImages(d, all, () => {}), "--split", "train,val"],
    message: /command line: --split: give one split per annotation file \(1 file, 2 splits\)$/,
  },
  {
    what: "a COCO caption of an unknown image",
    make: async (d, all) => {
      const json = cocoJson(all) as { annotations: { image_id: number }[] };
      json.annotations[12].image_id = 1;
      const p = join(d, "captions_train.json");
      await Deno.writeTextFile(p, JSON.stringify(json));
      return [p, "--features", await writeFeaturesH5(join(d, "f.h5"), all)];
    },
    message:
      /captions_train\.json: annotations\[12\]\.image_id: 1 is not an image of this file's images$/,
  },
  {
    what: "annotations that are not JSON",
    make: async (d, all) => {
      await Deno.writeTextFile(join(d, "a.json"), "{ images: [");
      return [join(d, "a.json"), "--features", await writeFeaturesH5(join(d, "f.h5"), all)];
    },
    message: /a\.json: not valid JSON \(/,
  },
  {
    what: "a JSON file of another kind",
    make: async (d, all) => [
      await karpathy(d, { images: [{ name: "x" }] }),
      "--features",
      await writeFeaturesH5(join(d, "f.h5"), all),
    ],
    message:
      /a\.json: images\[0\]: neither a Karpathy split file's image .* nor a COCO captions file's/,
  },
];

for (const { what, make, message } of BAD) {
  Deno.test(`dataset import refuses ${what}: one line, exit 2, nothing written`, async () => {
    const dir = await Deno.makeTempDir();
    const args = await make(dir, await images);
    const before = await listDir(dir);
    const r = await cli(["dataset", "import", ...args, "--dir", join(dir, "out"), "--quiet"]);
    assertEquals(r.code, 2, r.stderr.join("\n"));
    assertEquals(r.stderr.length, 1, r.stderr.join("\n"));
    assert(!r.stderr[0].includes("\n"), r.stderr[0]);
    assert(message.test(r.stderr[0].replace(/^error: /, "")), r.stderr[0]);
    assertEquals(await listDir(dir), before, "no dataset, no partial directory");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("an existing dataset is replaced only with --force, and the directory's other files are kept", async () => {
  const dir = await Deno.makeTempDir();
  const fx = await importFixture(dir);
  const out = join(dir, "data");
  const args = [
    "dataset",
    "import",
    fx.annotations,
    "--features",
    fx.features,
    "--dir",
    out,
    "--quiet",
  ];
  assertEquals((await cli(args)).code, 0);
  await Deno.writeTextFile(join(out, "notes.txt"), "mine");
  const manifest = await Deno.readTextFile(join(out, "dataset.json"));
  const refused = await cli([...args, "--minCount", "1"]);
  assertEquals(refused.code, 2);
  assert(refused.stderr[0].includes("already holds a dataset (dataset.json,"), refused.stderr[0]);
  assert(refused.stderr[0].endsWith("choose another --dir, or pass --force to replace it"));
  assertEquals(await Deno.readTextFile(join(out, "dataset.json")), manifest);
  const forced = await cli([...args, "--minCount", "1", "--force"]);
  assertEquals(forced.code, 0, forced.stderr.join("\n"));
  assertEquals(await Deno.readTextFile(join(out, "notes.txt")), "mine");
  const before = JSON.parse(manifest).summary.vocabSize;
  assert(JSON.parse(await Deno.readTextFile(join(out, "dataset.json"))).summary.vocabSize > before);
  assertEquals((await listDir(dir)).filter((n) => n.includes(".partial-")), []);
  // The manifest is what makes it a dataset: a damaged one is named.
  await Deno.writeTextFile(join(out, "dataset.json"), '{"format": "recap-dataset", "version": 7}');
  await assertRejects(
    () => loadCocoData({ baseDir: out }),
    InputError,
    /dataset\.json: version: expected 1 \(written by this recap\), got 7; import the dataset again/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("importDataset() checks its options by name", async () => {
  await assertRejects(
    () =>
      importDataset({ annotations: ["a.json"], features: "f.npy", dir: "d", minCunt: 2 } as never),
    TypeError,
    'unknown option "minCunt" (did you mean "minCount"?)',
  );
  await assertRejects(
    () => importDataset({ annotations: [], features: "f.npy", dir: "d" }),
    RangeError,
    "annotations: expected a non-empty list of file paths",
  );
});
