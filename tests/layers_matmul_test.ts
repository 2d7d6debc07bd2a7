import { mat, matmul, matmulAdd, T } from "../layers/kernels/matmul.ts";
import { setKernels } from "../layers/kernels/mod.ts";
import { tsKernels } from "../layers/kernels/ts.ts";
import type { Kernels } from "../layers/kernels/types.ts";
import { assertEquals, assertThrows } from "./assert.ts";

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
