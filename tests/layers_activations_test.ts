import {
  activateInPlace,
  type Activation,
  activationBackward,
  sigmoid,
} from "../layers/activations.ts";
import { assertAlmostEquals, assertEquals } from "./assert.ts";

const ACT: Record<Activation, (x: number) => number> = { tanh: Math.tanh, sigmoid };

for (const activation of ["tanh", "sigmoid"] as Activation[]) {
  Deno.test(`activateInPlace() and activationBackward() apply ${activation} to a run of an array`, () => {
    const xs = [-30, -2, -0.5, 0, 0.5, 2, 30];
    // Forward, on the run [1, 1 + xs.length) of a longer array: the ends stay untouched.
    const a = new Float64Array([7, ...xs, 9]);
    activateInPlace(a, 1, xs.length, activation);
    assertEquals([a[0], a[a.length - 1]], [7, 9]);
    xs.forEach((x, j) => assertEquals(a[1 + j], ACT[activation](x)));
    // Backward: dout * act'(x), written with y = act(x), against a central difference.
    const dout = new Float64Array([0, ...xs.map((_, j) => 0.5 + j), 0]);
    const out = new Float32Array(xs.length + 2).fill(-1);
    activationBackward(dout, 1, a, 1, out, 2, xs.length - 1, activation);
    assertEquals([out[0], out[1]], [-1, -1]);
    for (let j = 0; j < xs.length - 1; j++) {
      const h = 1e-6, x = xs[j];
      const slope = (ACT[activation](x + h) - ACT[activation](x - h)) / (2 * h);
      assertAlmostEquals(out[2 + j], dout[1 + j] * slope, 1e-5);
    }
  });
}
