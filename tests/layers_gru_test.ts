/**
 * The GRU layers: hand-computed small cases (numpy, the equations of PyTorch's nn.GRU written
 * out), numeric gradients of every output with respect to every input, float32 against float64,
 * and the sequence against the looped step.
 * @module
 */
import "./backend.ts";
import { evalNumericalGradientArray, relError } from "../layers/gradient_check.ts";
import { gruBackward, gruForward, gruStepBackward, gruStepForward } from "../layers/gru.ts";
import { Rng } from "../layers/random.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
import { assert, assertEquals, assertThrows, scaledError } from "./assert.ts";
import { seedVectors } from "./seed_vectors.ts";

type F64 = Tensor<"float64">;
const lin = (a: number, b: number, shape: number[]) => Tensor.linspace(a, b, shape);

// The seed file has no GRU bounds; the LSTM's (the other gated cell) are the ones to meet.
const bounds = seedVectors.gradient_checks;

Deno.test("gruStepForward() matches a hand-computed case (r, z, n as nn.GRU)", () => {
  // numpy: r = σ(ax_r + ah_r), z = σ(ax_z + ah_z), n = tanh(ax_n + r ah_n), h = (1-z) n + z h.
  const [nextH] = gruStepForward(
    lin(-0.4, 1.2, [3, 4]),
    lin(-0.3, 0.7, [3, 5]),
    lin(-2.1, 1.3, [4, 15]),
    lin(-0.7, 2.2, [5, 15]),
    lin(0.3, 0.7, [15]),
    lin(-0.2, 0.1, [15]),
  );
  const expected = [
    -0.0478649955,
    0.0103515739,
    0.0679575278,
    0.1249385478,
    0.181280287,
    0.2506767557,
    0.2874475993,
    0.327928265,
    0.3726078906,
    0.4214952692,
    0.5130824344,
    0.5619582722,
    0.6074417917,
    0.6590506399,
    0.7173254743,
  ];
  assert(relError(nextH, expected) < 1e-8, `rel error ${relError(nextH, expected)}`);
});

Deno.test("gruForward() matches a hand-computed case over three steps", () => {
  const [h] = gruForward(
    lin(-0.4, 0.6, [2, 3, 5]),
    lin(-0.4, 0.8, [2, 4]),
    lin(-0.2, 0.9, [5, 12]),
    lin(-0.3, 0.6, [4, 12]),
    lin(0.2, 0.7, [12]),
    lin(-0.1, 0.3, [12]),
  );
  const expected = [
    -0.1542939978,
    -0.0541034854,
    0.0490333257,
    0.1550682084,
    0.0941494464,
    0.1620762836,
    0.2332396005,
    0.3077089526,
    0.3025277647,
    0.3480984978,
    0.3964580726,
    0.4480732892,
    0.4242481853,
    0.5513186307,
    0.6852396449,
    0.8255305479,
    0.5190305168,
    0.6161736503,
    0.7247736751,
    0.8441641515,
    0.5839186575,
    0.6605871892,
    0.7518835732,
    0.8570839867,
  ];
  assertEquals(h.shape, [2, 3, 4]);
  assert(relError(h, expected) < 1e-8, `rel error ${relError(h, expected)}`);
});

/** Checks every named analytic gradient against the numeric gradient of `forward`. */
function check(
  what: string,
  bound: number,
  forward: () => Tensor<"float64">,
  dout: F64,
  pairs: Array<[string, F64, F64]>,
): void {
  for (const [name, x, analytic] of pairs) {
    const err = relError(evalNumericalGradientArray(forward, x, dout), analytic);
    assert(err < bound, `${what}: d${name} rel error ${err} >= ${bound}`);
  }
}

Deno.test("gruStepBackward() matches numeric gradients", () => {
  const rng = new Rng(231);
  const [n, d, h] = [4, 5, 6];
  const x = Tensor.randn([n, d], rng), prevH = Tensor.randn([n, h], rng);
  const Wx = Tensor.randn([d, 3 * h], rng), Wh = Tensor.randn([h, 3 * h], rng);
  const bx = Tensor.randn([3 * h], rng), bh = Tensor.randn([3 * h], rng);
  const dnext = Tensor.randn([n, h], rng);
  const fwd = () => gruStepForward(x, prevH, Wx, Wh, bx, bh)[0];
  const g = gruStepBackward(dnext, gruStepForward(x, prevH, Wx, Wh, bx, bh)[1]);
  check("gru step", bounds.lstm_step_backward, fwd, dnext, [
    ["x", x, g.dx],
    ["prevH", prevH, g.dprevH],
    ["Wx", Wx, g.dWx],
    ["Wh", Wh, g.dWh],
    ["bx", bx, g.dbx],
    ["bh", bh, g.dbh],
  ]);
});

Deno.test("gruBackward() matches numeric gradients", () => {
  const rng = new Rng(232);
  const [n, t, d, h] = [2, 10, 3, 5];
  const x = Tensor.randn([n, t, d], rng), h0 = Tensor.randn([n, h], rng);
  const Wx = Tensor.randn([d, 3 * h], rng), Wh = Tensor.randn([h, 3 * h], rng);
  const bx = Tensor.randn([3 * h], rng), bh = Tensor.randn([3 * h], rng);
  const dout = Tensor.randn([n, t, h], rng);
  const fwd = () => gruForward(x, h0, Wx, Wh, bx, bh)[0];
  const g = gruBackward(dout, gruForward(x, h0, Wx, Wh, bx, bh)[1]);
  check("gru", bounds.lstm_backward, fwd, dout, [
    ["x", x, g.dx],
    ["h0", h0, g.dh0],
    ["Wx", Wx, g.dWx],
    ["Wh", Wh, g.dWh],
    ["bx", bx, g.dbx],
    ["bh", bh, g.dbh],
  ]);
});

function inputs<D extends FloatDType>(dtype: D) {
  const rng = new Rng(7);
  const [n, t, d, h] = [3, 5, 8, 6];
  const scaled = (shape: number[], s: number) => {
    const x = Tensor.randn(shape, rng);
    for (let i = 0; i < x.size; i++) x.data[i] *= s;
    return x.astype(dtype);
  };
  return {
    x: scaled([n, t, d], 1),
    h0: scaled([n, h], 1),
    Wx: scaled([d, 3 * h], 1 / Math.sqrt(d)),
    Wh: scaled([h, 3 * h], 1 / Math.sqrt(h)),
    bx: scaled([3 * h], 0.1),
    bh: scaled([3 * h], 0.1),
    dh: scaled([n, t, h], 1),
  };
}

Deno.test("float32 gruForward()/gruBackward() agree with float64 to ~1e-5", () => {
  const a = inputs("float32"), b = inputs("float64");
  const [h32, c32] = gruForward(a.x, a.h0, a.Wx, a.Wh, a.bx, a.bh);
  const [h64, c64] = gruForward(b.x, b.h0, b.Wx, b.Wh, b.bx, b.bh);
  assertEquals(h32.dtype, "float32");
  assert(scaledError(h32.data, h64.data) < 1e-5, `h: ${scaledError(h32.data, h64.data)}`);
  const g32 = gruBackward(a.dh, c32), g64 = gruBackward(b.dh, c64);
  for (const k of ["dx", "dh0", "dWx", "dWh", "dbx", "dbh"] as const) {
    assertEquals(g32[k].dtype, "float32");
    assert(
      scaledError(g32[k].data, g64[k].data) < 1e-5,
      `${k}: ${scaledError(g32[k].data, g64[k].data)}`,
    );
  }
});

Deno.test("gruForward() equals looping gruStepForward() over time", () => {
  const a = inputs("float64");
  const [h] = gruForward(a.x, a.h0, a.Wx, a.Wh, a.bx, a.bh);
  const [n, t, d] = a.x.shape, hd = a.h0.shape[1];
  let prevH = a.h0;
  for (let s = 0; s < t; s++) {
    const xs = Tensor.zeros([n, d]);
    for (let i = 0; i < n; i++) {
      xs.data.set(a.x.data.subarray((i * t + s) * d, (i * t + s + 1) * d), i * d);
    }
    [prevH] = gruStepForward(xs, prevH, a.Wx, a.Wh, a.bx, a.bh);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hd; j++) {
        assert(Math.abs(prevH.data[i * hd + j] - h.data[(i * t + s) * hd + j]) < 1e-14);
      }
    }
  }
});

Deno.test("the GRU layers reject wrong shapes and mixed dtypes, naming the argument", () => {
  const a = inputs("float64");
  assertThrows(
    () => gruForward(a.x, a.h0, a.Wx, a.Wh, Tensor.zeros([6]), a.bh),
    RangeError,
    "Invalid shape for bx: expected [18], got [6]",
  );
  assertThrows(
    () => gruStepForward(Tensor.zeros([3, 8]), a.h0, a.Wx, a.Wh.astype("float32"), a.bx, a.bh),
    TypeError,
    "Mixed dtypes: Wh is float32 but x is float64",
  );
  const [h, cache] = gruForward(a.x, a.h0, a.Wx, a.Wh, a.bx, a.bh);
  assertThrows(
    () => gruBackward(Tensor.zeros([h.shape[0], h.shape[1] + 1, h.shape[2]]), cache),
    RangeError,
    "Invalid shape for dh",
  );
});
