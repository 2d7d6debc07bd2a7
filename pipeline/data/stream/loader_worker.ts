/**
 * The loader worker: opens one split of a captioning dataset (validating its files), then
 * fills the shared batch ring ahead of the consumer: for batch k it draws the caption rows
 * from the seeded generator, reads the rows and the features they point to by hyperslab,
 * and publishes the slot. Started by `CocoStream.open` (coco_stream.ts).
 *
 * Messages: in, one `LoaderInit`; out, `{ type: "ready", info }`, `{ type: "error", name,
 * message }`, and `{ type: "closed" }` when it has stopped and closed its files.
 * @module
 */
import { Rng } from "../../../layers/random.ts";
import { drawBatchIndices } from "../batches.ts";
import type { Split } from "../caption_data.ts";
import { CocoSplitReader, type SplitInfo } from "./coco_reader.ts";
import { BatchRing, CTRL_ERROR, type RingBuffers } from "./batch_ring.ts";

/** The start message of the loader worker. */
export interface LoaderInit {
  /** The dataset directory. */
  baseDir: string;
  /** The split to stream. */
  split: Split;
  /** CS231n files: read the `_pca` features. */
  pcaFeatures: boolean;
  /** The generator state of the first batch. */
  state: number[];
  /** The index of the first batch (for the batch sequence numbers). */
  firstSeq: number;
  /** The rows of each batch to read, [start, end) (the others stay zero). */
  rows: { start: number; end: number };
  /** The ring's shared buffers. */
  ring: RingBuffers;
}

/** What the loader worker posts back. */
export type LoaderMessage =
  | { type: "ready"; info: SplitInfo }
  | { type: "error"; name: string; message: string }
  | { type: "closed" };

function post(msg: LoaderMessage): void {
  (globalThis as unknown as { postMessage(m: LoaderMessage): void }).postMessage(msg);
}

async function run(init: LoaderInit): Promise<void> {
  const ring = BatchRing.fromBuffers(init.ring);
  let reader: CocoSplitReader | null = null;
  try {
    reader = await CocoSplitReader.open(init.baseDir, init.split, init.pcaFeatures);
    const { featureDim, captionLength } = reader.info;
    if (featureDim !== init.ring.featureDim || captionLength !== init.ring.captionLength) {
      throw new Error(
        `loader: rows are ${captionLength} ids and ${featureDim}-d features, the ring holds ` +
          `${init.ring.captionLength} and ${init.ring.featureDim}-d`,
      );
    }
    post({ type: "ready", info: reader.info });
    const rng = new Rng(0);
    rng.setState(init.state);
    const B = init.ring.batchSize, { start, end } = init.rows;
    for (let seq = init.firstSeq;; seq++) {
      const slot = seq % ring.slots;
      if (!ring.waitFree(slot)) break;
      const before = rng.getState();
      const captionIdxs = ring.captionIdxs(slot);
      drawBatchIndices(rng, reader.info.rows, B, captionIdxs);
      const after = rng.getState();
      const t0 = performance.now();
      // Every row is drawn (the order is the same for every reader); only `rows` are read.
      const reads = reader.readBatch(
        captionIdxs.subarray(start, end),
        ring.captions(slot).subarray(start * captionLength, end * captionLength),
        ring.features(slot).subarray(start * featureDim, end * featureDim),
        ring.imageIdxs(slot).subarray(start, end),
      );
      ring.publish(slot, seq, before, after, reads, Math.round((performance.now() - t0) * 1000));
    }
  } catch (e) {
    const err = e as Error;
    post({ type: "error", name: err?.name ?? "Error", message: err?.message ?? String(e) });
    ring.signal(CTRL_ERROR);
  } finally {
    try {
      reader?.close();
    } catch {
      // closing after a failure: nothing more to report
    }
  }
  post({ type: "closed" });
}

globalThis.addEventListener("message", (e) => run((e as MessageEvent<LoaderInit>).data), {
  once: true,
});
