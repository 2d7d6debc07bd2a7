/**
 * A tiny WebAssembly assembler: just enough of the binary format (numeric, memory, control and
 * SIMD128 instructions) to emit the gemm module from TypeScript at load time, so the wasm
 * source is this repository's TypeScript and there is no build step or committed binary.
 * Instructions are plain byte arrays composed in stack order: `add(get(x), i32(1))`.
 * @module
 */

/** Encoded instructions: a flat list of bytes. */
export type Code = number[];

/** Value types. */
export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;
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

// --- locals and constants ---
/**
 * `local.get`.
 * @param x Local index.
 * @returns The instruction.
 * @example
 * ```ts
 * import { get } from "./wasm_asm.ts";
 * console.log(get(0)); // [0x20, 0]
 * ```
 */
export const get = (x: number): Code => [0x20, ...uleb(x)];
/**
 * `local.set` of a computed value.
 * @param x Local index.
 * @param value Code leaving the value on the stack.
 * @returns The instructions.
 * @example
 * ```ts
 * import { i32, set } from "./wasm_asm.ts";
 * console.log(set(1, i32(5)));
 * ```
 */
export const set = (x: number, ...value: Code[]): Code => [...flat(value), 0x21, ...uleb(x)];
/**
 * `i32.const`.
 * @param n The value.
 * @returns The instruction.
 * @example
 * ```ts
 * import { i32 } from "./wasm_asm.ts";
 * console.log(i32(5)); // [0x41, 5]
 * ```
 */
export const i32 = (n: number): Code => [0x41, ...sleb(n)];

/**
 * A binary i32 operation on two operands.
 * @param op The opcode.
 * @returns A function emitting `a`, `b`, then the opcode.
 */
const bin = (op: number) => (a: Code, b: Code): Code => [...a, ...b, op];

/** i32 arithmetic and comparisons (signed), as `op(a, b)`. */
export const add = bin(0x6a),
  sub = bin(0x6b),
  mul = bin(0x6c),
  divS = bin(0x6d),
  and = bin(0x71),
  eq = bin(0x46),
  ne = bin(0x47),
  ltS = bin(0x48),
  geS = bin(0x4e);

/**
 * min of two signed i32 (evaluates both operands; they must have no side effects).
 * @param a First operand code.
 * @param b Second operand code.
 * @returns The instructions.
 * @example
 * ```ts
 * import { i32, minS } from "./wasm_asm.ts";
 * console.log(minS(i32(1), i32(2)).length > 0);
 * ```
 */
export const minS = (a: Code, b: Code): Code => [...a, ...b, ...a, ...b, 0x48, 0x1b];

// --- memory (addresses are byte offsets in i32) ---
/** Scalar and vector loads/stores, with a constant byte offset folded into the instruction. */
export const f32Load = (addr: Code, off = 0): Code => [...addr, 0x2a, ...memarg(2, off)];
/** `f64.load`. */
export const f64Load = (addr: Code, off = 0): Code => [...addr, 0x2b, ...memarg(3, off)];
/** `f32.store`. */
export const f32Store = (addr: Code, value: Code, off = 0): Code => [
  ...addr,
  ...value,
  0x38,
  ...memarg(2, off),
];
/** `f64.store`. */
export const f64Store = (addr: Code, value: Code, off = 0): Code => [
  ...addr,
  ...value,
  0x39,
  ...memarg(3, off),
];
/** `v128.load`. */
export const v128Load = (addr: Code, off = 0): Code => [...addr, ...simd(0x00, memarg(4, off))];
/** `v128.store`. */
export const v128Store = (addr: Code, value: Code, off = 0): Code => [
  ...addr,
  ...value,
  ...simd(0x0b, memarg(4, off)),
];
/** `v128.load32_splat`. */
export const load32Splat = (addr: Code, off = 0): Code => [...addr, ...simd(0x09, memarg(2, off))];
/** `v128.load64_splat`. */
export const load64Splat = (addr: Code, off = 0): Code => [...addr, ...simd(0x0a, memarg(3, off))];
/** `v128.const` of all zero bits. */
export const v128Zero = (): Code => [0xfd, ...uleb(0x0c), ...new Array(16).fill(0)];
/** `f32x4.splat` / `f64x2.splat` of a scalar. */
export const f32x4Splat = (x: Code): Code => [...x, ...simd(0x13)];
/** `f64x2.splat`. */
export const f64x2Splat = (x: Code): Code => [...x, ...simd(0x14)];

/**
 * `i8x16.shuffle` of two vectors, with lanes given as indices of `laneBytes`-wide lanes into
 * the concatenation a ++ b.
 * @param a First vector code.
 * @param b Second vector code.
 * @param lanes Lane indices (4 for 32-bit lanes, 2 for 64-bit ones).
 * @param laneBytes 4 or 8.
 * @returns The instructions.
 * @example
 * ```ts
 * import { shuffle, v128Zero } from "./wasm_asm.ts";
 * // interleave the low halves: a0 b0 a1 b1
 * console.log(shuffle(v128Zero(), v128Zero(), [0, 4, 1, 5], 4).length);
 * ```
 */
export const shuffle = (a: Code, b: Code, lanes: number[], laneBytes: number): Code => [
  ...a,
  ...b,
  ...simd(0x0d),
  ...lanes.flatMap((l) => Array.from({ length: laneBytes }, (_, x) => l * laneBytes + x)),
];

/** Scalar float arithmetic: f32/f64 add and mul. */
export const f32Add = bin(0x92), f32Mul = bin(0x94), f64Add = bin(0xa0), f64Mul = bin(0xa2);

/** Vector float arithmetic. `relaxed_madd(a, b, c)` is a * b + c, fused where the CPU can. */
export const f32x4Add = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe4)],
  f32x4Mul = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe6)],
  f64x2Add = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf0)],
  f64x2Mul = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf2)],
  f32x4RelaxedMadd = (a: Code, b: Code, c: Code): Code => [...a, ...b, ...c, ...simd(0x105)],
  f64x2RelaxedMadd = (a: Code, b: Code, c: Code): Code => [...a, ...b, ...c, ...simd(0x107)];

// --- control ---
/**
 * `if (cond) { then } else { otherwise }` with no result.
 * @param cond Code leaving an i32.
 * @param then Instructions when non-zero.
 * @param otherwise Instructions when zero.
 * @returns The instructions.
 * @example
 * ```ts
 * import { i32, ifElse, set } from "./wasm_asm.ts";
 * console.log(ifElse(i32(1), set(0, i32(2))).length > 0);
 * ```
 */
export const ifElse = (cond: Code, then: Code, otherwise: Code = []): Code => [
  ...cond,
  0x04,
  0x40,
  ...then,
  ...(otherwise.length ? [0x05, ...otherwise] : []),
  0x0b,
];

/**
 * `for (x = start; x < end; x += step) body` over a signed i32 local. `end` and `step` are
 * re-evaluated each iteration, so pass locals or constants. The body must not branch out.
 * @param x The loop variable's local index.
 * @param start Code for the first value.
 * @param end Code for the bound (exclusive).
 * @param step Code for the increment.
 * @param body The loop body.
 * @returns The instructions.
 * @example
 * ```ts
 * import { forLoop, i32 } from "./wasm_asm.ts";
 * console.log(forLoop(0, i32(0), i32(10), i32(1), []).length > 0);
 * ```
 */
export const forLoop = (x: number, start: Code, end: Code, step: Code, body: Code): Code => [
  ...set(x, start),
  0x02, // block
  0x40,
  0x03, // loop
  0x40,
  ...geS(get(x), end),
  0x0d, // br_if 1 (exit the block)
  1,
  ...body,
  ...set(x, add(get(x), step)),
  0x0c, // br 0 (next iteration)
  0,
  0x0b,
  0x0b,
];

/**
 * `call` a function by index with the given argument codes.
 * @param f Function index.
 * @param args Argument codes.
 * @returns The instructions.
 * @example
 * ```ts
 * import { call, i32 } from "./wasm_asm.ts";
 * console.log(call(0, i32(1)));
 * ```
 */
export const call = (f: number, ...args: Code[]): Code => [...flat(args), 0x10, ...uleb(f)];

/** A function under construction: typed params, then locals added as needed. */
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
  const exportEntries = [
    [...name("memory"), 0x02, 0],
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
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, ...uleb(minPages)]])),
    ...section(7, vec(exportEntries)),
    ...section(10, vec(codes)),
  ]);
}
