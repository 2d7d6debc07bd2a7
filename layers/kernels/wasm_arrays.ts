/**
 * Shared arrays that live in a WebAssembly memory of their own, so that SIMD kernels can work
 * on them where they are (the optimizer's update on the parameters, gradient and moments)
 * while workers share them as any SharedArrayBuffer. Each thread keeps a registry from an
 * array's buffer to its memory: {@linkcode sharedWasmArray} fills it where the array is made,
 * {@linkcode adoptWasmMemory} where a worker receives the array and its memory.
 * @module
 */
import { allocArray, type ArrayOf, type FloatDType } from "../tensor.ts";

const PAGE = 65536;
/** Past this, an array is a plain SharedArrayBuffer (wasm32 memories hold at most 4 GiB). */
const MAX_BYTES = 2 ** 31;
const memories = new WeakMap<ArrayBufferLike, WebAssembly.Memory>();

/**
 * A zeroed SharedArrayBuffer-backed array in a shared WebAssembly memory of its own (a plain
 * SharedArrayBuffer past 2 GiB, where no kernel needs it).
 * @param dtype The element type.
 * @param length The element count.
 * @returns The array, at byte offset 0 of its memory.
 *
 * @example
 * ```ts
 * import { sharedWasmArray, wasmMemoryOf } from "./wasm_arrays.ts";
 * const m = sharedWasmArray("float32", 10);
 * console.log(m.buffer instanceof SharedArrayBuffer, wasmMemoryOf(m) !== undefined); // true true
 * ```
 */
export function sharedWasmArray<D extends FloatDType>(dtype: D, length: number): ArrayOf<D> {
  const bytes = length * (dtype === "float32" ? 4 : 8);
  if (bytes > MAX_BYTES) return allocArray(dtype, length, true);
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const buffer = memory.buffer as unknown as SharedArrayBuffer;
  memories.set(buffer, memory);
  return (dtype === "float32"
    ? new Float32Array(buffer, 0, length)
    : new Float64Array(buffer, 0, length)) as ArrayOf<D>;
}

/**
 * The WebAssembly memory an array lives in, if this thread knows it.
 * @param array Any typed array.
 * @returns Its memory, or undefined.
 *
 * @example
 * ```ts
 * import { wasmMemoryOf } from "./wasm_arrays.ts";
 * console.log(wasmMemoryOf(new Float32Array(4))); // undefined
 * ```
 */
export function wasmMemoryOf(array: ArrayBufferView): WebAssembly.Memory | undefined {
  return memories.get(array.buffer);
}

/**
 * Records, in this thread, that an array received from another thread lives in `memory`
 * (posted beside it: the two arrive as different objects over the same memory).
 * @param array The array, SharedArrayBuffer-backed.
 * @param memory Its memory.
 * @throws {RangeError} When the two cannot be the same memory (other sizes, not shared).
 *
 * @example
 * ```ts
 * import { adoptWasmMemory, sharedWasmArray, wasmMemoryOf } from "./wasm_arrays.ts";
 * const a = sharedWasmArray("float64", 3);
 * const view = new Float64Array(a.buffer, 8, 2);
 * adoptWasmMemory(view, wasmMemoryOf(a)!);
 * console.log(wasmMemoryOf(view) === wasmMemoryOf(a)); // true
 * ```
 */
export function adoptWasmMemory(array: ArrayBufferView, memory: WebAssembly.Memory): void {
  const buffer = array.buffer;
  if (
    !(buffer instanceof SharedArrayBuffer) ||
    buffer.byteLength !== memory.buffer.byteLength
  ) {
    throw new RangeError(
      "Cannot adopt a WebAssembly memory: the array is not a shared view of a memory of its size",
    );
  }
  memories.set(buffer, memory);
}

/**
 * Records, in this thread, the arrays over a memory's current buffer as living in it (an arena
 * that carves work arrays from its memory calls this after each growth).
 * @param memory A shared or unshared WebAssembly memory.
 *
 * @example
 * ```ts
 * import { registerWasmMemory, wasmMemoryOf } from "./wasm_arrays.ts";
 * const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
 * registerWasmMemory(memory);
 * console.log(wasmMemoryOf(new Float32Array(memory.buffer)) === memory); // true
 * ```
 */
export function registerWasmMemory(memory: WebAssembly.Memory): void {
  memories.set(memory.buffer, memory);
}
