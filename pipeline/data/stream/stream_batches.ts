/**
 * Training minibatches streamed from the HDF5 files by the loader worker ({@linkcode CocoStream}),
 * as a {@linkcode BatchSource} for the solver. The batch order is the same as in-memory
 * sampling with the same seed, so a streamed run and an in-memory run train identically.
 * @module
 */
import type { RngState } from "../../../layers/random.ts";
import { Tensor } from "../../../layers/tensor.ts";
import { CocoStream, type StreamOptions } from "./coco_stream.ts";
import type { Minibatch } from "../../../model/minibatch.ts";
import type { BatchSource } from "../batches.ts";

/**
 * Streamed training minibatches: prefetched by a worker into shared memory, copied out one
 * batch at a time (so memory stays bounded whatever the dataset size).
 *
 * @example
 * ```ts
 * import { StreamBatches } from "./stream_batches.ts";
 * import { writeSyntheticDataset } from "../synth/writer.ts";
 * const baseDir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ dir: baseDir, numTrain: 20, numVal: 5, images: false });
 * const batches = await StreamBatches.open({ baseDir, batchSize: 8, seed: 1 });
 * console.log((await batches.next()).captions.shape); // [8, 17]
 * await batches.close();
 * ```
 */
export class StreamBatches implements BatchSource {
  readonly #options: StreamOptions;
  #stream: CocoStream;
  #state: RngState;
  #reopen = false;

  private constructor(options: StreamOptions, stream: CocoStream) {
    this.#options = options;
    this.#stream = stream;
    this.#state = stream.position().state;
  }

  /**
   * Starts the loader worker (which validates the files first) and prefetches.
   * @param options The dataset, split, batch size, features and seed (as {@linkcode CocoStream.open}).
   * @returns The batch source.
   */
  static async open(options: StreamOptions): Promise<StreamBatches> {
    return new StreamBatches(options, await CocoStream.open({ ...options, urls: false }));
  }

  /** The number of captions in the split. */
  get size(): number {
    return this.#stream.rows;
  }

  /**
   * The next minibatch (a copy; the shared slot is handed back to the loader at once).
   * @returns The minibatch.
   */
  async next(): Promise<Minibatch> {
    if (this.#reopen) {
      await this.#stream.close();
      this.#stream = await CocoStream.open({
        ...this.#options,
        urls: false,
        resume: { state: this.#state, batches: 0 },
      });
      this.#reopen = false;
    }
    const batch = await this.#stream.next();
    try {
      const out: Minibatch = {
        captions: new Tensor(batch.captions.data.slice(), batch.captions.shape),
        features: new Tensor(batch.features.data.slice(), batch.features.shape),
        imageIdxs: batch.imageIdxs.slice(),
      };
      this.#state = batch.next.state;
      return out;
    } finally {
      this.#stream.release(batch);
    }
  }

  /**
   * The sampler's state after the last batch delivered (save it with the checkpoint).
   * @returns The generator state.
   */
  getState(): RngState {
    return [...this.#state] as RngState;
  }

  /**
   * Continues from a saved state: the next batch is the one that followed it.
   * @param state A state from {@linkcode StreamBatches.getState}.
   */
  setState(state: RngState): void {
    this.#state = [...state] as RngState;
    this.#reopen = true;
  }

  /** Stops the loader worker. */
  async close(): Promise<void> {
    await this.#stream.close();
  }
}
