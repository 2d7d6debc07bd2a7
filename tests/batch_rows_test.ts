/**
 * A batch source that reads only some rows of each batch (a rank's shards in an MPI job): the
 * same batch order, the rows asked for exactly as in the whole batch, zeros elsewhere; in
 * memory and streamed.
 * @module
 */
import { loadCocoData } from "../pipeline/data/coco.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import { StreamBatches } from "../pipeline/data/stream/stream_batches.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { assertEquals, assertRejects } from "./assert.ts";

const dir = await Deno.makeTempDir();
await writeSyntheticDataset({ dir, numTrain: 40, numVal: 10, images: false, seed: 4 });
const data = await loadCocoData({ baseDir: dir });
const ROWS = { start: 3, end: 7 }, N = 10;

function assertRowsOf(part: Minibatch, whole: Minibatch): void {
  const t = whole.captions.shape[1], d = whole.features.shape[1];
  assertEquals(part.captions.shape, whole.captions.shape);
  assertEquals(part.features.shape, whole.features.shape);
  for (let r = 0; r < N; r++) {
    const inside = r >= ROWS.start && r < ROWS.end;
    const caps = part.captions.data.subarray(r * t, (r + 1) * t);
    const feats = part.features.data.subarray(r * d, (r + 1) * d);
    assertEquals(
      Array.from(caps),
      inside ? Array.from(whole.captions.data.subarray(r * t, (r + 1) * t)) : Array(t).fill(0),
      `captions row ${r}`,
    );
    assertEquals(
      Array.from(feats),
      inside ? Array.from(whole.features.data.subarray(r * d, (r + 1) * d)) : Array(d).fill(0),
      `features row ${r}`,
    );
  }
}

Deno.test("InMemoryBatches with rows gathers only those rows of the same batches", () => {
  const whole = new InMemoryBatches(data, N, 9),
    part = new InMemoryBatches(data, N, 9, "train", ROWS);
  for (let k = 0; k < 3; k++) assertRowsOf(part.next(), whole.next());
  assertEquals(part.getState(), whole.getState());
});

Deno.test("StreamBatches with rows reads only those rows of the same batches", async () => {
  const whole = await StreamBatches.open({ baseDir: dir, batchSize: N, seed: 9 });
  const part = await StreamBatches.open({ baseDir: dir, batchSize: N, seed: 9, rows: ROWS });
  try {
    for (let k = 0; k < 3; k++) assertRowsOf(await part.next(), await whole.next());
  } finally {
    await whole.close();
    await part.close();
  }
  await assertRejects(
    () => StreamBatches.open({ baseDir: dir, batchSize: N, rows: { start: 5, end: 11 } }),
    RangeError,
    "rows must be a range within the batch's 10 rows",
  );
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
