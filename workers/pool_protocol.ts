/**
 * The protocol between the worker pool (pool.ts) and its compute workers (compute_worker.ts):
 * the words of the shared control array, the job commands, the step scalars, and the few
 * messages sent at setup. Per step nothing is posted: the main thread writes the batch into
 * shared buffers, sets a command and bumps the generation word; each worker runs its part of
 * the job and counts itself done.
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";
import type { CaptioningModelConfig } from "../model/captioning_model.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { OPTIM_HYPERPARAMS, type UpdateRule } from "../layers/optim.ts";

/** The words of the shared control array (an Int32Array of `CTRL.WORDS` words). */
export const CTRL = {
  /** The job generation; workers wait for it to change. */
  GEN: 0,
  /** The command of the current generation (one of {@linkcode CMD}). */
  CMD: 1,
  /** How many workers have finished the current job; the main thread waits on it. */
  DONE: 2,
  /** N, rows in the shared batch (or images of a sampling job). */
  N: 3,
  /** T + 1, the caption length of the shared batch. */
  T1: 4,
  /** maxLength of a sampling job. */
  MAX_LENGTH: 6,
  /** beamSize of a sampling job. */
  BEAM: 7,
  /** 1 while the job computes a training step (0 for an evaluation loss). */
  TRAINING: 8,
  /** The optimizer's step count at a training step's loss job (seeds its shards' dropout). */
  STEP: 9,
  /** The control array's length. */
  WORDS: 16,
} as const;

/** The jobs a generation of the control array can command. */
export const CMD = {
  /** Loss and gradients of each owned shard, into the shard buffers. */
  LOSS: 1,
  /** Reduce the owned gradient blocks in shard order, with their sums of squares. */
  REDUCE: 2,
  /** Clip and apply the optimizer to the owned gradient blocks. */
  UPDATE: 3,
  /** Caption the owned chunks of images of the shared features. */
  SAMPLE: 4,
  /** Return to the event loop to read one message (then resume waiting). */
  YIELD: 5,
  /** Leave the job loop for good. */
  STOP: 6,
} as const;

/** The phase a command runs, for error reports. */
export const PHASE_NAMES: Record<number, string> = {
  [CMD.LOSS]: "loss",
  [CMD.REDUCE]: "reduce",
  [CMD.UPDATE]: "update",
  [CMD.SAMPLE]: "sample",
};

/** The slots of the shared step scalars (a Float64Array of `SC.WORDS` slots). */
export const SC = {
  /** The optimizer's step count t (after `beginStep`). */
  T: 0,
  /** The clip factor (1 = no clipping). */
  FACTOR: 1,
  /** The update rule's hyper-parameters, in `OPTIM_HYPERPARAMS` order from here. */
  OPTIM: 2,
  /** The scalar array's length. */
  WORDS: 2 + OPTIM_HYPERPARAMS.length,
} as const;

/** The first message to a compute worker: everything it needs, once. */
export interface WorkerInit {
  /** "init". */
  type: "init";
  /** This worker's index. */
  index: number;
  /** The number of workers. */
  workers: number;
  /** The number of fixed shards per batch. */
  shards: number;
  /** The kernel backend to select. */
  backend: BackendName;
  /** The model's resolved constructor arguments (`cellType` names the model). */
  config: CaptioningModelConfig;
  /** The model's vocabulary. */
  wordToIdx: Record<string, number>;
  /** The model's flat parameters (SharedArrayBuffer-backed). */
  params: FloatArray;
  /** One gradient buffer per shard. */
  shardGrads: FloatArray[];
  /** The reduced gradient. */
  grad: FloatArray;
  /** The control words. */
  control: Int32Array;
  /** The loss of each shard. */
  shardLoss: Float64Array;
  /** The sum of squares of each reduced gradient block. */
  blockSq: Float64Array;
  /** The step scalars (slots {@linkcode SC}). */
  scalars: Float64Array;
}

/** A message that replaces shared buffers (sent with `CMD.YIELD`); absent fields stay. */
export interface WorkerBuffers {
  /** "buffers". */
  type: "buffers";
  /** The optimizer's update rule. */
  rule?: UpdateRule;
  /** The optimizer's moment buffers. */
  moments?: FloatArray[];
  /** The shared batch captions, int32, capacity ≥ N (T + 1). */
  captions?: Int32Array;
  /** The shared batch features, in the model's dtype, capacity ≥ N D. */
  features?: FloatArray;
  /** Sampling output: captions, int32, capacity ≥ N maxLength. */
  sampleCaptions?: Int32Array;
  /** Sampling output: log-probabilities, capacity ≥ N. */
  sampleLogProbs?: Float64Array;
}

/** What a compute worker posts back. */
export type WorkerReply =
  | { type: "ready"; index: number }
  | { type: "ack"; index: number }
  | { type: "error"; index: number; phase: string; name: string; message: string; stack: string };
