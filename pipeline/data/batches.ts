/**
 * Where training minibatches come from: the {@linkcode BatchSource} the solver draws from, the
 * seeded draw both sources share (the exercise's `sample_coco_minibatch`), and random
 * minibatches of a dictionary held in memory. The streamed source is `StreamBatches`
 * (stream/stream_batches.ts); both give the same batches for a seed.
 *
 * Dimension legend: N batch.
 * @module
 */
import { Rng, type RngState } from "../../layers/random.ts";
import { type DType, type FloatDType, Tensor } from "../../layers/tensor.ts";
import type { Minibatch } from "../../model/minibatch.ts";
import { type CaptionData, gatherMinibatch, type Split, splitOf } from "./caption_data.ts";

/** Where training minibatches come from (in memory, or streamed from HDF5 by a worker). */
export interface BatchSource {
  /** The number of captions in the training split. */
  readonly size: number;
  /** The next training minibatch. */
  next(): Minibatch | Promise<Minibatch>;
  /** The state that decides the following batches, to save in a checkpoint. */
  getState(): RngState;
  /** Restores a saved state. */
  setState(state: RngState): void;
  /** Releases resources (workers, files). */
  close?(): void | Promise<void>;
}

/**
 * Draws a minibatch's caption row indices, as the exercise's `sample_coco_minibatch`
 * (`np.random.choice(split_size, batch_size)`: uniform, with replacement). The in-memory
 * and streaming sources share it, so the same seed gives the same rows.
 * @param rng The seeded generator (advanced by `batchSize` draws).
 * @param splitSize The number of caption rows.
 * @param batchSize The batch size.
 * @param out Where to write the indices (default: a new array).
 * @returns The indices.
 *
 * @example
 * ```ts
 * import { drawBatchIndices } from "./batches.ts";
 * import { Rng } from "../../layers/random.ts";
 * console.assert(drawBatchIndices(new Rng(1), 10, 4).every((i) => i < 10));
 * ```
 */
export function drawBatchIndices(
  rng: Rng,
  splitSize: number,
  batchSize: number,
  out: Int32Array = new Int32Array(batchSize),
): Int32Array {
  for (let i = 0; i < batchSize; i++) out[i] = rng.randint(splitSize);
  return out;
}

/**
 * Random minibatches of one split held in memory, drawn with replacement like the exercise's
 * `sample_coco_minibatch` (np.random.choice(split_size, batch_size)).
 *
 * @example
 * ```ts
 * import { InMemoryBatches } from "./batches.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([10, 17], "int32"), train_image_idxs: Tensor.zeros([10], "int32"),
 *   train_features: Tensor.zeros([1, 512], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * const batches = new InMemoryBatches(data, 4, 0);
 * console.log(batches.next().captions.shape); // [4, 17]
 * ```
 */
export class InMemoryBatches implements BatchSource {
  readonly #data: CaptionData;
  readonly #split: Split;
  readonly #batchSize: number;
  readonly #rng: Rng;
  readonly #size: number;
  readonly #rows: { start: number; end: number } | null;

  /**
   * Draws minibatches of a split with a seeded generator.
   * @param data The data dictionary.
   * @param batchSize N, captions per minibatch.
   * @param seed The seed of the minibatch sampler.
   * @param split The split to draw from (default "train").
   * @param rows Gather only these rows of each batch, [start, end) (default all); the others
   * stay zero (in an MPI job, a rank gathers only the rows of its own shards).
   */
  constructor(
    data: CaptionData,
    batchSize: number,
    seed: number,
    split: Split = "train",
    rows?: { start: number; end: number },
  ) {
    this.#data = data;
    this.#split = split;
    this.#batchSize = batchSize;
    this.#rng = new Rng(seed);
    this.#size = splitOf(data, split).captions.shape[0];
    this.#rows = rows && (rows.start > 0 || rows.end < batchSize) ? rows : null;
  }

  /** The number of captions in the split. */
  get size(): number {
    return this.#size;
  }

  /** A random minibatch (rows drawn with replacement). */
  next(): Minibatch {
    const rows = drawBatchIndices(this.#rng, this.size, this.#batchSize);
    if (!this.#rows) return gatherMinibatch(this.#data, this.#split, rows);
    // Every row is drawn (the order is every reader's); only the rows asked for are gathered.
    const { start, end } = this.#rows, n = this.#batchSize;
    const part = gatherMinibatch(this.#data, this.#split, rows.subarray(start, end));
    const padded = (t: Tensor<DType>) => {
      const width = t.data.length / (end - start), out = Tensor.zeros([n, width], t.dtype);
      out.data.set(t.data, start * width);
      return out;
    };
    const imageIdxs = new Int32Array(n);
    imageIdxs.set(part.imageIdxs, start);
    return {
      captions: padded(part.captions) as Tensor<"int32">,
      features: padded(part.features) as Tensor<FloatDType>,
      imageIdxs,
      captionIdxs: Int32Array.from(rows),
    };
  }

  /** The sampler's generator state. */
  getState(): RngState {
    return this.#rng.getState();
  }

  /** Restores the sampler's generator state. */
  setState(state: RngState): void {
    this.#rng.setState(state);
  }
}
