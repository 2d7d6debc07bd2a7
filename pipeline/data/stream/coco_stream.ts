/**
 * Streaming COCO minibatches for training at scale: a loader Web Worker reads each batch's
 * caption rows and feature rows from the HDF5 files by hyperslab (never a whole file) into a
 * ring of SharedArrayBuffer slots ahead of compute; the main thread takes a batch, uses it
 * in place, and releases the slot. Batches are drawn like the exercise's
 * `sample_coco_minibatch` from a seeded generator, so the order is fixed by the seed, and
 * the generator state can be saved with a checkpoint and restored to resume exactly.
 *
 * This module imports no HDF5 code: only the worker loads h5wasm.
 *
 * Dimension letters: B batch size, T+1 ids per caption row, D feature dimension.
 * @module
 */
import { Rng, type RngState } from "../../../layers/random.ts";
import { Tensor } from "../../../layers/tensor.ts";
import { BatchRing, CTRL_ERROR, CTRL_STOP, type RingBuffers, SLOT } from "./batch_ring.ts";
import type { LoaderInit, LoaderMessage } from "./loader_worker.ts";
import type { Minibatch } from "../../../model/minibatch.ts";
import { type Split, SPLITS } from "../caption_data.ts";
import { loadSplitImages } from "../dataset_checks.ts";
import { datasetLayout } from "../dataset_layout.ts";
import { InputError } from "../../errors.ts";

/** What to stream: the options every stream of minibatches takes. */
export interface StreamOptions {
  /** The dataset directory (default `datasets/coco_captioning`). */
  baseDir?: string;
  /** The split (default `"train"`). */
  split?: Split;
  /** Captions per batch (default 100). */
  batchSize?: number;
  /** CS231n files: stream the 512-d `_pca` features (default true) or the 4096-d ones. */
  pcaFeatures?: boolean;
  /** The seed of the batch order (default 0). */
  seed?: number;
  /** Batches read ahead of the consumer (default 2): the ring has `prefetch + 1` slots. */
  prefetch?: number;
  /**
   * Read only these rows of each batch, [start, end) (default all): the others stay zero (in an
   * MPI job, a rank reads only the rows of its own shards). The batch order is unchanged.
   */
  rows?: { start: number; end: number };
}

/** Options of {@linkcode CocoStream.open}. */
export interface CocoStreamOptions extends StreamOptions {
  /** Resume from a position saved with {@linkcode CocoStream.position} (then `seed` is ignored). */
  resume?: StreamPosition;
  /** Load the URL file so batches carry `urls` (default true). */
  urls?: boolean;
}

/** Where a stream is: enough to continue exactly (save it in a checkpoint). */
export interface StreamPosition {
  /** The generator state before the next batch is drawn. */
  state: RngState;
  /** Batches delivered so far. */
  batches: number;
}

/**
 * A minibatch whose arrays are views into a ring slot of shared memory (valid until
 * {@linkcode CocoStream.release}), with where it stands in the stream.
 */
export interface StreamBatch extends Minibatch {
  /** The features of each caption's image: (B, D) float32, a view into the ring. */
  features: Tensor<"float32">;
  /** The caption row drawn for each entry. */
  captionIdxs: Int32Array;
  /** The batch number (0 for the first batch after the seed). */
  seq: number;
  /** Hyperslab reads the batch took. */
  reads: number;
  /** Milliseconds the worker spent reading it. */
  readMs: number;
  /** The position after this batch (what to save once it has been trained on). */
  next: StreamPosition;
  /** The ring slot (internal). */
  slot: number;
}

/**
 * A stream of minibatches of one split, read by a loader worker into shared memory.
 *
 * @example
 * ```ts
 * import { CocoStream } from "./coco_stream.ts";
 * import { writeSyntheticDataset } from "../synth/writer.ts";
 * const baseDir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir: baseDir, numTrain: 20, numVal: 5, images: false });
 * const stream = await CocoStream.open({ baseDir, batchSize: 8, seed: 1 });
 * const batch = await stream.next();
 * console.assert(batch.captions.shape[0] === 8 && batch.features.shape[1] === 512);
 * stream.release(batch);
 * const saved = stream.position(); // store with the checkpoint
 * await stream.close();
 * const resumed = await CocoStream.open({ baseDir, batchSize: 8, resume: saved });
 * await resumed.close();
 * ```
 */
export class CocoStream {
  /** Caption rows of the split. */
  readonly rows: number;
  /** Images (feature rows) of the split. */
  readonly numImages: number;
  /** Feature dimension. */
  readonly featureDim: number;
  /** Vocabulary size. */
  readonly vocabSize: number;
  /** Captions per batch. */
  readonly batchSize: number;
  #worker: Worker;
  #ring: BatchRing;
  #urls: string[];
  #seq: number;
  #position: StreamPosition;
  #held = new Set<number>();
  #error: Error | null = null;
  #failed: Promise<never>;
  #fail!: (e: Error) => void;
  #closed: Promise<void>;
  #isClosed = false;

  private constructor(
    worker: Worker,
    ring: BatchRing,
    info: { rows: number; numImages: number; featureDim: number; vocabSize: number },
    position: StreamPosition,
    closed: Promise<void>,
  ) {
    this.#worker = worker;
    this.#ring = ring;
    this.rows = info.rows;
    this.numImages = info.numImages;
    this.featureDim = info.featureDim;
    this.vocabSize = info.vocabSize;
    this.batchSize = ring.buffers.batchSize;
    this.#urls = [];
    this.#seq = position.batches;
    this.#position = position;
    this.#closed = closed;
    this.#failed = new Promise<never>((_, reject) => (this.#fail = reject));
    this.#failed.catch(() => {});
  }

  /**
   * Starts the loader worker, which opens and validates the split's files, and returns once
   * it is ready.
   * @param options The dataset, split, batch size, features, seed or resume point, prefetch.
   * @returns The open stream.
   * @throws InputError when a file is missing or bad (the worker's message), RangeError for bad options.
   */
  static async open(options: CocoStreamOptions = {}): Promise<CocoStream> {
    const {
      baseDir = "datasets/coco_captioning",
      split = "train",
      batchSize = 100,
      pcaFeatures = true,
      seed = 0,
      prefetch = 2,
    } = options;
    if (!(SPLITS as readonly string[]).includes(split)) {
      throw new RangeError(
        `Cannot open COCO stream: split must be "train", "val" or "test", got "${split}"`,
      );
    }
    if (!Number.isInteger(prefetch) || prefetch < 1) {
      throw new RangeError(
        `Cannot open COCO stream: prefetch must be a positive integer, got ${prefetch}`,
      );
    }
    const rows = options.rows ?? { start: 0, end: batchSize };
    if (
      !Number.isInteger(rows.start) || !Number.isInteger(rows.end) || rows.start < 0 ||
      rows.end > batchSize || rows.start > rows.end
    ) {
      throw new RangeError(
        `Cannot open COCO stream: rows must be a range within the batch's ${batchSize} rows, ` +
          `got [${rows.start}, ${rows.end})`,
      );
    }
    const position: StreamPosition = options.resume
      ? { state: [...options.resume.state] as RngState, batches: options.resume.batches }
      : { state: new Rng(seed).getState(), batches: 0 };
    // The row length and width the worker will find (it checks the files; this reads no HDF5).
    const layout = await datasetLayout(baseDir, pcaFeatures);
    const ring = BatchRing.create(prefetch + 1, batchSize, layout.captionLength, layout.featureDim);
    const worker = new Worker(new URL("./loader_worker.ts", import.meta.url), {
      type: "module",
    });
    let onReady!: (m: LoaderMessage) => void;
    let onFail!: (e: Error) => void;
    let onClosed!: () => void;
    const ready = new Promise<LoaderMessage>((res, rej) => ((onReady = res), (onFail = rej)));
    const closed = new Promise<void>((res) => (onClosed = res));
    let stream: CocoStream | null = null;
    const fail = (e: Error) => {
      ring.signal(CTRL_ERROR);
      if (stream) stream.#setError(e);
      else onFail(e);
    };
    worker.onmessage = (e: MessageEvent<LoaderMessage>) => {
      const m = e.data;
      if (m.type === "ready") onReady(m);
      else if (m.type === "error") {
        fail(
          m.name === "InputError"
            ? new InputError(m.message)
            : new Error(`COCO loader worker: ${m.message}`),
        );
      } else if (m.type === "closed") onClosed();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      fail(new Error(`COCO loader worker: ${e.message}`));
      onClosed();
    };
    const init: LoaderInit = {
      baseDir,
      split,
      pcaFeatures,
      state: position.state,
      firstSeq: position.batches,
      rows,
      ring: ring.buffers,
    };
    worker.postMessage(init);
    let msg: LoaderMessage;
    try {
      msg = await ready;
    } catch (e) {
      await within(closed, 2000);
      worker.terminate();
      throw e;
    }
    if (msg.type !== "ready") throw new Error("COCO loader worker: unexpected message");
    stream = new CocoStream(worker, ring, msg.info, position, closed);
    if (options.urls ?? true) {
      try {
        stream.#urls = (await loadSplitImages(layout, split, msg.info.numImages)).urls;
      } catch (e) {
        await stream.close();
        throw e;
      }
    }
    return stream;
  }

  /**
   * The ring's shared buffers: post them once to compute workers, which wrap them with
   * `BatchRing.fromBuffers` and read a batch in place as `ring.captions(batch.slot)` etc.
   * @returns The SharedArrayBuffers and the ring's dimensions.
   */
  get ringBuffers(): RingBuffers {
    return this.#ring.buffers;
  }

  #setError(e: Error): void {
    if (this.#error) return;
    this.#error = e;
    this.#fail(e);
  }

  /**
   * The next minibatch, in seed order; resolves as soon as the worker has it ready.
   * Release it with {@linkcode CocoStream.release} once used.
   * @returns The batch (views into shared memory).
   * @throws The worker's error (an InputError for bad data) if reading failed.
   */
  async next(): Promise<StreamBatch> {
    if (this.#isClosed) throw new Error("Cannot read from COCO stream: it is closed");
    if (this.#error) throw this.#error;
    if (this.#held.size >= this.#ring.slots) {
      throw new Error(
        `Cannot take another batch: all ${this.#ring.slots} ring slots are held; release a batch first`,
      );
    }
    const seq = this.#seq++;
    const slot = seq % this.#ring.slots;
    const ok = await Promise.race([this.#ring.waitReady(slot), this.#failed]);
    if (!ok && !this.#error && !this.#isClosed) {
      // The worker flagged an error in shared memory; its message is still on the way.
      await within(this.#failed.catch(() => {}), 5000);
      if (!this.#error) this.#setError(new Error("COCO loader worker failed without a message"));
    }
    if (this.#error) throw this.#error;
    if (!ok || this.#isClosed) throw new Error("Cannot read from COCO stream: it was closed");
    const ring = this.#ring, c = ring.control;
    const gotSeq = c[ring.word(slot, SLOT.seq)];
    if (gotSeq !== seq) {
      throw new Error(`COCO stream out of order: expected batch ${seq}, got ${gotSeq}`);
    }
    const state = (off: number) =>
      [0, 1, 2, 3].map((i) => c[ring.word(slot, off + i)] >>> 0) as RngState;
    this.#held.add(slot);
    const B = this.batchSize, D = this.featureDim;
    const imageIdxs = ring.imageIdxs(slot);
    const next = { state: state(SLOT.stateAfter), batches: seq + 1 };
    this.#position = next;
    return {
      seq,
      slot,
      captions: new Tensor(ring.captions(slot), [B, this.#ring.buffers.captionLength]),
      features: new Tensor(ring.features(slot), [B, D]),
      imageIdxs,
      captionIdxs: ring.captionIdxs(slot),
      ...(this.#urls.length ? { urls: Array.from(imageIdxs, (i) => this.#urls[i]) } : {}),
      reads: c[ring.word(slot, SLOT.reads)],
      readMs: c[ring.word(slot, SLOT.readMicros)] / 1000,
      next,
    };
  }

  /**
   * Gives a batch's slot back to the worker to refill. The batch's arrays must not be used
   * afterwards (copy what you keep).
   * @param batch A batch from {@linkcode CocoStream.next}.
   */
  release(batch: StreamBatch): void {
    if (!this.#held.delete(batch.slot)) return;
    if (!this.#isClosed) this.#ring.release(batch.slot);
  }

  /**
   * The position after the last batch delivered by {@linkcode CocoStream.next}: pass it as
   * `resume` to {@linkcode CocoStream.open} to continue with the following batch.
   * @returns The generator state and batch count.
   */
  position(): StreamPosition {
    return { state: [...this.#position.state] as RngState, batches: this.#position.batches };
  }

  /**
   * Stops the worker, waits for it to close its files, and terminates it (idempotent).
   * @returns Resolves once the worker is gone.
   */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#ring.signal(CTRL_STOP);
    await within(this.#closed, 5000);
    this.#worker.terminate();
  }
}

/** Waits for a promise, at most `ms` milliseconds (the timer is always cleared). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
