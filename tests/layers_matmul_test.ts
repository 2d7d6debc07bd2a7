import {
  BLOCKING_LIMITS,
  columnBlockWidth,
  mat,
  matmul,
  matmulAdd,
  matmulColumnBlocks,
  SMALL_GEMM_MNK,
  T,
} from "../layers/kernels/matmul.ts";
import { setKernels } from "../layers/kernels/mod.ts";
import { tsKernels } from "../layers/kernels/ts.ts";
import type { Kernels } from "../layers/kernels/types.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

/** Runs `f` on kernels that record each gemm call's arguments, then run it on ts. */
function recordGemm(f: () => void): unknown[][] {
  const calls: unknown[][] = [];
  const spy: Kernels = {
    name: "ts",
    gemm(...args) {
      calls.push(args);
      tsKernels.gemm(...args);
    },
  };
  const previous = setKernels(spy);
  try {
    f();
  } finally {
    setKernels(previous);
  }
  return calls;
}

Deno.test("matmul() and matmulAdd() make the one gemm call their operands describe", () => {
  // A (3 x 2) stored transposed (2 x 3) at offset 1 with ld 4; B (2 x 5) at offset 2, ld 6;
  // C (3 x 5) at offset 3, ld 7.
  const a = new Float64Array(12), b = new Float64Array(20), c = new Float64Array(24);
  const calls = recordGemm(() => {
    matmul(mat(c, 3, 5, 3, 7), T(mat(a, 2, 3, 1, 4)), mat(b, 2, 5, 2, 6));
    matmulAdd(mat(c, 3, 5, 3, 7), T(mat(a, 2, 3, 1, 4)), T(T(mat(b, 2, 5, 2, 6))));
    matmulAdd(mat(c, 2, 2), mat(a, 2, 3), T(mat(b, 2, 3)));
  });
  assertEquals(calls, [
    [true, false, 3, 5, 2, 1, a, 1, 4, b, 2, 6, 0, c, 3, 7],
    [true, false, 3, 5, 2, 1, a, 1, 4, b, 2, 6, 1, c, 3, 7],
    [false, true, 2, 2, 3, 1, a, 0, 3, b, 0, 3, 1, c, 0, 2],
  ]);
});

Deno.test("matmul() overwrites and matmulAdd() accumulates a · b", () => {
  const x = new Float32Array([1, 2, 3, 4, 5, 6]); // (2, 3)
  const c = new Float32Array(4).fill(NaN);
  matmul(mat(c, 2, 2), mat(x, 2, 3), T(mat(x, 2, 3))); // x · xᵀ, NaN garbage never read
  assertEquals(Array.from(c), [14, 32, 32, 77]);
  matmulAdd(mat(c, 2, 2), mat(x, 2, 3), T(mat(x, 2, 3)));
  assertEquals(Array.from(c), [28, 64, 64, 154]);
});

Deno.test("matmul() rejects shapes that do not fit, naming them", () => {
  const x = new Float64Array(64);
  assertThrows(
    () => matmul(mat(x, 3, 2), mat(x, 3, 4), mat(x, 5, 2)),
    RangeError,
    "Cannot multiply matrices: 3 x 4 · 5 x 2 into 3 x 2: the inner dimensions differ",
  );
  assertThrows(
    () => matmulAdd(mat(x, 3, 3), mat(x, 3, 4), T(mat(x, 2, 4))),
    RangeError,
    "3 x 4 · 4 x 2 (transposed) into 3 x 3: the result must be 3 x 2",
  );
  assertThrows(
    () => matmul(T(mat(x, 2, 3)), mat(x, 3, 4), mat(x, 4, 2)),
    RangeError,
    "the result cannot be a transposed view",
  );
});

Deno.test("matmulColumnBlocks() makes one gemm call per block of columns, slicing b by columns or by stored rows", () => {
  // A (2 x 3); B (3 x 4) row-major (ld 4) and the same B as a transposed view of (4 x 3).
  const a = new Float64Array(6), b = new Float64Array(12), c = new Float64Array(8);
  const calls = recordGemm(() => {
    matmulColumnBlocks(mat(c, 2, 4), mat(a, 2, 3), mat(b, 3, 4), 2, 1);
    matmulColumnBlocks(mat(c, 2, 4), mat(a, 2, 3), T(mat(b, 4, 3)), 2, 0);
    matmulColumnBlocks(mat(c, 2, 4), mat(a, 2, 3), mat(b, 3, 4), 4, 0); // one block: one call
  });
  assertEquals(calls, [
    [false, false, 2, 2, 3, 1, a, 0, 3, b, 0, 4, 1, c, 0, 4],
    [false, false, 2, 2, 3, 1, a, 0, 3, b, 2, 4, 1, c, 2, 4],
    [false, true, 2, 2, 3, 1, a, 0, 3, b, 0, 3, 0, c, 0, 4],
    [false, true, 2, 2, 3, 1, a, 0, 3, b, 6, 3, 0, c, 2, 4],
    [false, false, 2, 4, 3, 1, a, 0, 3, b, 0, 4, 0, c, 0, 4],
  ]);
});

Deno.test("matmulColumnBlocks() computes a · b (+ c) as one matmul does", () => {
  const a = Float64Array.from({ length: 3 * 5 }, (_, i) => Math.sin(i));
  const b = Float64Array.from({ length: 5 * 8 }, (_, i) => Math.cos(i));
  for (const transposed of [false, true]) {
    const bm = transposed ? T(mat(b, 8, 5)) : mat(b, 5, 8);
    const want = Float64Array.from({ length: 24 }, (_, i) => i);
    matmulAdd(mat(want, 3, 8), mat(a, 3, 5), bm);
    for (const width of [1, 2, 4]) {
      const got = Float64Array.from({ length: 24 }, (_, i) => i);
      matmulColumnBlocks(mat(got, 3, 8), mat(a, 3, 5), bm, width, 1);
      for (let i = 0; i < 24; i++) {
        assert(Math.abs(got[i] - want[i]) < 1e-12, `width ${width}: ${got[i]} vs ${want[i]}`);
      }
    }
  }
  assertThrows(
    () => matmulColumnBlocks(mat(new Float64Array(24), 3, 8), mat(a, 3, 5), mat(b, 5, 8), 3, 0),
    RangeError,
    "Cannot cut 8 columns into blocks of 3",
  );
});

Deno.test("columnBlockWidth() keeps blocks within the small-GEMM size, or makes one call", () => {
  // The LSTM's recurrent step at H = 512 (gates 2048 wide).
  assertEquals(columnBlockWidth(6, 2048, 512, false), 256);
  assertEquals(columnBlockWidth(25, 2048, 512, false), 64);
  assertEquals(columnBlockWidth(100, 2048, 512, false), 2048); // 16 < the column-slice minimum
  assertEquals(columnBlockWidth(25, 512, 2048, true), 16);
  assertEquals(columnBlockWidth(100, 512, 2048, true), 512); // 4 < the row-slice minimum
  assertEquals(columnBlockWidth(6, 512, 512, true), 512); // b of 2^18 elements: one call
  assertEquals(columnBlockWidth(1, 32, 8, false), 32); // never one block of all columns
  for (const [m, n, k, tr] of [[6, 2048, 512, false], [13, 512, 2048, true]] as const) {
    const w = columnBlockWidth(m, n, k, tr);
    assert(n % w === 0 && m * w * k <= SMALL_GEMM_MNK, `${m} ${n} ${k}: ${w}`);
    assert(w >= (tr ? BLOCKING_LIMITS.rowSlicesMinWidth : BLOCKING_LIMITS.columnSlicesMinWidth));
  }
});
