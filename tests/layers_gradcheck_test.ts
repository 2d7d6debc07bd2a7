import "./backend.ts";
import type { Activation } from "../layers/activations.ts";
import { affineBackward, affineForward } from "../layers/affine.ts";
import {
  evalNumericalGradient,
  evalNumericalGradientArray,
  relError,
} from "../layers/gradient_check.ts";
import { lstmBackward, lstmForward, lstmStepBackward, lstmStepForward } from "../layers/lstm.ts";
import { Rng } from "../layers/random.ts";
import { rnnBackward, rnnForward, rnnStepBackward, rnnStepForward } from "../layers/rnn.ts";
import { Tensor } from "../layers/tensor.ts";
import { temporalAffineBackward, temporalAffineForward } from "../layers/temporal_affine.ts";
import { temporalSoftmaxLoss } from "../layers/temporal_softmax_loss.ts";
import { wordEmbeddingBackward, wordEmbeddingForward } from "../layers/word_embedding.ts";
import { assert, assertEquals } from "./assert.ts";
import { seedVectors } from "./seed_vectors.ts";

type F64 = Tensor<"float64">;
const bounds = seedVectors.gradient_checks;

/** Checks every named analytic gradient against the numeric gradient of `forward`. */
function check(
  what: string,
  bound: number,
  forward: () => Tensor<"float64">,
  dout: F64,
  inputs: Record<string, F64>,
  analytic: Record<string, F64>,
) {
  for (const [name, x] of Object.entries(inputs)) {
    const num = evalNumericalGradientArray(() => forward(), x, dout);
    const err = relError(num, analytic[name]);
    assert(err < bound, `${what}: d${name} rel error ${err} >= ${bound}`);
  }
}

// Not in the seed file; the exercise accepts rel errors below 1e-8 for affine layers.
Deno.test("affineBackward() matches numeric gradients", () => {
  const rng = new Rng(1);
  const x = Tensor.randn([10, 2, 3], rng),
    w = Tensor.randn([6, 5], rng),
    b = Tensor.randn([5], rng);
  const dout = Tensor.randn([10, 5], rng);
  const [, cache] = affineForward(x, w, b);
  const { dx, dw, db } = affineBackward(dout, cache);
  check("affine", 1e-8, () => affineForward(x, w, b)[0], dout, { x, w, b }, {
    x: dx,
    w: dw,
    b: db,
  });
});

Deno.test("affineForward() and affineBackward() take an empty batch (N = 0)", () => {
  const rng = new Rng(2);
  const w = Tensor.randn([6, 5], rng), b = Tensor.randn([5], rng);
  const [out, cache] = affineForward(Tensor.zeros([0, 2, 3]), w, b);
  assertEquals(out.shape, [0, 5]);
  const { dx, dw, db } = affineBackward(Tensor.zeros([0, 5]), cache);
  assertEquals(dx.shape, [0, 2, 3]);
  assertEquals(dw.shape, [6, 5]);
  assertEquals(Array.from(dw.data), new Array(30).fill(0));
  assertEquals(Array.from(db.data), new Array(5).fill(0));
});

for (const activation of ["tanh", "sigmoid"] as Activation[]) {
  Deno.test(`rnnStepBackward() matches numeric gradients (${activation})`, () => {
    const rng = new Rng(231);
    const [n, d, h] = [4, 5, 6];
    const x = Tensor.randn([n, d], rng), prevH = Tensor.randn([n, h], rng);
    const Wx = Tensor.randn([d, h], rng),
      Wh = Tensor.randn([h, h], rng),
      b = Tensor.randn([h], rng);
    const dnext = Tensor.randn([n, h], rng);
    const fwd = () => rnnStepForward(x, prevH, Wx, Wh, b, activation)[0];
    const [, cache] = rnnStepForward(x, prevH, Wx, Wh, b, activation);
    const g = rnnStepBackward(dnext, cache);
    check(
      `rnn step (${activation})`,
      bounds.rnn_step_backward,
      fwd,
      dnext,
      { x, prevH, Wx, Wh, b },
      {
        x: g.dx,
        prevH: g.dprevH,
        Wx: g.dWx,
        Wh: g.dWh,
        b: g.db,
      },
    );
  });

  Deno.test(`rnnBackward() matches numeric gradients (${activation})`, () => {
    const rng = new Rng(232);
    const [n, d, t, h] = [2, 3, 10, 5];
    const x = Tensor.randn([n, t, d], rng), h0 = Tensor.randn([n, h], rng);
    const Wx = Tensor.randn([d, h], rng),
      Wh = Tensor.randn([h, h], rng),
      b = Tensor.randn([h], rng);
    const dout = Tensor.randn([n, t, h], rng);
    const fwd = () => rnnForward(x, h0, Wx, Wh, b, activation)[0];
    const [, cache] = rnnForward(x, h0, Wx, Wh, b, activation);
    const g = rnnBackward(dout, cache);
    check(`rnn (${activation})`, bounds.rnn_backward, fwd, dout, { x, h0, Wx, Wh, b }, {
      x: g.dx,
      h0: g.dh0,
      Wx: g.dWx,
      Wh: g.dWh,
      b: g.db,
    });
  });
}

Deno.test("wordEmbeddingBackward() matches numeric gradients", () => {
  const rng = new Rng(233);
  const [n, t, v, d] = [50, 3, 5, 6];
  const x = Tensor.zeros([n, t], "int32");
  for (let i = 0; i < x.size; i++) x.data[i] = rng.randint(v);
  const W = Tensor.randn([v, d], rng), dout = Tensor.randn([n, t, d], rng);
  const [, cache] = wordEmbeddingForward(x, W);
  const { dW } = wordEmbeddingBackward(dout, cache);
  check(
    "word embedding",
    bounds.word_embedding_backward,
    () => wordEmbeddingForward(x, W)[0],
    dout,
    {
      W,
    },
    { W: dW },
  );
});

Deno.test("temporalAffineBackward() matches numeric gradients", () => {
  const rng = new Rng(234);
  const [n, t, d, m] = [2, 3, 4, 5];
  const x = Tensor.randn([n, t, d], rng), w = Tensor.randn([d, m], rng), b = Tensor.randn([m], rng);
  const dout = Tensor.randn([n, t, m], rng);
  const [, cache] = temporalAffineForward(x, w, b);
  const { dx, dw, db } = temporalAffineBackward(dout, cache);
  check(
    "temporal affine",
    bounds.temporal_affine_backward,
    () => temporalAffineForward(x, w, b)[0],
    dout,
    {
      x,
      w,
      b,
    },
    { x: dx, w: dw, b: db },
  );
});

Deno.test("temporalSoftmaxLoss() gradient matches numeric gradients", () => {
  const rng = new Rng(235);
  const [n, t, v] = [7, 8, 9];
  const x = Tensor.randn([n, t, v], rng);
  const y = Tensor.zeros([n, t], "int32"), mask = Tensor.zeros([n, t], "int32");
  for (let i = 0; i < n * t; i++) {
    y.data[i] = rng.randint(v);
    mask.data[i] = rng.random() > 0.5 ? 1 : 0;
  }
  const [, dx] = temporalSoftmaxLoss(x, y, mask);
  const num = evalNumericalGradient((xx) => temporalSoftmaxLoss(xx, y, mask)[0], x);
  const err = relError(num, dx);
  assert(err < bounds.temporal_softmax_loss_dx, `dx rel error ${err}`);
  // Masked rows get exactly zero gradient.
  for (let r = 0; r < n * t; r++) {
    if (mask.data[r] === 0) { for (let j = 0; j < v; j++) assert(dx.data[r * v + j] === 0); }
  }
});

Deno.test("lstmStepBackward() matches numeric gradients", () => {
  const rng = new Rng(236);
  const [n, d, h] = [4, 5, 6];
  const x = Tensor.randn([n, d], rng),
    prevH = Tensor.randn([n, h], rng),
    prevC = Tensor.randn([n, h], rng);
  const Wx = Tensor.randn([d, 4 * h], rng), Wh = Tensor.randn([h, 4 * h], rng);
  const b = Tensor.randn([4 * h], rng);
  const dnextH = Tensor.randn([n, h], rng), dnextC = Tensor.randn([n, h], rng);
  const [, , cache] = lstmStepForward(x, prevH, prevC, Wx, Wh, b);
  const g = lstmStepBackward(dnextH, dnextC, cache);
  const inputs: Record<string, F64> = { x, prevH, prevC, Wx, Wh, b };
  const analytic: Record<string, F64> = {
    x: g.dx,
    prevH: g.dprevH,
    prevC: g.dprevC,
    Wx: g.dWx,
    Wh: g.dWh,
    b: g.db,
  };
  for (const [name, input] of Object.entries(inputs)) {
    // The step has two outputs: sum the contributions of next_h and next_c.
    const fromH = evalNumericalGradientArray(
      () => lstmStepForward(x, prevH, prevC, Wx, Wh, b)[0],
      input,
      dnextH,
    );
    const fromC = evalNumericalGradientArray(
      () => lstmStepForward(x, prevH, prevC, Wx, Wh, b)[1],
      input,
      dnextC,
    );
    for (let i = 0; i < fromH.size; i++) fromH.data[i] += fromC.data[i];
    const err = relError(fromH, analytic[name]);
    assert(err < bounds.lstm_step_backward, `lstm step: d${name} rel error ${err}`);
  }
});

Deno.test("lstmBackward() matches numeric gradients", () => {
  const rng = new Rng(237);
  const [n, d, t, h] = [2, 3, 10, 6];
  const x = Tensor.randn([n, t, d], rng), h0 = Tensor.randn([n, h], rng);
  const Wx = Tensor.randn([d, 4 * h], rng), Wh = Tensor.randn([h, 4 * h], rng);
  const b = Tensor.randn([4 * h], rng);
  const dout = Tensor.randn([n, t, h], rng);
  const [, cache] = lstmForward(x, h0, Wx, Wh, b);
  const g = lstmBackward(dout, cache);
  check("lstm", bounds.lstm_backward, () => lstmForward(x, h0, Wx, Wh, b)[0], dout, {
    x,
    h0,
    Wx,
    Wh,
    b,
  }, { x: g.dx, h0: g.dh0, Wx: g.dWx, Wh: g.dWh, b: g.db });
});
