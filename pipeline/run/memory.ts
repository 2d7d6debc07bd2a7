/**
 * How much memory a training run needs, estimated before anything is allocated, so that a
 * `--model.hiddenDim=1000000` or `--train.batchSize=1000000000` is refused with what it would
 * take and what to lower — instead of an allocation failure (or the kernel's OOM killer) after
 * the run has started.
 *
 * Dimension legend: N batch, T caption steps, D image feature, W word vector (the Transformer's
 * width), H hidden, G gate width, F feed-forward, V vocabulary, P parameters, R packed rows of
 * a shard (N / shards · T).
 * @module
 */
import { MOMENT_NAMES } from "../../layers/optim.ts";
import type { ExperimentConfig } from "../config/config.ts";
import { InputError } from "../errors.ts";
import { stepSplit } from "../../workers/pool.ts";

/** The estimate, in bytes, by what needs it. */
export interface TrainingMemory {
  /** Parameters, the shard gradients, the reduced gradient and the optimizer's moments. */
  parameters: number;
  /** The training step's work arrays, in every thread that computes shards. */
  workArrays: number;
  /** Minibatch copies (the batch, the shards, the pool's shared batch). */
  batches: number;
  /** The sum. */
  total: number;
  /** The model options that size the parameters, the largest lever first. */
  modelFields: readonly string[];
}

/** The sizes a model of the experiment has on the data. */
export interface DataSizes {
  /** V, the vocabulary size. */
  vocabSize: number;
  /** D, the feature dimension. */
  inputDim: number;
  /** T + 1, the caption length. */
  captionLength: number;
}

/** The gate width of a recurrent cell of hidden size H, and the biases beside it. */
function gates(cellType: string, h: number): { g: number; biases: number } {
  switch (cellType) {
    case "lstm":
      return { g: 4 * h, biases: 4 * h };
    case "gru":
      return { g: 3 * h, biases: 6 * h };
    default:
      return { g: h, biases: h };
  }
}

/**
 * Estimates the memory of a training run: a recurrent captioning model's or the Transformer's.
 * @param config The experiment.
 * @param sizes The data's vocabulary, feature and caption sizes.
 * @param workers The threads that compute shards.
 * @returns The estimate by part.
 *
 * @example
 * ```ts
 * import { defaultExperiment } from "../config/config.ts";
 * import { estimateTrainingMemory } from "./memory.ts";
 * const m = estimateTrainingMemory(defaultExperiment(), { vocabSize: 1004, inputDim: 512, captionLength: 17 }, 2);
 * console.log((m.total / 2 ** 20).toFixed(0), "MiB");
 * ```
 */
export function estimateTrainingMemory(
  config: ExperimentConfig,
  sizes: DataSizes,
  workers: number,
): TrainingMemory {
  const { hiddenDim: h, wordvecDim: w, cellType, dtype } = config.model;
  const { batchSize: n, shards, updateRule } = config.train;
  const { vocabSize: v, inputDim: d, captionLength } = sizes;
  const t = captionLength - 1, bytes = dtype === "float64" ? 8 : 4;
  const perShard = Math.ceil(n / shards), r = perShard * t;
  let p: number, work: number;
  if (cellType === "transformer") {
    // Per layer: self- and cross-attention (4 W×W projections and biases each), 3 layer norms,
    // the feed-forward block; its step keeps ~12 W-wide and 2 F-wide arrays per packed row and
    // 3 T×T attention arrays per head and caption.
    const { numLayers: l, numHeads: heads, ffDim: f } = config.model;
    const layer = 8 * (w * w + w) + 6 * w + (2 * w * f + f + w);
    p = d * w + w + v * w + l * layer + w * v + v;
    work = r * (v + 2 + l * (12 * w + 2 * f)) + perShard * (d + w + 3 * l * heads * t * t);
  } else {
    const { g, biases } = gates(cellType, h);
    p = d * h + h + v * w + w * g + h * g + biases + h * v + v;
    work = r * (w + 2 * g + 5 * h + v + 2) + perShard * (3 * h + d);
  }
  // Parameters, a saved copy while checkpointing, the reduced gradient, one per shard, moments.
  const parameters = bytes * p * (3 + shards + MOMENT_NAMES[updateRule].length);
  // A recurrent model's workers share one set when they compute a shard's step as a team.
  const team = stepSplit(cellType !== "transformer", workers, shards) === "steps";
  const workArrays = bytes * work * (team ? 1 : Math.min(workers, shards));
  const batches = 3 * n * (captionLength * 4 + d * bytes);
  const modelFields = cellType === "transformer"
    ? ["model.wordvecDim", "model.ffDim", "model.numLayers"]
    : ["model.hiddenDim", "model.wordvecDim"];
  return {
    parameters,
    workArrays,
    batches,
    total: parameters + workArrays + batches,
    modelFields,
  };
}

/** Bytes as "12.3 GiB". */
function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * Refuses a run whose estimate exceeds the machine's memory, naming what to lower.
 * @param memory The estimate.
 * @param available The bytes the run may use (default: 90% of the machine's memory).
 * @throws {InputError} When the run cannot fit.
 *
 * @example
 * ```ts
 * import { checkTrainingMemory } from "./memory.ts";
 * const modelFields = ["model.hiddenDim", "model.wordvecDim"];
 * checkTrainingMemory({ parameters: 1e6, workArrays: 1e6, batches: 1e5, total: 2.1e6, modelFields }); // fits
 * ```
 */
export function checkTrainingMemory(
  memory: TrainingMemory,
  available: number = 0.9 * Deno.systemMemoryInfo().total,
): void {
  if (memory.total <= available) return;
  const byParameters = memory.parameters >= memory.workArrays + memory.batches;
  const fields = memory.modelFields;
  const field = byParameters ? fields[0] : "train.batchSize";
  const lower = fields.length > 1
    ? `${fields.slice(0, -1).join(", ")} or ${fields.at(-1)}`
    : fields[0];
  throw new InputError(
    `${field}: training would need about ${gib(memory.total)} (parameters and gradients ` +
      `${gib(memory.parameters)}, step work arrays ${gib(memory.workArrays)}), more than the ` +
      `${gib(available)} this machine can give; lower ${byParameters ? lower : "train.batchSize"}`,
  );
}

/**
 * Whether an error is a failed allocation (a typed array or buffer too large to make).
 * @param e The error.
 * @returns True for V8's allocation failures.
 *
 * @example
 * ```ts
 * import { isAllocationFailure } from "./memory.ts";
 * try { new Float64Array(2 ** 53); } catch (e) { console.log(isAllocationFailure(e)); } // true
 * ```
 */
export function isAllocationFailure(e: unknown): boolean {
  return e instanceof RangeError &&
    /allocation failed|Invalid (typed )?array( buffer)? length|Array buffer allocation|out of memory/i
      .test(e.message);
}
