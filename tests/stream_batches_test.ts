import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import { CaptioningSolver } from "../pipeline/train/solver.ts";
import { StreamBatches } from "../pipeline/data/stream/stream_batches.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { assertEquals } from "./assert.ts";

const dir = await Deno.makeTempDir();
await writeSyntheticDataset({ dir, numTrain: 40, numVal: 10, images: false, seed: 4 });
const data = await loadCocoData({ baseDir: dir });
addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function solverWith(batches: InMemoryBatches | StreamBatches, stopAt?: number) {
  const model = new CaptioningRNN({
    wordToIdx: data.word_to_idx,
    inputDim: 512,
    wordvecDim: 8,
    hiddenDim: 12,
    cellType: "lstm",
    seed: 2,
  });
  const solver: CaptioningSolver = new CaptioningSolver(model, data, {
    updateRule: "adam",
    batchSize: 25,
    numEpochs: 2,
    verbose: false,
    valCaptions: 0,
    batches,
    onIteration: (i) => {
      if (i.iteration === stopAt) solver.requestStop();
    },
  });
  return { model, solver };
}

Deno.test("streamed minibatches train exactly like in-memory ones with the same seed", async () => {
  const memory = solverWith(new InMemoryBatches(data, 25, 7));
  await memory.solver.train();
  const streamed = solverWith(await StreamBatches.open({ baseDir: dir, batchSize: 25, seed: 7 }));
  await streamed.solver.train();
  await streamed.solver.close();
  assertEquals(streamed.solver.lossHistory.length, 16);
  assertEquals(streamed.solver.lossHistory, memory.solver.lossHistory);
  assertEquals(streamed.model.flat, memory.model.flat);
});

Deno.test("a streamed run resumes exactly from the saved sampler state", async () => {
  const full = solverWith(await StreamBatches.open({ baseDir: dir, batchSize: 25, seed: 7 }));
  await full.solver.train();
  await full.solver.close();
  const part = solverWith(await StreamBatches.open({ baseDir: dir, batchSize: 25, seed: 7 }), 5);
  await part.solver.train();
  await part.solver.close();
  const rest = solverWith(await StreamBatches.open({ baseDir: dir, batchSize: 25, seed: 99 }));
  rest.model.flat.set(part.model.flat);
  rest.solver.setState(part.solver.getState());
  await rest.solver.train();
  await rest.solver.close();
  assertEquals(rest.solver.lossHistory, full.solver.lossHistory);
  assertEquals(rest.model.flat, full.model.flat);
});
