/**
 * The masked softmax loss over packed score rows, in place, shared by every model's fused
 * step: each row's scores become their gradient, (softmax − onehot(target)) / normalizer
 * (times the row's caption weight, when weighted), and a row whose target is `<NULL>` has no
 * loss and a zero gradient.
 *
 * Dimension legend: R packed rows, V vocabulary.
 * @module
 */
import type { ElementwiseKernels } from "../layers/kernels/elementwise.ts";
import type { FloatArray } from "../layers/tensor.ts";

/** The rows a {@linkcode packedSoftmaxLoss} scores, and its work arrays. */
export interface PackedScores {
  /** The scores, (R, V), overwritten with their gradient. */
  scores: FloatArray;
  /** R */
  rows: number;
  /** V */
  vocabSize: number;
  /** Each row's target word, (R,). */
  targets: Int32Array;
  /** The index of `<NULL>`, the padding the loss masks out. */
  nullIdx: number;
  /** Work: each row's target score, (≥ R,). */
  targetScores: Float64Array;
  /** Work: each row's max and sum of exponentials, (≥ 2R,). */
  stats: FloatArray;
  /** Each row's weight (its caption's), (≥ R,), or null for 1 each. */
  rowWeights: Float64Array | null;
}

/**
 * The summed loss of packed score rows, Σ_r w_r · (−log softmax(scores_r)[target_r]) /
 * normalizer, with the scores overwritten by its gradient.
 * @param ew The elementwise kernels (their row softmax).
 * @param p The rows, targets and work arrays.
 * @param normalizer What the summed loss is divided by.
 * @returns The loss.
 *
 * @example
 * ```ts
 * import { packedSoftmaxLoss } from "./scores_loss.ts";
 * import { tsElementwise } from "../layers/kernels/elementwise.ts";
 * const scores = new Float64Array([0, 0, 0, 0]); // two rows of V = 2
 * const loss = packedSoftmaxLoss(tsElementwise, {
 *   scores, rows: 2, vocabSize: 2, targets: new Int32Array([1, 0]), nullIdx: 0,
 *   targetScores: new Float64Array(2), stats: new Float64Array(4), rowWeights: null,
 * }, 1);
 * console.log(loss.toFixed(4), Array.from(scores)); // 0.6931 [ 0.5, -0.5, 0, 0 ]
 * ```
 */
export function packedSoftmaxLoss(
  ew: ElementwiseKernels,
  p: PackedScores,
  normalizer: number,
): number {
  if (rowTerms.length < p.rows) rowTerms = new Float64Array(p.rows);
  packedSoftmaxRows(ew, p, normalizer, 0, p.rows, rowTerms);
  return sumRowLosses(rowTerms, p.rows, normalizer);
}

/** The row terms of {@linkcode packedSoftmaxLoss}, grown as needed (nothing per call). */
let rowTerms = new Float64Array(0);

/**
 * Rows r0 … r1 − 1 of {@linkcode packedSoftmaxLoss}: their scores become their gradient and
 * terms[r] their weighted −log p(target) (0 for a `<NULL>` target). Rows are independent, so
 * a team of workers can each take a block of them; {@linkcode sumRowLosses} then adds the
 * terms in row order, which gives the same bits as one pass over all rows.
 * @param ew The elementwise kernels (their row softmax).
 * @param p The rows, targets and work arrays.
 * @param normalizer What the summed loss is divided by.
 * @param r0 The first row.
 * @param r1 One past the last row.
 * @param terms Each row's loss term, (≥ r1,), written for rows r0 … r1 − 1.
 *
 * @example
 * ```ts
 * import { packedSoftmaxRows, sumRowLosses } from "./scores_loss.ts";
 * import { tsElementwise } from "../layers/kernels/elementwise.ts";
 * const scores = new Float64Array([0, 0, 0, 0]), terms = new Float64Array(2);
 * const p = {
 *   scores, rows: 2, vocabSize: 2, targets: new Int32Array([1, 0]), nullIdx: 0,
 *   targetScores: new Float64Array(2), stats: new Float64Array(4), rowWeights: null,
 * };
 * packedSoftmaxRows(tsElementwise, p, 1, 1, 2, terms); // row 1 first: any order
 * packedSoftmaxRows(tsElementwise, p, 1, 0, 1, terms);
 * console.log(sumRowLosses(terms, 2, 1).toFixed(4)); // 0.6931
 * ```
 */
export function packedSoftmaxRows(
  ew: ElementwiseKernels,
  p: PackedScores,
  normalizer: number,
  r0: number,
  r1: number,
  terms: Float64Array,
): void {
  const { scores: sc, vocabSize: v, targets, nullIdx, targetScores: xt, stats } = p;
  const weights = p.rowWeights;
  for (let r = r0; r < r1; r++) xt[r] = targets[r] === nullIdx ? 0 : sc[r * v + targets[r]];
  const scale = 1 / normalizer;
  ew.softmaxRows(sc, r0 * v, r1 - r0, v, stats, 2 * r0, scale);
  for (let r = r0; r < r1; r++) {
    terms[r] = 0;
    if (targets[r] === nullIdx) {
      sc.fill(0, r * v, (r + 1) * v); // a masked step inside a caption: no loss, no gradient
      continue;
    }
    const nll = Math.log(stats[2 * r + 1]) - (xt[r] - stats[2 * r]);
    sc[r * v + targets[r]] -= scale;
    if (weights === null) {
      terms[r] = nll;
      continue;
    }
    // A weighted caption: its loss and its scores' gradient, w · (softmax − onehot) / normalizer.
    const w = weights[r];
    terms[r] = w * nll;
    if (w !== 1) { for (let j = r * v; j < (r + 1) * v; j++) sc[j] *= w; }
  }
}

/**
 * The loss from the rows' terms ({@linkcode packedSoftmaxRows}), added in row order.
 * @param terms Each row's loss term.
 * @param rows R
 * @param normalizer What the summed loss is divided by.
 * @returns The loss.
 *
 * @example
 * ```ts
 * import { sumRowLosses } from "./scores_loss.ts";
 * console.log(sumRowLosses(new Float64Array([1, 3]), 2, 4)); // 1
 * ```
 */
export function sumRowLosses(terms: Float64Array, rows: number, normalizer: number): number {
  let loss = 0;
  for (let r = 0; r < rows; r++) loss += terms[r];
  return loss * (1 / normalizer);
}
