import { type AdamConstants, wasmAdam } from "../layers/kernels/adam_wasm.ts";
import {
  adoptWasmMemory,
  registerWasmMemory,
  sharedWasmArray,
  wasmMemoryOf,
} from "../layers/kernels/wasm_arrays.ts";
import { addColumnBlock, copyColumnBlock } from "../layers/kernels/copy_wasm.ts";
import { blockSumsOfSquares } from "../layers/kernels/sum_squares_wasm.ts";
import { splitRange, sumSquares } from "../workers/sharding.ts";
import { applyUpdate, optimDefaults } from "../layers/optim.ts";
import { allocArray, type FloatArray, type FloatDType } from "../layers/tensor.ts";
import { Rng } from "../layers/random.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

/** Gradients of every scale, with zeros, signs and a few huge and tiny values. */
function gradients(n: number, seed: number, step: number): number[] {
  const rng = new Rng(seed + 7919 * step);
  return Array.from({ length: n }, (_, i) => {
    const u = rng.random();
    if (i % 17 === 0) return 0;
    if (i % 29 === 0) return (u - 0.5) * 1e30;
    if (i % 31 === 0) return (u - 0.5) * 1e-30;
    return (u - 0.5) * 10 ** Math.floor(u * 8 - 6);
  });
}

function sameBits(a: FloatArray, b: FloatArray): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) return false;
  }
  return true;
}

for (const dtype of ["float32", "float64"] as FloatDType[]) {
  Deno.test(`adam: the SIMD loop gives the scalar loop's bits (${dtype})`, () => {
    // 103 elements, updated over ranges that start and end off the SIMD width.
    const n = 103, c = optimDefaults("adam", { learningRate: 3e-3 });
    const wasm = [0, 1, 2, 3].map(() => sharedWasmArray(dtype, n));
    const plain = [0, 1, 2, 3].map(() => allocArray(dtype, n));
    const init = gradients(n, 1, 0);
    wasm[0].set(init);
    plain[0].set(init);
    const ranges = [[0, 50], [50, 51], [51, 103]];
    for (let t = 1; t <= 40; t++) {
      const g = gradients(n, 2, t);
      wasm[1].set(g);
      plain[1].set(g);
      for (const [start, end] of ranges) {
        applyUpdate("adam", c, t, [wasm[2], wasm[3]], wasm[0], wasm[1], start, end);
        applyUpdate("adam", c, t, [plain[2], plain[3]], plain[0], plain[1], start, end);
      }
    }
    ["w", "dw", "m", "v"].forEach((name, i) => {
      assert(sameBits(wasm[i], plain[i]), `${dtype} ${name} differs`);
    });
  });
}

Deno.test("wasmAdam updates only what its SIMD loop takes, and only arrays in its memories", () => {
  const k: AdamConstants = {
    b1: 0.9,
    a1: 0.1,
    b2: 0.999,
    a2: 0.001,
    stepSize: 0.01,
    invRootC2: 1,
    eps: 1e-8,
  };
  const [w, dw, m, v] = [0, 1, 2, 3].map(() => sharedWasmArray("float32", 10));
  dw.fill(1);
  // From 1 to 10: 8 elements (two f32x4), elements 0 and 9 stay.
  assertEquals(wasmAdam(k, w, dw, m, v, 1, 10), 9);
  assertEquals([w[0], w[9]], [0, 0]);
  assert(w.subarray(1, 9).every((x) => x < 0), "the SIMD range moved against the gradient");
  // A plain array, or mixed element types, is left to the caller.
  assertEquals(wasmAdam(k, new Float32Array(10), dw, m, v, 0, 10), 0);
  assertEquals(wasmAdam(k, w, dw, sharedWasmArray("float64", 10), v, 0, 10), 0);
  // Fewer elements than one SIMD step.
  assertEquals(wasmAdam(k, w, dw, m, v, 2, 5), 2);
  // An unshared memory (a solo arena's) cannot link: left to the caller, no error.
  const unshared = new WebAssembly.Memory({ initial: 1 });
  registerWasmMemory(unshared);
  assertEquals(wasmAdam(k, w, dw, new Float32Array(unshared.buffer, 0, 10), v, 0, 10), 0);
  // A shared memory that may grow (a team's workspace) links.
  const growable = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
  registerWasmMemory(growable);
  assertEquals(wasmAdam(k, w, dw, new Float32Array(growable.buffer, 0, 10), v, 0, 10), 8);
});

Deno.test("a worker's view of a wasm-backed array finds its memory once adopted", () => {
  const a = sharedWasmArray("float32", 100);
  const memory = wasmMemoryOf(a)!;
  assert(memory instanceof WebAssembly.Memory);
  // What a worker receives: another SharedArrayBuffer object over the same memory.
  const received = new Float32Array(memory.buffer, 16, 8);
  adoptWasmMemory(received, memory);
  assertEquals(wasmMemoryOf(received), memory);
  assertEquals(wasmMemoryOf(new Float32Array(8)), undefined);
  assertThrows(
    () => adoptWasmMemory(new Float32Array(new SharedArrayBuffer(64)), memory),
    RangeError,
    "not a shared view of a memory of its size",
  );
});

Deno.test("copyColumnBlock copies a column block between memories as the plain loop does", () => {
  const rows = 7, ld = 24, width = 8, j0 = 8;
  for (const dtype of ["float32", "float64"] as FloatDType[]) {
    const src = sharedWasmArray(dtype, rows * ld);
    src.forEach((_, i) => src[i] = i + 0.5);
    const want = allocArray(dtype, 3 + rows * width);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < width; c++) want[3 + r * width + c] = src[r * ld + j0 + c];
    }
    // Into another shared memory, into an unshared one (a solo arena's), and a plain array.
    const unshared = new WebAssembly.Memory({ initial: 1 });
    registerWasmMemory(unshared);
    const size = dtype === "float32" ? 4 : 8;
    const targets = [
      sharedWasmArray(dtype, 3 + rows * width),
      dtype === "float32"
        ? new Float32Array(unshared.buffer, 16, 3 + rows * width)
        : new Float64Array(unshared.buffer, 16, 3 + rows * width),
      allocArray(dtype, 3 + rows * width),
    ];
    for (const dst of targets) {
      copyColumnBlock(src, ld, rows, j0, width, dst, 3);
      assert(sameBits(dst, want), `${dtype}: ${dst.buffer.constructor.name} at ${size}`);
    }
  }
});

Deno.test("addColumnBlock adds a contiguous matrix onto a column block as the plain loop does", () => {
  const rows = 5, ld = 20, width = 8, at = 4;
  const rng = new Rng(5);
  for (const dtype of ["float32", "float64"] as FloatDType[]) {
    const src = sharedWasmArray(dtype, 2 + rows * width);
    src.forEach((_, i) => src[i] = rng.randn() * 1e3);
    const start = allocArray(dtype, rows * ld).map(() => rng.randn() / 7);
    const want = allocArray(dtype, rows * ld);
    want.set(start);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < width; c++) want[at + r * ld + c] += src[2 + r * width + c];
    }
    // Onto the same shared memory, onto an unshared one (a solo arena's), onto a plain array,
    // and with a width of 3 elements (not whole vectors: the plain loop).
    const unshared = new WebAssembly.Memory({ initial: 1 });
    registerWasmMemory(unshared);
    const targets = [
      sharedWasmArray(dtype, rows * ld),
      dtype === "float32"
        ? new Float32Array(unshared.buffer, 16, rows * ld)
        : new Float64Array(unshared.buffer, 16, rows * ld),
      allocArray(dtype, rows * ld),
    ];
    for (const dst of targets) {
      dst.set(start);
      addColumnBlock(src, 2, rows, width, dst, ld, at);
      assert(sameBits(dst, want), `${dtype}: ${dst.buffer.constructor.name}`);
      assert(!sameBits(dst, start), "something was added");
    }
    const narrow = sharedWasmArray(dtype, rows * ld), wantNarrow = allocArray(dtype, rows * ld);
    narrow.set(start);
    wantNarrow.set(start);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < 3; c++) wantNarrow[at + r * ld + c] += src[2 + r * 3 + c];
    }
    addColumnBlock(src, 2, rows, 3, narrow, ld, at);
    assert(sameBits(narrow, wantNarrow), `${dtype}: width 3`);
  }
});

Deno.test("blockSumsOfSquares() equals sumSquares() per block bitwise, four blocks at a time or one", () => {
  const rng = new Rng(21);
  // Lengths that leave tails after the common whole vectors, blocks that start off 16 bytes,
  // block counts that leave 1–3 blocks to the one-at-a-time loop, values over 60 decades.
  for (const [n, count] of [[100_003, 64], [1_001, 7], [37, 5], [9, 3], [4, 4]]) {
    const wasm = sharedWasmArray("float32", n);
    for (let i = 0; i < n; i++) {
      wasm[i] = (i % 97 === 0 ? 0 : rng.randn()) * 10 ** (rng.random() * 60 - 30);
    }
    const blocks = splitRange(n, count), want = new Float64Array(count + 1);
    blocks.forEach((b, k) => want[k + 1] = sumSquares(wasm, b.start, b.end));
    for (const g of [wasm, Float32Array.from(wasm), Float64Array.from(wasm)]) {
      const got = new Float64Array(count + 1);
      blockSumsOfSquares(g, blocks, got, 1);
      assertEquals(got.map((v, k) => Object.is(v, want[k]) ? 0 : 1).indexOf(1), -1, `n ${n}`);
    }
  }
});
