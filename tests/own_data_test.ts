/**
 * Your own data, end to end through the CLI, as the README's "Your own data" section runs it:
 * import a Karpathy split file and its features, train on the import (in memory and
 * streamed), resume, evaluate on its test split, caption the test images' features into a
 * results file, and score that file — with per-image scores that agree with the corpus's.
 */
import { join } from "node:path";
import { bleuFromTokens } from "../pipeline/eval/metrics/bleu.ts";
import { tokenizePairs } from "../pipeline/eval/metrics/ngrams.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";
import { cli } from "./cli_run.ts";
import { importFixture, writeFeaturesH5 } from "./import_fixtures.ts";
import { tinyExperiment, writeExperiment } from "./reliability_fixtures.ts";

const root = await Deno.makeTempDir({ prefix: "recap_own_" });
const fx = await importFixture(root, { restval: 5, captionless: 3 });
const data = join(root, "data");
const test = fx.images.filter((im) => im.split === "test");
const captioned = test.filter((im) => im.raw.length > 0);

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

/** An experiment on the import: 2 epochs, 2 workers, evaluated greedily on val and test. */
async function experiment(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const runDir = join(root, name);
  return await writeExperiment(
    join(root, `${name}.json`),
    tinyExperiment("unused", runDir, {
      train: { workers: 2, batchSize: 25, learningRate: 0.01, printEvery: 1000 },
      evaluate: { splits: ["val", "test"], numImages: 100, beamSize: 1, maxLength: 12 },
      stages: ["train", "evaluate"],
      ...extra,
    }),
  );
}

Deno.test("an imported dataset trains, resumes, evaluates on test, captions and scores through the CLI", async () => {
  const imported = await cli([
    "dataset",
    "import",
    fx.annotations,
    "--features",
    fx.features,
    "--dir",
    data,
    "--minCount",
    "2",
    "--quiet",
  ]);
  assertEquals(imported.code, 0, imported.stderr.join("\n"));
  assert(imported.stdout.includes("3 images without captions"), imported.stdout);

  // Train on it, with nothing more than --data.dir (the experiment names another directory).
  const exp = await experiment("run");
  const trained = await cli(["train", exp, `--data.dir=${data}`]);
  assertEquals(trained.code, 0, trained.stderr.join("\n"));
  const evaluation = await readJson(join(root, "run", "evaluation.json"));
  const onTest = evaluation.evaluations.find((e: { split: string }) => e.split === "test");
  assertEquals(onTest.numImages, captioned.length, "the test images that have captions");
  assertEquals(
    onTest.images.map((im: { imageId: number }) => im.imageId),
    captioned.map((im) => im.id),
  );
  // References are the raw captions, and each image's scores add up to the corpus's.
  assertEquals(onTest.images[0].references, captioned[0].raw);
  const perImage = onTest.images.map((im: { scores: { greedy: { cider: number } } }) =>
    im.scores.greedy
  );
  const mean = perImage.reduce((a: number, s: { cider: number }) => a + s.cider, 0) /
    perImage.length;
  assertAlmostEquals(mean, onTest.greedy.cider, 1e-12);
  const [first] = onTest.images;
  const alone = bleuFromTokens(tokenizePairs({ 0: first.greedy }, { 0: first.references }));
  assertEquals(first.scores.greedy.bleu4, alone.bleu4);

  // A run stopped after one epoch and resumed ends exactly where the full run did.
  const part = await cli([
    "train",
    await experiment("part"),
    `--data.dir=${data}`,
    "--train.numEpochs=1",
  ]);
  assertEquals(part.code, 0, part.stderr.join("\n"));
  const resumed = await cli(["resume", join(root, "part"), "--train.numEpochs=2"]);
  assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
  const full = await loadCheckpoint(join(root, "run", "checkpoint.h5"));
  const again = await loadCheckpoint(join(root, "part", "checkpoint.h5"));
  assertEquals(again.solver!.iteration, full.solver!.iteration);
  assertEquals(again.model.flat, full.model.flat);

  // Streamed from the import's files, training takes the same batches.
  const streamed = await cli([
    "train",
    await experiment("stream"),
    `--data.dir=${data}`,
    "--data.stream",
    "--stages=train",
  ]);
  assertEquals(streamed.code, 0, streamed.stderr.join("\n"));
  const fromStream = await loadCheckpoint(join(root, "stream", "checkpoint.h5"));
  assertEquals(fromStream.solver!.lossHistory, full.solver!.lossHistory);

  // Evaluate the checkpoint on test: its scores, and each image's, in the scores file.
  const best = join(root, "run", "best.h5");
  const evaluated = await cli(["evaluate", best, "--split", "test", "--numImages", "100"]);
  assertEquals(evaluated.code, 0, evaluated.stderr.join("\n"));
  const ckptScores = await readJson(join(root, "run", "best.test.scores.json"));
  assertEquals(ckptScores.numImages, captioned.length);
  assertEquals(
    Object.keys(ckptScores.scored.greedy.imgToEval).sort(),
    captioned.map((im) => String(im.id)).sort(),
  );

  // Samples show an image's id and the raw caption of the row drawn.
  const sampled = await cli(["sample", best, "--split", "test", "--n", "4"]);
  assertEquals(sampled.code, 0, sampled.stderr.join("\n"));
  const refs = sampled.stdout.split("\n").filter((l) => l.startsWith("  reference: "));
  const raws = new Set(captioned.flatMap((im) => im.raw));
  assertEquals(refs.length, 4);
  assert(refs.every((l) => raws.has(l.slice("  reference: ".length))), sampled.stdout);
  assert(/^test image 1\d{5} \(images\/IMG_/m.test(sampled.stdout), sampled.stdout);

  // Caption every test image's features (captionless ones too) into a results file, the
  // rows named by file name in --ids, then score it.
  const features = await writeFeaturesH5(join(root, "test.h5"), test);
  const ids = join(root, "test_ids.txt");
  await Deno.writeTextFile(ids, test.map((im) => im.file).join("\n") + "\n");
  const results = join(root, "results.json");
  const captioning = await cli([
    "caption",
    best,
    "--features",
    features,
    "--ids",
    ids,
    "--out",
    results,
    "--quiet",
  ]);
  assertEquals(captioning.code, 0, captioning.stderr.join("\n"));
  const entries = await readJson(results);
  assertEquals(entries.map((r: { image_id: string }) => r.image_id), test.map((im) => im.file));
  const scoring = await cli([
    "evaluate",
    "--results",
    results,
    "--data.dir",
    data,
    "--split",
    "test",
  ]);
  assertEquals(scoring.code, 0, scoring.stderr.join("\n"));
  assert(scoring.stdout.includes(`(${captioned.length} images; 3 without references left out)`));
  const scores = await readJson(results.replace(/\.json$/, ".test.scores.json"));
  assertEquals(scores.numImages, captioned.length);
  assertEquals(scores.leftOut, { noReferences: 3, otherSplits: 0 });
  // The same captions as the checkpoint's greedy ones, so the same scores, image by image.
  const ckpt = ckptScores.scored.greedy, res = scores.scored.results;
  for (const im of captioned) {
    const a = ckpt.imgToEval[String(im.id)], b = res.imgToEval[im.file];
    assertEquals(b.caption, a.caption, `image ${im.id}`);
    for (const m of ["bleu1", "bleu4", "cider"]) assertAlmostEquals(b[m], a[m], 1e-12, m);
  }
  for (const m of ["bleu1", "bleu2", "bleu3", "bleu4", "cider"]) {
    assertAlmostEquals(res.metrics[m], ckpt.metrics[m], 1e-12, m);
  }
  assert("unigram_bleu" in res.metrics, "a results file is scored with every metric");
  // Captioning the dataset's test split (the checkpoint's dataset) names images by their ids,
  // and the results score the same.
  const ofSplit = join(root, "results_split.json");
  const bySplit = await cli(["caption", best, "--split", "test", "--out", ofSplit, "--quiet"]);
  assertEquals(bySplit.code, 0, bySplit.stderr.join("\n"));
  assertEquals(
    (await readJson(ofSplit)).map((r: { image_id: number }) => r.image_id),
    test.map((im) => im.id),
  );
  assertEquals(
    (await cli(["evaluate", "--results", ofSplit, "--data.dir", data, "--split", "test"])).code,
    0,
  );
  const splitScores = await readJson(ofSplit.replace(/\.json$/, ".test.scores.json"));
  assertEquals(splitScores.scored.results.metrics, res.metrics);
  // A results file of every image scores on each split; images of the other splits are left out.
  const everything = join(root, "results_all.json");
  const all = await cli([
    "caption",
    best,
    "--features",
    fx.features,
    "--out",
    everything,
    "--quiet",
  ]);
  assertEquals(all.code, 0, all.stderr.join("\n"));
  const byRow: { image_id: number; caption: string }[] = await readJson(everything);
  assertEquals(byRow.map((r) => r.image_id), [...fx.images.keys()], "row numbers without --ids");
  const byId = byRow.map((r, i) => ({ ...r, image_id: fx.images[i].id }));
  await Deno.writeTextFile(everything, JSON.stringify(byId));
  const onVal = await cli([
    "evaluate",
    "--results",
    everything,
    "--data.dir",
    data,
    "--split",
    "val",
  ]);
  assertEquals(onVal.code, 0, onVal.stderr.join("\n"));
  assert(onVal.stdout.includes("(20 images; 80 of other splits left out)"), onVal.stdout);
  assertEquals(scores.baseline.metrics.cider, ckptScores.baseline.metrics.cider);
});

Deno.test("a results file naming an image the split does not have, or one twice, is refused by entry", async () => {
  const path = join(root, "bad.json");
  const run = async (entries: unknown) => {
    await Deno.writeTextFile(path, JSON.stringify(entries));
    return await cli(["evaluate", "--results", path, "--data.dir", data, "--split", "test"]);
  };
  const ok = { image_id: captioned[0].id, caption: "a dog" };
  const cases: [unknown, string][] = [
    [
      [ok, { image_id: 123, caption: "a cat" }],
      `${path}: [1].image_id: 123 names no image of ${data} (by id, file name or file stem)`,
    ],
    [
      [ok, { ...ok, caption: "again" }],
      `${path}: [1].image_id: ${ok.image_id} has a caption already (at [0]); one caption per image`,
    ],
    [
      [ok, { image_id: 4 }],
      `${path}: [1]: expected {"image_id": number or string, "caption": string}, got {"image_id":4}`,
    ],
    [
      { images: [] },
      `${path}: expected the COCO results format, a list of {"image_id", "caption"}`,
    ],
  ];
  for (const [entries, message] of cases) {
    const r = await run(entries);
    assertEquals([r.code, r.stderr], [2, [`error: ${message}`]]);
  }
  const both = await cli(["evaluate", join(root, "run", "best.h5"), "--results", path]);
  assertEquals(both.code, 2);
  assert(both.stderr[0].includes("score either a checkpoint"), both.stderr[0]);
  const noData = await cli(["evaluate", "--results", path]);
  assert(noData.stderr[0].includes("--data.dir: missing"), noData.stderr[0]);
  const beam = await cli(["evaluate", "--results", path, "--data.dir", data, "--beamSize", "2"]);
  assert(beam.stderr[0].includes("--beamSize: is for captioning a checkpoint"), beam.stderr[0]);
});

Deno.test("a split the dataset does not have, and features of another width, are refused by name", async () => {
  // The CS231n layout (here, the synthetic set) has no test split.
  const synth = join(root, "synth");
  assertEquals(
    (await cli(["dataset", "synth", "--dir", synth, "--train", "20", "--val", "5", "--quiet"]))
      .code,
    0,
  );
  const r = await cli(["train", await experiment("nosplit"), `--data.dir=${synth}`]);
  assertEquals(r.code, 2);
  assertEquals(
    r.stderr.at(-1),
    `error: evaluate.splits: ${synth} has no "test" split (it has train, val); use val, or import a dataset whose annotations have a test split`,
  );
  const best = join(root, "run", "best.h5");
  const sample = await cli(["sample", best, "--split", "test", "--data.dir", synth]);
  assertEquals(sample.code, 2);
  assert(sample.stderr[0].startsWith(`error: command line: --split: ${synth} has no "test" split`));
  // A checkpoint captions only features of the width it was trained on.
  const narrow = join(root, "narrow.h5");
  await writeFeaturesH5(narrow, test.map((im) => ({ ...im, features: im.features.slice(0, 100) })));
  const caption = await cli(["caption", best, "--features", narrow, "--out", join(root, "x.json")]);
  assertEquals(caption.stderr, [
    `error: ${narrow} (dataset "features"): 100-d features, but ${best} was trained on 512-d ones; caption features extracted the way its training data's were`,
  ]);
});

Deno.test("own data test cleanup: remove the temporary files", async () => {
  await Deno.remove(root, { recursive: true });
});
