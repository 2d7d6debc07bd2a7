/**
 * Sums of squares of several blocks of a float32 array at once, in WebAssembly SIMD: the
 * gradient norm's per-block sums (`workers/reduce.ts`). Each block's sum is one float64 chain
 * in index order, Σ g[i]² as `s += g[i] * g[i]` adds it — so the same bits — but four blocks'
 * chains run side by side in the lanes of two f64x2 accumulators. A JavaScript loop over one
 * block waits on its one chain's additions (about 1.3 ns an element); four chains hide that.
 * @module
 */
import { assembleImporting, type Code, Func, I32, inMemory, op, uleb, V128 } from "./wasm_asm.ts";
import { wasmMemoryOf } from "./wasm_arrays.ts";

const simd = (opcode: number, ...args: Code[]): Code => [...args.flat(), 0xfd, ...uleb(opcode)];
const f64x2 = {
  add: (a: Code, b: Code): Code => simd(0xf0, a, b),
  mul: (a: Code, b: Code): Code => simd(0xf2, a, b),
  /** The two low float32 lanes, widened. */
  promoteLow: (a: Code): Code => simd(0x5f, a),
};

/**
 * sq4(a, b, c, d, bytes): the four blocks at byte addresses a, b, c, d of memory 0, `bytes`
 * bytes each (a multiple of 16), added onto the running sums (a, b) and (c, d) held as two
 * f64x2 at bytes 0 and 16 of memory 1, element by element in index order.
 */
function sq4Func(): Func {
  const f = new Func([I32, I32, I32, I32, I32]);
  const [A, B, C, D, BYTES] = [0, 1, 2, 3, 4];
  const i = f.local(I32), ab = f.local(V128), cd = f.local(V128);
  const x = f.local(V128), y = f.local(V128), t = f.local(V128);
  const L = op.get, at = (base: number) => op.add(L(base), L(i));
  // Lanes (p0, q0, p1, q1) and (p2, q2, p3, q3) of two blocks' next four elements, then the
  // four widened pairs in order, each squared and added.
  const pair = (acc: number, p: number, q: number): Code => [
    ...op.set(x, inMemory.v128Load(0, at(p))),
    ...op.set(y, inMemory.v128Load(0, at(q))),
    ...op.set(t, op.shuffle(L(x), L(y), [0, 4, 1, 5], 4)),
    ...square(acc, f64x2.promoteLow(L(t))),
    ...square(acc, f64x2.promoteLow(op.shuffle(L(t), L(t), [2, 3, 2, 3], 4))),
    ...op.set(t, op.shuffle(L(x), L(y), [2, 6, 3, 7], 4)),
    ...square(acc, f64x2.promoteLow(L(t))),
    ...square(acc, f64x2.promoteLow(op.shuffle(L(t), L(t), [2, 3, 2, 3], 4))),
  ];
  const wide = f.local(V128);
  const square = (acc: number, v: Code): Code => [
    ...op.set(wide, v),
    ...op.set(acc, f64x2.add(L(acc), f64x2.mul(L(wide), L(wide)))),
  ];
  f.body = [
    ...op.set(ab, inMemory.v128Load(1, op.i32(0))),
    ...op.set(cd, inMemory.v128Load(1, op.i32(16))),
    ...op.forLoop(i, op.i32(0), L(BYTES), op.i32(16), [...pair(ab, A, B), ...pair(cd, C, D)]),
    ...inMemory.v128Store(1, op.i32(0), L(ab)),
    ...inMemory.v128Store(1, op.i32(16), L(cd)),
  ];
  return f;
}

type Sq4 = (a: number, b: number, c: number, d: number, bytes: number) => void;

let module: WebAssembly.Module | undefined;
// This thread's scratch memory for the four sums, and the instance per gradient memory.
let scratch: { memory: WebAssembly.Memory; sums: Float64Array } | undefined;
const instances: { memory: WebAssembly.Memory; sq4: Sq4 }[] = [];

function sq4For(memory: WebAssembly.Memory): { sq4: Sq4; sums: Float64Array } {
  scratch ??= (() => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return { memory: m, sums: new Float64Array(m.buffer, 0, 4) };
  })();
  let hit = instances.find((x) => x.memory === memory);
  if (!hit) {
    module ??= new WebAssembly.Module(
      assembleImporting([sq4Func()], { sq4: 0 }, [{ minPages: 0, maxPages: 65536 }, {
        minPages: 1,
        maxPages: 1,
      }]),
    );
    const env = { m0: memory, m1: scratch.memory };
    hit = { memory, sq4: new WebAssembly.Instance(module, { env }).exports.sq4 as unknown as Sq4 };
    instances.unshift(hit);
    if (instances.length > 4) instances.pop();
  }
  return { sq4: hit.sq4, sums: scratch.sums };
}

/** A block of indices, [start, end). */
export interface IndexBlock {
  /** The first index. */
  start: number;
  /** One past the last index. */
  end: number;
}

/**
 * Σ g[i]² (float64, in index order: `s += g[i] * g[i]`) over each block, into
 * `out[outStart + k]` for block k — four blocks at a time as SIMD when g is a float32 array in
 * a shared WebAssembly memory ({@linkcode sharedWasmArray}), else one block at a time. The
 * same bits either way.
 * @param g The values.
 * @param blocks The blocks.
 * @param out Where the sums go.
 * @param outStart The index of block 0's sum in `out`.
 *
 * @example
 * ```ts
 * import { blockSumsOfSquares } from "./sum_squares_wasm.ts";
 * const out = new Float64Array(2);
 * blockSumsOfSquares(new Float32Array([1, 2, 3]), [{ start: 0, end: 2 }, { start: 2, end: 3 }], out, 0);
 * console.log(out); // Float64Array(2) [ 5, 9 ]
 * ```
 */
export function blockSumsOfSquares(
  g: ArrayLike<number> & ArrayBufferView,
  blocks: readonly IndexBlock[],
  out: Float64Array,
  outStart: number,
): void {
  const memory = wasmMemoryOf(g);
  let k = 0;
  if (
    g instanceof Float32Array && memory !== undefined &&
    memory.buffer instanceof SharedArrayBuffer
  ) {
    const { sq4, sums } = sq4For(memory);
    for (; k + 4 <= blocks.length; k += 4) {
      const four = blocks.slice(k, k + 4);
      // The elements all four blocks have, in whole vectors; each block's rest goes on below.
      const common = Math.min(...four.map((b) => b.end - b.start)) & ~3;
      sums.fill(0);
      if (common > 0) {
        const [a, b, c, d] = four.map((x) => g.byteOffset + x.start * 4);
        sq4(a, b, c, d, common * 4);
      }
      // sums holds (a, b) then (c, d): lanes 0, 1, 2, 3 are blocks k … k + 3.
      four.forEach((x, j) => {
        let s = sums[j];
        for (let i = x.start + common; i < x.end; i++) s += g[i] * g[i];
        out[outStart + k + j] = s;
      });
    }
  }
  for (; k < blocks.length; k++) {
    let s = 0;
    for (let i = blocks[k].start; i < blocks[k].end; i++) s += g[i] * g[i];
    out[outStart + k] = s;
  }
}
