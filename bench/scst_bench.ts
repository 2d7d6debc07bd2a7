/**
 * The cost of a self-critical training step against a cross-entropy step, on a trained
 * checkpoint and its dataset (by default the default run's: `deno task train` first). Both
 * steps train on the same number of captions — B images × k samples for SCST, B·k dataset
 * captions for cross-entropy — on their own copy of the model and their own engine, and are
 * interleaved (in rotating order) so that a busy machine slows both alike. Prints one JSON line
 * per step kind with medians: the whole step, and for SCST its parts (the rollout: sampling k
 * captions per image and the greedy baseline, then the CIDEr-D rewards; the weighted training
 * step).
 *
 *   deno run -A bench/scst_bench.ts [--checkpoint runs/default/best.h5] [--data datasets/synthetic]
 *     [--images 50] [--samples 5] [--iters 10] [--workers 2] [--baseline greedy|mean]
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { Optimizer } from "../layers/optim.ts";
import { Tensor } from "../layers/tensor.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { ScstBatches } from "../pipeline/train/scst.ts";
import { CiderReward } from "../pipeline/train/scst_reward.ts";
import { createEngine } from "../workers/pool.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, oneOf, path } from "../pipeline/cli/command_spec.ts";
import { median } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/scst_bench.ts",
  args: [],
  summary: "A self-critical step (B images x k samples) against a cross-entropy step on B·k " +
    "captions, interleaved, medians; one JSON line per step kind.",
  options: {
    checkpoint: path("runs/default/best.h5", "A trained checkpoint", "runs/default/best.h5"),
    data: path("datasets/synthetic", "Its dataset", "datasets/synthetic"),
    images: int(50, 1, "B, images per SCST step", "10"),
    samples: int(5, 1, "k, samples per image", "2"),
    iters: int(10, 1, "Timed steps of each kind", "3"),
    workers: int(2, 1, "Compute workers", "1"),
    baseline: oneOf(["greedy", "mean"], "greedy", "SCST baseline", "mean"),
    help: HELP_OPTION,
  },
}, Deno.args);

const backend = selectKernels().name;
const data = await loadCocoData({ baseDir: values.data });
const { reward } = await CiderReward.fromData(data, "train", null);
const b = values.images, k = values.samples, captions = b * k, warmup = 2, l = 16;

async function setup() {
  const { model } = await loadCheckpoint(values.checkpoint, { idxToWord: data.idx_to_word });
  const engine = createEngine(model, { workers: values.workers });
  const opt = new Optimizer("adam", { learningRate: 5e-5 }, model.layout.total, model.dtype);
  return { model, engine, opt };
}
const ce = await setup(), scst = await setup();
const ceBatches = new InMemoryBatches(data, captions, 0);
const scstBatches = new ScstBatches(data, scst.model.wordToIdx, scst.model.idxToWord, {
  engine: scst.engine,
  reward,
  batchSize: b,
  samples: k,
  temperature: 1,
  maxLength: l,
  baseline: values.baseline as "greedy" | "mean",
  seed: 0,
});
const times = { ce: [] as number[], scst: [] as number[], rollout: [] as number[] };
const parts = { reward: [] as number[], step: [] as number[] };
const steps = [
  async () => {
    const t0 = performance.now();
    await ce.engine.step(ceBatches.next(), ce.opt, 0);
    times.ce.push(performance.now() - t0);
  },
  async () => {
    const t0 = performance.now();
    const batch = await scstBatches.next();
    const t1 = performance.now();
    await scst.engine.step(batch, scst.opt, 0);
    const t2 = performance.now();
    times.scst.push(t2 - t0);
    times.rollout.push(t1 - t0);
    parts.step.push(t2 - t1);
    // The rewards alone, scored again on the captions just trained on.
    const rows = Array.from({ length: b }, (_, i) => batch.imageIdxs[i * k]);
    const words = Tensor.zeros([captions, l], "int32"); // the rows without their <START>
    for (let r = 0; r < captions; r++) {
      words.data.set(batch.captions.data.subarray(r * (l + 1) + 1, (r + 1) * (l + 1)), r * l);
    }
    const t3 = performance.now();
    reward.scoreCaptions(words, rows, data.idx_to_word);
    parts.reward.push(performance.now() - t3);
  },
];
for (let i = 0; i < values.iters + warmup; i++) {
  for (let j = 0; j < steps.length; j++) await steps[(i + j) % steps.length]();
}
const med = (xs: number[]) => Number(median(xs.slice(warmup)).toFixed(1));
const common = { backend, workers: values.workers, captions_per_step: captions };
console.log(JSON.stringify({ step: "cross-entropy", ...common, ms_per_step: med(times.ce) }));
console.log(JSON.stringify({
  step: "scst",
  ...common,
  images: b,
  samples: k,
  baseline: values.baseline,
  ms_per_step: med(times.scst),
  rollout_ms: med(times.rollout),
  reward_ms: med(parts.reward),
  train_step_ms: med(parts.step),
  mean_sampled_length: Number(scstBatches.lastStats!.meanLength.toFixed(2)),
  vs_cross_entropy: Number(
    (median(times.scst.slice(warmup)) / median(times.ce.slice(warmup))).toFixed(2),
  ),
}));
await ce.engine.close();
await scst.engine.close();
