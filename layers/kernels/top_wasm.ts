/**
 * The k largest values of a row of float32 scores, as WebAssembly SIMD: once k are held, four
 * lanes at a time are compared with the k-th value, and only a lane above it is looked at one by
 * one, so most of a row of V scores costs a vector compare per four words instead of a
 * JavaScript comparison per word (the scan was 4–5% of a beam search's time, 1.3–3 ns a word).
 *
 * The result is defined as `topWords`' (`model/next_words.ts`) is, word by word in index order:
 * a word joins when fewer than k are held or it beats the k-th held (ties: the lower index
 * first), unless it is banned. A row holding a NaN is left to the caller's plain loop, whose
 * order-dependent handling of NaN this kernel does not copy.
 *
 * The scores stay where they are (memory 0: the decoder's work arrays); the kernel's own memory
 * (memory 1) holds the ban mask, copied in per call, and the result.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import { assembleImporting, type Code, F32, Func, I32, op, uleb, V128 } from "./wasm_asm.ts";
import { wasmMemoryOf } from "./wasm_arrays.ts";

/** The most words a call holds (a wider k is left to the caller's loop). */
export const TOP_MAX_K = 256;

// Memory 1: [0] the count held, [4] 1 when a NaN was seen, then the indices, the values, the mask.
const COUNT = 0, NAN = 4, IDX = 16, VALS = IDX + 4 * TOP_MAX_K, MASK = VALS + 4 * TOP_MAX_K;

const simd = (opcode: number, ...args: Code[]): Code => [...args.flat(), 0xfd, ...uleb(opcode)];
/** A load or store's memarg naming memory 1 (alignment as log2 bytes). */
const in1 = (align: number): Code => [align | 0x40, 1, 0];
const i32At1 = (addr: Code): Code => [...addr, 0x28, ...in1(2)];
const f32At1 = (addr: Code): Code => [...addr, 0x2a, ...in1(2)];
const u8At1 = (addr: Code): Code => [...addr, 0x2d, ...in1(0)];
const storeI32At1 = (addr: Code, x: Code): Code => [...addr, ...x, 0x36, ...in1(2)];
const storeF32At1 = (addr: Code, x: Code): Code => [...addr, ...x, 0x38, ...in1(2)];
const f32Gt = (a: Code, b: Code): Code => [...a, ...b, 0x5e];
const f32Lt = (a: Code, b: Code): Code => [...a, ...b, 0x5d];
const f32Ne = (a: Code, b: Code): Code => [...a, ...b, 0x5c];
const i32Or = (a: Code, b: Code): Code => [...a, ...b, 0x72];
const i32GtS = (a: Code, b: Code): Code => [...a, ...b, 0x4a];
const anyTrue = (x: Code): Code => simd(0x53, x);
const lane = (x: Code, l: number): Code => [...simd(0x1f, x), l];
const NEG_INF: Code = [0x43, ...new Uint8Array(new Float32Array([-Infinity]).buffer)];

/** `while (cond) body`; the body must not branch out. */
function whileLoop(cond: Code, body: Code): Code {
  return [0x02, 0x40, 0x03, 0x40, ...cond, 0x45, 0x0d, 1, ...body, 0x0c, 0, 0x0b, 0x0b];
}

/**
 * top(p, len, k, masked): the k largest of the len float32 at byte address p of memory 0, as
 * `topWords` picks them (see the module doc), skipping word j when masked and mask[j] is 1.
 * Writes the count, the NaN flag, the indices and the values into memory 1.
 */
function topFunc(): Func {
  const f = new Func([I32, I32, I32, I32]);
  const [P, LEN, K, MASKED] = [0, 1, 2, 3], L = op.get;
  const j = f.local(I32), n = f.local(I32), pos = f.local(I32), nan = f.local(I32);
  const lim = f.local(I32), w = f.local(I32);
  const val = f.local(F32), floor = f.local(F32), x = f.local(V128);
  // Not a select: both of its operands run, and without a mask memory 1 may be too short.
  const allowed = (word: Code): Code => [
    ...L(MASKED),
    0x04, // if, i32 result
    I32,
    ...op.eqz(u8At1(op.add(op.i32(MASK), word))),
    0x05,
    ...op.i32(1),
    0x0b,
  ];
  // Insert word w of value val: at the end while fewer than k are held, else in the k-th place;
  // then up past every held value below it (a tie stays behind: the lower index first).
  const insert: Code = [
    ...op.set(pos, op.select(op.ltS(L(n), L(K)), L(n), op.sub(L(K), op.i32(1)))),
    ...op.set(n, op.add(L(n), op.ltS(L(n), L(K)))),
    ...whileLoop(
      op.and(
        i32GtS(L(pos), op.i32(0)),
        f32Lt(f32At1(op.add(op.i32(VALS - 4), op.mul(L(pos), op.i32(4)))), L(val)),
      ),
      [
        ...storeF32At1(
          op.add(op.i32(VALS), op.mul(L(pos), op.i32(4))),
          f32At1(op.add(op.i32(VALS - 4), op.mul(L(pos), op.i32(4)))),
        ),
        ...storeI32At1(
          op.add(op.i32(IDX), op.mul(L(pos), op.i32(4))),
          i32At1(op.add(op.i32(IDX - 4), op.mul(L(pos), op.i32(4)))),
        ),
        ...op.set(pos, op.sub(L(pos), op.i32(1))),
      ],
    ),
    ...storeF32At1(op.add(op.i32(VALS), op.mul(L(pos), op.i32(4))), L(val)),
    ...storeI32At1(op.add(op.i32(IDX), op.mul(L(pos), op.i32(4))), L(w)),
    ...op.ifElse(
      op.eq(L(n), L(K)),
      op.set(floor, f32At1(op.add(op.i32(VALS - 4), op.mul(L(K), op.i32(4))))),
    ),
  ];
  const loadScalar = op.set(val, op.f32Load(op.add(L(P), op.mul(L(j), op.i32(4)))));
  // One word once k are held: it must beat the k-th, then not be banned.
  const consider = (word: Code): Code =>
    op.ifElse(
      op.and(f32Gt(L(val), L(floor)), allowed(word)),
      [...op.set(w, word), ...insert],
    );
  f.body = [
    ...op.set(n, op.i32(0)),
    ...op.set(nan, op.i32(0)),
    ...op.set(floor, NEG_INF),
    ...op.set(j, op.i32(0)),
    // Until k are held: every allowed word joins.
    ...whileLoop(op.and(op.ltS(L(j), L(LEN)), op.ltS(L(n), L(K))), [
      ...loadScalar,
      ...op.set(nan, i32Or(L(nan), f32Ne(L(val), L(val)))),
      ...op.ifElse(allowed(L(j)), [...op.set(w, L(j)), ...insert]),
      ...op.set(j, op.add(L(j), op.i32(1))),
    ]),
    // Then four words at a time, looked at one by one only when one beats the k-th.
    ...op.set(lim, op.sub(L(LEN), op.i32(3))),
    ...op.forLoop(j, L(j), L(lim), op.i32(4), [
      ...op.set(x, op.v128Load(op.add(L(P), op.mul(L(j), op.i32(4))))),
      ...op.set(nan, i32Or(L(nan), anyTrue(simd(0x42, L(x), L(x))))), // f32x4.ne
      ...op.ifElse(
        anyTrue(simd(0x44, L(x), op.f32x4Splat(L(floor)))), // f32x4.gt
        [0, 1, 2, 3].flatMap((l) => [
          ...op.set(val, lane(L(x), l)),
          ...consider(op.add(L(j), op.i32(l))),
        ]),
      ),
    ]),
    ...op.forLoop(j, L(j), L(LEN), op.i32(1), [
      ...loadScalar,
      ...op.set(nan, i32Or(L(nan), f32Ne(L(val), L(val)))),
      ...consider(L(j)),
    ]),
    ...storeI32At1(op.i32(COUNT), L(n)),
    ...storeI32At1(op.i32(NAN), L(nan)),
  ];
  return f;
}

type TopFn = (p: number, len: number, k: number, masked: number) => void;

/** A kernel instance over one scores memory, with its own memory and views of it. */
interface TopInstance {
  scores: WebAssembly.Memory;
  own: WebAssembly.Memory;
  top: TopFn;
  i32: Int32Array;
  u8: Uint8Array;
}

const modules = new Map<boolean, WebAssembly.Module>();
const instances: TopInstance[] = [];

function instanceFor(scores: WebAssembly.Memory): TopInstance {
  const hit = instances.find((x) => x.scores === scores);
  if (hit) return hit;
  const shared = scores.buffer instanceof SharedArrayBuffer;
  let module = modules.get(shared);
  if (!module) {
    const limits = [
      shared ? { minPages: 0, maxPages: 65536 } : { minPages: 0, shared: false },
      { minPages: 0, shared: false },
    ];
    module = new WebAssembly.Module(assembleImporting([topFunc()], { top: 0 }, limits));
    modules.set(shared, module);
  }
  const own = new WebAssembly.Memory({ initial: 1 });
  const ex = new WebAssembly.Instance(module, { env: { m0: scores, m1: own } }).exports;
  const inst = {
    scores,
    own,
    top: ex.top as TopFn,
    i32: new Int32Array(own.buffer),
    u8: new Uint8Array(own.buffer),
  };
  instances.unshift(inst);
  if (instances.length > 4) instances.pop();
  return inst;
}

/**
 * The indices of the k largest of a[offset … offset+len) that are not banned, largest first
 * (ties: the lower index first) — `topWords`' result — or null when this kernel does not take
 * the row: `a` is not a float32 array in a WebAssembly memory, k is above
 * {@linkcode TOP_MAX_K}, or the row holds a NaN. Then the caller's plain loop decides.
 * @param a The values.
 * @param offset Where the row starts.
 * @param len Its length (V).
 * @param k How many.
 * @param banned A (V,) mask of excluded indices, or null for none.
 * @returns The indices, or null.
 *
 * @example
 * ```ts
 * import { wasmElementwiseArena } from "./elementwise_wasm.ts";
 * import { topIndices } from "./top_wasm.ts";
 * const [row] = wasmElementwiseArena()!.carve([5]);
 * row.set([0.1, 0.9, 0.5, 0.9, 0.3]);
 * console.log(topIndices(row, 0, 5, 2, null)); // [1, 3]
 * console.log(topIndices(row, 0, 5, 2, new Uint8Array([0, 1, 0, 0, 0]))); // [3, 2]
 * ```
 */
export function topIndices(
  a: FloatArray,
  offset: number,
  len: number,
  k: number,
  banned: Uint8Array | null,
): number[] | null {
  if (!(a instanceof Float32Array) || k > TOP_MAX_K) return null;
  const scores = wasmMemoryOf(a);
  if (scores === undefined) return null;
  if (k <= 0) return [];
  const inst = instanceFor(scores);
  if (banned !== null) {
    const need = MASK + len;
    if (inst.own.buffer.byteLength < need) {
      inst.own.grow(Math.ceil((need - inst.own.buffer.byteLength) / 65536));
      inst.i32 = new Int32Array(inst.own.buffer);
      inst.u8 = new Uint8Array(inst.own.buffer);
    }
    inst.u8.set(banned.subarray(0, len), MASK);
  }
  inst.top(a.byteOffset + 4 * offset, len, k, banned === null ? 0 : 1);
  const { i32 } = inst;
  if (i32[NAN / 4] !== 0) return null;
  // A plain loop: Array.from of a subarray costs ~300 ns, more than a row's scan.
  const count = i32[COUNT / 4], out: number[] = [];
  for (let i = 0; i < count; i++) out.push(i32[IDX / 4 + i]);
  return out;
}
