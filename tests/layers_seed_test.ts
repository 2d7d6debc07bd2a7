import "./backend.ts";
import { lstmForward, lstmStepForward } from "../layers/lstm.ts";
import { rnnForward, rnnStepForward } from "../layers/rnn.ts";
import { Rng } from "../layers/random.ts";
import { relError } from "../layers/gradient_check.ts";
import { Tensor } from "../layers/tensor.ts";
import { temporalSoftmaxLoss } from "../layers/temporal_softmax_loss.ts";
import { wordEmbeddingForward } from "../layers/word_embedding.ts";
import { assert, assertEquals } from "./assert.ts";
import { build, FIXTURE_URL, seedVectors, SHARED_URL } from "./seed_vectors.ts";

const { cases } = seedVectors;
// deno-lint-ignore no-explicit-any
const f64 = (name: string) => build(cases[name.split(".")[0]].inputs[name.split(".")[1]]) as any;

function expectClose(name: string, actual: Tensor, key: string) {
  const c = cases[name];
  const want = build(c.expected[key]);
  assertEquals(actual.shape, want.shape, `${name}.${key}: shape`);
  const err = relError(actual, want);
  assert(err < c.max_rel_error!, `${name}.${key}: rel error ${err} >= ${c.max_rel_error}`);
}

Deno.test("the seed-vector fixture is byte-identical to ../shared/reference", async (t) => {
  let shared: Uint8Array;
  try {
    shared = Deno.readFileSync(SHARED_URL);
  } catch {
    await t.step({ name: "../shared is not beside this checkout", ignore: true, fn: () => {} });
    return;
  }
  assertEquals(Deno.readFileSync(FIXTURE_URL), shared);
});

Deno.test("rnnStepForward() matches the seed vector", () => {
  const i = (k: string) => f64(`rnn_step_forward.${k}`);
  const [nextH] = rnnStepForward(i("x"), i("prev_h"), i("Wx"), i("Wh"), i("b"));
  expectClose("rnn_step_forward", nextH, "next_h");
});

Deno.test("rnnForward() matches the seed vector", () => {
  const i = (k: string) => f64(`rnn_forward.${k}`);
  const [h] = rnnForward(i("x"), i("h0"), i("Wx"), i("Wh"), i("b"));
  expectClose("rnn_forward", h, "h");
});

Deno.test("wordEmbeddingForward() matches the seed vector", () => {
  const i = (k: string) => f64(`word_embedding_forward.${k}`);
  const [out] = wordEmbeddingForward(i("x"), i("W"));
  expectClose("word_embedding_forward", out, "out");
});

Deno.test("lstmStepForward() matches the seed vector", () => {
  const i = (k: string) => f64(`lstm_step_forward.${k}`);
  const [nextH, nextC] = lstmStepForward(
    i("x"),
    i("prev_h"),
    i("prev_c"),
    i("Wx"),
    i("Wh"),
    i("b"),
  );
  expectClose("lstm_step_forward", nextH, "next_h");
  expectClose("lstm_step_forward", nextC, "next_c");
});

Deno.test("lstmForward() matches the seed vector", () => {
  const i = (k: string) => f64(`lstm_forward.${k}`);
  const [h] = lstmForward(i("x"), i("h0"), i("Wx"), i("Wh"), i("b"));
  expectClose("lstm_forward", h, "h");
});

Deno.test("temporalSoftmaxLoss() passes the exercise's sanity checks", () => {
  const rng = new Rng(231);
  for (const check of cases.temporal_softmax_loss_sanity.checks!) {
    const { N, T, V, p } = check as Record<string, number>;
    const [lo, hi] = check.loss_range as number[];
    const x = Tensor.randn([N, T, V], rng);
    for (let j = 0; j < x.size; j++) x.data[j] *= 0.001;
    const y = Tensor.zeros([N, T], "int32"), mask = Tensor.zeros([N, T], "int32");
    for (let j = 0; j < N * T; j++) {
      y.data[j] = rng.randint(V);
      mask.data[j] = rng.random() <= p ? 1 : 0;
    }
    const [loss] = temporalSoftmaxLoss(x, y, mask);
    assert(loss > lo && loss < hi, `N=${N} T=${T} p=${p}: loss ${loss} outside [${lo}, ${hi}]`);
  }
});
