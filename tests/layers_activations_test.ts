import { type Activation, sigmoid } from "../layers/activations.ts";
import { tsElementwise } from "../layers/kernels/elementwise.ts";
import { wasmElementwiseArena } from "../layers/kernels/elementwise_wasm.ts";
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";

const ACT: Record<Activation, (x: number) => number> = { tanh: Math.tanh, sigmoid };

for (const activation of ["tanh", "sigmoid"] as Activation[]) {
  Deno.test(`activate() and activationBackward() apply ${activation} to a run of an array`, () => {
    const xs = [-30, -2, -0.5, 0, 0.5, 2, 30];
    // Forward, on the run [1, 1 + xs.length) of a longer array: the ends stay untouched.
    const a = new Float64Array([7, ...xs, 9]);
    tsElementwise.activate(a, 1, xs.length, activation);
    assertEquals([a[0], a[a.length - 1]], [7, 9]);
    xs.forEach((x, j) => assertEquals(a[1 + j], ACT[activation](x)));
    // Backward: dout * act'(x), written with y = act(x), against a central difference.
    const dout = new Float64Array([0, ...xs.map((_, j) => 0.5 + j), 0]);
    const out = new Float32Array(xs.length + 2).fill(-1);
    tsElementwise.activationBackward(dout, 1, a, 1, out, 2, xs.length - 1, activation);
    assertEquals([out[0], out[1]], [-1, -1]);
    for (let j = 0; j < xs.length - 1; j++) {
      const h = 1e-6, x = xs[j];
      const slope = (ACT[activation](x + h) - ACT[activation](x - h)) / (2 * h);
      assertAlmostEquals(out[2 + j], dout[1 + j] * slope, 1e-5);
    }
  });

  Deno.test(`the WebAssembly activate() and activationBackward() of ${activation} match Math`, () => {
    const arena = wasmElementwiseArena();
    assert(arena, "WebAssembly SIMD is available");
    const xs = [-30, -2, -0.5, 0, 0.5, 2, 30];
    const [a, dout, out] = arena.carve([xs.length, xs.length, xs.length]);
    a.set(xs);
    dout.set(xs.map((_, j) => 0.5 + j));
    const ref = Float64Array.from(a);
    arena.activate(a, 0, xs.length, activation);
    tsElementwise.activate(ref, 0, xs.length, activation);
    xs.forEach((_, j) => assertAlmostEquals(a[j], ref[j], 4e-7 * Math.max(1, Math.abs(ref[j]))));
    const want = new Float64Array(xs.length);
    tsElementwise.activationBackward(dout, 0, a, 0, want, 0, xs.length, activation);
    arena.activationBackward(dout, 0, a, 0, out, 0, xs.length, activation);
    xs.forEach((_, j) => assertAlmostEquals(out[j], want[j], 4e-7 * Math.max(1, want[j])));
  });
}
