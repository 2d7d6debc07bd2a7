import { assert, assertEquals, assertRejects } from "./assert.ts";
import { CocoStream, type StreamBatch } from "../pipeline/data/stream/coco_stream.ts";
import { planReads } from "../pipeline/data/stream/coco_reader.ts";
import { loadCocoData, sampleCocoMinibatch } from "../pipeline/data/coco.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { withH5File } from "../pipeline/io/h5.ts";
import { InputError } from "../pipeline/errors.ts";
import { BatchRing } from "../pipeline/data/stream/batch_ring.ts";
import { Rng } from "../layers/random.ts";

/** A tiny synthetic dataset with both feature sizes, shared by this file's tests. */
const base = (async () => {
  const dir = await Deno.makeTempDir({ prefix: "recap_stream_" });
  await writeSyntheticDataset({
    dir,
    numTrain: 200,
    numVal: 50,
    seed: 9,
    fullFeatures: true,
    images: false,
  });
  return dir;
})();

/** Takes n batches, keeping copies of what matters, releasing each. */
async function take(
  stream: CocoStream,
  n: number,
): Promise<Omit<StreamBatch, "captions" | "features">[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const b = await stream.next();
    out.push({
      ...b,
      captionIdxs: b.captionIdxs.slice(),
      imageIdxs: b.imageIdxs.slice(),
      captionsData: b.captions.data.slice(),
      featuresData: b.features.data.slice(),
    });
    stream.release(b);
  }
  return out;
}

Deno.test("planReads() sorts, dedupes and merges adjacent or close rows into few reads", () => {
  assertEquals(planReads([9, 3, 4, 3, 20, 5, 21], 0), [[3, 6], [9, 10], [20, 22]]);
  assertEquals(planReads([9, 3, 20], 5), [[3, 10], [20, 21]]);
  assertEquals(planReads([0, 1, 2, 3, 4, 5], 0, 4), [[0, 4], [4, 6]]);
  assertEquals(planReads([], 3), []);
  const rows = Array.from({ length: 100 }, (_, i) => (i * 7919) % 400);
  const ranges = planReads(rows, 0);
  const covered = new Set(
    ranges.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i)),
  );
  assert(rows.every((r) => covered.has(r)));
  assert(ranges.length < new Set(rows).size, "adjacent rows were merged");
});

for (const pcaFeatures of [true, false]) {
  Deno.test(`CocoStream delivers the same rows as sampleCocoMinibatch (${pcaFeatures ? "512" : "4096"}-d)`, async () => {
    const baseDir = await base;
    const data = await loadCocoData({ baseDir, pcaFeatures });
    const stream = await CocoStream.open({
      baseDir,
      split: "train",
      batchSize: 32,
      pcaFeatures,
      seed: 42,
    });
    try {
      assertEquals([stream.rows, stream.numImages, stream.featureDim], [
        1000,
        200,
        pcaFeatures ? 512 : 4096,
      ]);
      const rng = new Rng(42);
      for (let k = 0; k < 4; k++) {
        const b = await stream.next();
        const m = sampleCocoMinibatch(data, { batchSize: 32, rng });
        assertEquals(b.seq, k);
        assertEquals(b.captionIdxs, m.captionIdxs);
        assertEquals(b.imageIdxs, m.imageIdxs);
        assertEquals(b.captions.shape, [32, 17]);
        assertEquals(b.captions.data, m.captions.data);
        assertEquals(b.features.shape, [32, pcaFeatures ? 512 : 4096]);
        assertEquals(b.features.data, m.features.data);
        assertEquals(b.urls, m.urls);
        assertEquals(b.next.state, rng.getState());
        assert(b.reads > 0 && b.reads <= 3 * 32);
        stream.release(b);
      }
    } finally {
      await stream.close();
    }
  });
}

Deno.test("CocoStream reads contiguous (h5py-style) files like chunked gzip ones, in place in the ring", async () => {
  const src = await base;
  const dir = await Deno.makeTempDir();
  try {
    // Rewrite every HDF5 file with contiguous datasets in the oldest format, as h5py writes them.
    for await (const e of Deno.readDir(src)) {
      if (!e.isFile) continue;
      if (!e.name.endsWith(".h5")) {
        await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
        continue;
      }
      const all = await withH5File(
        `${src}/${e.name}`,
        "r",
        (f) => f.keys().map((k) => [k, f.read(k)] as const),
      );
      await withH5File(`${dir}/${e.name}`, "w", (f) => all.forEach(([k, t]) => f.write(k, t)));
      await withH5File(
        `${dir}/${e.name}`,
        "r",
        (f) => assertEquals(f.info(f.keys()[0]).chunks, null),
      );
    }
    const a = await CocoStream.open({
      baseDir: src,
      split: "val",
      batchSize: 20,
      seed: 8,
      pcaFeatures: false,
    });
    const b = await CocoStream.open({
      baseDir: dir,
      split: "val",
      batchSize: 20,
      seed: 8,
      pcaFeatures: false,
    });
    try {
      for (let k = 0; k < 3; k++) {
        const [x, y] = [await a.next(), await b.next()];
        assertEquals(y.captions.data, x.captions.data);
        assertEquals(y.features.data, x.features.data);
        // The batch is a view of the shared ring: what a compute worker would map once.
        const ring = BatchRing.fromBuffers(b.ringBuffers);
        assertEquals(ring.features(y.slot), y.features.data);
        assert(y.features.data.buffer instanceof SharedArrayBuffer);
        a.release(x);
        b.release(y);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CocoStream order is fixed by the seed, whatever the prefetch depth", async () => {
  const baseDir = await base;
  const a = await CocoStream.open({ baseDir, split: "val", batchSize: 10, seed: 5, prefetch: 1 });
  const b = await CocoStream.open({ baseDir, split: "val", batchSize: 10, seed: 5, prefetch: 4 });
  const c = await CocoStream.open({ baseDir, split: "val", batchSize: 10, seed: 6 });
  try {
    const [ba, bb, bc] = [await take(a, 6), await take(b, 6), await take(c, 6)];
    assertEquals(ba.map((x) => x.captionIdxs), bb.map((x) => x.captionIdxs));
    assertEquals(ba.map((x) => x.seq), [0, 1, 2, 3, 4, 5]);
    assert(ba.some((x, i) => x.captionIdxs.some((v, j) => v !== bc[i].captionIdxs[j])));
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("CocoStream resumes exactly from a saved position", async () => {
  const baseDir = await base;
  const a = await CocoStream.open({ baseDir, batchSize: 16, seed: 77 });
  let saved;
  let rest;
  try {
    await take(a, 3);
    saved = a.position();
    assertEquals(saved.batches, 3);
    rest = await take(a, 3);
  } finally {
    await a.close();
  }
  const b = await CocoStream.open({
    baseDir,
    batchSize: 16,
    seed: 1,
    resume: JSON.parse(JSON.stringify(saved)),
  });
  try {
    const resumed = await take(b, 3);
    assertEquals(resumed.map((x) => x.seq), [3, 4, 5]);
    assertEquals(resumed.map((x) => x.captionIdxs), rest.map((x) => x.captionIdxs));
    assertEquals(
      resumed.map((x) => (x as unknown as { featuresData: Float32Array }).featuresData),
      rest.map((x) => (x as unknown as { featuresData: Float32Array }).featuresData),
    );
  } finally {
    await b.close();
  }
});

/** Runs fn while counting Worker.terminate() calls. */
async function countTerminations(fn: () => Promise<void>): Promise<number> {
  const original = Worker.prototype.terminate;
  let count = 0;
  Worker.prototype.terminate = function (this: Worker) {
    count++;
    return original.call(this);
  };
  try {
    await fn();
  } finally {
    Worker.prototype.terminate = original;
  }
  return count;
}

Deno.test("CocoStream.close() terminates the worker, also after a failed open", async () => {
  const baseDir = await base;
  assertEquals(
    await countTerminations(async () => {
      const s = await CocoStream.open({ baseDir, batchSize: 8 });
      await s.next();
      await s.close();
      await s.close();
    }),
    1,
  );
  assertEquals(
    await countTerminations(async () => {
      await assertRejects(() =>
        CocoStream.open({ baseDir, pcaFeatures: true, split: "val", batchSize: 0 })
      );
      await assertRejects(() => CocoStream.open({ baseDir: `${baseDir}/missing` }), InputError);
    }),
    0,
    "options and a directory without a dataset are refused before a worker starts",
  );
  // A dataset whose files the worker finds broken: it starts, fails, and is terminated.
  const broken = await Deno.makeTempDir();
  try {
    await Deno.copyFile(`${baseDir}/coco2014_vocab.json`, `${broken}/coco2014_vocab.json`);
    assertEquals(
      await countTerminations(async () => {
        await assertRejects(
          () => CocoStream.open({ baseDir: broken }),
          InputError,
          "does not exist",
        );
      }),
      1,
    );
  } finally {
    await Deno.remove(broken, { recursive: true });
  }
});

Deno.test("CocoStream.close() stops the worker even with batches held and reads pending", async () => {
  const baseDir = await base;
  const s = await CocoStream.open({ baseDir, batchSize: 8, seed: 2, prefetch: 2 });
  const held = [await s.next(), await s.next(), await s.next()];
  await assertRejects(() => s.next(), Error, "release a batch first");
  s.release(held[0]);
  await s.close();
  await s.close();
  s.release(held[1]);
  await assertRejects(() => s.next(), Error, "closed");
  // Open and close right away, before any batch is taken.
  const t = await CocoStream.open({ baseDir, batchSize: 8 });
  await t.close();
});

Deno.test("CocoStream.open() rejects bad data with the worker's InputError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = await base;
    for await (const e of Deno.readDir(src)) {
      if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
    }
    const path = `${dir}/coco2014_captions.h5`;
    const all = await withH5File(
      path,
      "r",
      (f) => f.keys().map((k) => [k, f.read(k, "int32")] as const),
    );
    await withH5File(path, "w", (f) => {
      for (const [k, t] of all) {
        if (k === "train_image_idxs") t.data[500] = 12345;
        f.write(k, t, { chunks: k.endsWith("captions") ? [64, 17] : [128], gzip: 2 });
      }
    });
    await assertRejects(
      () => CocoStream.open({ baseDir: dir }),
      InputError,
      /coco2014_captions\.h5: dataset "train_image_idxs" holds image index 12345, outside the 200 rows/,
    );
    await assertRejects(
      () => CocoStream.open({ baseDir: `${dir}/nowhere` }),
      InputError,
      "does not exist",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CocoStream.next() rejects with the worker's message when a read fails mid-stream", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = await base;
    for await (const e of Deno.readDir(src)) {
      if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
    }
    // Features stored in gzip chunks, then damaged: the metadata is fine, the data is not.
    const path = `${dir}/train2014_vgg16_fc7_pca.h5`;
    const feats = await withH5File(path, "r", (f) => f.read("features", "float32"));
    await withH5File(path, "w", (f) => f.write("features", feats, { chunks: [4, 512], gzip: 1 }));
    const bytes = await Deno.readFile(path);
    for (let i = Math.floor(bytes.length * 0.3); i < Math.floor(bytes.length * 0.95); i++) {
      bytes[i] = (i * 7) & 0xff;
    }
    await Deno.writeFile(path, bytes);
    const s = await CocoStream.open({ baseDir: dir, batchSize: 100, seed: 1 });
    try {
      const e = await assertRejects(() => s.next(), InputError, path);
      assert(!e.message.includes("\n"), e.message);
      await assertRejects(() => s.next(), InputError, path);
    } finally {
      await s.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data stream test cleanup: remove the shared tiny dataset", async () => {
  await Deno.remove(await base, { recursive: true });
});
