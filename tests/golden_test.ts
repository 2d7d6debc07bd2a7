/**
 * Golden runs: short training runs whose loss history, final parameters (a SHA-256 of their
 * bytes) and captions were recorded before the code was restructured (issue 11) and must stay
 * exactly the same after it. They run on the plain TypeScript kernels, whose arithmetic is the
 * same on every x86-64 CPU (BLAS kernels round differently on other CPUs, so they are not
 * used here), with float64 and float32, rnn and lstm, 1 and 2 workers.
 *
 * `RECAP_WRITE_GOLDEN=1 deno test -A tests/golden_test.ts` rewrites the fixture; do that only
 * for a change that is meant to change results, and say so in the commit.
 * @module
 */
import { join } from "node:path";
import { selectKernels } from "../layers/kernels/mod.ts";
import { type FloatDType, Tensor } from "../layers/tensor.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { createEngine } from "../workers/pool.ts";
import { assertEquals } from "./assert.ts";
import { randomCaptionData } from "./fixtures_data.ts";
import { tinyDataset, tinyExperiment } from "./reliability_fixtures.ts";

selectKernels("ts");

const FIXTURE = new URL("./fixtures/golden_runs.json", import.meta.url);
const WRITE = Deno.env.get("RECAP_WRITE_GOLDEN") === "1";

/** What one golden run produced. */
interface GoldenRun {
  losses: number[];
  valLosses: number[];
  params: string;
  greedy?: number[];
  beam?: number[];
  logProbs?: number[];
}

const golden: Record<string, GoldenRun> = WRITE ? {} : JSON.parse(await Deno.readTextFile(FIXTURE));

async function sha256(data: ArrayBufferView): Promise<string> {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function check(name: string, run: GoldenRun): void {
  if (WRITE) {
    golden[name] = run;
    return;
  }
  const want = golden[name];
  assertEquals(run.losses, want.losses, `${name}: loss history`);
  assertEquals(run.valLosses, want.valLosses, `${name}: validation losses`);
  assertEquals(run.params, want.params, `${name}: final parameters`);
  assertEquals(run.greedy, want.greedy, `${name}: greedy captions`);
  assertEquals(run.beam, want.beam, `${name}: beam captions`);
  assertEquals(run.logProbs, want.logProbs, `${name}: caption log-probabilities`);
}

const data = randomCaptionData({ numTrain: 60, numVal: 20, vocab: 40, inputDim: 16, seed: 5 });

for (const dtype of ["float64", "float32"] as FloatDType[]) {
  for (const cellType of ["rnn", "lstm"] as CellType[]) {
    for (const workers of [1, 2]) {
      const name = `solver ${cellType} ${dtype} ${workers} worker(s)`;
      Deno.test(`golden: ${name} trains exactly as before the restructuring`, async () => {
        const model = new CaptioningRNN({
          wordToIdx: data.word_to_idx,
          inputDim: 16,
          wordvecDim: 12,
          hiddenDim: 20,
          cellType,
          dtype,
          seed: 11,
        });
        // The recording split each batch into 4 shards (the default then).
        const engine = createEngine(model, { workers, backend: "ts", shards: 4 });
        const solver = new CaptioningSolver(model, data, {
          updateRule: "adam",
          optimConfig: { learningRate: 2e-2 },
          lrDecay: 0.9,
          batchSize: 15,
          numEpochs: 3,
          gradClip: 1,
          valCaptions: 20,
          verbose: false,
          seed: 3,
          engine,
        });
        await solver.train();
        const features = new Tensor<"float32">(
          data.val_features!.data.slice(0, 6 * 16) as Float32Array,
          [6, 16],
        );
        const greedy = await engine.sample!(features, { maxLength: 8, beamSize: 1 });
        const beam = await engine.sample!(features, { maxLength: 8, beamSize: 3 });
        await solver.close();
        check(name, {
          losses: solver.lossHistory,
          valLosses: solver.valLossHistory.map((p) => p.loss),
          params: await sha256(model.flat),
          greedy: Array.from(greedy.captions.data),
          beam: Array.from(beam.captions.data),
          logProbs: [...Array.from(greedy.logProbs), ...Array.from(beam.logProbs)],
        });
      });
    }
  }
}

for (const workers of [1, 2]) {
  const name = `runExperiment lstm ${workers} worker(s)`;
  Deno.test(`golden: ${name} logs, evaluates and checkpoints exactly as before`, async () => {
    const root = await Deno.makeTempDir({ prefix: "recap-golden-" });
    try {
      const dataDir = await tinyDataset(join(root, "data"));
      const runDir = join(root, "run");
      const config = resolveExperiment(
        tinyExperiment(dataDir, runDir, {
          train: { workers, backend: "ts", evalEvery: 0, gradClip: 5, shards: 4 },
          // The metrics of the recording (ROUGE-L joined the defaults later).
          evaluate: {
            numImages: 12,
            beamSize: 2,
            metrics: ["bleu1", "bleu2", "bleu3", "bleu4", "cider"],
          },
          stages: ["train", "evaluate"],
        }),
        "golden.json",
      );
      const result = await runExperiment(config, {
        log: () => {},
        progressWrite: () => {},
        isTTY: false,
        handleSignals: false,
      });
      const records = (await Deno.readTextFile(join(runDir, "metrics.jsonl"))).trim().split("\n")
        .map((l) => JSON.parse(l));
      const ckpt = await loadCheckpoint(join(runDir, "checkpoint.h5"));
      const scores = result.evaluations.flatMap((ev) => [
        ...Object.values(ev.greedy),
        ...Object.values(ev.beam ?? {}),
      ]) as number[];
      check(name, {
        losses: records.filter((r) => r.kind === "train").map((r) => r.loss),
        valLosses: [
          ...records.filter((r) => r.kind === "val").map((r) => r.loss),
          ...records.filter((r) => r.kind === "eval").flatMap((r) => Object.values(r.metrics)),
          ...scores,
        ] as number[],
        params: await sha256(ckpt.model.flat),
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

if (WRITE) {
  Deno.test("golden: write the fixture", async () => {
    await Deno.writeTextFile(FIXTURE, JSON.stringify(golden, null, 1) + "\n");
  });
}
