/**
 * The tensor core: a row-major n-d array over a typed array, and its dtypes.
 * @module
 */
import { Rng } from "./random.ts";

/** Element types a tensor can hold. */
export type DType = "float32" | "float64" | "int32";
/** The floating-point element types; layers are generic over these. */
export type FloatDType = "float32" | "float64";
/** The typed array behind a floating-point tensor. */
export type FloatArray = Float32Array | Float64Array;
/** The typed array behind a tensor of dtype `D`. */
export type ArrayOf<D extends DType> = D extends "float32" ? Float32Array
  : D extends "float64" ? Float64Array
  : Int32Array;

const CONSTRUCTORS = { float32: Float32Array, float64: Float64Array, int32: Int32Array } as const;

/**
 * Allocates a zeroed typed array of a dtype.
 * @param dtype The element type.
 * @param length The number of elements.
 * @param shared Back it with a SharedArrayBuffer (for worker-shared state).
 * @returns The new typed array.
 *
 * @example
 * ```ts
 * import { allocArray } from "./tensor.ts";
 * console.assert(allocArray("float32", 3).length === 3);
 * ```
 */
export function allocArray<D extends DType>(dtype: D, length: number, shared = false): ArrayOf<D> {
  const ctor = CONSTRUCTORS[dtype];
  if (!ctor) throw new TypeError(`Cannot allocate array: unknown dtype "${dtype}"`);
  if (!shared) return new ctor(length) as ArrayOf<D>;
  const buffer = new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT);
  return new (ctor as unknown as new (b: ArrayBufferLike) => ArrayOf<D>)(buffer);
}

/**
 * Allocates a zeroed float array of a float dtype (unshared).
 * @param dtype "float32" or "float64".
 * @param length The number of elements.
 * @returns The new array.
 *
 * @example
 * ```ts
 * import { allocFloat } from "./tensor.ts";
 * console.assert(allocFloat("float64", 2) instanceof Float64Array);
 * ```
 */
export function allocFloat(dtype: FloatDType, length: number): FloatArray {
  return dtype === "float32" ? new Float32Array(length) : new Float64Array(length);
}

/**
 * The dtype of a typed array.
 * @param data A Float32Array, Float64Array or Int32Array.
 * @returns Its dtype name.
 *
 * @example
 * ```ts
 * import { dtypeOf } from "./tensor.ts";
 * console.assert(dtypeOf(new Float64Array(1)) === "float64");
 * ```
 */
export function dtypeOf(data: Float32Array | Float64Array | Int32Array): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  throw new TypeError("Cannot infer dtype: expected a Float32Array, Float64Array or Int32Array");
}

/**
 * A row-major n-d array: a `shape` and a flat typed array `data`.
 *
 * @example Build inputs the way the exercise does
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * const x = Tensor.linspace(-0.4, 0.7, [3, 10]); // numpy.linspace(-0.4, 0.7, 30).reshape(3, 10)
 * console.assert(x.shape[1] === 10 && x.data[29] === 0.7);
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** The size of each dimension, outermost first. */
  readonly shape: readonly number[];
  /** The elements in row-major order. */
  readonly data: ArrayOf<D>;
  /** The element type. */
  readonly dtype: D;

  /**
   * Wraps a typed array as a tensor of the given shape (no copy).
   * @param data The elements, row-major.
   * @param shape The dimensions; their product must equal `data.length`.
   */
  constructor(data: ArrayOf<D>, shape: readonly number[]) {
    const size = shapeSize(shape);
    if (size !== data.length) {
      throw new RangeError(
        `Cannot make tensor: shape [${shape}] holds ${size} elements, data has ${data.length}`,
      );
    }
    this.data = data;
    this.shape = [...shape];
    this.dtype = dtypeOf(data) as D;
  }

  /** The number of elements. */
  get size(): number {
    return this.data.length;
  }

  /**
   * A zero-filled tensor.
   * @param shape The dimensions.
   * @param dtype The element type (default float64).
   * @returns The new tensor.
   *
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * console.assert(Tensor.zeros([2, 3], "float32").size === 6);
   * ```
   */
  static zeros<D extends DType = "float64">(
    shape: readonly number[],
    dtype: D = "float64" as D,
  ): Tensor<D> {
    return new Tensor(allocArray(dtype, shapeSize(shape)), shape);
  }

  /**
   * A tensor holding the given values, row-major.
   * @param values The elements.
   * @param shape The dimensions (default: one dimension of `values.length`).
   * @param dtype The element type (default float64).
   * @returns The new tensor.
   *
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const y = Tensor.fromValues([0, 3, 1, 2], [2, 2], "int32");
   * console.assert(y.data[1] === 3);
   * ```
   */
  static fromValues<D extends DType = "float64">(
    values: ArrayLike<number>,
    shape: readonly number[] = [values.length],
    dtype: D = "float64" as D,
  ): Tensor<D> {
    const data = allocArray(dtype, values.length);
    for (let i = 0; i < values.length; i++) data[i] = values[i];
    return new Tensor(data, shape);
  }

  /**
   * numpy's `linspace(start, stop, num=prod(shape)).reshape(shape)`: evenly spaced,
   * both endpoints included.
   * @param start The first value.
   * @param stop The last value.
   * @param shape The dimensions.
   * @param dtype The element type (default float64).
   * @returns The new tensor.
   *
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const b = Tensor.linspace(-0.2, 0.4, [4]);
   * console.assert(Math.abs(b.data[1] - 0) < 1e-15);
   * ```
   */
  static linspace<D extends DType = "float64">(
    start: number,
    stop: number,
    shape: readonly number[],
    dtype: D = "float64" as D,
  ): Tensor<D> {
    const num = shapeSize(shape);
    const data = allocArray(dtype, num);
    if (num === 1) data[0] = start;
    if (num > 1) {
      // numpy computes start + i * step and pins the last element to stop.
      const step = (stop - start) / (num - 1);
      for (let i = 0; i < num; i++) data[i] = start + i * step;
      data[num - 1] = stop;
    }
    return new Tensor(data, shape);
  }

  /**
   * Standard normal samples from a seeded generator.
   * @param shape The dimensions.
   * @param rng A generator, or an integer seed for a new one.
   * @param dtype The element type (default float64).
   * @returns The new tensor.
   *
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const a = Tensor.randn([2, 2], 1), b = Tensor.randn([2, 2], 1);
   * console.assert(a.data[3] === b.data[3]);
   * ```
   */
  static randn<D extends FloatDType = "float64">(
    shape: readonly number[],
    rng: Rng | number,
    dtype: D = "float64" as D,
  ): Tensor<D> {
    const gen = typeof rng === "number" ? new Rng(rng) : rng;
    const data = allocArray(dtype, shapeSize(shape));
    for (let i = 0; i < data.length; i++) data[i] = gen.randn();
    return new Tensor(data, shape);
  }

  /**
   * The same elements under another shape (shares the data, no copy).
   * @param shape The new dimensions, of the same total size.
   * @returns A tensor view.
   */
  reshape(shape: readonly number[]): Tensor<D> {
    return new Tensor(this.data, shape);
  }

  /**
   * A copy of this tensor with another element type.
   * @param dtype The new element type.
   * @returns The converted copy.
   */
  astype<E extends DType>(dtype: E): Tensor<E> {
    const data = allocArray(dtype, this.size);
    if (dtype === "int32") {
      for (let i = 0; i < data.length; i++) data[i] = Math.trunc(this.data[i]);
    } else data.set(this.data);
    return new Tensor(data, this.shape);
  }

  /**
   * A deep copy.
   * @returns A tensor with its own data.
   */
  clone(): Tensor<D> {
    return new Tensor(this.data.slice() as ArrayOf<D>, this.shape);
  }
}

/**
 * The number of elements of a shape.
 * @param shape The dimensions.
 * @returns Their product (1 for a scalar shape `[]`).
 *
 * @example
 * ```ts
 * import { shapeSize } from "./tensor.ts";
 * console.assert(shapeSize([2, 3, 4]) === 24);
 * ```
 */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`Cannot use shape [${shape}]: dimensions must be non-negative integers`);
    }
    size *= d;
  }
  return size;
}

/**
 * Rows of a tensor by index (numpy's `x[idx]` on the first axis): the one row gather that
 * minibatches, evaluation and the loaders use.
 * @param x The tensor, rows first.
 * @param idx The row indices.
 * @param out Where to write them (default: a new tensor of `idx.length` rows).
 * @returns `out`, holding row `idx[i]` of `x` as its row i.
 * @throws {RangeError} When an index is not a row of `x`.
 *
 * @example
 * ```ts
 * import { gatherRows, Tensor } from "./tensor.ts";
 * const t = Tensor.fromValues([1, 2, 3, 4, 5, 6], [3, 2], "int32");
 * console.assert(gatherRows(t, [2, 0]).data[0] === 5);
 * ```
 */
export function gatherRows<D extends DType>(
  x: Tensor<D>,
  idx: ArrayLike<number>,
  out: Tensor<D> = Tensor.zeros([idx.length, ...x.shape.slice(1)], x.dtype),
): Tensor<D> {
  const row = shapeSize(x.shape.slice(1)), rows = x.shape[0];
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < rows)) {
      throw new RangeError(`Cannot gather row ${r}: the tensor has ${rows} rows`);
    }
    out.data.set(x.data.subarray(r * row, (r + 1) * row), i * row);
  }
  return out;
}
