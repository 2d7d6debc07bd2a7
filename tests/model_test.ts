import "./backend.ts";
import { evalNumericalGradient, relError } from "../layers/gradient_check.ts";
import { Rng } from "../layers/random.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { decodeCaptions } from "../model/decode.ts";
import { PARAM_NAMES } from "../model/params.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import { build, seedVectors } from "./seed_vectors.ts";

for (const cell of ["rnn", "lstm", "gru"] as CellType[]) {
  // The seed file has the exercise's two models; the GRU's loss is checked by gradients and
  // against the layer-composed reference (train_step_test.ts).
  if (cell !== "gru") {
    Deno.test(`CaptioningRNN.loss() matches the seed vector (${cell})`, () => {
      const c = seedVectors.cases[`captioning_${cell}_loss`];
      const { N, D, W, H, T } = c.dims!;
      const model = new CaptioningRNN({
        wordToIdx: c.word_to_idx!,
        inputDim: D,
        wordvecDim: W,
        hiddenDim: H,
        cellType: cell,
        dtype: "float64",
      });
      for (const name of PARAM_NAMES) {
        const v = model.params[name];
        v.data.set(Tensor.linspace(-1.4, 1.3, v.shape).data);
      }
      const features = build(c.inputs.features) as Tensor<"float64">;
      const vocab = Object.keys(c.word_to_idx!).length;
      const captions = Tensor.zeros([N, T], "int32");
      for (let i = 0; i < N * T; i++) captions.data[i] = i % vocab;
      const { loss } = model.loss(features, captions);
      assertAlmostEquals(loss, c.expected.loss as unknown as number, c.max_abs_error);
    });
  }

  Deno.test(`CaptioningRNN.loss() gradients match numeric gradients for every parameter (${cell})`, () => {
    const rng = new Rng(231);
    const wordToIdx = { "<NULL>": 0, cat: 2, dog: 3 };
    const model = new CaptioningRNN({
      wordToIdx,
      inputDim: 4,
      wordvecDim: 5,
      hiddenDim: 6,
      cellType: cell,
      dtype: "float64",
      seed: 1,
    });
    const captions = Tensor.zeros([2, 3], "int32");
    for (let i = 0; i < captions.size; i++) captions.data[i] = rng.randint(3);
    const features = Tensor.randn([2, 4], rng);
    const { grads } = model.loss(features, captions);
    for (const name of CaptioningRNN.paramNamesOf(cell)) {
      const num = evalNumericalGradient(
        () => model.loss(features, captions).loss,
        model.params[name],
      );
      const elementwise = relError(num, grads[name]);
      let diff = 0, sa = 0, sb = 0;
      for (let i = 0; i < num.size; i++) {
        diff += (num.data[i] - grads[name].data[i]) ** 2;
        sa += num.data[i] ** 2;
        sb += grads[name].data[i] ** 2;
      }
      const normwise = Math.sqrt(diff) / Math.max(1e-30, Math.sqrt(sa) + Math.sqrt(sb));
      const b = seedVectors.gradient_checks;
      assert(
        elementwise < b.captioning_model_every_param_elementwise,
        `${name}: elementwise ${elementwise}`,
      );
      assert(normwise < b.captioning_model_every_param_normwise, `${name}: normwise ${normwise}`);
    }
  });
}

function tinyModel(cell: CellType, seed = 3) {
  const words = [
    "<NULL>",
    "<START>",
    "<END>",
    "<UNK>",
    "a",
    "cat",
    "dog",
    "sits",
    "runs",
    "on",
    "mat",
  ];
  const wordToIdx = Object.fromEntries(words.map((w, i) => [w, i]));
  return new CaptioningRNN({
    wordToIdx,
    inputDim: 8,
    wordvecDim: 6,
    hiddenDim: 7,
    cellType: cell,
    seed,
  });
}

Deno.test("CaptioningRNN keeps all parameters in one shared flat buffer with the exercise's shapes", () => {
  const m = tinyModel("lstm");
  assert(m.flat.buffer instanceof SharedArrayBuffer);
  assertEquals(m.params.Wx.shape, [6, 28]);
  assertEquals(m.params.Wh.shape, [7, 28]);
  assertEquals(m.params.W_embed.shape, [11, 6]);
  assertEquals(m.params.W_vocab.shape, [7, 11]);
  m.params.b_vocab.data[0] = 42;
  assertEquals(m.flat[m.layout.total - 11], 42);
  // Biases start at zero, weights are scaled normals.
  assert(m.params.b.data.every((v) => v === 0));
  let s2 = 0;
  for (const v of m.params.W_embed.data) s2 += v * v;
  assert(Math.sqrt(s2 / m.params.W_embed.size) < 0.05, "W_embed is randn/100");
  // The same seed gives the same model; another seed a different one.
  assertEquals(tinyModel("lstm").flat, m.flat.map((v, i) => (i === m.layout.total - 11 ? 0 : v)));
  assert(tinyModel("lstm", 4).flat[0] !== m.flat[0]);
});

Deno.test("CaptioningRNN.loss() of shards with the batch's normalizer adds up to the batch's", () => {
  const m = tinyModel("rnn");
  const rng = new Rng(9);
  const feats = Tensor.randn([4, 8], rng, "float32");
  const caps = Tensor.zeros([4, 5], "int32");
  for (let i = 0; i < caps.size; i++) caps.data[i] = rng.randint(11);
  const whole = m.loss(feats, caps);
  const half = (k: number) => ({
    f: new Tensor<"float32">(feats.data.slice(k * 16, k * 16 + 16), [2, 8]),
    c: new Tensor<"int32">(caps.data.slice(k * 10, k * 10 + 10), [2, 5]),
  });
  const a = m.loss(half(0).f, half(0).c, { normalizer: 4 });
  const b = m.loss(half(1).f, half(1).c, { normalizer: 4 });
  assertAlmostEquals(a.loss + b.loss, whole.loss, 1e-5);
  for (let i = 0; i < whole.gradFlat.length; i++) {
    assertAlmostEquals(a.gradFlat[i] + b.gradFlat[i], whole.gradFlat[i], 1e-5);
  }
});

Deno.test("CaptioningRNN rejects bad constructor arguments and inputs with clear messages", () => {
  assertThrows(() => new CaptioningRNN({ wordToIdx: { a: 0 } }), RangeError, '"<NULL>"');
  // V = len(word_to_idx) = 3: <END> at 5 would index past the scores.
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 5 } }),
    RangeError,
    '"<END>" has index 5, outside [0, 3)',
  );
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": -1, "<START>": 1, a: 2 } }),
    RangeError,
    '"<NULL>" has index -1',
  );
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 4, a: 1, b: 2 } }),
    RangeError,
    '"<START>" has index 4, outside [0, 4)',
  );
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, cat: 2, dog: 2 } }),
    RangeError,
    '"cat" and "dog" share index 2',
  );
  // The exercise's test vocabulary: index 3 = V belongs to a word no caption uses.
  assertEquals(new CaptioningRNN({ wordToIdx: { "<NULL>": 0, cat: 2, dog: 3 } }).vocabSize, 3);
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": 0 }, cellType: "gpt" as CellType }),
    RangeError,
    'Invalid cellType: expected "rnn" or "lstm" or "gru", got "gpt"',
  );
  const m = tinyModel("rnn");
  assertThrows(
    () => m.loss(Tensor.zeros([2, 5], "float32"), Tensor.zeros([2, 4], "int32")),
    RangeError,
    "Invalid features",
  );
});

Deno.test("new CaptioningRNN() rejects unknown option names and bad values in one line", () => {
  const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
  const bad: Array<[Record<string, unknown>, ErrorConstructor, string]> = [
    [{ hiddenSize: 64 }, TypeError, 'unknown option "hiddenSize" (did you mean "hiddenDim"?)'],
    [{ celltype: "lstm" }, TypeError, 'unknown option "celltype" (did you mean "cellType"?)'],
    [{ hiddenDim: 2.5 }, RangeError, "Invalid hiddenDim: expected a positive integer, got 2.5"],
    [{ inputDim: 0 }, RangeError, "Invalid inputDim: expected a positive integer, got 0"],
    [{ wordvecDim: "8" }, TypeError, 'Invalid wordvecDim: expected a positive integer, got "8"'],
    [{ dtype: "int32" }, RangeError, 'Invalid dtype: expected "float32" or "float64", got "int32"'],
    [{ activation: "relu" }, RangeError, 'expected "tanh" or "sigmoid", got "relu"'],
    [{ seed: 1.5 }, RangeError, "Invalid seed: expected an integer, got 1.5"],
    [{ seed: "1" }, TypeError, 'Invalid seed: expected an integer, got "1"'],
    [
      { paramBuffer: new Float64Array(4) },
      TypeError,
      "Invalid paramBuffer: expected a Float32Array (the model's dtype is float32), got Float64Array",
    ],
  ];
  for (const [options, type, message] of bad) {
    assertThrows(() => new CaptioningRNN({ wordToIdx, ...options }), type, message);
  }
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: ["<NULL>"] as never }),
    TypeError,
    "Invalid wordToIdx: expected an object of word → index, got an array",
  );
  assertThrows(() => new CaptioningRNN(undefined as never), TypeError, "expected an object");
  assertThrows(
    () => new CaptioningRNN({ wordToIdx: { "<NULL>": 0, cat: -2 } }),
    RangeError,
    'Invalid vocabulary: "cat" has index -2, expected an integer >= 0',
  );
});

Deno.test("CaptioningRNN.loss(), lossReference() and lossValue() check their options", () => {
  const m = tinyModel("rnn");
  const feats = Tensor.randn([2, 8], 1, "float32");
  const caps = Tensor.fromValues([1, 4, 5, 2, 1, 6, 7, 2], [2, 4], "int32");
  for (const loss of [m.loss.bind(m), m.lossReference.bind(m)]) {
    assertThrows(
      () => loss(feats, caps, { normaliser: 4 } as never),
      TypeError,
      'Invalid loss options: unknown option "normaliser" (did you mean "normalizer"?)',
    );
    assertThrows(
      () => loss(feats, caps, { normalizer: 0 }),
      RangeError,
      "Invalid normalizer: expected a positive number, got 0",
    );
    assertThrows(
      () => loss(feats, caps, { gradBuffer: new Float64Array(m.layout.total) as never }),
      TypeError,
      "Invalid gradBuffer: expected a Float32Array (the model's dtype is float32), got Float64Array",
    );
    assertThrows(
      () => loss(feats, caps, { gradBuffer: new Float32Array(3) }),
      RangeError,
      `Invalid gradBuffer: expected ${m.layout.total} elements (the parameter layout), got 3`,
    );
  }
  assertThrows(() => m.lossValue(feats, caps, NaN), RangeError, "Invalid normalizer");
  assertThrows(() => m.lossValue(feats, caps, "2" as never), TypeError, 'got "2"');
  assert(m.loss(feats, caps, { normalizer: 4 }).loss > 0, "valid options pass");
});

for (const cell of ["rnn", "lstm", "gru"] as CellType[]) {
  Deno.test(`sample() with beamSize 1 is greedy, and wider beams never score below greedy (${cell})`, () => {
    const m = tinyModel(cell, 11);
    // Sharpen the model so decoding choices matter.
    for (let i = 0; i < m.params.W_vocab.size; i++) m.params.W_vocab.data[i] *= 6;
    const feats = Tensor.randn([6, 8], 12, "float32");
    const greedy = m.sampleWithScores(feats, { maxLength: 8 });
    assertEquals(m.sample(feats, { maxLength: 8, beamSize: 1 }).data, greedy.captions.data);
    // Greedy: each word is the argmax after feeding the previous one; check step 0 by hand.
    const firstWords = m.sampleWithScores(feats, { maxLength: 1 });
    assertEquals(
      Array.from(firstWords.captions.data),
      Array.from({ length: 6 }, (_, i) => greedy.captions.data[i * 8]),
    );
    let strictlyBetter = 0, ended = 0;
    for (const beamSize of [2, 3, 5]) {
      const beam = m.sampleWithScores(feats, { maxLength: 8, beamSize });
      for (let i = 0; i < 6; i++) {
        assert(beam.logProbs[i] >= greedy.logProbs[i] - 1e-9, `beam ${beamSize} image ${i}`);
        if (beam.logProbs[i] > greedy.logProbs[i] + 1e-9) strictlyBetter++;
        // A beam caption stops at <END> and is padded with <NULL>.
        const row = Array.from(beam.captions.data.subarray(i * 8, i * 8 + 8));
        const end = row.indexOf(m.endIdx);
        if (end < 0) continue;
        ended++;
        assert(row.slice(end + 1).every((w) => w === m.nullIdx), `beam ${beamSize} image ${i}`);
      }
    }
    assert(ended > 0, "no beam caption ended with <END>: the padding check above never ran");
    assert(strictlyBetter > 0, "beam search found no better caption than greedy on any image");
  });
}

Deno.test("decodeCaptions() drops <NULL> and stops after <END>, as the exercise", () => {
  const idxToWord = ["<NULL>", "<START>", "<END>", "a", "cat"];
  const caps = Tensor.fromValues([1, 3, 4, 2, 3, 0, 3, 0, 4, 2], [2, 5], "int32");
  assertEquals(decodeCaptions(caps, idxToWord), ["<START> a cat <END>", "a cat <END>"]);
  assertEquals(decodeCaptions(Tensor.fromValues([3, 4], [2], "int32"), idxToWord), ["a cat"]);
  assertThrows(() => decodeCaptions(Tensor.fromValues([9], [1], "int32"), idxToWord), RangeError);
});
