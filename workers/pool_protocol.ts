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
import {
  DECODE_FLAG_NAMES,
  DECODE_METHODS,
  DECODE_OPTION_NAMES,
  type DecodeOptions,
  LENGTH_PENALTIES,
} from "../model/decode_options.ts";

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
  /** 1 while the job computes a training step (0 for an evaluation loss). */
  TRAINING: 8,
  /** 1 when the shared batch has per-caption weights (self-critical training), else 0. */
  WEIGHTED: 9,
  /** The optimizer's step count at a training step's loss job (seeds its shards' dropout). */
  STEP: 10,
  /** The first shard of a loss or reduce job (0 unless a step spans processes). */
  SHARD_FROM: 11,
  /** One past the last shard of a loss or reduce job (the shard count unless …). */
  SHARD_TO: 12,
  /** The first gradient block of a reduce job. */
  BLOCK_FROM: 13,
  /** One past the last gradient block of a reduce job. */
  BLOCK_TO: 14,
  /** 1 when a reduce job adds the shards onto the running sum already in `grad`, else 0. */
  ONTO: 15,
  /**
   * A sampling job's next chunk of images: a free worker takes the next one with
   * `Atomics.add`, so the chunks go to whichever worker is free (0 at the job's start).
   */
  NEXT_CHUNK: 16,
  /** A team step's barrier: how many workers have arrived (`workers/team_barrier.ts`). */
  TEAM_COUNT: 17,
  /** A team step's barrier: its generation, bumped by the last worker to arrive. */
  TEAM_GEN: 18,
  /** 1 once a worker's team step failed: the others leave the barrier instead of waiting. */
  TEAM_ABORT: 19,
  /**
   * A team step's task counter: a worker takes a phase's next task with `Atomics.add`; the
   * last worker to reach the barrier sets it back to 0 for the next phase.
   */
  TEAM_NEXT: 20,
  /** 1 when the workers compute each shard of the loss job as a team, 0 for whole shards each. */
  TEAM_JOB: 21,
  /**
   * 1 when a training loss job writes its one shard's gradient straight into `grad`, and the
   * reduce job only sums its squares (`writesDirectly`), else 0.
   */
  DIRECT: 22,
  /** The control array's length. */
  WORDS: 23,
} as const;

/** The jobs a generation of the control array can command. */
export const CMD = {
  /**
   * Loss and gradients of each owned shard of [SHARD_FROM, SHARD_TO), into the shard buffers
   * (into `grad` when DIRECT is 1; when `TEAM_JOB` is 1, of every shard, each as a team).
   */
  LOSS: 1,
  /**
   * Reduce the owned gradient blocks of [BLOCK_FROM, BLOCK_TO) over shards [SHARD_FROM,
   * SHARD_TO) in shard order (onto `grad` when ONTO), with their sums of squares (only these
   * when DIRECT).
   */
  REDUCE: 2,
  /** Clip and apply the optimizer to the owned gradient blocks. */
  UPDATE: 3,
  /** Caption chunks of images of the shared features, taking each from `CTRL.NEXT_CHUNK`. */
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
  /** A sampling job's decoding options, in `DECODE_OPTION_NAMES` order from here. */
  DECODE: 2 + OPTIM_HYPERPARAMS.length,
  /** The scalar array's length. */
  WORDS: 2 + OPTIM_HYPERPARAMS.length + DECODE_OPTION_NAMES.length,
} as const;

/** How each decoding option is one float64: numbers as they are, choices by index, flags 0/1. */
const DECODE_CHOICES: Partial<Record<keyof DecodeOptions, readonly string[]>> = {
  method: DECODE_METHODS,
  lengthPenalty: LENGTH_PENALTIES,
};
/** The decoding options that are flags. */
const DECODE_FLAGS: ReadonlySet<string> = new Set(DECODE_FLAG_NAMES);

/**
 * Writes a sampling job's decoding options into the step scalars (slots from `SC.DECODE`).
 * @param scalars The shared step scalars.
 * @param options Resolved decoding options.
 *
 * @example
 * ```ts
 * import { readDecodeOptions, SC, writeDecodeOptions } from "./pool_protocol.ts";
 * import { resolveDecodeOptions } from "../model/decode_options.ts";
 * const scalars = new Float64Array(SC.WORDS);
 * writeDecodeOptions(scalars, resolveDecodeOptions({ method: "sample", topP: 0.9, blockTrigrams: true }));
 * console.log(readDecodeOptions(scalars).topP); // 0.9
 * ```
 */
export function writeDecodeOptions(scalars: Float64Array, options: DecodeOptions): void {
  DECODE_OPTION_NAMES.forEach((name, i) => {
    const value = options[name], choices = DECODE_CHOICES[name];
    scalars[SC.DECODE + i] = choices ? choices.indexOf(value as string) : Number(value);
  });
}

/**
 * Reads the decoding options {@linkcode writeDecodeOptions} wrote.
 * @param scalars The shared step scalars.
 * @returns The options.
 *
 * @example
 * ```ts
 * import { readDecodeOptions, SC, writeDecodeOptions } from "./pool_protocol.ts";
 * import { resolveDecodeOptions } from "../model/decode_options.ts";
 * const scalars = new Float64Array(SC.WORDS);
 * writeDecodeOptions(scalars, resolveDecodeOptions({ beamSize: 3, lengthPenalty: "gnmt" }));
 * console.log(readDecodeOptions(scalars).lengthPenalty); // gnmt
 * ```
 */
export function readDecodeOptions(scalars: Float64Array): DecodeOptions {
  const out: Record<string, unknown> = {};
  DECODE_OPTION_NAMES.forEach((name, i) => {
    const x = scalars[SC.DECODE + i], choices = DECODE_CHOICES[name];
    out[name] = choices ? choices[x] : DECODE_FLAGS.has(name) ? x === 1 : x;
  });
  return out as unknown as DecodeOptions;
}

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
  /** The generation of the last job each worker finished, (workers,): the watchdog's view. */
  finished: Int32Array;
  /** 1 while a worker waits at a team step's barrier, (workers,): whom the watchdog blames. */
  teamWaiting: Int32Array;
  /** The step scalars (slots {@linkcode SC}). */
  scalars: Float64Array;
  /**
   * The team's shared work memory, when the model's step can run as a team (the recurrent
   * models): in a loss job with `CTRL.TEAM_JOB` 1 every worker then computes every shard's step
   * together with the others, at the barrier of `CTRL.TEAM_COUNT`; otherwise each worker
   * computes whole shards of its own.
   */
  workspace?: WebAssembly.Memory;
  /**
   * The WebAssembly memories that `params` and `grad` live in, when they do (see
   * `layers/kernels/wasm_arrays.ts`): the worker's optimizer update then runs as SIMD on them.
   */
  memories?: { params?: WebAssembly.Memory; grad?: WebAssembly.Memory };
}

/** A message that replaces shared buffers (sent with `CMD.YIELD`); absent fields stay. */
export interface WorkerBuffers {
  /** "buffers". */
  type: "buffers";
  /** The optimizer's update rule. */
  rule?: UpdateRule;
  /** The optimizer's moment buffers. */
  moments?: FloatArray[];
  /** The WebAssembly memory of each moment buffer, where it lives in one (sent with them). */
  momentMemories?: (WebAssembly.Memory | undefined)[];
  /** The shared batch captions, int32, capacity ≥ N (T + 1). */
  captions?: Int32Array;
  /** The shared batch features, in the model's dtype, capacity ≥ N D. */
  features?: FloatArray;
  /** The shared batch's per-caption weights, capacity ≥ N. */
  weights?: Float64Array;
  /** Sampling output: captions, int32, capacity ≥ N m maxLength (m captions per image). */
  sampleCaptions?: Int32Array;
  /** Sampling output: log-probabilities, capacity ≥ N m. */
  sampleLogProbs?: Float64Array;
}

/** What a compute worker posts back. */
export type WorkerReply =
  | { type: "ready"; index: number }
  | { type: "ack"; index: number }
  | { type: "error"; index: number; phase: string; name: string; message: string; stack: string };
