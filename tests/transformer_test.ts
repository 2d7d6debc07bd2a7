/**
 * The Transformer captioner: the whole model's gradients against numeric ones (float64, the
 * seed file's bounds), the fused step against the layer-composed reference (with and without
 * dropout), the KV-cache decoder against re-running the prefix, its layout and initialisation.
 * @module
 */
import "./backend.ts";
import { evalNumericalGradient, relError } from "../layers/gradient_check.ts";
import { Rng } from "../layers/random.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
import { CaptioningTransformer } from "../model/captioning_transformer.ts";
import { assert, assertEquals, assertThrows, scaledError } from "./assert.ts";
import { seedVectors } from "./seed_vectors.ts";

const VOCAB = 11;
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < VOCAB; i++) wordToIdx[`w${i}`] = i;

function model<D extends FloatDType>(dtype: D, extra: Record<string, number> = {}) {
  const m = new CaptioningTransformer({
    wordToIdx,
    inputDim: 5,
    wordvecDim: 6,
    numHeads: 2,
    ffDim: 7,
    numLayers: 2,
    maxLength: 12,
    dropout: 0.2,
    dtype,
    seed: 3,
    ...extra,
  });
  // Larger weights than the 0.02 initialisation, so that every layer matters.
  const rng = new Rng(5);
  for (let i = 0; i < m.flat.length; i++) m.flat[i] += 0.3 * rng.randn();
  return m;
}

/** Captions of mixed lengths: full, short, one with a `<NULL>` inside, one all `<NULL>`. */
function captions(n: number, t1: number, rng: Rng): Tensor<"int32"> {
  const caps = Tensor.zeros([n, t1], "int32");
  for (let i = 0; i < n; i++) {
    const len = i % 4 === 3 ? 0 : 1 + rng.randint(t1 - 1);
    caps.data[i * t1] = 1;
    for (let s = 1; s <= len && s < t1; s++) caps.data[i * t1 + s] = 3 + rng.randint(VOCAB - 3);
    if (len + 1 < t1) caps.data[i * t1 + len + 1] = 2;
    if (i % 5 === 1 && len > 2) caps.data[i * t1 + 2] = 0;
  }
  return caps;
}

/** The parameters whose gradient is 0 in theory (see the gradient check), compared absolutely. */
const ZERO_GRADIENT = /(self_attn\/bk|cross_attn\/(Wq|bq|Wk|bk))$/;

/**
 * Checks the fused step's loss and gradients against the reference's: each gradient within `tol`
 * of its own scale, those that are 0 in theory within `tol` of the largest gradient's.
 */
function compare(
  m: CaptioningTransformer,
  feats: Tensor<FloatDType>,
  caps: Tensor<"int32">,
  options: { normalizer?: number; dropoutSeed?: number },
  lossTol: number,
  tol: number,
): void {
  const fast = m.loss(feats, caps, options), ref = m.lossReference(feats, caps, options);
  assert(Math.abs(fast.loss - ref.loss) <= lossTol * ref.loss, `loss ${fast.loss} vs ${ref.loss}`);
  const largest = Math.max(...ref.gradFlat.map(Math.abs));
  for (const { name } of m.layout.slots) {
    const a = fast.grads[name].data, b = ref.grads[name].data;
    if (ZERO_GRADIENT.test(name)) {
      const worst = Math.max(...a.map(Math.abs), ...b.map(Math.abs));
      assert(worst <= tol * largest, `${JSON.stringify(options)} d${name}: ${worst} is not 0`);
    } else {
      const err = scaledError(a, b);
      assert(err <= tol, `${JSON.stringify(options)} d${name}: ${err}`);
    }
  }
}

for (const dropoutSeed of [undefined, 17]) {
  const what = dropoutSeed === undefined ? "without dropout" : "with dropout (a fixed seed)";
  Deno.test(`CaptioningTransformer.loss() gradients match numeric gradients for every parameter, ${what}`, () => {
    const rng = new Rng(231);
    const m = model("float64");
    const caps = captions(4, 6, rng), feats = Tensor.randn([4, 5], rng);
    const { grads } = m.loss(feats, caps, { dropoutSeed });
    const b = seedVectors.gradient_checks;
    let zero = 0;
    for (const { name } of m.layout.slots) {
      const num = evalNumericalGradient(
        () => m.loss(feats, caps, { dropoutSeed }).loss,
        m.params[name],
      );
      const ana = grads[name];
      // The key biases shift every score of a query alike, and attention over the one image
      // token has weight 1 whatever its score: those gradients are 0 in theory.
      const largest = Math.max(...num.data.map(Math.abs), ...ana.data.map(Math.abs));
      if (largest < 1e-8) {
        assert(ZERO_GRADIENT.test(name), `${name}: zero gradient`);
        zero++;
        continue;
      }
      let diff = 0, sa = 0, sb = 0;
      for (let i = 0; i < num.size; i++) {
        diff += (num.data[i] - ana.data[i]) ** 2;
        sa += num.data[i] ** 2;
        sb += ana.data[i] ** 2;
      }
      const elementwise = relError(num, ana);
      const normwise = Math.sqrt(diff) / (Math.sqrt(sa) + Math.sqrt(sb));
      assert(
        elementwise < b.captioning_model_every_param_elementwise,
        `${name}: elementwise ${elementwise}`,
      );
      assert(normwise < b.captioning_model_every_param_normwise, `${name}: normwise ${normwise}`);
    }
    assertEquals(
      zero,
      2 * 5,
      "per layer: the self-attention's bk and the cross-attention's Wq, bq, Wk, bk",
    );
  });
}

Deno.test("CaptioningTransformer.loss() equals the layer-composed lossReference() in float64, with and without dropout", () => {
  const rng = new Rng(5);
  const m = model("float64");
  for (const n of [9, 1, 4]) {
    const caps = captions(n, 8, rng), feats = Tensor.randn([n, 5], rng);
    for (
      const options of [{}, { normalizer: 3 * n }, { dropoutSeed: 3 }, {
        dropoutSeed: 4,
        normalizer: 2,
      }]
    ) {
      compare(m, feats, caps, options, 1e-12, 1e-11);
    }
  }
});

Deno.test("CaptioningTransformer.loss() matches lossReference() to float32 tolerance", () => {
  const rng = new Rng(6);
  for (const w of [6, 8]) {
    const m = model("float32", { wordvecDim: w });
    const caps = captions(10, 9, rng), feats = Tensor.randn([10, 5], rng, "float32");
    for (const options of [{}, { dropoutSeed: 9 }]) {
      compare(m, feats, caps, options, 2e-5, 2e-4);
    }
  }
});

Deno.test("dropout applies only with a dropoutSeed: the same seed draws the same masks, lossValue() none", () => {
  const rng = new Rng(7);
  const m = model("float64");
  const caps = captions(6, 7, rng), feats = Tensor.randn([6, 5], rng);
  const plain = m.loss(feats, caps).loss;
  assertEquals(m.lossValue(feats, caps), plain);
  const a = m.loss(feats, caps, { dropoutSeed: 1 }).loss,
    b = m.loss(feats, caps, { dropoutSeed: 1 }).loss;
  const c = m.loss(feats, caps, { dropoutSeed: 2 }).loss;
  assertEquals(a, b);
  assert(a !== plain && a !== c, `dropout changes the loss: ${plain} ${a} ${c}`);
  // Another model seed draws other masks for the same dropoutSeed.
  const other = model("float64", { seed: 4 });
  other.flat.set(m.flat);
  assert(
    other.loss(feats, caps, { dropoutSeed: 1 }).loss !== a,
    "the model's seed is part of the masks'",
  );
  // dropout 0: a seed changes nothing.
  const none = model("float64", { dropout: 0 });
  assertEquals(none.loss(feats, caps, { dropoutSeed: 1 }).loss, none.loss(feats, caps).loss);
});

Deno.test("CaptioningTransformer.loss() of shards with the batch's normalizer adds up to the batch's", () => {
  const rng = new Rng(8);
  const m = model("float64");
  const caps = captions(6, 7, rng), feats = Tensor.randn([6, 5], rng);
  const whole = m.loss(feats, caps);
  const part = (k: number) =>
    [
      new Tensor<"float64">(feats.data.slice(k * 15, k * 15 + 15), [3, 5]),
      new Tensor<"int32">(caps.data.slice(k * 21, k * 21 + 21), [3, 7]),
    ] as const;
  const a = m.loss(...part(0), { normalizer: 6 }), b = m.loss(...part(1), { normalizer: 6 });
  assert(Math.abs(a.loss + b.loss - whole.loss) < 1e-12);
  for (let i = 0; i < whole.gradFlat.length; i++) {
    assert(Math.abs(a.gradFlat[i] + b.gradFlat[i] - whole.gradFlat[i]) < 1e-12, `element ${i}`);
  }
});

Deno.test("CaptioningTransformer.loss() of an all-<NULL> batch is 0 with zero gradients; bad input is refused", () => {
  const m = model("float64");
  const caps = Tensor.zeros([2, 5], "int32");
  caps.data[0] = 1;
  const grad = new Float64Array(m.layout.total).fill(7);
  assertEquals(m.loss(Tensor.randn([2, 5], 1), caps, { gradBuffer: grad }).loss, 0);
  assert(grad.every((x) => x === 0), "every gradient is zero");
  const feats = Tensor.randn([1, 5], 1);
  assertThrows(
    () => m.loss(feats, Tensor.fromValues([1, 3, 2, VOCAB], [1, 4], "int32")),
    RangeError,
    "Invalid target index 11 at position 2",
  );
  assertThrows(
    () => m.lossReference(feats, Tensor.fromValues([1, -1, 2, 0], [1, 4], "int32")),
    RangeError,
    "Invalid word index -1",
  );
  assertThrows(
    () => m.loss(feats, Tensor.zeros([1, 14], "int32")),
    RangeError,
    "13 positions, the model reads at most 12",
  );
  assertThrows(
    () => m.loss(Tensor.randn([1, 4], 0), caps.reshape([1, 10])),
    RangeError,
    "Invalid features",
  );
});

Deno.test("CaptioningTransformer keeps every parameter in one shared flat buffer, initialised as the course", () => {
  const options = { wordToIdx, inputDim: 16, wordvecDim: 32, numHeads: 4, ffDim: 64, seed: 1 };
  const m = new CaptioningTransformer(options);
  assert(m.flat.buffer instanceof SharedArrayBuffer);
  assertEquals(m.params["layer1/ffn/W2"].shape, [64, 32]);
  assertEquals(m.params.W_vocab.shape, [32, VOCAB]);
  assertEquals(m.layout.slots[0].name, "W_proj");
  assertEquals(m.layout.slots.at(-1)!.name, "b_vocab");
  let sq = 0, count = 0;
  for (const { name } of m.layout.slots) {
    const leaf = name.split("/").at(-1)!, data = m.params[name].data;
    if (leaf === "gamma") assert(data.every((v) => v === 1), `${name} is 1`);
    else if (!leaf.startsWith("W")) assert(data.every((v) => v === 0), `${name} is 0`);
    else for (const v of data) [sq, count] = [sq + v * v, count + 1];
  }
  assert(
    Math.abs(Math.sqrt(sq / count) - 0.02) < 0.001,
    `weights ~ normal(0, 0.02): std ${Math.sqrt(sq / count)}`,
  );
  const again = new CaptioningTransformer(options);
  assertEquals(again.flat, m.flat);
});

Deno.test("new CaptioningTransformer() rejects bad options in one line, naming them", () => {
  assertThrows(
    () => new CaptioningTransformer({ wordToIdx, wordvecDim: 30, numHeads: 4 }),
    RangeError,
    "4 heads do not divide wordvecDim 30",
  );
  assertThrows(
    () => new CaptioningTransformer({ wordToIdx, wordvecDim: 9, numHeads: 3 }),
    RangeError,
    "must be even, got 9",
  );
  assertThrows(
    () => new CaptioningTransformer({ wordToIdx, dropout: 1 }),
    RangeError,
    "Invalid dropout: expected a number in [0, 1), got 1",
  );
  assertThrows(
    () => new CaptioningTransformer({ wordToIdx, numLayer: 2 } as never),
    TypeError,
    '(did you mean "numLayers"?)',
  );
  assertThrows(
    () => new CaptioningTransformer({ wordToIdx, hiddenDim: 2 } as never),
    TypeError,
    'unknown option "hiddenDim"',
  );
  assertThrows(() => new CaptioningTransformer({ wordToIdx: { a: 0 } }), RangeError, '"<NULL>"');
});

for (const dtype of ["float64", "float32"] as const) {
  Deno.test(`decoding with cached keys and values equals re-running the prefix (${dtype})`, () => {
    const m = model(dtype);
    const n = 3, steps = 8, rng = new Rng(9);
    const feats = Tensor.randn([n, 5], rng, dtype);
    const dec = m.decoder;
    dec.start(feats.data, n);
    const prefix: number[][] = Array.from({ length: n }, () => [m.startIdx]);
    const tol = dtype === "float64" ? 1e-12 : 2e-5;
    for (let t = 0; t < steps; t++) {
      dec.step(prefix.map((p) => p[t]), n);
      dec.advance();
      const scores = m.scores(feats, Tensor.fromValues(prefix.flat(), [n, t + 1], "int32"));
      for (let i = 0; i < n; i++) {
        const want = scores.data.subarray((i * (t + 1) + t) * VOCAB, (i * (t + 1) + t + 1) * VOCAB);
        const got = dec.scores.subarray(i * VOCAB, (i + 1) * VOCAB);
        assert(scaledError(got, want) < tol, `step ${t} image ${i}: ${scaledError(got, want)}`);
        // The next word: anything, so every position's cache is exercised (not only argmaxes).
        prefix[i].push(3 + rng.randint(VOCAB - 3));
      }
    }
  });
}

Deno.test("greedy decoding takes each step's argmax; beam search never scores below it", () => {
  const m = model("float64");
  for (let i = 0; i < m.params.W_vocab.size; i++) m.params.W_vocab.data[i] *= 3;
  const feats = Tensor.randn([6, 5], 12);
  const greedy = m.sampleWithScores(feats, { maxLength: 8 });
  const first = m.scores(feats, Tensor.fromValues(new Array(6).fill(1), [6, 1], "int32"));
  for (let i = 0; i < 6; i++) {
    const row = Array.from(first.data.subarray(i * VOCAB, (i + 1) * VOCAB));
    assertEquals(greedy.captions.data[i * 8], row.indexOf(Math.max(...row)));
  }
  let better = 0;
  for (const beamSize of [2, 3]) {
    const beam = m.sampleWithScores(feats, { maxLength: 8, beamSize });
    for (let i = 0; i < 6; i++) {
      assert(beam.logProbs[i] >= greedy.logProbs[i] - 1e-9, `beam ${beamSize} image ${i}`);
      if (beam.logProbs[i] > greedy.logProbs[i] + 1e-9) better++;
    }
  }
  assert(better > 0, "beam search found no better caption than greedy on any image");
});

Deno.test("beam search of a batch equals beam search of each image alone (the cache follows the beams)", () => {
  const m = model("float64");
  m.params.b_vocab.data[2] += 1.5; // <END> likely enough that beams finish at different steps
  const feats = Tensor.randn([5, 5], 13);
  for (const beamSize of [2, 4]) {
    const all = m.sampleWithScores(feats, { beamSize, maxLength: 9 });
    for (let i = 0; i < 5; i++) {
      const one = m.sampleWithScores(new Tensor(feats.data.slice(i * 5, i * 5 + 5), [1, 5]), {
        beamSize,
        maxLength: 9,
      });
      assertEquals(
        Array.from(all.captions.data.subarray(i * 9, i * 9 + 9)),
        Array.from(one.captions.data),
      );
      assert(Math.abs(all.logProbs[i] - one.logProbs[0]) < 1e-12, `image ${i}`);
    }
  }
});

Deno.test("the Transformer decodes at most maxLength words", () => {
  const m = model("float64");
  assertThrows(
    () => m.sample(Tensor.randn([1, 5], 1), { maxLength: 13 }),
    RangeError,
    "reads at most maxLength = 12 positions",
  );
  assertEquals(m.sample(Tensor.randn([1, 5], 1), { maxLength: 12 }).shape, [1, 12]);
});
