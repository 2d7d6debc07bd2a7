/**
 * Self-critical training's parts: the gradient of its loss −(r − b) · Σ log p(w_t) for fixed
 * samples (numeric, float64), the CIDEr-D reward with training document frequencies and its
 * cache, the baselines on hand-computed cases, and the weighted batches the solver trains on.
 */
import "./backend.ts";
import { evalNumericalGradient, relError } from "../layers/gradient_check.ts";
import { Tensor } from "../layers/tensor.ts";
import type { ModelKind } from "../model/captioning_model.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { createCaptioningModel } from "../model/models.ts";
import { LocalEngine } from "../workers/engine.ts";
import { CiderReward, scstBaselines } from "../pipeline/train/scst_reward.ts";
import { ScstBatches } from "../pipeline/train/scst.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import { randomCaptionData } from "./fixtures_data.ts";
import { seedVectors } from "./seed_vectors.ts";

for (const cellType of ["rnn", "lstm", "gru", "transformer"] as ModelKind[]) {
  Deno.test(`the SCST loss's gradient matches numeric gradients for fixed samples (${cellType})`, () => {
    const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
    for (let i = 3; i < 9; i++) wordToIdx[`w${i}`] = i;
    const m = createCaptioningModel({
      wordToIdx,
      inputDim: 4,
      wordvecDim: cellType === "transformer" ? 6 : 5,
      hiddenDim: 6,
      numLayers: 1,
      numHeads: 2,
      ffDim: 8,
      cellType,
      dtype: "float64",
      seed: 3,
    });
    // Peakier distributions, so the samples differ and no gradient is lost in rounding (the
    // Transformer starts from weights of 0.02).
    const scale = cellType === "transformer" ? 8 : 3;
    for (let i = 0; i < m.flat.length; i++) m.flat[i] *= scale;
    // Fixed samples: 3 images × 2 sampled captions, with rewards minus baselines as weights.
    const feats = Tensor.randn([3, 4], 5);
    const sampled = m.sampleWithScores(feats, {
      method: "sample",
      samples: 2,
      maxLength: 6,
      seed: 1,
    });
    const n = 6, l = 6;
    const captions = Tensor.zeros([n, l + 1], "int32");
    const features = Tensor.zeros([n, 4]);
    for (let r = 0; r < n; r++) {
      captions.data[r * (l + 1)] = m.startIdx;
      captions.data.set(sampled.captions.data.subarray(r * l, (r + 1) * l), r * (l + 1) + 1);
      features.data.set(
        feats.data.subarray(Math.floor(r / 2) * 4, Math.floor(r / 2 + 1) * 4),
        r * 4,
      );
    }
    const weights = new Float64Array([0.7, -0.7, 1.5, -0.2, 0, -1.1]);
    // The loss is −Σ w · log p(caption) / N, with log p as decoding scored it.
    const want = -weights.reduce((s, w, r) => s + w * sampled.logProbs[r], 0) / n;
    const { loss, grads } = m.loss(features, captions, { weights });
    assertAlmostEquals(loss, want, 1e-12);
    const reference = m.lossReference(features, captions, { weights });
    assertAlmostEquals(reference.loss, want, 1e-12);
    // The seed file's bounds for a whole model: elementwise, and norm-wise (tiny entries cancel).
    const b = seedVectors.gradient_checks;
    const largest = Math.max(...reference.gradFlat.map(Math.abs));
    for (const { name } of m.layout.slots) {
      const numeric = evalNumericalGradient(
        () => m.lossValue(features, captions, n, weights),
        m.params[name],
      );
      const analytic = grads[name];
      // Fused and layer-composed agree to float64 rounding, relative to the whole model's
      // gradient (entries that are 0 in theory are rounding noise in both).
      let fused = 0;
      for (let i = 0; i < analytic.size; i++) {
        fused = Math.max(fused, Math.abs(analytic.data[i] - reference.grads[name].data[i]));
      }
      fused /= largest;
      assert(fused < 1e-10, `d${name}: fused vs layers ${fused}`);
      // The Transformer's key biases and its cross-attention's queries and keys have a zero
      // gradient in theory (attention over one image token has weight 1).
      if (Math.max(...numeric.data.map(Math.abs), ...analytic.data.map(Math.abs)) < 1e-8) continue;
      let diff = 0, sa = 0, sb = 0;
      for (let i = 0; i < numeric.size; i++) {
        diff += (numeric.data[i] - analytic.data[i]) ** 2;
        sa += numeric.data[i] ** 2;
        sb += analytic.data[i] ** 2;
      }
      const elementwise = relError(numeric, analytic);
      assert(elementwise < b.captioning_model_every_param_elementwise, `d${name}: ${elementwise}`);
      const normwise = Math.sqrt(diff) / (Math.sqrt(sa) + Math.sqrt(sb));
      assert(normwise < b.captioning_model_every_param_normwise, `d${name}: normwise ${normwise}`);
    }
    // A weight of 1 each is the cross-entropy loss.
    assertEquals(
      m.loss(features, captions, { weights: new Float64Array(n).fill(1) }).loss,
      m.loss(features, captions).loss,
    );
    assertThrows(
      () => m.loss(features, captions, { weights: new Float64Array(2) }),
      RangeError,
      "expected 6",
    );
    assertThrows(
      () => m.loss(features, captions, { weights: [1, 1, 1, 1, 1, NaN] }),
      RangeError,
      "weight 5 is NaN",
    );
  });
}

const tokens = (s: string) => s.split(" ");

Deno.test("the CIDEr-D reward with a corpus's document frequencies, on hand-computed cases", () => {
  // df: a 2, cat 1, dog 1, "a cat" 1, "a dog" 1; log(2 images).
  const reward = new CiderReward(new Map([[0, [tokens("a cat")]], [1, [tokens("a dog")]]]));
  assertEquals(reward.df.logImages, Math.log(2));
  // "a cat" for image 0: "a" weighs 0; unigrams and bigrams match exactly (cosine 1), no
  // trigrams or 4-grams: (1 + 1 + 0 + 0) / 4 × 10.
  assertAlmostEquals(reward.score(0, tokens("a cat")), 5, 1e-12);
  assertEquals(reward.score(0, tokens("a dog")), 0);
  // "cat": unigram cosine 1, no bigram, and a length gap of one bigram: 2.5 · exp(-1/72).
  assertAlmostEquals(reward.score(0, tokens("cat")), 2.5 * Math.exp(-1 / 72), 1e-12);
  assertThrows(() => reward.score(7, tokens("a cat")), RangeError, "image 7");
  // Rows of word indices, two per image, as decoding returns them.
  const idxToWord = ["<NULL>", "<START>", "<END>", "a", "cat", "dog"];
  const rows = Tensor.fromValues([3, 4, 2, 0, 4, 2, 0, 0, 3, 5, 2, 0, 4, 2, 0, 0], [4, 4], "int32");
  const r = reward.scoreCaptions(rows, [0, 1], idxToWord);
  assertEquals(r.length, 4);
  assertAlmostEquals(r[0], 5, 1e-12); // "a cat" for image 0
  assertAlmostEquals(r[1], 2.5 * Math.exp(-1 / 72), 1e-12); // "cat" for image 0
  assertAlmostEquals(r[2], 5, 1e-12); // "a dog" for image 1
  assertEquals(r[3], 0); // "cat" for image 1
});

Deno.test("SCST baselines: the greedy caption's reward, or the mean of the other samples'", () => {
  const rewards = new Float64Array([1, 2, 6, 0, 0, 3]); // two images, three samples each
  assertEquals(Array.from(scstBaselines(rewards, 3, "mean")), [4, 3.5, 1.5, 1.5, 1.5, 0]);
  assertEquals(
    Array.from(scstBaselines(rewards, 3, "greedy", new Float64Array([2, 1]))),
    [2, 2, 2, 1, 1, 1],
  );
  // With the mean baseline, each image's advantages sum to zero.
  const b = scstBaselines(rewards, 3, "mean");
  assertAlmostEquals(rewards[0] - b[0] + rewards[1] - b[1] + rewards[2] - b[2], 0, 1e-15);
  assertThrows(() => scstBaselines(rewards, 1, "mean"), RangeError, "at least 2");
  assertThrows(() => scstBaselines(rewards, 3, "greedy"), RangeError, "greedyRewards");
});

Deno.test("the training document frequencies are cached in a file, reused, and recomputed for other references", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 20, inputDim: 4, seed: 2 });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/df.json`;
    const first = await CiderReward.fromData(data, "train", path);
    assertEquals(first.cached, false);
    const again = await CiderReward.fromData(data, "train", path);
    assertEquals(again.cached, true);
    assertEquals([...again.reward.df.df], [...first.reward.df.df]);
    assertEquals(again.reward.df.logImages, first.reward.df.logImages);
    const caption = first.reward.references.get(3)![0];
    assertEquals(again.reward.score(3, caption), first.reward.score(3, caption));
    // Other captions: the cache is stale, so it is recomputed (and rewritten).
    const other = randomCaptionData({ numTrain: 40, vocab: 20, inputDim: 4, seed: 3 });
    assertEquals((await CiderReward.fromData(other, "train", path)).cached, false);
    assertEquals((await CiderReward.fromData(other, "train", path)).cached, true);
    await Deno.writeTextFile(path, "{ torn");
    assertEquals((await CiderReward.fromData(other, "train", path)).cached, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ScstBatches: k samples per image, weighted by reward minus baseline, seeded and restorable", async () => {
  const data = randomCaptionData({ numTrain: 30, vocab: 20, inputDim: 6, seed: 4 });
  const model = new CaptioningRNN({
    wordToIdx: data.word_to_idx,
    inputDim: 6,
    wordvecDim: 5,
    hiddenDim: 8,
    cellType: "lstm",
    seed: 2,
  });
  for (let i = 0; i < model.flat.length; i++) model.flat[i] *= 3;
  const engine = new LocalEngine(model);
  const { reward } = await CiderReward.fromData(data, "train", null);
  for (const baseline of ["greedy", "mean"] as const) {
    const options = {
      engine,
      reward,
      batchSize: 4,
      samples: 3,
      temperature: 1,
      maxLength: 7,
      baseline,
      seed: 9,
    };
    const batches = new ScstBatches(data, model.wordToIdx, model.idxToWord, options);
    assertEquals(batches.size, 30);
    const state = batches.getState();
    const batch = await batches.next();
    assertEquals(batch.captions.shape, [12, 8]);
    assertEquals(batch.features.shape, [12, 6]);
    // Each row: <START>, then a caption sampled from its image; the weights are the rewards
    // of those captions minus the baseline.
    const sampled = Tensor.zeros([12, 7], "int32");
    for (let r = 0; r < 12; r++) {
      assertEquals(batch.captions.data[r * 8], model.startIdx);
      sampled.data.set(batch.captions.data.subarray(r * 8 + 1, (r + 1) * 8), r * 7);
      assertEquals(batch.imageIdxs[r], batch.imageIdxs[r - (r % 3)], "three rows per image");
    }
    const images = [0, 3, 6, 9].map((r) => batch.imageIdxs[r]);
    const rewards = reward.scoreCaptions(sampled, images, model.idxToWord);
    const stats = batches.lastStats!;
    assertAlmostEquals(stats.reward, rewards.reduce((a, b) => a + b) / 12, 1e-12);
    if (baseline === "mean") {
      for (let r = 0; r < 12; r++) {
        const i = r - (r % 3), others = rewards[i] + rewards[i + 1] + rewards[i + 2] - rewards[r];
        assertAlmostEquals(batch.weights![r], rewards[r] - others / 2, 1e-12);
      }
      assertEquals(stats.greedyReward, null);
    } else {
      const greedy = model.sampleWithScores(
        new Tensor(
          Float32Array.from(
            images.flatMap((img) =>
              Array.from(data.train_features.data.subarray(img * 6, (img + 1) * 6))
            ),
          ),
          [4, 6],
        ),
        { maxLength: 7 },
      );
      const g = reward.scoreCaptions(greedy.captions, images, model.idxToWord);
      for (let r = 0; r < 12; r++) {
        assertAlmostEquals(batch.weights![r], rewards[r] - g[Math.floor(r / 3)], 1e-12);
      }
      assertAlmostEquals(stats.greedyReward!, g.reduce((a, b) => a + b) / 4, 1e-12);
    }
    assert(stats.beatBaseline >= 0 && stats.beatBaseline <= 1);
    // The same state draws the same batch; the next one differs.
    const next = await batches.next();
    batches.setState(state);
    assertEquals((await batches.next()).captions.data, batch.captions.data);
    assert(
      next.imageIdxs.some((img, r) => img !== batch.imageIdxs[r]),
      "the next batch has other images",
    );
  }
});
