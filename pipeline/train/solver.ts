/**
 * CaptioningSolver: the exercise's training loop (random minibatches, an update rule,
 * per-epoch learning-rate decay), made dependable: gradient clipping, a validation loss on a
 * fixed subset every epoch, a stop with advice when the loss diverges, and a saveable state so
 * a resumed run continues bit for bit.
 * @module
 */
import { Rng, type RngState } from "../../layers/random.ts";
import type { FloatDType } from "../../layers/tensor.ts";
import type { CaptioningModel } from "../../model/captioning_model.ts";
import type { BackendName } from "../../layers/kernels/types.ts";
import { accepts, checkOptions, type OptionRule } from "../../layers/options.ts";
import { LocalEngine, type StepResult, type TrainEngine } from "../../workers/engine.ts";
import { createEngine, type EngineOptions } from "../../workers/pool.ts";
import type { Minibatch } from "../../model/minibatch.ts";
import { type BatchSource, InMemoryBatches } from "../data/batches.ts";
import { type CaptionData, gatherMinibatch } from "../data/caption_data.ts";
import {
  OPTIM_HYPERPARAMS,
  type OptimConfig,
  Optimizer,
  type OptimizerState,
  UPDATE_RULES,
  type UpdateRule,
} from "../../layers/optim.ts";
import { backendNames } from "../../layers/kernels/mod.ts";

/** Options of {@linkcode CaptioningSolver}; the exercise's names, plus the tool's extras. */
export interface SolverOptions {
  /** The update rule (default "sgd", as the exercise). */
  updateRule?: UpdateRule;
  /** Hyper-parameters of the update rule (defaults: the exercise's for that rule). */
  optimConfig?: Partial<OptimConfig>;
  /** Multiplies the learning rate after each epoch (default 1). */
  lrDecay?: number;
  /** Captions per minibatch (default 100). */
  batchSize?: number;
  /** Epochs to train (default 10). */
  numEpochs?: number;
  /** Log the loss every this many iterations (default 10). */
  printEvery?: number;
  /** Whether to log (default true). */
  verbose?: boolean;
  /** The seed of minibatch sampling and the validation subset (default 0). */
  seed?: number;
  /** Clip the global gradient norm to this (default 0 = off). */
  gradClip?: number;
  /** Captions in the fixed validation subset whose loss is measured every epoch (default 1000; 0 = none). */
  valCaptions?: number;
  /**
   * Stop when the loss exceeds this multiple of the first iteration's (default 20; 0 = never,
   * for a loss that is not a positive cross-entropy, as self-critical training's).
   */
  explodeFactor?: number;
  /** Where log lines go (default console.log). */
  log?: (line: string) => void;
  /** Training minibatches (default: random minibatches of `data` in memory). */
  batches?: BatchSource;
  /**
   * Compute workers: 1 trains on this thread, more on a worker pool, "auto" (the default) one
   * per core (for the Transformer at most `shards`). The results are bitwise the same for any
   * count. The pool is
   * started by each {@linkcode CaptioningSolver.train} call and stopped when it returns.
   */
  workers?: number | "auto";
  /** The kernel backend: "auto" (default: the fastest that loads), "blas", "wasm" or "ts". */
  backend?: BackendName | "auto";
  /**
   * The fixed shards each batch is split into (default 1 for the recurrent models, 4 for the
   * Transformer: `defaultShards`; results depend on it, not on workers).
   */
  shards?: number;
  /**
   * A step engine to use instead (see `createEngine`); then `workers`, `backend` and `shards`
   * are the engine's business and must not be given. The caller closes it (or `close()` does).
   */
  engine?: TrainEngine;
  /** Called after every iteration (progress, metrics, checkpoints). */
  onIteration?: (info: IterationInfo) => void | Promise<void>;
  /** Called after every epoch, after the validation loss. */
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

/** What each option of {@linkcode SolverOptions} accepts. */
const SOLVER_OPTION_RULES: Record<keyof SolverOptions, OptionRule> = {
  updateRule: accepts.oneOf(UPDATE_RULES),
  optimConfig: accepts.object,
  lrDecay: accepts.positiveNumber,
  batchSize: accepts.positiveInt,
  numEpochs: accepts.positiveInt,
  printEvery: accepts.positiveInt,
  verbose: accepts.boolean,
  seed: accepts.nonNegativeInt,
  gradClip: accepts.nonNegativeNumber,
  valCaptions: accepts.nonNegativeInt,
  explodeFactor: accepts.nonNegativeNumber,
  log: accepts.function,
  batches: accepts.object,
  workers: accepts.positiveIntOrAuto,
  backend: accepts.oneOf(["auto", ...backendNames()]),
  shards: accepts.positiveInt,
  engine: accepts.object,
  onIteration: accepts.function,
  onEpoch: accepts.function,
};

/** What each hyper-parameter of `optimConfig` accepts. */
const OPTIM_CONFIG_RULES: Record<keyof OptimConfig, OptionRule> = {
  ...Object.fromEntries(OPTIM_HYPERPARAMS.map((k) => [k, accepts.fraction])),
  learningRate: accepts.positiveNumber,
  epsilon: accepts.positiveNumber,
} as Record<keyof OptimConfig, OptionRule>;

/** What {@linkcode SolverOptions.onIteration} receives. */
export interface IterationInfo {
  /** Iterations done so far (1 after the first). */
  iteration: number;
  /** Total iterations of the run. */
  numIterations: number;
  /** Epochs completed. */
  epoch: number;
  /** This iteration's loss. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
  /** Captions in the minibatch. */
  batchSize: number;
  /** The learning rate this iteration's update used (before any end-of-epoch decay). */
  learningRate: number;
}

/** What {@linkcode SolverOptions.onEpoch} receives. */
export interface EpochInfo {
  /** Epochs completed. */
  epoch: number;
  /** Iterations done so far. */
  iteration: number;
  /** The validation loss on the fixed subset, or null when there is none. */
  valLoss: number | null;
  /** The learning rate for the next epoch. */
  learningRate: number;
}

/** One validation-loss measurement. */
export interface ValLossPoint {
  /** Epochs completed. */
  epoch: number;
  /** Iterations done. */
  iteration: number;
  /** The loss. */
  loss: number;
}

/** Everything a resumed run needs besides the model's parameters. */
export interface SolverState {
  /** Iterations done. */
  iteration: number;
  /** Epochs completed. */
  epoch: number;
  /** The loss of every iteration so far. */
  lossHistory: number[];
  /** The validation losses so far. */
  valLossHistory: ValLossPoint[];
  /** The minibatch sampler's state. */
  batchState: RngState;
  /** The loss of the first iteration (the reference of the divergence guard). */
  initialLoss: number | null;
  /** The optimizer's state. */
  optimizer: OptimizerState;
}

/** Training stopped because the loss or gradient became NaN/Inf or exploded. */
export class TrainingDivergedError extends Error {
  /**
   * Creates the error.
   * @param message What happened and what to try.
   */
  constructor(message: string) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

/**
 * Trains a captioning model (a `CaptioningRNN` or a `CaptioningTransformer`) on captioning data,
 * as the exercise's `CaptioningSolver`.
 *
 * @example Overfit a few captions
 * ```ts
 * import { CaptioningRNN, CaptioningSolver, Tensor } from "../../mod.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const data = {
 *   train_captions: Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32"),
 *   train_image_idxs: Tensor.fromValues([0], [1], "int32"),
 *   train_features: Tensor.randn([1, 8], 0, "float32"),
 *   idx_to_word: Object.keys(wordToIdx), word_to_idx: wordToIdx,
 * };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 8, hiddenDim: 16, wordvecDim: 8 });
 * const solver = new CaptioningSolver(model, data, { updateRule: "adam", batchSize: 1, numEpochs: 50, verbose: false });
 * await solver.train();
 * console.log(solver.lossHistory.at(-1)! < solver.lossHistory[0]); // true
 * ```
 */
export class CaptioningSolver<D extends FloatDType = FloatDType> {
  /** The model being trained. */
  readonly model: CaptioningModel<D>;
  /** The data dictionary. */
  readonly data: CaptionData;
  /** The update rule with its state. */
  readonly optimizer: Optimizer;
  /** The loss of every iteration. */
  lossHistory: number[] = [];
  /** The validation loss after every epoch. */
  valLossHistory: ValLossPoint[] = [];
  /** Iterations done. */
  iteration = 0;
  /** Epochs completed. */
  epoch = 0;
  /** Captions per minibatch. */
  readonly batchSize: number;
  /** Epochs to train. */
  readonly numEpochs: number;
  /** Iterations per epoch: max(numTrain / batchSize, 1), as the exercise. */
  readonly iterationsPerEpoch: number;
  /** Total iterations. */
  readonly numIterations: number;

  readonly #opts: Required<
    Pick<
      SolverOptions,
      "lrDecay" | "printEvery" | "verbose" | "gradClip" | "explodeFactor" | "log" | "valCaptions"
    >
  >;
  readonly #batches: BatchSource;
  /** The engine given as an option, or null: then each train() starts and stops its own. */
  readonly #givenEngine: TrainEngine | null;
  readonly #engineOptions: EngineOptions;
  /** The engine of the train() call running now, else the given one or a local one. */
  #engine: TrainEngine | null;
  readonly #valRows: Int32Array;
  readonly #onIteration?: SolverOptions["onIteration"];
  readonly #onEpoch?: SolverOptions["onEpoch"];
  #localEngine: LocalEngine<D> | undefined;
  #initialLoss: number | null = null;
  #stopRequested = false;

  /**
   * Sets up training.
   * @param model The model.
   * @param data The data dictionary (training minibatches come from it unless `batches` is given).
   * @param options See {@linkcode SolverOptions}.
   */
  constructor(model: CaptioningModel<D>, data: CaptionData, options: SolverOptions = {}) {
    checkOptions("CaptioningSolver options", options, SOLVER_OPTION_RULES);
    if (options.engine && ["workers", "backend", "shards"].some((k) => k in options)) {
      throw new TypeError(
        "Invalid CaptioningSolver options: engine: give either an engine or workers/backend/shards, not both",
      );
    }
    checkOptions("CaptioningSolver optimConfig", options.optimConfig, OPTIM_CONFIG_RULES);
    this.model = model;
    this.data = data;
    this.batchSize = options.batchSize ?? 100;
    this.numEpochs = options.numEpochs ?? 10;
    const seed = options.seed ?? 0;
    this.#opts = {
      lrDecay: options.lrDecay ?? 1,
      printEvery: options.printEvery ?? 10,
      verbose: options.verbose ?? true,
      gradClip: options.gradClip ?? 0,
      explodeFactor: options.explodeFactor ?? 20,
      log: options.log ?? ((line: string) => console.log(line)),
      valCaptions: options.valCaptions ?? 1000,
    };
    this.#batches = options.batches ?? new InMemoryBatches(data, this.batchSize, seed);
    this.#givenEngine = options.engine ?? null;
    this.#engine = this.#givenEngine;
    this.#engineOptions = {
      workers: options.workers ?? "auto",
      ...(options.backend !== undefined && options.backend !== "auto"
        ? { backend: options.backend }
        : {}),
      ...(options.shards !== undefined ? { shards: options.shards } : {}),
    };
    this.#onIteration = options.onIteration;
    this.#onEpoch = options.onEpoch;
    this.optimizer = new Optimizer(
      options.updateRule ?? "sgd",
      options.optimConfig ?? {},
      model.layout.total,
      model.dtype,
    );
    this.iterationsPerEpoch = Math.max(Math.floor(this.#batches.size / this.batchSize), 1);
    this.numIterations = this.numEpochs * this.iterationsPerEpoch;
    // A fixed validation subset, chosen once from the seed.
    const numVal = data.val_captions?.shape[0] ?? 0;
    const k = Math.min(this.#opts.valCaptions, numVal);
    const rng = new Rng(seed + 7919);
    const perm = rng.shuffle(Array.from({ length: numVal }, (_, i) => i));
    this.#valRows = Int32Array.from(perm.slice(0, k)).sort();
  }

  /** Asks {@linkcode CaptioningSolver.train} to return after the current iteration. */
  requestStop(): void {
    this.#stopRequested = true;
  }

  /** Whether training returned early because a stop was requested. */
  get stopped(): boolean {
    return this.#stopRequested && this.iteration < this.numIterations;
  }

  /**
   * Runs the remaining iterations (all of them, or what is left after a resume).
   * Throws {@linkcode TrainingDivergedError} when the loss becomes NaN/Inf or explodes; the
   * parameters then hold the last good values (the bad step is not applied).
   */
  async train(): Promise<void> {
    this.#stopRequested = false;
    // Without a given engine, this call starts its own (a pool's workers would otherwise keep
    // the process alive) and stops it when it returns.
    const engine = this.#givenEngine ?? createEngine(this.model, this.#engineOptions);
    this.#engine = engine;
    try {
      await this.#trainOn(engine);
    } finally {
      if (engine !== this.#givenEngine) {
        this.#engine = null;
        await engine.close();
      }
    }
  }

  async #trainOn(engine: TrainEngine): Promise<void> {
    const { log, verbose, printEvery } = this.#opts;
    while (this.iteration < this.numIterations && !this.#stopRequested) {
      const sampler = this.#batches.getState();
      const batch = await this.#batches.next();
      const learningRate = this.optimizer.config.learningRate;
      let result: StepResult;
      try {
        result = await engine.step(batch, this.optimizer, this.#opts.gradClip);
      } catch (e) {
        // The step did not happen: the sampler's state is put back, so a checkpoint saved now
        // resumes exactly with this step's batch.
        this.#batches.setState(sampler);
        throw e;
      }
      this.#guard(result.loss, result.gradNorm, result.applied);
      const t = this.iteration;
      this.iteration++;
      this.lossHistory.push(result.loss);
      if (verbose && t % printEvery === 0) {
        log(`(Iteration ${t + 1} / ${this.numIterations}) loss: ${result.loss.toFixed(6)}`);
      }
      if (this.iteration % this.iterationsPerEpoch === 0) {
        this.epoch++;
        this.optimizer.config.learningRate *= this.#opts.lrDecay;
        const valLoss = await this.validationLoss();
        if (valLoss !== null) {
          this.valLossHistory.push({ epoch: this.epoch, iteration: this.iteration, loss: valLoss });
        }
        await this.#onEpoch?.({
          epoch: this.epoch,
          iteration: this.iteration,
          valLoss,
          learningRate: this.optimizer.config.learningRate,
        });
      }
      await this.#onIteration?.({
        iteration: this.iteration,
        numIterations: this.numIterations,
        epoch: this.epoch,
        loss: result.loss,
        gradNorm: result.gradNorm,
        batchSize: batch.captions.shape[0],
        learningRate,
      });
    }
  }

  /**
   * The loss on the fixed validation subset, in batches, weighted by batch size.
   * @returns The mean loss per caption, or null when there is no validation data.
   */
  async validationLoss(): Promise<number | null> {
    if (this.#valRows.length === 0) return null;
    // Outside train(), on this thread: the same result as any engine with the same shards.
    const engine = this.#engine ??
      (this.#localEngine ??= new LocalEngine(this.model, this.#engineOptions.shards));
    let total = 0;
    for (let i = 0; i < this.#valRows.length; i += this.batchSize) {
      const rows = this.#valRows.subarray(i, Math.min(i + this.batchSize, this.#valRows.length));
      const batch: Minibatch = gatherMinibatch(this.data, "val", rows);
      total += (await engine.evalLoss(batch)) * rows.length;
    }
    return total / this.#valRows.length;
  }

  #guard(loss: number, gradNorm: number, applied: boolean): void {
    const at = `at iteration ${this.iteration + 1}`;
    if (!applied || !Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const what = Number.isFinite(loss)
        ? `the gradient norm is ${gradNorm}`
        : `the loss is ${loss}`;
      throw new TrainingDivergedError(
        `Training diverged ${at}: ${what}; the parameters keep their last good values. ` +
          `Try a lower learning rate (now ${this.optimizer.config.learningRate}) or gradient clipping (gradClip: 5)`,
      );
    }
    if (this.#initialLoss === null) this.#initialLoss = loss;
    else if (this.#opts.explodeFactor > 0 && loss > this.#opts.explodeFactor * this.#initialLoss) {
      throw new TrainingDivergedError(
        `Training diverged ${at}: the loss ${
          loss.toFixed(3)
        } is over ${this.#opts.explodeFactor}x ` +
          `the first iteration's (${this.#initialLoss.toFixed(3)}). ` +
          `Try a lower learning rate (now ${this.optimizer.config.learningRate}) or gradient clipping (gradClip: 5)`,
      );
    }
  }

  /**
   * The solver's state for a checkpoint (the model's parameters are saved separately).
   * @returns Iteration, epoch, histories, sampler and optimizer state.
   */
  getState(): SolverState {
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      lossHistory: [...this.lossHistory],
      valLossHistory: this.valLossHistory.map((p) => ({ ...p })),
      batchState: this.#batches.getState(),
      initialLoss: this.#initialLoss,
      optimizer: this.optimizer.getState(),
    };
  }

  /**
   * Restores a state saved by {@linkcode CaptioningSolver.getState}, to resume exactly.
   * @param state The saved state.
   */
  setState(state: SolverState): void {
    this.iteration = state.iteration;
    this.epoch = state.epoch;
    this.lossHistory = [...state.lossHistory];
    this.valLossHistory = state.valLossHistory.map((p) => ({ ...p }));
    this.#batches.setState(state.batchState);
    this.#initialLoss = state.initialLoss;
    this.optimizer.setState(state.optimizer);
  }

  /** Releases what was given to the solver: the engine's workers and the batch source. */
  async close(): Promise<void> {
    await this.#givenEngine?.close();
    await this.#batches.close?.();
  }
}
