/**
 * A compute worker that starts its sampling jobs late, for the test of the pool's chunk
 * dispatch: worker 0 (given as the pool's `workerUrl`) waits until the other workers have taken
 * every chunk of the job before it takes one, as a worker whose core is busy with another
 * process would fall behind. With chunks handed out to whichever worker is free, the others
 * decode them all and worker 0 finds none left; with a fixed share per worker, its chunks
 * would never be taken, and it throws after the wait. Production code knows nothing of it.
 * @module
 */
import { imagesPerChunk } from "../model/sampling.ts";
import { ComputeWorker, serveComputeWorker } from "../workers/compute_worker.ts";
import { CTRL, readDecodeOptions } from "../workers/pool_protocol.ts";

/** How long worker 0 waits for the others to take every chunk before it gives up (ms). */
const PATIENCE_MS = 60_000;

class LateWorker extends ComputeWorker {
  override sample(): void {
    const { init } = this;
    if (init.index === 0) {
      const n = Atomics.load(init.control, CTRL.N);
      const chunks = Math.ceil(n / imagesPerChunk(readDecodeOptions(init.scalars)));
      const deadline = Date.now() + PATIENCE_MS;
      let taken = Atomics.load(init.control, CTRL.NEXT_CHUNK);
      while (taken < chunks) {
        if (Date.now() > deadline) {
          throw new Error(`The other workers took ${taken} of ${chunks} chunks (testing only)`);
        }
        Atomics.wait(init.control, CTRL.GEN, Atomics.load(init.control, CTRL.GEN), 10);
        taken = Atomics.load(init.control, CTRL.NEXT_CHUNK);
      }
    }
    super.sample();
  }
}

if (import.meta.main) serveComputeWorker((init) => new LateWorker(init));
