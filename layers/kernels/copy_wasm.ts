/**
 * Column blocks of a row-major matrix copied into a contiguous matrix, or a contiguous matrix
 * added onto a column block, between arrays that may live in different WebAssembly memories
 * (the parameters' and a step's work arrays), as SIMD loads and stores: a JavaScript loop over
 * the same 4 MiB (Wh of an LSTM with H = 512) costs about as much as the contiguous copy saves
 * the recurrent GEMMs.
 * @module
 */
import { assembleImporting, type Code, Func, I32, inMemory, op, uleb } from "./wasm_asm.ts";
import { wasmMemoryOf } from "./wasm_arrays.ts";
import type { FloatArray } from "../tensor.ts";

/** Any memory fits an import of these limits (shared or not): from 0 pages to wasm32's most. */
const limits = (shared: boolean) =>
  shared ? { minPages: 0, maxPages: 65536 } : { minPages: 0, shared };
const isShared = (m: WebAssembly.Memory) => m.buffer instanceof SharedArrayBuffer;

const simd = (opcode: number, ...args: Code[]): Code => [...args.flat(), 0xfd, ...uleb(opcode)];

/**
 * f(src, srcStride, dst, dstStride, rowBytes, rows): byte addresses and strides, rowBytes a
 * multiple of 16; `each` is the code for one v128 of a row, given its source (memory 0) and
 * destination (memory 1) addresses.
 */
function rowsFunc(each: (src: Code, dst: Code) => Code): Func {
  const f = new Func([I32, I32, I32, I32, I32, I32]);
  const [SRC, SSTRIDE, DST, DSTRIDE, BYTES, ROWS] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32), b = f.local(I32), s = f.local(I32), d = f.local(I32), L = op.get;
  f.body = op.forLoop(r, op.i32(0), L(ROWS), op.i32(1), [
    ...op.set(s, op.add(L(SRC), op.mul(L(r), L(SSTRIDE)))),
    ...op.set(d, op.add(L(DST), op.mul(L(r), L(DSTRIDE)))),
    ...op.forLoop(b, op.i32(0), L(BYTES), op.i32(16), each(op.add(L(s), L(b)), op.add(L(d), L(b)))),
  ]);
  return f;
}

// copy: rows copied as v128 (a memory.copy per row costs a runtime call each).
const copyFunc = () =>
  rowsFunc((src, dst) => inMemory.v128Store(1, dst, inMemory.v128Load(0, src)));

// add32 / add64: dst += src, as f32x4 or f64x2 lanes; each element one addition, as in a loop.
const addFunc = (addOpcode: number) =>
  rowsFunc((src, dst) =>
    inMemory.v128Store(
      1,
      dst,
      simd(addOpcode, inMemory.v128Load(1, dst), inMemory.v128Load(0, src)),
    )
  );

type CopyFn = (
  src: number,
  srcStride: number,
  dst: number,
  dstStride: number,
  rowBytes: number,
  rows: number,
) => void;

const modules = new Map<string, WebAssembly.Module>();
/** The kernels of one (source, destination) pair of memories (all with CopyFn's arguments). */
interface BlockFns {
  copy: CopyFn;
  add32: CopyFn;
  add64: CopyFn;
}
const instances: { src: WebAssembly.Memory; dst: WebAssembly.Memory; fns: BlockFns }[] = [];

function kernelsFor(src: WebAssembly.Memory, dst: WebAssembly.Memory): BlockFns {
  const hit = instances.find((x) => x.src === src && x.dst === dst);
  if (hit) return hit.fns;
  const kinds = [isShared(src), isShared(dst)], key = kinds.join();
  let module = modules.get(key);
  if (!module) {
    const funcs = [copyFunc(), addFunc(0xe4), addFunc(0xf0)]; // f32x4.add, f64x2.add
    module = new WebAssembly.Module(
      assembleImporting(funcs, { copy: 0, add32: 1, add64: 2 }, kinds.map(limits)),
    );
    modules.set(key, module);
  }
  const ex = new WebAssembly.Instance(module, { env: { m0: src, m1: dst } }).exports;
  const fns = ex as unknown as BlockFns;
  instances.unshift({ src, dst, fns });
  if (instances.length > 4) instances.pop();
  return fns;
}

/**
 * Copies columns [j0, j0 + width) of the (rows × ld) row-major matrix at `src` into `dst` as a
 * contiguous (rows × width) matrix from `dstOffset`.
 * @param src The matrix.
 * @param ld Its row stride in elements.
 * @param rows Its rows.
 * @param j0 The first column to copy.
 * @param width The columns to copy.
 * @param dst The destination (of src's element type for the WebAssembly copy).
 * @param dstOffset Where the block starts in dst.
 *
 * @example
 * ```ts
 * import { copyColumnBlock } from "./copy_wasm.ts";
 * const m = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2 × 3
 * const out = new Float32Array(4);
 * copyColumnBlock(m, 3, 2, 1, 2, out, 0);
 * console.log(out); // [2, 3, 5, 6]
 * ```
 */
export function copyColumnBlock(
  src: FloatArray,
  ld: number,
  rows: number,
  j0: number,
  width: number,
  dst: FloatArray,
  dstOffset: number,
): void {
  const from = wasmMemoryOf(src), to = wasmMemoryOf(dst);
  const rowBytes = width * src.BYTES_PER_ELEMENT;
  if (
    from !== undefined && to !== undefined && src.constructor === dst.constructor &&
    rowBytes % 16 === 0
  ) {
    const size = src.BYTES_PER_ELEMENT;
    kernelsFor(from, to).copy(
      src.byteOffset + j0 * size,
      ld * size,
      dst.byteOffset + dstOffset * size,
      width * size,
      width * size,
      rows,
    );
    return;
  }
  for (let r = 0, o = dstOffset; r < rows; r++) {
    for (let i = r * ld + j0, end = i + width; i < end; i++) dst[o++] = src[i];
  }
}

/**
 * Adds the contiguous (rows × width) matrix at `src[srcOffset]` onto the column block of the
 * row-major matrix at `dst[dstOffset]` whose rows are `ld` elements apart: dst[dstOffset + r·ld
 * + j] += src[srcOffset + r·width + j], one addition each, so the same bits as the plain loop.
 * (The training step sums the gradient rows of each distinct word with it.)
 * @param src The contiguous matrix.
 * @param srcOffset Where it starts in src.
 * @param rows Its rows.
 * @param width Its columns.
 * @param dst The matrix added onto (of src's element type for the WebAssembly loop).
 * @param ld dst's row stride in elements.
 * @param dstOffset Where the block starts in dst.
 *
 * @example
 * ```ts
 * import { addColumnBlock } from "./copy_wasm.ts";
 * const m = new Float32Array(6); // 2 × 3
 * addColumnBlock(Float32Array.from([1, 2, 3, 4]), 0, 2, 2, m, 3, 1);
 * console.log(m); // [0, 1, 2, 0, 3, 4]
 * ```
 */
export function addColumnBlock(
  src: FloatArray,
  srcOffset: number,
  rows: number,
  width: number,
  dst: FloatArray,
  ld: number,
  dstOffset: number,
): void {
  const from = wasmMemoryOf(src), to = wasmMemoryOf(dst);
  const size = src.BYTES_PER_ELEMENT, rowBytes = width * size;
  if (
    from !== undefined && to !== undefined && src.constructor === dst.constructor &&
    rowBytes % 16 === 0
  ) {
    const fns = kernelsFor(from, to);
    (size === 4 ? fns.add32 : fns.add64)(
      src.byteOffset + srcOffset * size,
      rowBytes,
      dst.byteOffset + dstOffset * size,
      ld * size,
      rowBytes,
      rows,
    );
    return;
  }
  for (let r = 0, i = srcOffset; r < rows; r++) {
    for (let o = dstOffset + r * ld, end = o + width; o < end; o++) dst[o] += src[i++];
  }
}
