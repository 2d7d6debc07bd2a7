/**
 * A minibatch: what one training step, validation loss or captioning call reads.
 *
 * Dimension legend: N batch, T+1 caption length (17 in COCO), D image feature.
 * @module
 */
import type { FloatDType, Tensor } from "../layers/tensor.ts";

/** Captions and the features of their images, with where each came from. */
export interface Minibatch {
  /** Word indices, (N, T+1), int32: the model reads [:, :-1] and predicts [:, 1:]. */
  captions: Tensor<"int32">;
  /** The features of each caption's image, (N, D). */
  features: Tensor<FloatDType>;
  /** The feature row (image) of each caption, (N,). */
  imageIdxs: Int32Array;
  /** The caption row of the split each entry was drawn from, (N,), when drawn from a split. */
  captionIdxs?: Int32Array;
  /** The URL (or dataset-relative path) of each caption's image, when known. */
  urls?: string[];
  /**
   * Each caption's weight in the loss, (N,): the loss is Σ_i weights[i] · (−log p(caption i)),
   * divided by the normalizer. Absent: every weight is 1 (cross-entropy). Self-critical
   * training weighs each sampled caption by its reward minus the baseline.
   */
  weights?: Float64Array;
}
