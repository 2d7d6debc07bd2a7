/**
 * Minibatches for training: the exercise's data dictionary, and random minibatches drawn from
 * it with a seeded generator whose state can be saved so a resumed run draws the same batches.
 *
 * Dimension legend: N batch, T+1 caption length (17 in COCO), D image feature.
 * @module
 */
import { Rng, type RngState } from "../../layers/random.ts";
import { allocArray, type ArrayOf, type FloatDType, Tensor } from "../../layers/tensor.ts";

import { drawBatchIndices, type Split } from "./coco_layout.ts";

export type { Split };

/** The exercise's data dictionary (as `load_coco_data` returns it). */
export interface CaptionData {
  /** Caption rows, (num captions, T+1), int32. */
  train_captions: Tensor<"int32">;
  /** The feature row of each caption, (num captions,), int32. */
  train_image_idxs: Tensor<"int32">;
  /** Image features, (num images, D). */
  train_features: Tensor<FloatDType>;
  /** Validation caption rows. */
  val_captions?: Tensor<"int32">;
  /** Validation image indices. */
  val_image_idxs?: Tensor<"int32">;
  /** Validation image features. */
  val_features?: Tensor<FloatDType>;
  /** index → word. */
  idx_to_word: string[];
  /** word → index. */
  word_to_idx: Record<string, number>;
  /** One image URL per train feature row. */
  train_urls?: string[];
  /** One image URL per val feature row. */
  val_urls?: string[];
}

/** A minibatch: captions and the features of their images. */
export interface Minibatch {
  /** (N, T+1), int32. */
  captions: Tensor<"int32">;
  /** (N, D). */
  features: Tensor<FloatDType>;
  /** The feature row of each caption, (N,). */
  imageIdxs: Int32Array;
}

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
 * Gathers the given caption rows of a split with their features, as the exercise's
 * `sample_coco_minibatch` does once it has chosen the rows.
 * @param data The data dictionary.
 * @param split "train" or "val".
 * @param rows Caption row indices.
 * @returns The minibatch.
 *
 * @example
 * ```ts
 * import { gatherMinibatch } from "./minibatch.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.fromValues([1, 4, 2, 1, 5, 2], [2, 3], "int32"),
 *   train_image_idxs: Tensor.fromValues([1, 0], [2], "int32"),
 *   train_features: Tensor.fromValues([0, 0, 7, 7], [2, 2], "float32"),
 *   idx_to_word: [], word_to_idx: {},
 * };
 * console.log(gatherMinibatch(data, "train", [0]).features.data); // [7, 7]
 * ```
 */
export function gatherMinibatch(
  data: CaptionData,
  split: Split,
  rows: ArrayLike<number>,
): Minibatch {
  const caps = data[`${split}_captions`], idxs = data[`${split}_image_idxs`];
  const feats = data[`${split}_features`];
  if (!caps || !idxs || !feats) {
    throw new RangeError(`Cannot sample: the data has no "${split}" split`);
  }
  const n = rows.length, t1 = caps.shape[1], d = feats.shape[1];
  const captions = Tensor.zeros([n, t1], "int32");
  const features = new Tensor(allocArray(feats.dtype, n * d) as ArrayOf<FloatDType>, [n, d]);
  const imageIdxs = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    captions.data.set(caps.data.subarray(r * t1, (r + 1) * t1), i * t1);
    const img = idxs.data[r];
    if (img < 0 || img >= feats.shape[0]) {
      throw new RangeError(
        `Cannot gather caption ${r} of ${split}: its image ${img} has no feature row (${
          feats.shape[0]
        } loaded)`,
      );
    }
    imageIdxs[i] = img;
    features.data.set(feats.data.subarray(img * d, (img + 1) * d), i * d);
  }
  return { captions, features, imageIdxs };
}

/**
 * Random minibatches of one split held in memory, drawn with replacement like the exercise's
 * `sample_coco_minibatch` (np.random.choice(split_size, batch_size)).
 *
 * @example
 * ```ts
 * import { InMemoryBatches } from "./minibatch.ts";
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

  /**
   * Draws minibatches of a split with a seeded generator.
   * @param data The data dictionary.
   * @param batchSize N, captions per minibatch.
   * @param seed The seed of the minibatch sampler.
   * @param split The split to draw from (default "train").
   */
  constructor(data: CaptionData, batchSize: number, seed: number, split: Split = "train") {
    this.#data = data;
    this.#split = split;
    this.#batchSize = batchSize;
    this.#rng = new Rng(seed);
    if (!data[`${split}_captions`]) {
      throw new RangeError(`Cannot sample: the data has no "${split}" split`);
    }
  }

  /** The number of captions in the split. */
  get size(): number {
    return this.#data[`${this.#split}_captions`]!.shape[0];
  }

  /** A random minibatch (rows drawn with replacement). */
  next(): Minibatch {
    // The same draw as the streaming loader's, so both give the same batches for a seed.
    const rows = drawBatchIndices(this.#rng, this.size, this.#batchSize);
    return gatherMinibatch(this.#data, this.#split, rows);
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
