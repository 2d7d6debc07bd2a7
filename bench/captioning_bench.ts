/**
 * Captioning throughput of trained models, side by side: each checkpoint's model captions the
 * same validation images (greedy, and beam search when asked) on the engine evaluation uses (a
 * pool of `--workers` workers, or this thread for 1). The models take turns, round after round,
 * so a busy machine slows all of them alike; each line reports the median round. One JSON line
 * per checkpoint and decoder.
 *
 *   deno run -A bench/captioning_bench.ts runs/a/best.h5,runs/b/best.h5,… [--images 500]
 *     [--workers 2] [--beam 0] [--max-length 30] [--rounds 5]
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import { Tensor } from "../layers/tensor.ts";
import { describeModel } from "../model/models.ts";
import type { ExperimentConfig } from "../pipeline/config/config.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int } from "../pipeline/cli/command_spec.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { createEngine } from "../workers/pool.ts";
import { median } from "./coco_sizes.ts";

const { values, positionals } = scriptCommandLine({
  command: "deno run -A bench/captioning_bench.ts",
  args: ["<checkpoints>"],
  summary: "Greedy (and beam) captioning throughput of trained checkpoints (comma-separated) on " +
    "the same val images, interleaved, one JSON line per checkpoint and decoder.",
  options: {
    images: int(500, 1, "Validation images to caption", "20"),
    workers: int(2, 1, "Compute workers (1 = this thread)", "1"),
    beam: int(0, 0, "Also time beam search of this width (0 = greedy only)", "2"),
    "max-length": int(30, 1, "Longest caption, words", "5"),
    rounds: int(5, 1, "Timed rounds (after one warm-up)", "1"),
    help: HELP_OPTION,
  },
}, Deno.args);
selectKernels();
const runs = [];
for (const path of positionals[0].split(",")) {
  const ckpt = await loadCheckpoint(path);
  const experiment = ckpt.experiment as ExperimentConfig;
  const data = await loadCocoData({ baseDir: experiment.data.dir });
  const features = data.val_features as Tensor<"float32">;
  const n = Math.min(values.images, features.shape[0]), d = features.shape[1];
  runs.push({
    path,
    model: ckpt.model,
    features: new Tensor<"float32">(features.data.slice(0, n * d), [n, d]),
    engine: createEngine(ckpt.model, { workers: values.workers }),
    times: new Map<number, number[]>(),
  });
}
const beams = values.beam > 1 ? [1, values.beam] : [1];
for (let round = 0; round <= values.rounds; round++) {
  for (const beamSize of beams) {
    for (let k = 0; k < runs.length; k++) {
      const run = runs[(round + k) % runs.length]; // a rotating order
      const t0 = performance.now();
      await run.engine.sample(run.features, { maxLength: values["max-length"], beamSize });
      const ms = performance.now() - t0;
      if (round > 0) run.times.set(beamSize, [...(run.times.get(beamSize) ?? []), ms]);
    }
  }
}
for (const run of runs) {
  for (const beamSize of beams) {
    const ms = median(run.times.get(beamSize)!);
    console.log(JSON.stringify({
      bench: "captioning",
      checkpoint: run.path,
      model: describeModel(run.model.config),
      decoder: beamSize === 1 ? "greedy" : `beam ${beamSize}`,
      workers: values.workers,
      images: run.features.shape[0],
      max_length: values["max-length"],
      ms: Number(ms.toFixed(1)),
      captions_per_s: Number((run.features.shape[0] / ms * 1000).toFixed(1)),
    }));
  }
  await run.engine.close();
}
