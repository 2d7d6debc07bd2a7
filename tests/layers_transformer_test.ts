/**
 * The Transformer's layers — dropout, layer normalization, positional encoding, multi-head
 * attention with its mask, the feed-forward block — against hand-computed small cases (numpy,
 * the course's formulas written out) and numeric gradients (float64).
 *
 * The seed file has no bounds for these layers; the bound used is 1e-7 (its LSTM layers'),
 * which every check below meets with margin.
 * @module
 */
import "./backend.ts";
import {
  causalMask,
  multiHeadAttentionBackward,
  multiHeadAttentionForward,
} from "../layers/attention.ts";
import { deriveSeed, dropoutBackward, dropoutForward, dropoutMask } from "../layers/dropout.ts";
import { feedForwardBackward, feedForwardForward } from "../layers/feed_forward.ts";
import { evalNumericalGradientArray, relError } from "../layers/gradient_check.ts";
import { layerNormBackward, layerNormForward } from "../layers/layer_norm.ts";
import {
  positionalEncoding,
  positionalEncodingBackward,
  positionalEncodingForward,
} from "../layers/positional_encoding.ts";
import { Rng } from "../layers/random.ts";
import { Tensor } from "../layers/tensor.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { seedVectors } from "./seed_vectors.ts";

type F64 = Tensor<"float64">;
const BOUND = seedVectors.gradient_checks.lstm_backward;
const lin = (a: number, b: number, shape: number[]) => Tensor.linspace(a, b, shape);

/**
 * Checks every named analytic gradient against the numeric gradient of `forward`. Names in
 * `zero` have a gradient that is exactly 0 in theory (a key bias shifts every score of a query
 * alike, which the softmax ignores): those are checked to be 0 within the numeric noise.
 */
function check(
  what: string,
  forward: () => Tensor<"float64">,
  dout: F64,
  pairs: Array<[string, F64, F64]>,
  zero: string[] = [],
): void {
  for (const [name, x, analytic] of pairs) {
    const num = evalNumericalGradientArray(forward, x, dout);
    if (zero.includes(name)) {
      const worst = Math.max(...num.data.map(Math.abs), ...analytic.data.map(Math.abs));
      assert(worst < 1e-8, `${what}: d${name} should be 0, is up to ${worst}`);
      continue;
    }
    const err = relError(num, analytic);
    assert(err < BOUND, `${what}: d${name} rel error ${err} >= ${BOUND}`);
  }
}

Deno.test("dropoutMask() drops about p of the elements, keeps the rest scaled by 1/(1-p)", () => {
  const n = 100_000, mask = new Float64Array(n);
  for (const p of [0.1, 0.5]) {
    dropoutMask(42, p, mask, 0, n);
    let dropped = 0;
    for (const m of mask) {
      if (m === 0) dropped++;
      else assertEquals(m, 1 / (1 - p));
    }
    // Binomial: 5 standard deviations.
    const sd = Math.sqrt(n * p * (1 - p));
    assert(Math.abs(dropped - n * p) < 5 * sd, `p ${p}: dropped ${dropped} of ${n}`);
  }
});

Deno.test("dropoutMask() depends on the seed and each element's index only", () => {
  const whole = new Float32Array(1000), parts = new Float32Array(1000);
  dropoutMask(7, 0.3, whole, 0, 1000);
  // The same elements drawn in pieces and out of order: the same multipliers.
  for (const [start, count] of [[600, 400], [0, 250], [250, 350]]) {
    dropoutMask(7, 0.3, parts, start, count, start);
  }
  assertEquals(parts, whole);
  const other = new Float32Array(1000);
  dropoutMask(8, 0.3, other, 0, 1000);
  assert(other.some((v, i) => v !== whole[i]), "another seed, another mask");
  assert(deriveSeed(7, 1, 2) !== deriveSeed(7, 2, 1), "derived seeds depend on the order");
  assert(deriveSeed(2 ** 32 + 5) !== deriveSeed(5), "seeds beyond 32 bits keep their high part");
});

Deno.test("dropoutForward() and dropoutBackward(): the same mask both ways; identity in test mode or at p = 0", () => {
  const x = Tensor.randn([4, 5], 1);
  const [out, cache] = dropoutForward(x, { p: 0.4, seed: 3 });
  const dout = Tensor.randn([4, 5], 2);
  const dx = dropoutBackward(dout, cache);
  for (let i = 0; i < x.size; i++) {
    const m = cache.mask!.data[i];
    assertEquals(out.data[i], x.data[i] * m);
    assertEquals(dx.data[i], dout.data[i] * m);
  }
  check("dropout", () => dropoutForward(x, { p: 0.4, seed: 3 })[0], dout, [["x", x, dx]]);
  assertEquals(dropoutForward(x, { p: 0.4, seed: 3, mode: "test" })[0].data, x.data);
  assertEquals(dropoutForward(x, { p: 0, seed: 3 })[0].data, x.data);
  assertThrows(
    () => dropoutForward(x, { p: 1, seed: 0 }),
    RangeError,
    "p: expected a number in [0, 1)",
  );
  assertThrows(
    () => dropoutForward(x, { p: 0.1, sed: 0 } as never),
    TypeError,
    '(did you mean "seed"?)',
  );
});

Deno.test("layerNormForward() matches a hand-computed case", () => {
  const [out] = layerNormForward(lin(-0.4, 1.2, [2, 5]), lin(0.5, 1.5, [5]), lin(-0.1, 0.1, [5]));
  // The middle element is 0 up to rounding (5.5e-17 in numpy): compared absolutely.
  const row = [-0.807050854571038, -0.5802881409282785, 0, 0.9338135682137974, 2.221152563713114];
  for (let i = 0; i < out.size; i++) {
    const want = row[i % 5];
    assert(
      Math.abs(out.data[i] - want) <= 1e-14 * Math.max(1, Math.abs(want)),
      `${i}: ${out.data[i]}`,
    );
  }
});

Deno.test("layerNormBackward() matches numeric gradients", () => {
  const rng = new Rng(11);
  const x = Tensor.randn([2, 3, 6], rng),
    gamma = Tensor.randn([6], rng),
    beta = Tensor.randn([6], rng);
  const dout = Tensor.randn([2, 3, 6], rng);
  const g = layerNormBackward(dout, layerNormForward(x, gamma, beta)[1]);
  check("layer norm", () => layerNormForward(x, gamma, beta)[0], dout, [
    ["x", x, g.dx],
    ["gamma", gamma, g.dgamma],
    ["beta", beta, g.dbeta],
  ]);
});

Deno.test("positionalEncoding() is the course's table; the layer adds it and passes gradients through", () => {
  const pe = positionalEncoding(3, 6);
  const expected = [
    0,
    1,
    0,
    1,
    0,
    1,
    0.8414709848078965,
    0.5403023058681398,
    0.04639922346473128,
    0.9989229760406304,
    0.0021544330233656045,
    0.9999976792064809,
    0.9092974268256817,
    -0.4161468365471424,
    0.09269850077872724,
    0.9956942241237399,
    0.0043088560467428125,
    0.9999907168366957,
  ];
  assert(relError(pe, expected) < 1e-14, `${relError(pe, expected)}`);
  const x = Tensor.randn([2, 2, 6], 1);
  const [out, cache] = positionalEncodingForward(x, pe);
  assertEquals(out.data[6 + 2], x.data[6 + 2] + pe.data[6 + 2]); // example 0, position 1
  assertEquals(out.data[12 + 6 + 2], x.data[12 + 6 + 2] + pe.data[6 + 2]); // example 1, position 1
  const dout = Tensor.randn([2, 2, 6], 2);
  assertEquals(positionalEncodingBackward(dout, cache).data, dout.data);
  assertThrows(() => positionalEncoding(3, 5), RangeError, "must be even");
  assertThrows(
    () => positionalEncodingForward(Tensor.zeros([1, 4, 6]), pe),
    RangeError,
    "4 positions, the table 3",
  );
});

function attentionParams(seedOrLin: "lin" | Rng, e: number) {
  const make = (a: number, b: number, shape: number[]) =>
    seedOrLin === "lin" ? lin(a, b, shape) : Tensor.randn(shape, seedOrLin);
  return {
    Wq: make(-0.3, 0.4, [e, e]),
    bq: make(-0.1, 0.1, [e]),
    Wk: make(0.2, -0.5, [e, e]),
    bk: make(0.05, -0.05, [e]),
    Wv: make(-0.6, 0.6, [e, e]),
    bv: make(0.1, 0.2, [e]),
    Wo: make(0.5, -0.2, [e, e]),
    bo: make(-0.2, 0, [e]),
  };
}

Deno.test("multiHeadAttentionForward() matches hand-computed causal self-attention and cross-attention", () => {
  const q = lin(-0.5, 0.7, [2, 3, 4]), mem = lin(0.3, -0.6, [2, 2, 4]);
  const params = attentionParams("lin", 4);
  const [self] = multiHeadAttentionForward(q, q, q, params, { numHeads: 2, mask: causalMask(3) });
  const expectedSelf = [
    0.1003091787,
    0.1233932367,
    0.1464772947,
    0.1695613527,
    0.0691147128,
    0.0922146607,
    0.1153146087,
    0.1384145567,
    0.037958986,
    0.0611618463,
    0.0843647066,
    0.107567567,
    -0.0866821256,
    -0.0635980676,
    -0.0405140097,
    -0.0174299517,
    -0.1178110796,
    -0.0946251703,
    -0.071439261,
    -0.0482533517,
    -0.1488577095,
    -0.1254259326,
    -0.1019941557,
    -0.0785623789,
  ];
  assert(relError(self, expectedSelf) < 1e-8, `self: ${relError(self, expectedSelf)}`);
  const [cross] = multiHeadAttentionForward(q, mem, mem, params, { numHeads: 2 });
  const expectedCross = [
    -0.2105386767,
    -0.1539689061,
    -0.0973991354,
    -0.0408293647,
    -0.2105097924,
    -0.1539021112,
    -0.0972944301,
    -0.0406867489,
    -0.2104809092,
    -0.1538353216,
    -0.097189734,
    -0.0405441464,
    -0.0670920299,
    -0.0104085497,
    0.0462749305,
    0.1029584107,
    -0.0670631573,
    -0.0103418081,
    0.0463795412,
    0.1031008904,
    -0.0670342943,
    -0.0102751092,
    0.0464840758,
    0.1032432609,
  ];
  assert(relError(cross, expectedCross) < 1e-8, `cross: ${relError(cross, expectedCross)}`);
});

Deno.test("the causal mask keeps a position from seeing later ones", () => {
  const rng = new Rng(3);
  const x = Tensor.randn([1, 4, 4], rng), params = attentionParams(rng, 4);
  const options = { numHeads: 2, mask: causalMask(4) };
  const [before] = multiHeadAttentionForward(x, x, x, params, options);
  x.data[3 * 4 + 1] += 1; // change the last position
  const [after] = multiHeadAttentionForward(x, x, x, params, options);
  assertEquals(after.data.subarray(0, 12), before.data.subarray(0, 12));
  assert(after.data[12] !== before.data[12], "the last position itself changes");
});

for (const dropout of [undefined, { p: 0.3, seed: 5 }]) {
  const what = dropout ? "with dropout" : "without dropout";
  Deno.test(`multiHeadAttentionBackward() matches numeric gradients, causal self-attention ${what}`, () => {
    const rng = new Rng(21);
    const x = Tensor.randn([2, 4, 6], rng), params = attentionParams(rng, 6);
    const dout = Tensor.randn([2, 4, 6], rng);
    const options = { numHeads: 3, mask: causalMask(4), dropout };
    const fwd = () => multiHeadAttentionForward(x, x, x, params, options)[0];
    const g = multiHeadAttentionBackward(
      dout,
      multiHeadAttentionForward(x, x, x, params, options)[1],
    );
    const dx = g.dquery.clone();
    for (let i = 0; i < dx.size; i++) dx.data[i] += g.dkey.data[i] + g.dvalue.data[i];
    check(`self-attention ${what}`, fwd, dout, [
      ["x", x, dx],
      ...(["Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo"] as const).map((k) =>
        [k, params[k], g[`d${k}`]] as [string, F64, F64]
      ),
    ], ["bk"]);
  });

  Deno.test(`multiHeadAttentionBackward() matches numeric gradients, cross-attention ${what}`, () => {
    const rng = new Rng(22);
    const q = Tensor.randn([2, 3, 4], rng), mem = Tensor.randn([2, 2, 4], rng);
    const params = attentionParams(rng, 4), dout = Tensor.randn([2, 3, 4], rng);
    const options = { numHeads: 2, dropout };
    const fwd = () => multiHeadAttentionForward(q, mem, mem, params, options)[0];
    const g = multiHeadAttentionBackward(
      dout,
      multiHeadAttentionForward(q, mem, mem, params, options)[1],
    );
    const dmem = g.dkey.clone();
    for (let i = 0; i < dmem.size; i++) dmem.data[i] += g.dvalue.data[i];
    check(`cross-attention ${what}`, fwd, dout, [
      ["query", q, g.dquery],
      ["memory", mem, dmem],
      ...(["Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo"] as const).map((k) =>
        [k, params[k], g[`d${k}`]] as [string, F64, F64]
      ),
    ], ["bk"]);
  });
}

Deno.test("attention over a single key passes no gradient to the queries or keys", () => {
  // The captioner's memory is one image token: softmax over one key is 1, whatever the scores.
  const rng = new Rng(23);
  const q = Tensor.randn([2, 3, 4], rng), mem = Tensor.randn([2, 1, 4], rng);
  const params = attentionParams(rng, 4);
  const [out, cache] = multiHeadAttentionForward(q, mem, mem, params, { numHeads: 2 });
  const g = multiHeadAttentionBackward(Tensor.randn(out.shape, 4), cache);
  for (const k of ["dquery", "dWq", "dbq", "dWk", "dbk", "dkey"] as const) {
    assert(g[k].data.every((v) => v === 0), `${k} is exactly zero`);
  }
});

Deno.test("feedForwardForward() matches a hand-computed case", () => {
  const [out] = feedForwardForward(
    lin(-0.5, 0.8, [3, 4]),
    lin(-0.7, 0.6, [4, 6]),
    lin(-0.2, 0.1, [6]),
    lin(0.4, -0.3, [6, 4]),
    lin(0, 0.3, [4]),
  );
  const expected = [
    0.1509771438,
    0.2117271009,
    0.2724770579,
    0.333227015,
    -0.0795270665,
    -0.0056167726,
    0.0682935212,
    0.1422038151,
    -0.1342017529,
    -0.0640615226,
    0.0060787077,
    0.076218938,
  ];
  assert(relError(out, expected) < 1e-8, `${relError(out, expected)}`);
});

for (const dropout of [undefined, { p: 0.25, seed: 9 }]) {
  Deno.test(`feedForwardBackward() matches numeric gradients ${dropout ? "with" : "without"} dropout`, () => {
    const rng = new Rng(31);
    const x = Tensor.randn([2, 3, 4], rng),
      W1 = Tensor.randn([4, 7], rng),
      b1 = Tensor.randn([7], rng);
    const W2 = Tensor.randn([7, 4], rng),
      b2 = Tensor.randn([4], rng),
      dout = Tensor.randn([2, 3, 4], rng);
    const fwd = () => feedForwardForward(x, W1, b1, W2, b2, dropout)[0];
    const g = feedForwardBackward(dout, feedForwardForward(x, W1, b1, W2, b2, dropout)[1]);
    check("feed-forward", fwd, dout, [
      ["x", x, g.dx],
      ["W1", W1, g.dW1],
      ["b1", b1, g.db1],
      ["W2", W2, g.dW2],
      ["b2", b2, g.db2],
    ]);
  });
}

Deno.test("the Transformer layers reject bad shapes and options, naming them", () => {
  const x = Tensor.randn([1, 2, 4], 0), params = attentionParams("lin", 4);
  assertThrows(
    () => multiHeadAttentionForward(x, x, x, params, { numHeads: 3 }),
    RangeError,
    "3 heads do not divide the width 4",
  );
  assertThrows(
    () => multiHeadAttentionForward(x, x, x, params, { numHeads: 2, mask: causalMask(3) }),
    RangeError,
    "Invalid shape for mask",
  );
  assertThrows(
    () => multiHeadAttentionForward(x, x, x, params, { heads: 2 } as never),
    TypeError,
    '"heads"',
  );
  assertThrows(
    () => layerNormForward(x, Tensor.zeros([3]), Tensor.zeros([4])),
    RangeError,
    "Invalid shape for gamma",
  );
  assertThrows(
    () =>
      feedForwardForward(
        x,
        Tensor.zeros([4, 5]),
        Tensor.zeros([5]),
        Tensor.zeros([4, 5]),
        Tensor.zeros([4]),
      ),
    RangeError,
    "Invalid shape for W2",
  );
});
