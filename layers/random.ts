/**
 * A seeded, reproducible random generator (xoshiro128**), whose whole state is
 * four 32-bit words so a checkpoint can save it and a resumed run continue exactly.
 * @module
 */

/** The serialisable state of a {@linkcode Rng}: four unsigned 32-bit words. */
export type RngState = [number, number, number, number];

/**
 * A seeded pseudo-random generator (xoshiro128**): uniform floats, integers and
 * standard normals, reproducible for a seed on every platform.
 *
 * @example Draw reproducible numbers
 * ```ts
 * import { Rng } from "./random.ts";
 * const a = new Rng(231), b = new Rng(231);
 * console.assert(a.randn() === b.randn());
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);

  /**
   * Creates a generator from an integer seed.
   * @param seed Any integer; equal seeds give equal streams.
   */
  constructor(seed = 0) {
    // splitmix32 expands the seed so that nearby seeds give unrelated streams.
    let x = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /**
   * The next unsigned 32-bit integer of the stream.
   * @returns An integer in [0, 2^32).
   */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * A uniform float in [0, 1) with 53 random bits.
   * @returns A number in [0, 1).
   */
  random(): number {
    const hi = this.nextUint32() >>> 5, lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * A uniform integer in [0, n).
   * @param n The exclusive upper bound, a positive integer.
   * @returns An integer in [0, n).
   */
  randint(n: number): number {
    return Math.floor(this.random() * n);
  }

  /**
   * A standard normal sample (Box-Muller, one of the pair, so the state stays four words).
   * @returns A sample of N(0, 1).
   */
  randn(): number {
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Shuffles an array in place (Fisher-Yates).
   * @param items The array to shuffle.
   * @returns The same array, shuffled.
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.randint(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /**
   * The generator's state, to save in a checkpoint.
   * @returns Four unsigned 32-bit words.
   */
  getState(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /**
   * Restores a state saved by {@linkcode Rng.getState}.
   * @param state Four unsigned 32-bit words, not all zero.
   */
  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.every((w) => w === 0)) {
      throw new RangeError(`Cannot restore generator state: expected 4 words not all zero`);
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
