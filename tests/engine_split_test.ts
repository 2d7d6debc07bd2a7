/**
 * The split of a training step that lets it span processes (`GradientEngine`): the sum of a
 * range of shards continuing another engine's running sum, then the update. Chained through
 * `partial`, the pieces give the bits of one step over all shards, for the single-thread
 * engine and the pool, in one piece or several, with weights, clipping and empty shards.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { Optimizer } from "../layers/optim.ts";
import type { FloatDType } from "../layers/tensor.ts";
import type { CaptioningModel, ModelKind } from "../model/captioning_model.ts";
import { createCaptioningModel } from "../model/models.ts";
import type { Minibatch } from "../model/minibatch.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import type { CaptionData } from "../pipeline/data/caption_data.ts";
import {
  addShardLosses,
  type GradientEngine,
  gradientPieces,
  LocalEngine,
  type RunningSum,
} from "../workers/engine.ts";
import { PoolEngine } from "../workers/pool.ts";
import type { Range } from "../workers/sharding.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { randomCaptionData } from "./fixtures_data.ts";

selectKernels();

const D = 24;
const DATA = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: D, seed: 3 });

function model(
  data: CaptionData,
  cellType: ModelKind = "lstm",
  dtype: FloatDType = "float32",
): CaptioningModel {
  return createCaptioningModel({
    wordToIdx: data.word_to_idx,
    inputDim: D,
    wordvecDim: 16,
    hiddenDim: 20,
    numHeads: 2,
    ffDim: 24,
    dropout: 0.2,
    cellType,
    dtype,
    seed: 7,
  });
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assertEquals(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${what}: element ${i}: ${a[i]} != ${b[i]}`);
  }
}

/** One "process": a model, its engine and its optimizer. */
interface Rank {
  model: CaptioningModel;
  engine: GradientEngine;
  opt: Optimizer;
}

function rank(
  engine: "local" | number,
  shards: number,
  cell?: ModelKind,
  dtype?: FloatDType,
): Rank {
  const m = model(DATA, cell, dtype);
  return {
    model: m,
    engine: engine === "local"
      ? new LocalEngine(m, shards)
      : new PoolEngine(m, { workers: engine, shards }),
    opt: new Optimizer("adam", {}, m.layout.total, m.dtype),
  };
}

/**
 * One step chained over the ranks, each summing its range of shards onto the previous one's
 * running sum (copied piece by piece, as MPI would), then the last one's gradient copied to
 * every rank and applied there.
 */
async function chainedStep(
  ranks: Rank[],
  ranges: Range[],
  batch: Minibatch,
  gradClip: number,
  pieces: number,
): Promise<{ sum: RunningSum; applied: boolean }[]> {
  let previous: { engine: GradientEngine; sum: RunningSum } | null = null;
  let handedOver = 0;
  for (const [i, r] of ranks.entries()) {
    const from: { engine: GradientEngine; sum: RunningSum } | null = previous;
    const sum = await r.engine.gradients(batch, {
      step: r.opt.t,
      shards: ranges[i],
      pieces,
      ...(from
        ? {
          partial: {
            loss: Promise.resolve(from.sum.loss),
            piece: (e: Range) => {
              r.engine.gradient.set(from.engine.gradient.subarray(e.start, e.end), e.start);
              handedOver++;
            },
          },
        }
        : {}),
    });
    previous = { engine: r.engine, sum };
  }
  assertEquals(handedOver, (ranks.length - 1) * pieces, "every piece is handed over once");
  const last = previous!;
  const out = [];
  for (const r of ranks) {
    if (r.engine !== last.engine) r.engine.gradient.set(last.engine.gradient);
    const result = await r.engine.apply(r.opt, gradClip, last.sum);
    out.push({ sum: last.sum, applied: result.applied });
  }
  return out;
}

async function compareChained(
  kinds: ("local" | number)[],
  ranges: Range[],
  options: {
    batches: number[];
    pieces?: number;
    gradClip?: number;
    weighted?: boolean;
    cell?: ModelKind;
    dtype?: FloatDType;
  },
): Promise<void> {
  const shards = ranges.at(-1)!.end;
  const whole = rank("local", shards, options.cell, options.dtype);
  const ranks = kinds.map((k) => rank(k, shards, options.cell, options.dtype));
  try {
    for (const [i, n] of options.batches.entries()) {
      const batch = new InMemoryBatches(DATA, n, i).next();
      if (options.weighted) {
        batch.weights = Float64Array.from({ length: n }, (_, r) => Math.sin(3 * r + i));
      }
      const want = await whole.engine.step(batch, whole.opt, options.gradClip ?? 0);
      const got = await chainedStep(
        ranks,
        ranges,
        batch,
        options.gradClip ?? 0,
        options.pieces ?? 1,
      );
      for (const [k, r] of ranks.entries()) {
        const what = `rank ${k}, step ${i + 1}`;
        assert(
          Object.is(got[k].sum.loss, want.loss),
          `${what}: loss ${got[k].sum.loss} != ${want.loss}`,
        );
        assert(Object.is(got[k].sum.gradNorm, want.gradNorm), `${what}: norm`);
        assertEquals(got[k].applied, want.applied, what);
        sameBits(r.engine.gradient, whole.engine.gradient, `${what}: gradient`);
        sameBits(r.model.flat, whole.model.flat, `${what}: parameters`);
        r.opt.moments.forEach((m, j) => sameBits(m, whole.opt.moments[j], `${what}: moment ${j}`));
        assertEquals(r.opt.t, whole.opt.t);
      }
    }
  } finally {
    for (const r of ranks) await r.engine.close();
  }
}

const HALVES = [{ start: 0, end: 2 }, { start: 2, end: 4 }];

Deno.test("LocalEngine: shards [0,2) then [2,4) chained through partial give the bits of one 4-shard step", async () => {
  // Batches of 10 (shards 3/3/2/2), 4 (one row each) and 3 (an empty shard).
  await compareChained(["local", "local"], HALVES, { batches: [10, 4, 3, 10] });
});

for (const workers of [1, 2]) {
  Deno.test(`PoolEngine (${workers} worker(s)): shards [0,2) then [2,4) chained give the bits of one 4-shard step`, async () => {
    await compareChained([workers, workers], HALVES, { batches: [10, 4, 3] });
  });
}

Deno.test("chained sums in 5 pieces, with weights and clipping, equal one step (a pool after a LocalEngine)", async () => {
  await compareChained(["local", 2], HALVES, {
    batches: [10, 7],
    pieces: 5,
    gradClip: 1,
    weighted: true,
  });
});

Deno.test("three engines chaining shards [0,1), [1,3), [3,6) equal one 6-shard step (float64, gru)", async () => {
  await compareChained(
    ["local", 2, "local"],
    [{ start: 0, end: 1 }, { start: 1, end: 3 }, { start: 3, end: 6 }],
    { batches: [11, 5], pieces: 3, cell: "gru", dtype: "float64" },
  );
});

Deno.test("the Transformer's dropout masks follow the shard, so a chained step equals one step", async () => {
  await compareChained([1, "local"], HALVES, { batches: [9], cell: "transformer" });
});

Deno.test("shardLosses() of a range, added in shard order, equal evalLoss() (LocalEngine and pool)", async () => {
  const local = rank("local", 4), pool = rank(2, 4);
  try {
    for (const n of [10, 3]) {
      const batch = new InMemoryBatches(DATA, n, n).next();
      const want = local.engine.evalLoss(batch) as number;
      const front = await pool.engine.shardLosses(batch, { start: 0, end: 1 });
      const back = await local.engine.shardLosses(batch, { start: 1, end: 4 });
      const loss = addShardLosses(
        addShardLosses(0, front, n, 4, { start: 0, end: 1 }),
        back,
        n,
        4,
        {
          start: 1,
          end: 4,
        },
      );
      assert(Object.is(loss, want), `${loss} != ${want}`);
      assert(Object.is(await pool.engine.evalLoss(batch), want));
    }
  } finally {
    await pool.engine.close();
  }
});

Deno.test("gradientPieces() covers the gradient with runs of whole blocks, in order", () => {
  for (const [total, pieces] of [[1000, 1], [1000, 7], [10, 64], [100_003, 64]]) {
    const p = gradientPieces(total, pieces);
    assertEquals(p.length, pieces);
    assertEquals(p[0].elements.start, 0);
    assertEquals(p.at(-1)!.elements.end, total);
    for (let k = 1; k < p.length; k++) {
      assertEquals(p[k].elements.start, p[k - 1].elements.end);
      assertEquals(p[k].blocks.start, p[k - 1].blocks.end);
    }
  }
});

Deno.test("gradients() refuses a shard range outside the batch's shards, and bad pieces", async () => {
  const r = rank(2, 4);
  try {
    const batch = new InMemoryBatches(DATA, 8, 0).next();
    for (const engine of [new LocalEngine(r.model, 4), r.engine]) {
      await assertRejects(
        () => engine.gradients(batch, { step: 0, shards: { start: 2, end: 5 } }),
        RangeError,
        "within the 4 shards",
      );
      await assertRejects(
        () => engine.gradients(batch, { step: 0, pieces: 65 }),
        RangeError,
        "pieces",
      );
      await assertRejects(
        () => engine.gradients(batch, { step: 0, piece: 2 } as never),
        TypeError,
        'did you mean "pieces"',
      );
    }
  } finally {
    await r.engine.close();
  }
});
