/**
 * An A/B of training steps: this tree's engines against another checkout's (say, the commit
 * before a change), in one process, their steps interleaved, so that a noisy machine slows both
 * alike. Each side builds its own model, engine and data from its own modules (the pool's workers
 * load their own tree's compute worker), at the COCO sizes (W=256, H=512, V=1004, D=512), with its
 * own defaults (shards, split) unless `--shards` sets them. Prints one JSON line per config and
 * side: `ms` (the median step) and `captions_per_s`.
 *
 * With `--data DIR`, both sides draw their batches from that dataset (loaded once, by this tree),
 * instead of random captions — real captions repeat words far more than random ones.
 *
 *   git worktree add /tmp/before HEAD~1
 *   deno run -A bench/ab_train_bench.ts --before /tmp/before [--workers 2] [--rounds 30]
 * @module
 */
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, str } from "../pipeline/cli/command_spec.ts";
import { median } from "./coco_sizes.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/ab_train_bench.ts",
  args: [],
  summary: "Training steps of this tree against another checkout's, interleaved in one process.",
  options: {
    before: str("", "The other checkout's directory (required)", "/tmp/before"),
    configs: str("rnn:25,lstm:25,rnn:100,lstm:100", "cell:batch pairs, comma-separated", "lstm:25"),
    workers: int(2, 1, "Workers of both sides' engines", "2"),
    shards: str("", "Shards of both sides (default: each side's own default)", "4"),
    rounds: int(30, 1, "Timed steps per engine", "10"),
    data: str(
      "",
      "A dataset directory to draw the batches from (default: random captions)",
      "datasets/synthetic",
    ),
    help: HELP_OPTION,
  },
}, Deno.args);
if (!values.before) {
  console.error("error: --before: give the directory of the checkout to compare with");
  Deno.exit(2);
}
const configs = values.configs.split(",").map((c) => {
  const [cell, batch] = c.split(":");
  if (!["rnn", "lstm", "gru"].includes(cell) || !(Number(batch) >= 1)) {
    console.error(`error: --configs: expected cell:batch (rnn, lstm or gru), got "${c}"`);
    Deno.exit(2);
  }
  return { cell, batch: Number(batch) };
});
const sides = {
  before: new URL(`file://${Deno.realPathSync(values.before)}/`),
  after: new URL("../", import.meta.url),
};
// deno-lint-ignore no-explicit-any
type Module = any;
const load = async (root: URL, path: string): Promise<Module> =>
  await import(new URL(path, root).href);
const shared = values.data ? await loadCocoData({ baseDir: values.data }) : null;
const runs = [];
for (const { cell, batch } of configs) {
  for (const [side, root] of Object.entries(sides)) {
    const kernels = await load(root, "layers/kernels/mod.ts");
    const { createCaptioningModel } = await load(root, "model/models.ts");
    const { createEngine } = await load(root, "workers/pool.ts");
    const { Optimizer } = await load(root, "layers/optim.ts");
    const { InMemoryBatches } = await load(root, "pipeline/data/batches.ts");
    const { randomCaptionData } = await load(root, "tests/fixtures_data.ts");
    kernels.selectKernels();
    const data = shared ??
      randomCaptionData({ numTrain: 500, vocab: 1004, inputDim: 512, seed: 1 });
    const model = createCaptioningModel({
      wordToIdx: data.word_to_idx,
      inputDim: data.train_features.shape[1],
      wordvecDim: 256,
      hiddenDim: 512,
      cellType: cell,
    });
    const engine = createEngine(model, {
      workers: values.workers,
      ...(values.shards ? { shards: Number(values.shards) } : {}),
    });
    await engine.ready;
    runs.push({
      side,
      cell,
      batch,
      engine,
      opt: new Optimizer("adam", {}, model.layout.total, "float32"),
      batches: new InMemoryBatches(data, batch, 0),
      times: [] as number[],
    });
  }
}
const warmup = 3;
for (let r = 0; r < values.rounds + warmup; r++) {
  for (let i = 0; i < runs.length; i++) {
    const run = runs[(i + r) % runs.length];
    const t0 = performance.now();
    await run.engine.step(run.batches.next(), run.opt, 0);
    if (r >= warmup) run.times.push(performance.now() - t0);
  }
}
for (const run of runs) {
  const ms = median(run.times);
  console.log(JSON.stringify({
    bench: "ab_train",
    side: run.side,
    cell: run.cell,
    batch: run.batch,
    workers: values.workers,
    shards: run.engine.shards,
    ...(run.engine.split ? { split: run.engine.split } : {}),
    ms: Number(ms.toFixed(2)),
    captions_per_s: Number((run.batch / ms * 1000).toFixed(1)),
  }));
  await run.engine.close();
}
