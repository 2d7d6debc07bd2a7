import "./backend.ts";
import { affineForward } from "../layers/affine.ts";
import { relError } from "../layers/gradient_check.ts";
import { lstmBackward, lstmForward, lstmStepForward } from "../layers/lstm.ts";
import { Rng } from "../layers/random.ts";
import { rnnBackward, rnnForward, rnnStepForward } from "../layers/rnn.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
import { temporalSoftmaxLoss } from "../layers/temporal_softmax_loss.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";

/** Relative error normalised by the largest magnitude: robust to tiny entries. */
function scaledError(a: Tensor, b: Tensor): number {
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < a.size; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a.data[i] - b.data[i]));
    maxAbs = Math.max(maxAbs, Math.abs(b.data[i]));
  }
  return maxDiff / Math.max(maxAbs, 1e-30);
}

function inputs(dtype: FloatDType, k: number) {
  const rng = new Rng(7);
  const [n, t, d, h] = [3, 5, 8, 6];
  const scale = (x: Tensor<"float64">, s: number) => {
    for (let i = 0; i < x.size; i++) x.data[i] *= s;
    return x.astype(dtype);
  };
  return {
    x: scale(Tensor.randn([n, t, d], rng), 1),
    h0: scale(Tensor.randn([n, h], rng), 1),
    Wx: scale(Tensor.randn([d, k * h], rng), 1 / Math.sqrt(d)),
    Wh: scale(Tensor.randn([h, k * h], rng), 1 / Math.sqrt(h)),
    b: scale(Tensor.randn([k * h], rng), 0.1),
    dh: scale(Tensor.randn([n, t, h], rng), 1),
  };
}

Deno.test("float32 rnnForward()/rnnBackward() agree with float64 to ~1e-5", () => {
  const a = inputs("float32", 1), b = inputs("float64", 1);
  const [h32, c32] = rnnForward(a.x, a.h0, a.Wx, a.Wh, a.b);
  const [h64, c64] = rnnForward(b.x, b.h0, b.Wx, b.Wh, b.b);
  assertEquals(h32.dtype, "float32");
  assert(scaledError(h32, h64) < 1e-5, `h: ${scaledError(h32, h64)}`);
  const g32 = rnnBackward(a.dh, c32), g64 = rnnBackward(b.dh, c64);
  for (const k of ["dx", "dh0", "dWx", "dWh", "db"] as const) {
    assertEquals(g32[k].dtype, "float32");
    assert(scaledError(g32[k], g64[k]) < 1e-5, `${k}: ${scaledError(g32[k], g64[k])}`);
  }
});

Deno.test("float32 lstmForward()/lstmBackward() agree with float64 to ~1e-5", () => {
  const a = inputs("float32", 4), b = inputs("float64", 4);
  const [h32, c32] = lstmForward(a.x, a.h0, a.Wx, a.Wh, a.b);
  const [h64, c64] = lstmForward(b.x, b.h0, b.Wx, b.Wh, b.b);
  assert(scaledError(h32, h64) < 1e-5, `h: ${scaledError(h32, h64)}`);
  const g32 = lstmBackward(a.dh, c32), g64 = lstmBackward(b.dh, c64);
  for (const k of ["dx", "dh0", "dWx", "dWh", "db"] as const) {
    assert(scaledError(g32[k], g64[k]) < 1e-5, `${k}: ${scaledError(g32[k], g64[k])}`);
  }
});

Deno.test("float32 affineForward() and temporalSoftmaxLoss() agree with float64", () => {
  const rng = new Rng(8);
  const x = Tensor.randn([4, 7], rng), w = Tensor.randn([7, 3], rng), b = Tensor.randn([3], rng);
  const [o64] = affineForward(x, w, b);
  const [o32] = affineForward(x.astype("float32"), w.astype("float32"), b.astype("float32"));
  assert(relError(o32, o64) < 1e-5);
  const s = Tensor.randn([2, 3, 11], rng);
  const y = Tensor.fromValues([1, 2, 3, 4, 5, 6], [2, 3], "int32");
  const mask = Tensor.fromValues([1, 1, 0, 1, 0, 1], [2, 3], "int32");
  const [l64, d64] = temporalSoftmaxLoss(s, y, mask);
  const [l32, d32] = temporalSoftmaxLoss(s.astype("float32"), y, mask);
  assert(Math.abs(l32 - l64) / l64 < 1e-5);
  assert(scaledError(d32, d64) < 1e-5);
});

Deno.test("rnnForward() equals looping rnnStepForward() over time", () => {
  const a = inputs("float64", 1);
  const [h] = rnnForward(a.x, a.h0, a.Wx, a.Wh, a.b, "sigmoid");
  const [n, t, d] = a.x.shape, hd = a.h0.shape[1];
  let prev = a.h0;
  for (let s = 0; s < t; s++) {
    const xs = Tensor.zeros([n, d]);
    for (let i = 0; i < n; i++) {
      xs.data.set(a.x.data.subarray((i * t + s) * d, (i * t + s + 1) * d), i * d);
    }
    [prev] = rnnStepForward(xs, prev, a.Wx, a.Wh, a.b, "sigmoid");
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hd; j++) {
        assert(Math.abs(prev.data[i * hd + j] - h.data[(i * t + s) * hd + j]) < 1e-14);
      }
    }
  }
});

Deno.test("lstmForward() equals looping lstmStepForward() over time from c0 = 0", () => {
  const a = inputs("float64", 4);
  const [h] = lstmForward(a.x, a.h0, a.Wx, a.Wh, a.b);
  const [n, t, d] = a.x.shape, hd = a.h0.shape[1];
  let prevH = a.h0, prevC: Tensor<FloatDType> = Tensor.zeros([n, hd]);
  for (let s = 0; s < t; s++) {
    const xs = Tensor.zeros([n, d]);
    for (let i = 0; i < n; i++) {
      xs.data.set(a.x.data.subarray((i * t + s) * d, (i * t + s + 1) * d), i * d);
    }
    [prevH, prevC] = lstmStepForward(xs, prevH, prevC, a.Wx, a.Wh, a.b);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hd; j++) {
        assert(Math.abs(prevH.data[i * hd + j] - h.data[(i * t + s) * hd + j]) < 1e-14);
      }
    }
  }
});

Deno.test("layers reject wrong shapes, mixed dtypes and bad indices with clear messages", () => {
  const x = Tensor.zeros([2, 3]), h = Tensor.zeros([2, 4]);
  assertThrows(
    () => rnnStepForward(x, h, Tensor.zeros([3, 5]), Tensor.zeros([4, 4]), Tensor.zeros([4])),
    RangeError,
    "Invalid shape for Wx: expected [3, 4], got [3,5]",
  );
  assertThrows(
    () =>
      rnnStepForward(
        x.astype("float32"),
        h,
        Tensor.zeros([3, 4]),
        Tensor.zeros([4, 4]),
        Tensor.zeros([4]),
      ),
    TypeError,
    "Mixed dtypes",
  );
  assertThrows(
    () =>
      rnnStepForward(
        x,
        h,
        Tensor.zeros([3, 4]),
        Tensor.zeros([4, 4]),
        Tensor.zeros([4]),
        "relu" as "tanh",
      ),
    RangeError,
    'Invalid activation: expected "tanh" or "sigmoid", got "relu"',
  );
  assertThrows(
    () =>
      temporalSoftmaxLoss(
        Tensor.zeros([1, 1, 3]),
        Tensor.fromValues([3], [1, 1], "int32"),
        Tensor.fromValues([1], [1, 1], "int32"),
      ),
    RangeError,
    "Invalid target index 3",
  );
});
