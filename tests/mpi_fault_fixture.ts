/**
 * A distributed training loop that goes wrong on rank 1, run under `mpiexec.mpich -n 2` by
 * tests/mpi_train_test.ts: `throw` (rank 1's step throws at step 3; the error ends the job as
 * the CLI does, through `abortJob`), `kill` (rank 1 kills itself at step 3), `drift` (rank 1's
 * parameters change by one bit, which the checksum after step 2 finds on every rank).
 * @module
 */
import { Optimizer } from "../layers/optim.ts";
import { createCaptioningModel } from "../model/models.ts";
import { InMemoryBatches } from "../pipeline/data/batches.ts";
import { abortJob, openJob } from "../pipeline/run/job.ts";
import { DistributedEngine } from "../workers/distributed_engine.ts";
import { LocalEngine } from "../workers/engine.ts";
import { randomCaptionData } from "./fixtures_data.ts";

const mode = Deno.args[0] as "throw" | "kill" | "drift";
const job = openJob("on", 60);
const data = randomCaptionData({ numTrain: 40, vocab: 30, inputDim: 12, seed: 3 });
const model = createCaptioningModel({
  wordToIdx: data.word_to_idx,
  inputDim: 12,
  wordvecDim: 8,
  hiddenDim: 10,
  cellType: "lstm",
  seed: 7,
});
const engine = new DistributedEngine(new LocalEngine(model, 4), job.comm!, model.flat, {
  checkEvery: 2,
});
const opt = new Optimizer("adam", {}, model.layout.total, model.dtype);
const batches = new InMemoryBatches(data, 10, 5);
try {
  for (let step = 1; step <= 6; step++) {
    if (job.rank === 1 && step === 3 && mode === "throw") {
      throw new Error("the injected fault of step 3");
    }
    if (job.rank === 1 && step === 3 && mode === "kill") Deno.kill(Deno.pid, "SIGKILL");
    if (job.rank === 1 && step === 2 && mode === "drift") model.flat[5] += 1e-3;
    await engine.step(batches.next(), opt, 0);
  }
  console.log(`rank ${job.rank}: no fault`);
} catch (e) {
  abortJob(job, (e as Error).message, 1);
}
