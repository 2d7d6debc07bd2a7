/**
 * A tiny WebAssembly assembler: just enough of the binary format (numeric, memory, control and
 * SIMD128 instructions) to emit the gemm module from TypeScript at load time, so the wasm
 * source is this repository's TypeScript and there is no build step or committed binary.
 * Instructions are plain byte arrays composed in stack order: `op.add(op.get(x), op.i32(1))`.
 * @module
 */

/** Encoded instructions: a flat list of bytes. */
export type Code = number[];

/**
 * The i32 value type (and F32, F64, V128 below), for {@linkcode Func} params and locals.
 * @example
 * ```ts
 * import { F64, Func, I32 } from "./wasm_asm.ts";
 * const f = new Func([I32, F64]);
 * ```
 */
export const I32 = 0x7f;
/**
 * The f32 value type.
 * @example
 * ```ts
 * import { Func, F32 } from "./wasm_asm.ts";
 * const local = new Func([]).local(F32);
 * ```
 */
export const F32 = 0x7d;
/**
 * The f64 value type.
 * @example
 * ```ts
 * import { Func, F64 } from "./wasm_asm.ts";
 * const local = new Func([]).local(F64);
 * ```
 */
export const F64 = 0x7c;
/**
 * The v128 (SIMD) value type.
 * @example
 * ```ts
 * import { Func, V128 } from "./wasm_asm.ts";
 * const local = new Func([]).local(V128);
 * ```
 */
export const V128 = 0x7b;
/** A value type byte. */
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/**
 * Unsigned LEB128.
 * @param n A non-negative integer below 2^32.
 * @returns Its bytes.
 * @example
 * ```ts
 * import { uleb } from "./wasm_asm.ts";
 * console.log(uleb(624485)); // [0xe5, 0x8e, 0x26]
 * ```
 */
export function uleb(n: number): Code {
  const out: Code = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/**
 * Signed LEB128 of a 32-bit integer.
 * @param n An integer in [-2^31, 2^31).
 * @returns Its bytes.
 * @example
 * ```ts
 * import { sleb } from "./wasm_asm.ts";
 * console.log(sleb(-1)); // [0x7f]
 * ```
 */
export function sleb(n: number): Code {
  const out: Code = [];
  n |= 0;
  while (true) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const flat = (parts: Code[]): Code => parts.flat();
const simd = (op: number, ...rest: Code[]): Code => [0xfd, ...uleb(op), ...flat(rest)];
/** memarg: alignment exponent and constant byte offset. */
const memarg = (align: number, offset: number): Code => [...uleb(align), ...uleb(offset)];
const bin = (opcode: number) => (a: Code, b: Code): Code => [...a, ...b, opcode];
const vbin = (opcode: number) => (a: Code, b: Code): Code => [...a, ...b, ...simd(opcode)];

/** An instruction builder taking two operand codes. */
export type BinOp = (a: Code, b: Code) => Code;
/** A load: address code and constant byte offset. */
export type LoadOp = (addr: Code, off?: number) => Code;
/** A store: address code, value code and constant byte offset. */
export type StoreOp = (addr: Code, value: Code, off?: number) => Code;

/**
 * The instruction builders. Each takes its operands as code (so expressions nest in stack
 * order) and returns the encoded instructions. Integer ops are i32 and signed; addresses are
 * i32 byte offsets, with a constant offset folded into the load or store.
 */
export interface Ops {
  /** `local.get x`. */
  get(x: number): Code;
  /** `local.set x` of the value left by `value`. */
  set(x: number, ...value: Code[]): Code;
  /** `i32.const n`. */
  i32(n: number): Code;
  /** i32 add. */
  add: BinOp;
  /** i32 sub. */
  sub: BinOp;
  /** i32 mul. */
  mul: BinOp;
  /** i32 bitwise and (logical and of 0/1 flags). */
  and: BinOp;
  /** i32 equal. */
  eq: BinOp;
  /** i32 not equal. */
  ne: BinOp;
  /** i32 signed less-than. */
  ltS: BinOp;
  /** i32 signed greater-or-equal. */
  geS: BinOp;
  /** i32 equal to zero. */
  eqz(a: Code): Code;
  /** `cond ? a : b` on values (`select`; both are evaluated). */
  select(cond: Code, a: Code, b: Code): Code;
  /** Signed minimum (operands are evaluated twice: pass locals or constants). */
  minS: BinOp;
  /** `f32.load`. */
  f32Load: LoadOp;
  /** `f64.load`. */
  f64Load: LoadOp;
  /** `f32.store`. */
  f32Store: StoreOp;
  /** `f64.store`. */
  f64Store: StoreOp;
  /** f32 add. */
  f32Add: BinOp;
  /** f32 mul. */
  f32Mul: BinOp;
  /** f64 add. */
  f64Add: BinOp;
  /** f64 mul. */
  f64Mul: BinOp;
  /** `v128.load`. */
  v128Load: LoadOp;
  /** `v128.store`. */
  v128Store: StoreOp;
  /** `v128.load32_splat`: one f32 into all four lanes. */
  load32Splat: LoadOp;
  /** `v128.load64_splat`: one f64 into both lanes. */
  load64Splat: LoadOp;
  /** `v128.const` of all zero bits. */
  v128Zero(): Code;
  /** `f32x4.splat` of a scalar. */
  f32x4Splat(x: Code): Code;
  /** `f64x2.splat` of a scalar. */
  f64x2Splat(x: Code): Code;
  /** f32x4 add. */
  f32x4Add: BinOp;
  /** f32x4 mul. */
  f32x4Mul: BinOp;
  /** f64x2 add. */
  f64x2Add: BinOp;
  /** f64x2 mul. */
  f64x2Mul: BinOp;
  /** `f32x4.relaxed_madd(a, b, c)` = a * b + c, fused where the CPU has FMA (relaxed SIMD). */
  f32x4RelaxedMadd(a: Code, b: Code, c: Code): Code;
  /** `f64x2.relaxed_madd(a, b, c)` = a * b + c (relaxed SIMD). */
  f64x2RelaxedMadd(a: Code, b: Code, c: Code): Code;
  /**
   * `i8x16.shuffle` with lanes given as indices of `laneBytes`-wide lanes (4 or 8) into the
   * concatenation a ++ b; e.g. [0, 4, 1, 5] with 4 interleaves the low halves of a and b.
   */
  shuffle(a: Code, b: Code, lanes: number[], laneBytes: number): Code;
  /** `if (cond) { then } else { otherwise }` with no result. */
  ifElse(cond: Code, then: Code, otherwise?: Code): Code;
  /**
   * `for (x = start; x < end; x += step) body` over a signed i32 local; `end` and `step` are
   * re-evaluated every iteration (pass locals or constants); the body must not branch out.
   */
  forLoop(x: number, start: Code, end: Code, step: Code, body: Code): Code;
  /** `call f` with the given argument codes. */
  call(f: number, ...args: Code[]): Code;
  /** `memory.fill(dst, 0, bytes)` (bulk memory). */
  zeroFill(dst: Code, bytes: Code): Code;
  /** `drop` the value left by `value`. */
  drop(value: Code): Code;
}

/**
 * The instruction builders (see {@linkcode Ops}).
 *
 * @example
 * ```ts
 * import { op } from "./wasm_asm.ts";
 * const { add, get, i32, set } = op;
 * console.log(set(1, add(get(0), i32(1)))); // local1 = local0 + 1
 * ```
 */
export const op: Ops = {
  get: (x) => [0x20, ...uleb(x)],
  set: (x, ...value) => [...flat(value), 0x21, ...uleb(x)],
  i32: (n) => [0x41, ...sleb(n)],
  add: bin(0x6a),
  sub: bin(0x6b),
  mul: bin(0x6c),
  and: bin(0x71),
  eq: bin(0x46),
  ne: bin(0x47),
  ltS: bin(0x48),
  geS: bin(0x4e),
  eqz: (a) => [...a, 0x45],
  select: (cond, a, b) => [...a, ...b, ...cond, 0x1b],
  minS: (a, b) => [...a, ...b, ...a, ...b, 0x48, 0x1b],
  f32Load: (addr, off = 0) => [...addr, 0x2a, ...memarg(2, off)],
  f64Load: (addr, off = 0) => [...addr, 0x2b, ...memarg(3, off)],
  f32Store: (addr, value, off = 0) => [...addr, ...value, 0x38, ...memarg(2, off)],
  f64Store: (addr, value, off = 0) => [...addr, ...value, 0x39, ...memarg(3, off)],
  f32Add: bin(0x92),
  f32Mul: bin(0x94),
  f64Add: bin(0xa0),
  f64Mul: bin(0xa2),
  v128Load: (addr, off = 0) => [...addr, ...simd(0x00, memarg(4, off))],
  v128Store: (addr, value, off = 0) => [...addr, ...value, ...simd(0x0b, memarg(4, off))],
  load32Splat: (addr, off = 0) => [...addr, ...simd(0x09, memarg(2, off))],
  load64Splat: (addr, off = 0) => [...addr, ...simd(0x0a, memarg(3, off))],
  v128Zero: () => simd(0x0c, new Array(16).fill(0)),
  f32x4Splat: (x) => [...x, ...simd(0x13)],
  f64x2Splat: (x) => [...x, ...simd(0x14)],
  f32x4Add: vbin(0xe4),
  f32x4Mul: vbin(0xe6),
  f64x2Add: vbin(0xf0),
  f64x2Mul: vbin(0xf2),
  f32x4RelaxedMadd: (a, b, c) => [...a, ...b, ...c, ...simd(0x105)],
  f64x2RelaxedMadd: (a, b, c) => [...a, ...b, ...c, ...simd(0x107)],
  shuffle: (a, b, lanes, laneBytes) => [
    ...a,
    ...b,
    ...simd(0x0d),
    ...lanes.flatMap((l) => Array.from({ length: laneBytes }, (_, x) => l * laneBytes + x)),
  ],
  ifElse: (cond, then, otherwise = []) => [
    ...cond,
    0x04, // if, no result
    0x40,
    ...then,
    ...(otherwise.length ? [0x05, ...otherwise] : []),
    0x0b,
  ],
  forLoop: (x, start, end, step, body) => [
    ...op.set(x, start),
    0x02, // block
    0x40,
    0x03, // loop
    0x40,
    ...op.geS(op.get(x), end),
    0x0d, // br_if 1: leave the block
    1,
    ...body,
    ...op.set(x, op.add(op.get(x), step)),
    0x0c, // br 0: next iteration
    0,
    0x0b,
    0x0b,
  ],
  call: (f, ...args) => [...flat(args), 0x10, ...uleb(f)],
  zeroFill: (dst, bytes) => [...dst, 0x41, 0, ...bytes, 0xfc, ...uleb(11), 0],
  drop: (value) => [...value, 0x1a],
};

/**
 * A function under construction: typed params, then locals added as needed; no results.
 *
 * @example
 * ```ts
 * import { Func, I32, op } from "./wasm_asm.ts";
 * const f = new Func([I32]); // local 0 is the param
 * const tmp = f.local(I32);
 * f.body = op.set(tmp, op.get(0));
 * ```
 */
export class Func {
  /** Parameter types. */
  readonly params: ValType[];
  /** Extra local types, after the params. */
  readonly locals: ValType[] = [];
  /** The body (without the final `end`). */
  body: Code = [];

  /**
   * Creates a function with the given parameter types (locals 0..n-1).
   * @param params Parameter types.
   */
  constructor(params: ValType[]) {
    this.params = params;
  }

  /**
   * Adds a local.
   * @param type Its type.
   * @returns Its index.
   */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }
}

function section(id: number, content: Code): Code {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: Code[]): Code {
  return [...uleb(items.length), ...flat(items)];
}

function name(s: string): Code {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/**
 * Assembles a module: one memory (exported as "memory"), the functions (no results), and
 * exports of functions by name.
 * @param funcs The functions, in index order.
 * @param exports Export name to function index.
 * @param minPages The memory's initial size in 64 KiB pages.
 * @param sharedMaxPages When given, the memory is not the module's own but imported (as
 * `env.memory`) and shared, at most this many pages: one memory that several workers'
 * instances run on.
 * @returns The module's bytes.
 * @example
 * ```ts
 * import { assemble, Func, I32 } from "./wasm_asm.ts";
 * const f = new Func([I32]);
 * const bytes = assemble([f], { nop: 0 }, 1);
 * console.log(WebAssembly.validate(bytes));
 * ```
 */
export function assemble(
  funcs: Func[],
  exports: Record<string, number>,
  minPages: number,
  sharedMaxPages?: number,
): Uint8Array<ArrayBuffer> {
  const shared = sharedMaxPages !== undefined;
  return moduleBytes(
    funcs,
    exports,
    shared ? [importedMemory("memory", minPages, sharedMaxPages)] : [],
    shared ? [] : [[0x00, ...uleb(minPages)]],
  );
}

/** The size of a memory that a module imports, in 64 KiB pages, and whether it is shared. */
export interface SharedMemoryLimits {
  /** The memory's size when the module is instantiated (at least). */
  minPages: number;
  /** Its maximum size (at most; required when shared). */
  maxPages?: number;
  /** Whether the memory is shared (default true): imports must match the memory. */
  shared?: boolean;
}

/**
 * Assembles a module that imports several shared memories (multi-memory: `env.m0`, `env.m1`, …,
 * memory index i being `env.m{i}`) and has none of its own, so one function can work on arrays
 * that live in different memories; instructions name their memory with the `*In` builders.
 * @param funcs The functions, in index order.
 * @param exports Export name to function index.
 * @param memories The imported memories' limits, in memory-index order.
 * @returns The module's bytes.
 * @example
 * ```ts
 * import { assembleImporting, Func, I32 } from "./wasm_asm.ts";
 * const bytes = assembleImporting([new Func([I32])], { nop: 0 }, [
 *   { minPages: 1, maxPages: 1 },
 *   { minPages: 1, maxPages: 2 },
 * ]);
 * console.log(WebAssembly.validate(bytes)); // true
 * ```
 */
export function assembleImporting(
  funcs: Func[],
  exports: Record<string, number>,
  memories: SharedMemoryLimits[],
): Uint8Array<ArrayBuffer> {
  return moduleBytes(
    funcs,
    exports,
    memories.map((m, i) => importedMemory(`m${i}`, m.minPages, m.maxPages, m.shared ?? true)),
    [],
  );
}

/**
 * Loads and stores in a given memory of a multi-memory module ({@linkcode assembleImporting}):
 * the memarg then carries the memory index.
 * @example
 * ```ts
 * import { inMemory, op } from "./wasm_asm.ts";
 * const load = inMemory.v128Load(1, op.i32(0)); // v128.load from memory 1, address 0
 * ```
 */
export const inMemory = {
  /** `v128.load` of memory `memory`. */
  v128Load: (memory: number, addr: Code, off = 0): Code => [
    ...addr,
    ...simd(0x00, [4 | 0x40, ...uleb(memory), ...uleb(off)]),
  ],
  /** `v128.store` into memory `memory`. */
  v128Store: (memory: number, addr: Code, value: Code, off = 0): Code => [
    ...addr,
    ...value,
    ...simd(0x0b, [4 | 0x40, ...uleb(memory), ...uleb(off)]),
  ],
};

function importedMemory(
  field: string,
  minPages: number,
  maxPages: number | undefined,
  shared = true,
): Code {
  if (shared && maxPages === undefined) throw new RangeError("A shared memory needs maxPages");
  const flags = (shared ? 0x02 : 0) | (maxPages === undefined ? 0 : 0x01);
  const max = maxPages === undefined ? [] : uleb(maxPages);
  return [...name("env"), ...name(field), 0x02, flags, ...uleb(minPages), ...max];
}

function moduleBytes(
  funcs: Func[],
  exports: Record<string, number>,
  memoryImports: Code[],
  ownMemories: Code[],
): Uint8Array<ArrayBuffer> {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), 0]);
  const codes = funcs.map((f) => {
    // Run-length groups of equal local types.
    const groups: Code[] = [];
    for (let i = 0; i < f.locals.length;) {
      let j = i;
      while (j < f.locals.length && f.locals[j] === f.locals[i]) j++;
      groups.push([...uleb(j - i), f.locals[i]]);
      i = j;
    }
    const body = [...vec(groups), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  const exportsMemory = memoryImports.length + ownMemories.length === 1;
  const exportEntries = [
    ...(exportsMemory ? [[...name("memory"), 0x02, 0]] : []),
    ...Object.entries(exports).map(([n, idx]) => [...name(n), 0x00, ...uleb(idx)]),
  ];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...(memoryImports.length > 0 ? section(2, vec(memoryImports)) : []),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...(ownMemories.length > 0 ? section(5, vec(ownMemories)) : []),
    ...section(7, vec(exportEntries)),
    ...section(10, vec(codes)),
  ]);
}
