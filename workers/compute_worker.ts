/**
 * The compute worker of the pool (pool.ts): rebuilds the model over the shared parameter
 * buffer, then loops on the shared control array. Each job is one phase of a training step
 * (loss + gradients of its fixed shards; reduction of its fixed gradient blocks; the clipped
 * optimizer update of those blocks) or a sampling job over its rows of the shared features.
 *
 * Between jobs it blocks in `Atomics.wait` (bounded, re-checked). A `CMD_YIELD` job sends it
 * back to the event loop to read one `buffers` message; it replies `ack` and resumes waiting.
 * An exception is posted as `{ type: "error" }` with its stack; the worker then stops taking
 * jobs and waits to be terminated.
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import type { FloatArray, FloatDType } from "../layers/tensor.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { applyUpdate, type OptimConfig, type UpdateRule } from "../layers/optim.ts";
import { GRAD_BLOCKS } from "./engine.ts";
import {
  CMD_LOSS,
  CMD_REDUCE,
  CMD_SAMPLE,
  CMD_STOP,
  CMD_UPDATE,
  CMD_YIELD,
  CTRL_BEAM,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_GEN,
  CTRL_MAX_LENGTH,
  CTRL_N,
  CTRL_STEP,
  CTRL_T1,
  CTRL_TRAINING,
  PHASE_NAMES,
  SC_BETA1,
  SC_BETA2,
  SC_DECAY,
  SC_EPS,
  SC_FACTOR,
  SC_LR,
  SC_MOMENTUM,
  SC_T,
  type WorkerBuffers,
  type WorkerInit,
  type WorkerReply,
} from "./pool_protocol.ts";
import { ownedItems, scaleRange, splitRange } from "./sharding.ts";
import { reduceBlock } from "./reduce.ts";

/** How long one blocking wait lasts before the worker re-checks the control words (ms). */
const WAIT_MS = 1000;

function post(msg: WorkerReply): void {
  (globalThis as unknown as { postMessage(m: WorkerReply): void }).postMessage(msg);
}

/** The worker's state: the init message, the model over the shared parameters, and buffers. */
class ComputeWorker {
  readonly init: WorkerInit;
  readonly model: CaptioningRNN;
  rule: UpdateRule = "sgd";
  moments: FloatArray[] = [];
  captions: Int32Array = new Int32Array(0);
  features: FloatArray = new Float32Array(0);
  sampleCaptions: Int32Array = new Int32Array(0);
  sampleLogProbs: Float64Array = new Float64Array(0);
  seenGen: number;
  failed = false;

  constructor(init: WorkerInit) {
    this.init = init;
    selectKernels(init.backend);
    this.model = new CaptioningRNN({
      ...init.config,
      wordToIdx: init.wordToIdx,
      paramBuffer: init.params as never,
    });
    this.seenGen = Atomics.load(init.control, CTRL_GEN);
  }

  /** Takes new shared buffers from a `buffers` message. */
  setBuffers(m: WorkerBuffers): void {
    if (m.rule !== undefined) this.rule = m.rule;
    if (m.moments !== undefined) this.moments = m.moments;
    if (m.captions !== undefined) this.captions = m.captions;
    if (m.features !== undefined) this.features = m.features;
    if (m.sampleCaptions !== undefined) this.sampleCaptions = m.sampleCaptions;
    if (m.sampleLogProbs !== undefined) this.sampleLogProbs = m.sampleLogProbs;
  }

  /** Runs jobs until told to yield or stop, or until a job fails. */
  loop(): void {
    const c = this.init.control;
    while (!this.failed) {
      const gen = Atomics.load(c, CTRL_GEN);
      if (gen === this.seenGen) {
        Atomics.wait(c, CTRL_GEN, gen, WAIT_MS);
        continue;
      }
      this.seenGen = gen;
      const cmd = Atomics.load(c, CTRL_CMD);
      if (cmd === CMD_YIELD) return;
      if (cmd === CMD_STOP) {
        (globalThis as unknown as { close(): void }).close();
        return;
      }
      if (this.faultNow(cmd) && this.init.faultAt?.uncaught) {
        // Testing only: escape the job's error handling, as a crash of the worker would.
        throw new Error(`Injected uncaught fault (testing only) in worker ${this.init.index}`);
      }
      try {
        this.run(cmd);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        this.failed = true;
        post({
          type: "error",
          index: this.init.index,
          phase: PHASE_NAMES[cmd] ?? `command ${cmd}`,
          name: err.name,
          message: err.message,
          stack: err.stack ?? "",
        });
        return;
      }
      if (Atomics.add(c, CTRL_DONE, 1) === this.init.workers - 1) Atomics.notify(c, CTRL_DONE);
    }
  }

  /** Whether the testing-only fault is due now, in the phase of `cmd`. */
  faultNow(cmd: number): boolean {
    const { init } = this;
    const fault = init.faultAt, c = init.control;
    return fault !== undefined && fault.worker === init.index &&
      Atomics.load(c, CTRL_TRAINING) === 1 && fault.step === Atomics.load(c, CTRL_STEP) &&
      (fault.phase ?? "loss") === PHASE_NAMES[cmd];
  }

  run(cmd: number): void {
    const { init } = this;
    if (this.faultNow(cmd)) {
      throw new Error(
        `Injected fault (testing only) in worker ${init.index} at step ${init.faultAt?.step}, ${
          PHASE_NAMES[cmd]
        } phase`,
      );
    }
    switch (cmd) {
      case CMD_LOSS:
        return this.loss();
      case CMD_REDUCE:
        return this.reduce();
      case CMD_UPDATE:
        return this.update();
      case CMD_SAMPLE:
        return this.sample();
      default:
        throw new RangeError(`Unknown pool command ${cmd}`);
    }
  }

  /** Loss and gradients of each owned shard (an empty shard gets a zero gradient). */
  loss(): void {
    const { init, model } = this;
    const n = Atomics.load(init.control, CTRL_N), t1 = Atomics.load(init.control, CTRL_T1);
    const d = model.config.inputDim;
    const ranges = splitRange(n, init.shards);
    const own = ownedItems(init.shards, init.workers, init.index);
    for (let s = own.start; s < own.end; s++) {
      const r = ranges[s];
      if (r.end === r.start) {
        init.shardGrads[s].fill(0);
        init.shardLoss[s] = 0;
        continue;
      }
      const rows = r.end - r.start;
      const captions = new Tensor<"int32">(this.captions.subarray(r.start * t1, r.end * t1), [
        rows,
        t1,
      ]);
      const features = new Tensor<FloatDType>(this.features.subarray(r.start * d, r.end * d), [
        rows,
        d,
      ]);
      // A training step needs gradients; validation (evalLoss) only the loss, at ~40% of the cost.
      init.shardLoss[s] = Atomics.load(init.control, CTRL_TRAINING) === 1
        ? model.loss(features, captions, { normalizer: n, gradBuffer: init.shardGrads[s] as never })
          .loss
        : model.lossValue(features, captions, n);
    }
  }

  /** Sums the owned gradient blocks over the shards in shard order, with their Σ g². */
  reduce(): void {
    const { init } = this;
    const blocks = splitRange(init.grad.length, GRAD_BLOCKS);
    const own = ownedItems(GRAD_BLOCKS, init.workers, init.index);
    for (let k = own.start; k < own.end; k++) {
      const b = blocks[k];
      init.blockSq[k] = reduceBlock(init.shardGrads, init.grad, b.start, b.end);
    }
  }

  /** Clips (when the factor is not 1) and updates the owned blocks of the parameters. */
  update(): void {
    const { init } = this;
    const sc = init.scalars;
    const config: OptimConfig = {
      learningRate: sc[SC_LR],
      momentum: sc[SC_MOMENTUM],
      decayRate: sc[SC_DECAY],
      beta1: sc[SC_BETA1],
      beta2: sc[SC_BETA2],
      epsilon: sc[SC_EPS],
    };
    const t = sc[SC_T], factor = sc[SC_FACTOR];
    const blocks = splitRange(init.grad.length, GRAD_BLOCKS);
    const own = ownedItems(GRAD_BLOCKS, init.workers, init.index);
    for (let k = own.start; k < own.end; k++) {
      const b = blocks[k];
      if (factor !== 1) scaleRange(init.grad, factor, b.start, b.end);
      applyUpdate(this.rule, config, t, this.moments, init.params, init.grad, b.start, b.end);
    }
  }

  /** Captions the owned rows of the shared features into the shared outputs. */
  sample(): void {
    const { init, model } = this;
    const c = init.control;
    const n = Atomics.load(c, CTRL_N), d = model.config.inputDim;
    const maxLength = Atomics.load(c, CTRL_MAX_LENGTH), beamSize = Atomics.load(c, CTRL_BEAM);
    const r = ownedItems(n, init.workers, init.index);
    if (r.end === r.start) return;
    const features = new Tensor<FloatDType>(this.features.subarray(r.start * d, r.end * d), [
      r.end - r.start,
      d,
    ]);
    const out = model.sampleWithScores(features, { maxLength, beamSize });
    this.sampleCaptions.set(out.captions.data, r.start * maxLength);
    this.sampleLogProbs.set(out.logProbs, r.start);
  }
}

let worker: ComputeWorker | null = null;

globalThis.addEventListener("message", (e) => {
  const m = (e as MessageEvent<WorkerInit | WorkerBuffers>).data;
  if (m.type === "init") {
    try {
      worker = new ComputeWorker(m);
    } catch (err) {
      const x = err instanceof Error ? err : new Error(String(err));
      post({
        type: "error",
        index: m.index,
        phase: "init",
        name: x.name,
        message: x.message,
        stack: x.stack ?? "",
      });
      return;
    }
    post({ type: "ready", index: m.index });
  } else {
    if (!worker) return;
    worker.setBuffers(m);
    post({ type: "ack", index: worker.init.index });
  }
  worker.loop();
});
