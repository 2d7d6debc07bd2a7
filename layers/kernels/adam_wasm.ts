/**
 * Adam's update in WebAssembly SIMD (f64x2), on parameters, gradient and moments that live in
 * shared WebAssembly memories ({@linkcode sharedWasmArray}): one module imports the four
 * memories, so it updates them where the workers share them, with no copies.
 *
 * The arithmetic is the scalar loop's (`applyUpdate` in optim.ts), operation for operation in
 * float64 (IEEE-rounded add, mul, div and sqrt; no fused multiply-add), with the moments and
 * the parameters rounded to their element type where the loop stores them: the same bits, two
 * elements per instruction.
 * @module
 */
import {
  assembleImporting,
  type Code,
  F64,
  Func,
  I32,
  inMemory,
  op,
  uleb,
  V128,
  type ValType,
} from "./wasm_asm.ts";
import { wasmMemoryOf } from "./wasm_arrays.ts";
import type { FloatArray } from "../tensor.ts";

const simd = (opcode: number, ...args: Code[]): Code => [...args.flat(), 0xfd, ...uleb(opcode)];
const f64x2 = {
  add: (a: Code, b: Code): Code => simd(0xf0, a, b),
  sub: (a: Code, b: Code): Code => simd(0xf1, a, b),
  mul: (a: Code, b: Code): Code => simd(0xf2, a, b),
  div: (a: Code, b: Code): Code => simd(0xf3, a, b),
  sqrt: (a: Code): Code => simd(0xef, a),
  /** The two low float32 lanes, widened. */
  promoteLow: (a: Code): Code => simd(0x5f, a),
  /** Rounded to float32 in the two low lanes (the high two are 0). */
  demote: (a: Code): Code => simd(0x5e, a),
};
/** The two high float32 lanes moved low. */
const high = (a: Code): Code => op.shuffle(a, a, [2, 3, 2, 3], 4);
/** The low two float32 lanes of a, then those of b. */
const joinLow = (a: Code, b: Code): Code => op.shuffle(a, b, [0, 1, 4, 5], 4);

/** Memory indices of the module's four imports. */
const MEM = { w: 0, dw: 1, m: 2, v: 3 } as const;
/** The scalar constants after the five i32 parameters, in order. */
const CONSTANTS = ["b1", "a1", "b2", "a2", "stepSize", "invRootC2", "eps"] as const;

/**
 * adam(w, dw, m, v, bytes, b1, a1, b2, a2, stepSize, invRootC2, eps): the byte addresses of the
 * range in each memory and its length in bytes (a multiple of 16).
 */
function adamFunc(float32: boolean): Func {
  const f = new Func([I32, I32, I32, I32, I32, ...CONSTANTS.map((): ValType => F64)]);
  const [W, DW, M, VV, BYTES] = [0, 1, 2, 3, 4];
  const i = f.local(I32);
  const k = Object.fromEntries(CONSTANTS.map((name) => [name, f.local(V128)])) as Record<
    typeof CONSTANTS[number],
    number
  >;
  const g = f.local(V128), mOld = f.local(V128), vOld = f.local(V128), wOld = f.local(V128);
  const lanes = [0, 1].map(() => ({ g: f.local(V128), m: f.local(V128), v: f.local(V128) }));
  const L = op.get, at = (base: number) => op.add(L(base), L(i));
  // The moments of two elements (g in lane form), rounded as stored when float32.
  const stored = (x: Code) => float32 ? f64x2.promoteLow(f64x2.demote(x)) : x;
  const moments = (lane: typeof lanes[number], mIn: Code, vIn: Code): Code => [
    ...op.set(lane.m, stored(f64x2.add(f64x2.mul(L(k.b1), mIn), f64x2.mul(L(k.a1), L(lane.g))))),
    ...op.set(
      lane.v,
      stored(f64x2.add(
        f64x2.mul(L(k.b2), vIn),
        f64x2.mul(f64x2.mul(L(k.a2), L(lane.g)), L(lane.g)),
      )),
    ),
  ];
  // w − (stepSize · m) / (√v · invRootC2 + ε), as the scalar loop groups it.
  const step = (wIn: Code, lane: typeof lanes[number]): Code =>
    f64x2.sub(
      wIn,
      f64x2.div(
        f64x2.mul(L(k.stepSize), L(lane.m)),
        f64x2.add(f64x2.mul(f64x2.sqrt(L(lane.v)), L(k.invRootC2)), L(k.eps)),
      ),
    );
  const body: Code = float32
    ? [
      ...op.set(g, inMemory.v128Load(MEM.dw, at(DW))),
      ...op.set(lanes[0].g, f64x2.promoteLow(L(g))),
      ...op.set(lanes[1].g, f64x2.promoteLow(high(L(g)))),
      ...op.set(mOld, inMemory.v128Load(MEM.m, at(M))),
      ...op.set(vOld, inMemory.v128Load(MEM.v, at(VV))),
      ...moments(lanes[0], f64x2.promoteLow(L(mOld)), f64x2.promoteLow(L(vOld))),
      ...moments(lanes[1], f64x2.promoteLow(high(L(mOld))), f64x2.promoteLow(high(L(vOld)))),
      ...inMemory.v128Store(
        MEM.m,
        at(M),
        joinLow(f64x2.demote(L(lanes[0].m)), f64x2.demote(L(lanes[1].m))),
      ),
      ...inMemory.v128Store(
        MEM.v,
        at(VV),
        joinLow(f64x2.demote(L(lanes[0].v)), f64x2.demote(L(lanes[1].v))),
      ),
      ...op.set(wOld, inMemory.v128Load(MEM.w, at(W))),
      ...inMemory.v128Store(
        MEM.w,
        at(W),
        joinLow(
          f64x2.demote(step(f64x2.promoteLow(L(wOld)), lanes[0])),
          f64x2.demote(step(f64x2.promoteLow(high(L(wOld))), lanes[1])),
        ),
      ),
    ]
    : [
      ...op.set(lanes[0].g, inMemory.v128Load(MEM.dw, at(DW))),
      ...moments(lanes[0], inMemory.v128Load(MEM.m, at(M)), inMemory.v128Load(MEM.v, at(VV))),
      ...inMemory.v128Store(MEM.m, at(M), L(lanes[0].m)),
      ...inMemory.v128Store(MEM.v, at(VV), L(lanes[0].v)),
      ...inMemory.v128Store(MEM.w, at(W), step(inMemory.v128Load(MEM.w, at(W)), lanes[0])),
    ];
  f.body = [
    ...CONSTANTS.flatMap((name, j) => op.set(k[name], op.f64x2Splat(L(5 + j)))),
    ...op.forLoop(i, op.i32(0), L(BYTES), op.i32(16), body),
  ];
  return f;
}

type AdamFn = (
  w: number,
  dw: number,
  m: number,
  v: number,
  bytes: number,
  ...constants: number[]
) => void;

interface Instance {
  memories: WebAssembly.Memory[];
  float32: boolean;
  adam: AdamFn;
}

// The last few instances (a worker or the main thread updates one set of buffers at a time).
const instances: Instance[] = [];
const modules = new Map<string, WebAssembly.Module>();

function instanceFor(memories: WebAssembly.Memory[], float32: boolean): AdamFn {
  const hit = instances.find((x) =>
    x.float32 === float32 && x.memories.every((m, j) => m === memories[j])
  );
  if (hit) return hit.adam;
  // Any shared memory fits imports of 0 to wasm32's most pages: one module per element type.
  const key = String(float32);
  let module = modules.get(key);
  if (!module) {
    const limits = memories.map(() => ({ minPages: 0, maxPages: 65536 }));
    module = new WebAssembly.Module(assembleImporting([adamFunc(float32)], { adam: 0 }, limits));
    modules.set(key, module);
  }
  const env = Object.fromEntries(memories.map((m, j) => [`m${j}`, m]));
  const adam = new WebAssembly.Instance(module, { env }).exports.adam as unknown as AdamFn;
  instances.unshift({ memories, float32, adam });
  if (instances.length > 4) instances.pop();
  return adam;
}

/** Adam's per-step constants, as `applyUpdate` folds them. */
export interface AdamConstants {
  /** β1. */
  b1: number;
  /** 1 − β1. */
  a1: number;
  /** β2. */
  b2: number;
  /** 1 − β2. */
  a2: number;
  /** lr / (1 − β1ᵗ). */
  stepSize: number;
  /** 1 / √(1 − β2ᵗ). */
  invRootC2: number;
  /** ε. */
  eps: number;
}

/**
 * Runs Adam on [start, start + count) for the longest count ≤ end − start that the SIMD loop
 * takes (a multiple of 4 float32 or 2 float64 elements), when all four arrays are of one float
 * type and live in WebAssembly memories this thread knows; the caller updates the rest.
 * @param k The step's constants.
 * @param w The parameters.
 * @param dw The gradient.
 * @param m The first moments.
 * @param v The second moments.
 * @param start The first index.
 * @param end One past the last index.
 * @returns The first index not updated (`start` when the arrays do not qualify).
 *
 * @example
 * ```ts
 * import { wasmAdam } from "./adam_wasm.ts";
 * import { sharedWasmArray } from "./wasm_arrays.ts";
 * const [w, dw, m, v] = [0, 1, 2, 3].map(() => sharedWasmArray("float32", 6));
 * dw.fill(0.5);
 * const k = { b1: 0.9, a1: 0.1, b2: 0.999, a2: 0.001, stepSize: 1, invRootC2: 1, eps: 0 };
 * console.log(wasmAdam(k, w, dw, m, v, 0, 6)); // 4: elements 4 and 5 are left to the caller
 * ```
 */
export function wasmAdam(
  k: AdamConstants,
  w: FloatArray,
  dw: FloatArray,
  m: FloatArray,
  v: FloatArray,
  start: number,
  end: number,
): number {
  const float32 = w instanceof Float32Array;
  if (
    dw instanceof Float32Array !== float32 || m instanceof Float32Array !== float32 ||
    v instanceof Float32Array !== float32
  ) {
    return start;
  }
  const arrays = [w, dw, m, v];
  const memories: WebAssembly.Memory[] = [];
  for (const a of arrays) {
    const memory = wasmMemoryOf(a);
    // The module imports shared memories (an unshared one, say a solo arena's, cannot link).
    if (memory === undefined || !(memory.buffer instanceof SharedArrayBuffer)) return start;
    memories.push(memory);
  }
  const per = float32 ? 4 : 2, size = w.BYTES_PER_ELEMENT;
  const count = Math.floor((end - start) / per) * per;
  if (count === 0) return start;
  const adam = instanceFor(memories, float32);
  const [aw, adw, am, av] = arrays.map((a) => a.byteOffset + start * size);
  adam(aw, adw, am, av, count * size, k.b1, k.a1, k.b2, k.a2, k.stepSize, k.invRootC2, k.eps);
  return start + count;
}
