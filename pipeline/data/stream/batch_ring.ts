/**
 * A ring of minibatch slots in SharedArrayBuffers, filled ahead of compute by the loader
 * worker and read in place by the main thread: no per-batch copies or structured cloning.
 * A small Int32Array control array coordinates the two sides with Atomics.
 *
 * Slot layout (S slots, B batch size, T = 17 tokens, D feature dimension):
 * ```
 * captions     int32   (S, B, T)
 * features     float32 (S, B, D)
 * imageIdxs    int32   (S, B)      the feature row of each caption
 * captionIdxs  int32   (S, B)      the caption row drawn
 * control      int32   HEADER + S * SLOT_WORDS:
 *   header:  [STOP, ERROR, PRODUCED, unused ...]
 *   slot k:  [STATUS, SEQ, STATE_BEFORE x4, STATE_AFTER x4, READS, READ_MICROS, ...]
 * ```
 * A slot's status cycles FREE -> (worker fills) READY -> (consumer takes, then releases) FREE.
 * @module
 */

/** The slot is free: the worker may fill it. */
export const SLOT_FREE = 0;
/** The slot holds a batch the consumer has not released yet. */
export const SLOT_READY = 2;

/** Header word: non-zero asks the worker to stop. */
export const CTRL_STOP = 0;
/** Header word: non-zero when the worker failed. */
export const CTRL_ERROR = 1;
/** Header word: how many batches the worker has produced. */
export const CTRL_PRODUCED = 2;
/** Words in the control header. */
export const HEADER_WORDS = 8;
/** Control words per slot. */
export const SLOT_WORDS = 16;
/** Offsets of a slot's control words. */
export const SLOT = {
  status: 0,
  seq: 1,
  stateBefore: 2,
  stateAfter: 6,
  reads: 10,
  readMicros: 11,
} as const;

/** The shared buffers of a ring, as sent once to the worker. */
export interface RingBuffers {
  /** Slot count. */
  slots: number;
  /** Captions per batch. */
  batchSize: number;
  /** Tokens per caption. */
  captionLength: number;
  /** Feature dimension. */
  featureDim: number;
  /** int32 (S, B, T). */
  captions: SharedArrayBuffer;
  /** float32 (S, B, D). */
  features: SharedArrayBuffer;
  /** int32 (S, B). */
  imageIdxs: SharedArrayBuffer;
  /** int32 (S, B). */
  captionIdxs: SharedArrayBuffer;
  /** int32 control words. */
  control: SharedArrayBuffer;
}

/**
 * A ring of shared batch slots, with the Atomics protocol of both sides.
 *
 * @example
 * ```ts
 * import { BatchRing, SLOT_READY } from "./batch_ring.ts";
 * const ring = BatchRing.create(2, 4, 17, 512);
 * ring.captions(1)[0] = 1;
 * ring.publish(1, 0, [1, 2, 3, 4], [5, 6, 7, 8], 3, 100);
 * const other = BatchRing.fromBuffers(ring.buffers); // as the worker sees it
 * console.assert(other.status(1) === SLOT_READY && other.captions(1)[0] === 1);
 * ```
 */
export class BatchRing {
  /** The shared buffers (post them to the worker once). */
  readonly buffers: RingBuffers;
  /** The control words. */
  readonly control: Int32Array;
  #captions: Int32Array;
  #features: Float32Array;
  #imageIdxs: Int32Array;
  #captionIdxs: Int32Array;

  private constructor(buffers: RingBuffers) {
    this.buffers = buffers;
    this.control = new Int32Array(buffers.control);
    this.#captions = new Int32Array(buffers.captions);
    this.#features = new Float32Array(buffers.features);
    this.#imageIdxs = new Int32Array(buffers.imageIdxs);
    this.#captionIdxs = new Int32Array(buffers.captionIdxs);
  }

  /**
   * Allocates a ring.
   * @param slots Slot count (prefetch depth + the batch being used), at least 2.
   * @param batchSize Captions per batch.
   * @param captionLength Tokens per caption (17).
   * @param featureDim Feature dimension.
   * @returns The ring.
   *
   * @example
   * ```ts
   * import { BatchRing } from "./batch_ring.ts";
   * console.assert(BatchRing.create(3, 100, 17, 4096).features(2).length === 409600);
   * ```
   */
  static create(
    slots: number,
    batchSize: number,
    captionLength: number,
    featureDim: number,
  ): BatchRing {
    if (!Number.isInteger(slots) || slots < 2) {
      throw new RangeError(`Cannot create batch ring: slots must be an integer >= 2, got ${slots}`);
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(
        `Cannot create batch ring: batchSize must be a positive integer, got ${batchSize}`,
      );
    }
    const sab = (n: number) => new SharedArrayBuffer(n * 4);
    return new BatchRing({
      slots,
      batchSize,
      captionLength,
      featureDim,
      captions: sab(slots * batchSize * captionLength),
      features: sab(slots * batchSize * featureDim),
      imageIdxs: sab(slots * batchSize),
      captionIdxs: sab(slots * batchSize),
      control: sab(HEADER_WORDS + slots * SLOT_WORDS),
    });
  }

  /**
   * Wraps buffers received from the other side.
   * @param buffers The buffers of a ring made by {@linkcode BatchRing.create}.
   * @returns A ring over the same memory.
   *
   * @example
   * ```ts
   * import { BatchRing } from "./batch_ring.ts";
   * const a = BatchRing.create(2, 1, 17, 8);
   * console.assert(BatchRing.fromBuffers(a.buffers).control.buffer === a.control.buffer);
   * ```
   */
  static fromBuffers(buffers: RingBuffers): BatchRing {
    return new BatchRing(buffers);
  }

  /** The number of slots. */
  get slots(): number {
    return this.buffers.slots;
  }

  /**
   * The index of a slot's control word.
   * @param slot The slot.
   * @param word An offset from {@linkcode SLOT}.
   * @returns The index into {@linkcode BatchRing.control}.
   */
  word(slot: number, word: number): number {
    return HEADER_WORDS + slot * SLOT_WORDS + word;
  }

  /**
   * The captions of a slot (a view into shared memory).
   * @param slot The slot.
   * @returns (B, T) int32, row-major.
   */
  captions(slot: number): Int32Array {
    const n = this.buffers.batchSize * this.buffers.captionLength;
    return this.#captions.subarray(slot * n, (slot + 1) * n);
  }

  /**
   * The features of a slot (a view into shared memory).
   * @param slot The slot.
   * @returns (B, D) float32, row-major.
   */
  features(slot: number): Float32Array {
    const n = this.buffers.batchSize * this.buffers.featureDim;
    return this.#features.subarray(slot * n, (slot + 1) * n);
  }

  /**
   * The image index of each caption of a slot.
   * @param slot The slot.
   * @returns (B,) int32.
   */
  imageIdxs(slot: number): Int32Array {
    const n = this.buffers.batchSize;
    return this.#imageIdxs.subarray(slot * n, (slot + 1) * n);
  }

  /**
   * The caption row of each entry of a slot.
   * @param slot The slot.
   * @returns (B,) int32.
   */
  captionIdxs(slot: number): Int32Array {
    const n = this.buffers.batchSize;
    return this.#captionIdxs.subarray(slot * n, (slot + 1) * n);
  }

  /**
   * A slot's status (atomic load).
   * @param slot The slot.
   * @returns SLOT_FREE or SLOT_READY.
   */
  status(slot: number): number {
    return Atomics.load(this.control, this.word(slot, SLOT.status));
  }

  /**
   * Worker side: blocks until a slot is free or a stop is requested.
   * @param slot The slot.
   * @returns False when the ring is stopping.
   */
  waitFree(slot: number): boolean {
    const i = this.word(slot, SLOT.status);
    for (;;) {
      if (Atomics.load(this.control, CTRL_STOP)) return false;
      const s = Atomics.load(this.control, i);
      if (s === SLOT_FREE) return true;
      Atomics.wait(this.control, i, s, 1000);
    }
  }

  /**
   * Worker side: marks a filled slot ready, with its sequence number, generator states and
   * read statistics, and wakes the consumer.
   * @param slot The slot.
   * @param seq The batch number.
   * @param before The generator state before the batch was drawn.
   * @param after The generator state after.
   * @param reads Hyperslab reads the batch took.
   * @param micros Microseconds spent reading.
   */
  publish(
    slot: number,
    seq: number,
    before: readonly number[],
    after: readonly number[],
    reads: number,
    micros: number,
  ): void {
    const c = this.control;
    c[this.word(slot, SLOT.seq)] = seq;
    for (let i = 0; i < 4; i++) {
      c[this.word(slot, SLOT.stateBefore + i)] = before[i] | 0;
      c[this.word(slot, SLOT.stateAfter + i)] = after[i] | 0;
    }
    c[this.word(slot, SLOT.reads)] = reads;
    c[this.word(slot, SLOT.readMicros)] = Math.min(micros, 0x7fffffff) | 0;
    Atomics.add(c, CTRL_PRODUCED, 1);
    Atomics.store(c, this.word(slot, SLOT.status), SLOT_READY);
    Atomics.notify(c, this.word(slot, SLOT.status));
  }

  /**
   * Consumer side: waits (without blocking the thread) until a slot is ready, the ring is
   * stopping, or a worker error is flagged.
   * @param slot The slot.
   * @returns True when the slot is ready, false when stopping or failed.
   */
  async waitReady(slot: number): Promise<boolean> {
    const i = this.word(slot, SLOT.status);
    for (;;) {
      if (Atomics.load(this.control, CTRL_STOP) || Atomics.load(this.control, CTRL_ERROR)) {
        return false;
      }
      const s = Atomics.load(this.control, i);
      if (s === SLOT_READY) return true;
      const r = Atomics.waitAsync(this.control, i, s, 1000);
      if (r.async) await r.value;
    }
  }

  /**
   * Consumer side: frees a slot for the worker to refill, and wakes it.
   * @param slot The slot.
   */
  release(slot: number): void {
    const i = this.word(slot, SLOT.status);
    Atomics.store(this.control, i, SLOT_FREE);
    Atomics.notify(this.control, i);
  }

  /**
   * Either side: sets a header flag (stop or error) and wakes every waiter.
   * @param word CTRL_STOP or CTRL_ERROR.
   */
  signal(word: number): void {
    Atomics.store(this.control, word, 1);
    for (let s = 0; s < this.slots; s++) Atomics.notify(this.control, this.word(s, SLOT.status));
  }
}
