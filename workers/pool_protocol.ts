/**
 * The protocol between the worker pool (pool.ts) and its compute workers (compute_worker.ts):
 * the words of the shared control array, the job commands, the step scalars, and the few
 * messages sent at setup. Per step nothing is posted: the main thread writes the batch into
 * shared buffers, sets a command and bumps the generation word; each worker runs its part of
 * the job and counts itself done.
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";
import type { ModelConfig } from "../model/captioning_rnn.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { OPTIM_HYPERPARAMS, type UpdateRule } from "../layers/optim.ts";

/** Control word: the job generation; workers wait for it to change. */
export const CTRL_GEN = 0;
/** Control word: the command of the current generation (one of the `CMD_*` values). */
export const CTRL_CMD = 1;
/** Control word: how many workers have finished the current job; the main thread waits on it. */
export const CTRL_DONE = 2;
/** Control word: N, rows in the shared batch. */
export const CTRL_N = 3;
/** Control word: T + 1, the caption length of the shared batch. */
export const CTRL_T1 = 4;
/** Control word: maxLength of a sampling job. */
export const CTRL_MAX_LENGTH = 6;
/** Control word: beamSize of a sampling job. */
export const CTRL_BEAM = 7;
/** Control word: 1 while the job computes a training step (0 for an evaluation loss). */
export const CTRL_TRAINING = 8;
/** The control array's length. */
export const CTRL_WORDS = 16;

/** Command: loss and gradients of each owned shard, into the shard buffers. */
export const CMD_LOSS = 1;
/** Command: reduce the owned gradient blocks in shard order, with their sums of squares. */
export const CMD_REDUCE = 2;
/** Command: clip and apply the optimizer to the owned gradient blocks. */
export const CMD_UPDATE = 3;
/** Command: caption the owned rows of the shared features. */
export const CMD_SAMPLE = 4;
/** Command: return to the event loop to read one message (then resume waiting). */
export const CMD_YIELD = 5;
/** Command: leave the job loop for good. */
export const CMD_STOP = 6;

/** The phase a command runs, for error reports. */
export const PHASE_NAMES: Record<number, string> = {
  [CMD_LOSS]: "loss",
  [CMD_REDUCE]: "reduce",
  [CMD_UPDATE]: "update",
  [CMD_SAMPLE]: "sample",
};

/** Scalar slot: the optimizer's step count t (after `beginStep`). */
export const SC_T = 0;
/** Scalar slot: the clip factor (1 = no clipping). */
export const SC_FACTOR = 1;
/** Scalar slots: the update rule's hyper-parameters, in `OPTIM_HYPERPARAMS` order from here. */
export const SC_OPTIM = 2;
/** The scalar array's length. */
export const SC_WORDS: number = SC_OPTIM + OPTIM_HYPERPARAMS.length;

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
  /** The model's resolved constructor arguments. */
  config: ModelConfig;
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
  /** The step scalars (`SC_*`). */
  scalars: Float64Array;
}

/** A message that replaces shared buffers (sent with `CMD_YIELD`); absent fields stay. */
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
