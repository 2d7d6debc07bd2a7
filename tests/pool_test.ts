import { availableBackends, kernels, selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { columnBlockWidth } from "../layers/kernels/matmul.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
import type { CaptioningModel, ModelKind } from "../model/captioning_model.ts";
import { createCaptioningModel } from "../model/models.ts";
import { SAMPLE_CHUNK } from "../model/sampling.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import type { CaptionData } from "../pipeline/data/caption_data.ts";
import { Optimizer, type UpdateRule } from "../layers/optim.ts";
import { CaptioningSolver, TrainingDivergedError } from "../pipeline/train/solver.ts";
import { LocalEngine, type StepResult } from "../workers/engine.ts";
import { createEngine, PoolEngine, WorkerFailure } from "../workers/pool.ts";
import { reduceBlock, reduceBlockOnto } from "../workers/reduce.ts";
import { reduceShards, sumSquares } from "../workers/sharding.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { workerThreadsAfter } from "./threads.ts";
import { faultyWorkerUrl } from "./faulty_worker.ts";
import { randomCaptionData } from "./fixtures_data.ts";

selectKernels(); // the fastest backend here; the pool's workers select the same one

const D = 24;

function smallModel(
  data: CaptionData,
  cellType: ModelKind = "lstm",
  dtype: FloatDType = "float32",
  hiddenDim = 20,
): CaptioningModel {
  // The Transformer's options are ignored by the recurrent models, and theirs by it.
  return createCaptioningModel({
    wordToIdx: data.word_to_idx,
    inputDim: D,
    wordvecDim: 16,
    hiddenDim,
    numHeads: 2,
    ffDim: 24,
    dropout: 0.2,
    cellType,
    dtype,
    seed: 7,
  });
}

/** The indices where two arrays differ bitwise (NaN equals NaN), at most 5 of them. */
function bitDiffs(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  assertEquals(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length && out.length < 5; i++) if (!Object.is(a[i], b[i])) out.push(i);
  return out;
}

function assertSameStep(got: StepResult, want: StepResult): void {
  assert(Object.is(got.loss, want.loss), `loss ${got.loss} != ${want.loss}`);
  assert(Object.is(got.gradNorm, want.gradNorm), `norm ${got.gradNorm} != ${want.gradNorm}`);
  assertEquals(got.applied, want.applied);
}

/** Runs the same steps on LocalEngine and a pool, checking results, gradients and parameters. */
async function compareSteps(
  workers: number,
  options: {
    rule: UpdateRule;
    gradClip: number;
    batches: number[];
    cell?: ModelKind;
    dtype?: FloatDType;
    shards?: number;
    /** The hidden size (default 20). */
    hiddenDim?: number;
    /** Per-caption loss weights, positive and negative (self-critical training's). */
    weighted?: boolean;
    /** How the pool's workers share a step (default: the pool's). */
    split?: "steps" | "shards";
    /** The split the pool must report using. */
    expectSplit?: "steps" | "shards";
  },
): Promise<void> {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const local = smallModel(data, options.cell, options.dtype, options.hiddenDim);
  const pooled = smallModel(data, options.cell, options.dtype, options.hiddenDim);
  const le = new LocalEngine(local, options.shards);
  const pe = new PoolEngine(pooled, {
    workers,
    shards: options.shards,
    ...(options.split ? { split: options.split } : {}),
  });
  if (options.expectSplit) assertEquals(pe.split, options.expectSplit);
  try {
    const lo = new Optimizer(options.rule, {}, local.layout.total, local.dtype);
    const po = new Optimizer(options.rule, {}, pooled.layout.total, pooled.dtype);
    for (const [i, n] of options.batches.entries()) {
      const batch = new InMemoryBatches(data, n, i).next();
      if (options.weighted) {
        batch.weights = Float64Array.from({ length: n }, (_, r) => Math.sin(3 * r + i));
      }
      const want = le.step(batch, lo, options.gradClip);
      const got = await pe.step(batch, po, options.gradClip);
      assertSameStep(got, want);
      assertEquals(bitDiffs(pe.gradient, le.gradient), [], `gradient, step ${i + 1}`);
      assertEquals(bitDiffs(pooled.flat, local.flat), [], `parameters, step ${i + 1}`);
      for (const [k, m] of po.moments.entries()) {
        assertEquals(bitDiffs(m, lo.moments[k]), [], `moment ${k}, step ${i + 1}`);
      }
      assertEquals(po.t, lo.t);
    }
  } finally {
    await pe.close();
  }
}

for (const workers of [1, 2, 4]) {
  Deno.test(`PoolEngine.step() with ${workers} worker(s) equals LocalEngine bitwise (gradients, parameters, moments)`, async () => {
    // Batches of 10 (shards 3/3/2/2), 4 (one row each) and 3 (one empty shard); and the
    // default, one shard that the workers compute together.
    await compareSteps(workers, { rule: "adam", gradClip: 0, batches: [10, 4, 3, 10], shards: 4 });
    await compareSteps(workers, { rule: "adam", gradClip: 0, batches: [10, 3] });
  });
}

for (const workers of [1, 2, 4]) {
  Deno.test(`PoolEngine.step() of a batch with per-caption weights, ${workers} worker(s), equals LocalEngine bitwise`, async () => {
    await compareSteps(workers, {
      rule: "adam",
      gradClip: 1,
      batches: [10, 4, 3],
      weighted: true,
      shards: 4,
    });
    await compareSteps(workers, { rule: "adam", gradClip: 1, batches: [10], weighted: true });
  });
}

for (const cell of ["lstm", "gru", "transformer"] as const) {
  Deno.test(`sample() on the pool equals model.sampleWithScores() bitwise for every strategy and control (${cell})`, async () => {
    const data = randomCaptionData({ numTrain: 30, vocab: 30, inputDim: D, seed: 5 });
    const model = smallModel(data, cell);
    for (let i = 0; i < model.flat.length; i++) model.flat[i] *= 3;
    const pe = new PoolEngine(model, { workers: 2 });
    try {
      // 60 images: two and a bit chunks of 25 images at 5 samples each, one chunk otherwise.
      const f = Tensor.randn([60, D], 4, "float32");
      const cases = [
        { method: "sample", samples: 5, temperature: 0.7, seed: 3 },
        { method: "sample", topK: 4, topP: 0.9, blockTrigrams: true, seed: 9 },
        { beamSize: 4, nBest: 2, lengthPenalty: "gnmt", lengthAlpha: 1, blockTrigrams: true },
        { beamSize: 3, plainBeam: true },
        { beamSize: 4, beamGroups: 2, diversity: 1, lengthPenalty: "average" },
        { method: "greedy", blockTrigrams: true },
      ] as const;
      // And more images than a chunk of greedy decoding holds: every engine keeps whole chunks
      // (25 images at 5 samples each), image-numbered sampling streams and m captions per image.
      const many = Tensor.randn([2 * SAMPLE_CHUNK + 7, D], 5, "float32");
      const local = new LocalEngine(model);
      for (
        const [features, options] of [...cases.map((o) => [f, o] as const), [many, cases[0]], [
          many,
          cases[2],
        ]] as const
      ) {
        const want = model.sampleWithScores(features, { maxLength: 9, ...options });
        const what = `${features.shape[0]} images, ${JSON.stringify(options)}`;
        for (const engine of [pe, local]) {
          const got = await engine.sample(features, { maxLength: 9, ...options });
          assertEquals(got.captions.shape, want.captions.shape, what);
          assertEquals(bitDiffs(got.captions.data, want.captions.data), [], `captions, ${what}`);
          assertEquals(bitDiffs(got.logProbs, want.logProbs), [], `log-probs, ${what}`);
        }
      }
    } finally {
      await pe.close();
    }
  });
}

Deno.test("sample() hands chunks to whichever worker is free: a late worker's share goes to the others, bitwise the same", async () => {
  const data = randomCaptionData({ numTrain: 30, vocab: 30, inputDim: D, seed: 5 });
  const model = smallModel(data, "lstm");
  // Worker 0 takes nothing until the others have taken every chunk (tests/late_worker.ts).
  const workerUrl = new URL("./late_worker.ts", import.meta.url);
  const pe = new PoolEngine(model, { workers: 3, workerUrl });
  try {
    const features = Tensor.randn([3 * SAMPLE_CHUNK + 5, D], 6, "float32");
    for (const options of [{ maxLength: 7 }, { maxLength: 7, beamSize: 3 }]) {
      const want = model.sampleWithScores(features, options);
      const got = await pe.sample(features, options);
      assertEquals(bitDiffs(got.captions.data, want.captions.data), [], JSON.stringify(options));
      assertEquals(bitDiffs(got.logProbs, want.logProbs), [], JSON.stringify(options));
    }
  } finally {
    await pe.close();
  }
});

for (const backend of availableBackends().filter((b) => b !== kernels().name)) {
  Deno.test(`PoolEngine.step() equals LocalEngine bitwise on the ${backend} backend too`, async () => {
    const previous = kernels().name;
    selectKernels(backend as BackendName);
    try {
      await compareSteps(2, { rule: "rmsprop", gradClip: 0, batches: [10, 7], cell: "rnn" });
    } finally {
      selectKernels(previous);
    }
  });
}

for (const cell of ["gru", "transformer"] as const) {
  Deno.test(`PoolEngine.step() equals LocalEngine bitwise for the ${cell} (2 and 4 workers)`, async () => {
    // The Transformer trains with dropout: each shard's masks depend on the step and the
    // shard, never on the worker that computes it.
    await compareSteps(2, { rule: "adam", gradClip: 0, batches: [10, 4, 3, 10], cell });
    await compareSteps(4, { rule: "adam", gradClip: 1, batches: [10, 9], cell });
  });
}

Deno.test("PoolEngine equals LocalEngine bitwise when the recurrent GEMMs are cut into column blocks (lstm, gru)", async () => {
  const hd = 320; // shards of 2–3 captions: both recurrent products run in column blocks
  for (const [cell, gates] of [["lstm", 4], ["gru", 3]] as const) {
    assert(columnBlockWidth(3, gates * hd, hd, false) < gates * hd, `${cell} forward`);
    assert(columnBlockWidth(3, hd, gates * hd, true) < hd, `${cell} backward`);
    await compareSteps(2, { rule: "adam", gradClip: 0, batches: [10, 9], cell, hiddenDim: hd });
    await compareSteps(4, { rule: "adam", gradClip: 1, batches: [10], cell, hiddenDim: hd });
  }
});

Deno.test("a team step equals LocalEngine bitwise with more workers than shards and cut hidden units (lstm, gru, rnn)", async () => {
  // H = 256: four blocks of 64 hidden units per recurrent phase, and blocks of columns in
  // every GEMM; 1 shard on 2 and 3 workers, 3 shards on 2.
  for (const cell of ["lstm", "gru", "rnn"] as const) {
    const common = { rule: "adam", gradClip: 1, cell, hiddenDim: 256 } as const;
    await compareSteps(2, { ...common, batches: [10, 3], shards: 1, expectSplit: "steps" });
    await compareSteps(3, { ...common, batches: [10], shards: 1, expectSplit: "steps" });
    await compareSteps(2, { ...common, batches: [9, 2], shards: 3, expectSplit: "steps" });
  }
  await compareSteps(2, {
    rule: "adam",
    gradClip: 0,
    batches: [10, 4],
    hiddenDim: 256,
    shards: 1,
    dtype: "float64",
    expectSplit: "steps",
  });
});

Deno.test("split 'auto' teams up when the shards do not divide among the workers; 'steps' always does", async () => {
  const common = { rule: "adam" as const, gradClip: 0, batches: [10, 3], hiddenDim: 128 };
  await compareSteps(2, { ...common, shards: 4, expectSplit: "shards" });
  await compareSteps(4, { ...common, shards: 2, expectSplit: "steps" });
  await compareSteps(2, { ...common, shards: 4, split: "steps", expectSplit: "steps" });
});

Deno.test("split 'shards' gives each worker whole shards, with the same bits; the Transformer always does", async () => {
  await compareSteps(2, {
    rule: "adam",
    gradClip: 0,
    batches: [10, 3],
    hiddenDim: 128,
    split: "shards",
    expectSplit: "shards",
  });
  await compareSteps(2, {
    rule: "adam",
    gradClip: 0,
    batches: [10],
    cell: "transformer",
    split: "steps",
    expectSplit: "shards",
  });
  assertThrows(
    () =>
      new PoolEngine(smallModel(randomCaptionData({ numTrain: 4, vocab: 9, inputDim: D })), {
        split: "rows" as never,
      }),
    RangeError,
    'split: expected one of "auto", "steps", "shards"',
  );
});

Deno.test("a training step draws the Transformer's dropout; a validation loss does not", () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const batch = new InMemoryBatches(data, 10, 0).next();
  for (const dropout of [0.2, 0]) {
    const model = createCaptioningModel({
      ...smallModel(data, "transformer").config,
      dropout,
      wordToIdx: data.word_to_idx,
    });
    const engine = new LocalEngine(model);
    const clean = engine.evalLoss(batch);
    const whole = model.lossValue(batch.features, batch.captions); // one shard: other rounding
    assert(Math.abs(clean - whole) < 1e-5 * whole, `validation ${clean} vs ${whole}`);
    const opt = new Optimizer("sgd", { learningRate: 1e-9 }, model.layout.total, model.dtype);
    const { loss } = engine.step(batch, opt, 0);
    if (dropout > 0) assert(Math.abs(loss - clean) > 1e-3, `dropout on: ${loss} vs ${clean}`);
    else assert(Math.abs(loss - clean) < 1e-6, `dropout off: ${loss} vs ${clean}`);
  }
});

Deno.test("PoolEngine clips the gradient exactly as LocalEngine (sgd_momentum and sgd)", async () => {
  await compareSteps(2, { rule: "sgd_momentum", gradClip: 0.5, batches: [10, 10, 5] });
  await compareSteps(4, { rule: "sgd", gradClip: 0.25, batches: [9, 10] });
});

Deno.test("PoolEngine equals LocalEngine bitwise for a float64 model and for other shard counts", async () => {
  // float32 batch features are widened into the float64 model's shared batch buffer.
  await compareSteps(2, { rule: "adam", gradClip: 1, batches: [10, 6], dtype: "float64" });
  await compareSteps(2, { rule: "adam", gradClip: 0, batches: [10, 2], shards: 3 });
  await compareSteps(4, { rule: "rmsprop", gradClip: 0, batches: [9], shards: 2 });
});

Deno.test("a non-finite loss is reported, not applied, and leaves the pool usable", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const local = smallModel(data), pooled = smallModel(data);
  const le = new LocalEngine(local), pe = new PoolEngine(pooled, { workers: 2 });
  try {
    const lo = new Optimizer("adam", {}, local.layout.total, local.dtype);
    const po = new Optimizer("adam", {}, pooled.layout.total, pooled.dtype);
    const batches = new InMemoryBatches(data, 8, 1);
    const good = batches.next(), bad = batches.next();
    assertSameStep(await pe.step(good, po, 5), le.step(good, lo, 5));
    // A NaN feature poisons one shard's loss and gradients.
    bad.features.data[3] = NaN;
    const before = pooled.flat.slice(), moments = po.moments.map((m) => m.slice());
    const want = le.step(bad, lo, 5), got = await pe.step(bad, po, 5);
    assertSameStep(got, want);
    assertEquals(got.applied, false);
    assert(Number.isNaN(got.loss));
    assertEquals(bitDiffs(pooled.flat, before), [], "parameters changed by a NaN step");
    po.moments.forEach((m, k) => assertEquals(bitDiffs(m, moments[k]), [], `moment ${k} changed`));
    assertEquals(po.t, 1);
    // The next good step is again the same as LocalEngine's.
    assertSameStep(await pe.step(good, po, 5), le.step(good, lo, 5));
    assertEquals(bitDiffs(pooled.flat, local.flat), []);
  } finally {
    await pe.close();
  }
});

for (const cell of ["rnn", "transformer"] as const) {
  Deno.test(`evalLoss() and sample() on the pool equal LocalEngine.evalLoss() and model.sampleWithScores() (${cell})`, async () => {
    const data = randomCaptionData({ numTrain: 30, vocab: 30, inputDim: D, seed: 5 });
    const model = smallModel(data, cell);
    const pe = new PoolEngine(model, { workers: 2 });
    try {
      const batch = new InMemoryBatches(data, 13, 2).next();
      assert(Object.is(await pe.evalLoss(batch), new LocalEngine(model).evalLoss(batch)));
      // Bitwise by construction on any CPU: the workers take whole chunks of SAMPLE_CHUNK images,
      // each decoded as the single call decodes it. 7 images (one partial chunk, one worker
      // busy) and 2 chunks + 7 (2 + 1 chunks), greedy and beam search.
      const features = new Tensor<"float32">(
        data.train_features.data.slice(0, 7 * D) as Float32Array,
        [7, D],
      );
      const many = Tensor.randn([2 * SAMPLE_CHUNK + 7, D], 8, "float32");
      for (const f of [features, many]) {
        for (const beamSize of [1, 3]) {
          const want = model.sampleWithScores(f, { maxLength: 9, beamSize });
          const got = await pe.sample(f, { maxLength: 9, beamSize });
          assertEquals(got.captions.shape, [f.shape[0], 9]);
          const what = `${f.shape[0]} images, beam ${beamSize}`;
          assertEquals(bitDiffs(got.captions.data, want.captions.data), [], `captions, ${what}`);
          assertEquals(bitDiffs(got.logProbs, want.logProbs), [], `log-probs, ${what}`);
        }
      }
      // A larger call grows the shared buffers; a bad one is an error here, not a dead worker.
      const all = data.train_features;
      const want = model.sampleWithScores(all, { maxLength: 5 });
      assertEquals(
        bitDiffs((await pe.sample(all, { maxLength: 5 })).captions.data, want.captions.data),
        [],
      );
      await assertRejects(() => pe.sample(all, { beamSize: 0 }), RangeError, "Invalid beamSize");
      await assertRejects(() => pe.sample(features, { maxLength: 1.5 }), RangeError, "maxLength");
      const after = await pe.sample(features, { maxLength: 9 });
      assertEquals(after.captions.shape, [7, 9]);
    } finally {
      await pe.close();
    }
  });
}

for (const cell of ["lstm", "gru", "transformer"] as const) {
  Deno.test(`the solver's loss history is identical across runs and across 1, 2 and 4 workers (${cell})`, async () => {
    const data = randomCaptionData({ numTrain: 60, numVal: 12, vocab: 30, inputDim: D, seed: 9 });
    const run = async (workers: number) => {
      const model = smallModel(data, cell);
      const solver = new CaptioningSolver(model, data, {
        engine: createEngine(model, { workers }),
        updateRule: "adam",
        optimConfig: { learningRate: 2e-2 },
        lrDecay: 0.9,
        batchSize: 20,
        numEpochs: 4,
        gradClip: 2,
        valCaptions: 12,
        verbose: false,
      });
      try {
        await solver.train();
      } finally {
        await solver.close();
      }
      return { losses: solver.lossHistory, val: solver.valLossHistory, params: model.flat };
    };
    const reference = await run(1);
    assertEquals(reference.losses.length, 12);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b) / xs.length;
    const [first, last] = [mean(reference.losses.slice(0, 3)), mean(reference.losses.slice(9))];
    assert(last < first, `the run should learn: ${first} -> ${last}`);
    assertEquals(reference.val.length, 4);
    for (const workers of [2, 4, 2]) {
      const got = await run(workers);
      assertEquals(got.losses, reference.losses, `losses with ${workers} workers`);
      assertEquals(got.val, reference.val, `validation losses with ${workers} workers`);
      assertEquals(
        bitDiffs(got.params, reference.params),
        [],
        `parameters with ${workers} workers`,
      );
    }
  });
}

for (const phase of ["loss", "reduce", "update"] as const) {
  Deno.test(`a worker that throws in the ${phase} phase rejects the step with its error and stack, and the pool shuts down`, async () => {
    const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
    const model = smallModel(data);
    const pe = new PoolEngine(model, {
      workers: 2,
      workerUrl: faultyWorkerUrl({ step: 2, worker: 1, phase }),
    });
    try {
      const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
      const batches = new InMemoryBatches(data, 10, 0);
      await pe.step(batches.next(), opt, 0);
      const before = model.flat.slice();
      const err = await assertRejects(
        () => pe.step(batches.next(), opt, 0),
        Error,
        `Compute worker 1 failed in the ${phase} phase: Error: Injected fault (testing only)`,
      );
      assert(err.stack?.includes("compute_worker.ts"), `no worker stack in ${err.stack}`);
      assert((err.cause as Error).message.startsWith("Injected fault"));
      if (phase !== "update") {
        assertEquals(bitDiffs(model.flat, before), [], "a failed step changed the parameters");
        assertEquals(opt.t, 1);
      }
      await assertRejects(() => pe.evalLoss(batches.next()), Error, "shut down after a failure");
    } finally {
      await pe.close();
    }
  });
}

Deno.test("a worker that throws inside a team step fails the step with its own error; its teammates leave the barrier", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data, "lstm", "float32", 128);
  const pe = new PoolEngine(model, {
    workers: 3,
    shards: 1,
    workerUrl: faultyWorkerUrl({ step: 1, worker: 1, barrier: 5 }),
  });
  try {
    assertEquals(pe.split, "steps");
    const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
    const t0 = performance.now();
    await assertRejects(
      () => pe.step(new InMemoryBatches(data, 10, 0).next(), opt, 0),
      Error,
      "Compute worker 1 failed in the loss phase: Error: Injected fault (testing only) in worker 1 at step 1, loss phase (barrier 5)",
    );
    assert(performance.now() - t0 < 10_000, "the teammates did not wait for the watchdog");
  } finally {
    await pe.close();
  }
});

Deno.test("a worker stuck inside a team step is named by the watchdog; its teammates wait for it", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data, "lstm", "float32", 128);
  const pe = new PoolEngine(model, {
    workers: 3,
    shards: 1,
    workerTimeout: 1,
    workerUrl: faultyWorkerUrl({ step: 1, worker: 2, barrier: 3, hang: "wait" }),
  });
  try {
    const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
    await assertRejects(
      () => pe.step(new InMemoryBatches(data, 10, 0).next(), opt, 0),
      WorkerFailure,
      "Compute worker 2 did not finish the loss phase within 1 s and seems stuck (workers 0, 1 wait for it at the team step's barrier)",
    );
  } finally {
    await pe.close();
  }
});

Deno.test("a worker stuck in a loop is stopped by the watchdog, which names it and the phase", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data);
  const workerUrl = faultyWorkerUrl({ step: 2, worker: 1, phase: "reduce", hang: "wait" });
  const pe = new PoolEngine(model, { workers: 2, workerUrl, workerTimeout: 1 });
  try {
    const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
    const batches = new InMemoryBatches(data, 10, 0);
    await pe.step(batches.next(), opt, 0);
    const before = model.flat.slice();
    const started = performance.now();
    const err = await assertRejects(
      () => pe.step(batches.next(), opt, 0),
      WorkerFailure,
      "Compute worker 1 did not finish the reduce phase within 1 s",
    );
    assertEquals((err as WorkerFailure).phase, "reduce");
    assertEquals((err as WorkerFailure).worker, 1);
    assert(performance.now() - started < 10_000, "stopped within the bound, not hung");
    assertEquals(bitDiffs(model.flat, before), [], "the parameters are untouched");
    await assertRejects(() => pe.evalLoss(batches.next()), Error, "shut down after a failure");
  } finally {
    await pe.close();
  }
});

Deno.test("a worker that crashes (uncaught error event) rejects the step without hanging", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data);
  const workerUrl = faultyWorkerUrl({ step: 1, worker: 0, uncaught: true });
  const pe = new PoolEngine(model, { workers: 2, workerUrl });
  try {
    const before = model.flat.slice();
    const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
    await assertRejects(
      () => pe.step(new InMemoryBatches(data, 10, 0).next(), opt, 0),
      Error,
      /Compute worker 0 failed: .*Injected uncaught fault \(testing only\) in worker 0/,
    );
    assertEquals(bitDiffs(model.flat, before), []);
    assertEquals(opt.t, 0);
  } finally {
    await pe.close();
  }
});

Deno.test("a worker failure stops CaptioningSolver.train() with the worker's message", async () => {
  const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data);
  const engine = createEngine(model, {
    workers: 2,
    workerUrl: faultyWorkerUrl({ step: 3, worker: 0 }),
  });
  const solver = new CaptioningSolver(model, data, { engine, batchSize: 10, verbose: false });
  try {
    const err = await assertRejects(() => solver.train(), Error, "Injected fault");
    assert(!(err instanceof TrainingDivergedError));
    assertEquals(solver.iteration, 2);
  } finally {
    await solver.close();
  }
});

Deno.test("a pool closed before its workers started leaves no worker thread", async () => {
  const data = randomCaptionData({ numTrain: 10, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data);
  // terminate() does not end a worker whose JavaScript is not running yet; such a worker
  // still takes its queued init message, and must see the pool's STOP then and leave.
  for (let i = 0; i < 4; i++) await new PoolEngine(model, { workers: 2 }).close();
  assertEquals(await workerThreadsAfter(10_000), [], "every worker thread ended");
});

Deno.test("a worker that cannot start rejects the first call, and bad arguments are errors", async () => {
  const data = randomCaptionData({ numTrain: 10, vocab: 30, inputDim: D, seed: 3 });
  const model = smallModel(data);
  const missing = new URL("./no_such_worker.ts", import.meta.url);
  const pe = new PoolEngine(model, { workers: 2, workerUrl: missing });
  try {
    await assertRejects(() => pe.ready, Error, /Compute worker \d failed/);
    await assertRejects(
      () => pe.evalLoss(new InMemoryBatches(data, 4, 0).next()),
      Error,
      /shut down after a failure: Compute worker \d failed/,
    );
  } finally {
    await pe.close();
  }
  assertThrows(
    () => new PoolEngine(model, { workers: 2, backend: "nope" as BackendName }),
    RangeError,
    'backend: expected one of "blas", "wasm", "ts", got "nope"',
  );
  assertThrows(
    () => createEngine(model, { worker: 2 } as never),
    TypeError,
    'unknown option "worker" (did you mean "workers"?)',
  );
  const unshared = createCaptioningModel({
    ...model.config,
    wordToIdx: data.word_to_idx,
    paramBuffer: new Float32Array(model.layout.total),
  });
  assertThrows(() => new PoolEngine(unshared, { workers: 2 }), TypeError, "SharedArrayBuffer");
  assertThrows(() => new PoolEngine(model, { workers: 0 }), RangeError, "workers: expected");
  assertThrows(() => createEngine(model, { workers: 1.5 }), RangeError, "workers: expected");
  assert(createEngine(model, { workers: 1 }) instanceof LocalEngine);
  const pool = new PoolEngine(model, { workers: 2 });
  try {
    const batch: Minibatch = new InMemoryBatches(data, 4, 0).next();
    const wrong = { ...batch, features: new Tensor<"float32">(new Float32Array(4 * 3), [4, 3]) };
    await assertRejects(() => pool.evalLoss(wrong), RangeError, "Invalid features");
    assert(Number.isFinite(await pool.evalLoss(batch)), "the pool survives a bad call");
    const opt = new Optimizer("sgd", {}, model.layout.total, model.dtype);
    const first = pool.step(batch, opt, 0);
    await assertRejects(() => pool.step(batch, opt, 0), Error, "previous one has not finished");
    assert((await first).applied);
  } finally {
    await pool.close();
  }
  await assertRejects(() => pool.evalLoss(new InMemoryBatches(data, 4, 0).next()), Error, "closed");
});

Deno.test("reduceBlock() equals reduceShards() + sumSquares() bitwise for any shard count and dtype", () => {
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 3;
  for (const dtype of ["float32", "float64"] as const) {
    const make = (n: number) => {
      const a = dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = rand();
      return a;
    };
    for (const count of [1, 2, 3, 4, 5]) {
      const shards = Array.from({ length: count }, () => make(50));
      shards[0][7] = -0;
      shards[count - 1][9] = NaN;
      shards[0][11] = 1e30; // overflows float32 when squared in float32, not in float64
      const want = dtype === "float32" ? new Float32Array(50) : new Float64Array(50);
      const got = want.slice();
      reduceShards(shards, want, 3, 41);
      const wantSq = sumSquares(want, 3, 8), gotSq = reduceBlock(shards, got, 3, 8);
      assert(Object.is(gotSq, wantSq), `${dtype} x${count}: ${gotSq} != ${wantSq}`);
      reduceBlock(shards, got, 8, 41);
      assertEquals(bitDiffs(got, want), [], `${dtype} x${count}`);
      assert(Object.is(reduceBlock(shards, got, 3, 41), sumSquares(want, 3, 41)));
    }
  }
});

Deno.test("reduceBlockOnto() continues reduceBlock() bitwise at any cut and dtype", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 3;
  for (const dtype of ["float32", "float64"] as const) {
    const make = () => {
      const a = dtype === "float32" ? new Float32Array(40) : new Float64Array(40);
      for (let i = 0; i < a.length; i++) a[i] = rand();
      return a;
    };
    const shards = Array.from({ length: 5 }, make);
    const whole = shards[0].slice();
    const wantSq = reduceBlock(shards, whole, 2, 37);
    for (let cut = 1; cut < shards.length; cut++) {
      const got = shards[0].slice();
      reduceBlock(shards.slice(0, cut), got, 2, 37);
      const gotSq = reduceBlockOnto(shards.slice(cut), got, 2, 37);
      assert(Object.is(gotSq, wantSq), `${dtype} cut ${cut}: ${gotSq} != ${wantSq}`);
      assertEquals(bitDiffs(got, whole), [], `${dtype} cut ${cut}`);
    }
  }
});
