/**
 * SIGKILL at any moment, including in the middle of a checkpoint save, leaves the previous
 * checkpoint intact and loadable; leftover temporary files do not break the next run, and a
 * run killed and resumed again and again ends bitwise where an uninterrupted one does.
 */
import { join } from "node:path";
import { Rng } from "../layers/random.ts";
import { loadCheckpoint } from "../pipeline/train/checkpoint.ts";
import { resolveExperiment } from "../pipeline/config/config.ts";
import { RUN_FILES } from "../pipeline/run/files.ts";
import { runExperiment } from "../pipeline/run/run.ts";
import { assert, assertEquals } from "./assert.ts";
import {
  listDir,
  loggedIterations,
  runCli,
  spawnCli,
  tinyDataset,
  tinyExperiment,
  waitForTrainRecord,
  writeExperiment,
} from "./reliability_fixtures.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Saves checkpoints of a 3.6 MB model in a loop; save n holds n in every parameter. */
const SAVE_LOOP = `
import { CaptioningRNN } from "${new URL("../model/captioning_rnn.ts", import.meta.url)}";
import { saveCheckpoint } from "${new URL("../pipeline/train/checkpoint.ts", import.meta.url)}";
const words = ["<NULL>", "<START>", "<END>", "<UNK>"];
for (let i = 4; i < 1000; i++) words.push("w" + i);
const model = new CaptioningRNN({
  wordToIdx: Object.fromEntries(words.map((w, i) => [w, i])),
  inputDim: 512, wordvecDim: 128, hiddenDim: 256, cellType: "lstm",
});
for (let n = 1; ; n++) {
  model.flat.fill(n);
  await saveCheckpoint(Deno.args[0], model, { info: { n } });
}
`;

Deno.test("SIGKILL during checkpoint saves leaves the last completed checkpoint loadable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "recap_kill_save_" });
  const script = join(dir, "save_loop.ts");
  await Deno.writeTextFile(script, SAVE_LOOP);
  const path = join(dir, "checkpoint.h5");
  const rng = new Rng(8);
  let lastN = 0, midSave = 0;
  for (let round = 0; round < 6; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, path],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Once the first save of this round is in place, kill at a random moment.
    const before = lastN;
    for (let i = 0; i < 3000; i++) {
      const n = await loadCheckpoint(path).then((c) => c.info!.n as number, () => 0);
      if (n > 0 && (round === 0 || n !== before)) break;
      await sleep(10);
    }
    await sleep(rng.randint(120));
    child.kill("SIGKILL");
    const status = await child.output();
    assertEquals(status.signal, "SIGKILL", new TextDecoder().decode(status.stderr));
    const temps = (await listDir(dir)).filter((n) => n.includes(".tmp-"));
    if (temps.length > 0) midSave++;
    const ckpt = await loadCheckpoint(path);
    const n = ckpt.info!.n as number;
    assert(n >= 1, "a completed save");
    assert(ckpt.model.flat.every((v) => v === n), `save ${n} is whole: every parameter is ${n}`);
    lastN = n;
    for (const t of temps) await Deno.remove(join(dir, t));
  }
  // Saves take most of the loop's time, so most kills land inside one.
  assert(midSave >= 2, `only ${midSave} of 6 kills landed mid-save`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a run killed (SIGKILL) and resumed again and again ends bitwise like an uninterrupted one", async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_kill_run_" });
  const data = await tinyDataset(join(root, "data"));
  const extra = { train: { numEpochs: 6, checkpointEvery: 1 } };
  await runExperiment(resolveExperiment(tinyExperiment(data, join(root, "ref"), extra), "r.json"), {
    log: () => {},
    progressWrite: () => {},
    handleSignals: false,
  });
  const reference = await loadCheckpoint(join(root, "ref", RUN_FILES.checkpoint));
  const total = reference.solver!.iteration;
  assertEquals(total, 180);

  const runDir = join(root, "run");
  const exp = await writeExperiment(join(root, "exp.json"), tinyExperiment(data, runDir, extra));
  const rng = new Rng(9);
  let iteration = 0, kills = 0, stale = 0;
  while (kills < 4) {
    const { child, done } = spawnCli(kills === 0 ? ["train", exp] : ["resume", runDir]);
    // Wait for a saved checkpoint past the last one, then kill at a random moment.
    await waitForTrainRecord(runDir, iteration + 2);
    await sleep(rng.randint(60));
    child.kill("SIGKILL");
    const r = await done;
    if (r.code === 0) break; // finished before the kill landed
    assertEquals(r.signal, "SIGKILL", r.stderr);
    kills++;
    if ((await listDir(runDir)).some((n) => n.includes(".tmp-"))) stale++;
    const ckpt = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
    const k = ckpt.solver!.iteration;
    assert(k > iteration && k <= total, `progress after kill ${kills}: ${iteration} -> ${k}`);
    assertEquals(ckpt.solver!.lossHistory, reference.solver!.lossHistory.slice(0, k));
    iteration = k;
  }
  assert(kills >= 2, `${kills} kills landed mid-training`);
  // Stale temporary files (if a kill left any) are cleaned up by the next run.
  const last = await runCli(["resume", runDir]);
  assertEquals(last.code, 0, last.stderr);
  assertEquals((await listDir(runDir)).filter((n) => n.includes(".tmp-")), [], `${stale} stale`);
  const final = await loadCheckpoint(join(runDir, RUN_FILES.checkpoint));
  assertEquals(final.solver!.iteration, total);
  assertEquals(final.solver!.lossHistory, reference.solver!.lossHistory);
  assertEquals(final.model.flat, reference.model.flat);
  // The log reads like an uninterrupted run's: every iteration once, every epoch's val once.
  const range = (n: number, step = 1) => Array.from({ length: n }, (_, i) => (i + 1) * step);
  assertEquals(await loggedIterations(runDir, "train"), range(total));
  assertEquals(await loggedIterations(runDir, "val"), range(6, 30));
  await Deno.remove(root, { recursive: true });
});

Deno.test("a run killed while generating the synthetic dataset leaves no half dataset behind", async () => {
  const root = await Deno.makeTempDir({ prefix: "recap_kill_gen_" });
  const dataDir = join(root, "synthetic");
  const exp = await writeExperiment(
    join(root, "gen.json"),
    tinyExperiment(dataDir, join(root, "run"), {
      data: { source: "synthetic", synthetic: { numTrain: 4000, numVal: 200, seed: 3 } },
      train: { numEpochs: 1 },
    }),
  );
  const { child, done } = spawnCli(["train", exp]);
  // Kill once the captions file is written, while the features are still being generated.
  const captionsWritten = async () => {
    for (const name of await listDir(root)) {
      if (!name.startsWith("synthetic")) continue;
      const files = await listDir(join(root, name)).catch((): string[] => []);
      if (files.includes("coco2014_captions.h5")) return true;
    }
    return false;
  };
  for (let i = 0; i < 6000 && !(await captionsWritten()); i++) await sleep(5);
  child.kill("SIGKILL");
  assertEquals((await done).signal, "SIGKILL");
  assert(
    !(await listDir(root)).includes("synthetic"),
    "the dataset directory appears only once complete",
  );
  // The next run generates the dataset (smaller, to be quick), cleaning the partial one.
  const r = await runCli([
    "train",
    exp,
    "--data.synthetic.numTrain=60",
    "--data.synthetic.numVal=20",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await listDir(root)).filter((n) => n.startsWith("synthetic")), ["synthetic"]);
  await Deno.remove(root, { recursive: true });
});
