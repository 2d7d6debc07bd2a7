/**
 * Self-critical sequence training (SCST, Rennie et al. 2017) as a source of weighted
 * minibatches for the solver: each step draws B training images (seeded, with replacement, as
 * the exercise draws captions), samples k captions of each from the current model on the
 * engine (multinomial, at a temperature), rewards each with CIDEr-D against the image's
 * references, and weighs each caption by its reward minus a baseline. The solver's step on the
 * batch then minimises −(r − b) · Σ_t log p(w_t) over each caption's words up to and including
 * `<END>` — the fused training step with per-caption weights, recap's own backward pass.
 *
 * Deterministic for a seed: the images and the sampling seed of a step come from one seeded
 * generator (its state is the source's state in a checkpoint, so a resumed run continues
 * exactly), sampled captions draw from streams numbered by image (the same on 1 or 2 workers),
 * and rewards are computed on this thread.
 *
 * Dimension legend: B images per step, k samples per image, L maxLength, D feature.
 * @module
 */
import { Rng, type RngState } from "../../layers/random.ts";
import { type FloatDType, gatherRows, Tensor } from "../../layers/tensor.ts";
import type { Minibatch } from "../../model/minibatch.ts";
import type { TrainEngine } from "../../workers/engine.ts";
import type { BatchSource } from "../data/batches.ts";
import { type CaptionData, splitOf } from "../data/caption_data.ts";
import { type CiderReward, type ScstBaseline, scstBaselines } from "./scst_reward.ts";

/** What a self-critical step's batch is made with. */
export interface ScstBatchOptions {
  /** The engine that samples the captions (the one the solver steps with). */
  engine: TrainEngine;
  /** The reward. */
  reward: CiderReward;
  /** B, images per step. */
  batchSize: number;
  /** k, captions sampled per image. */
  samples: number;
  /** The sampling temperature. */
  temperature: number;
  /** The longest sampled caption, in words. */
  maxLength: number;
  /** The baseline. */
  baseline: ScstBaseline;
  /** The seed of the image draws and of the sampling. */
  seed: number;
}

/** The rewards of one self-critical step. */
export interface ScstStats {
  /** The mean reward of the sampled captions. */
  reward: number;
  /** The mean baseline. */
  baseline: number;
  /** The fraction of samples whose reward beats their baseline. */
  beatBaseline: number;
  /** The mean reward of the greedy captions (with the greedy baseline), else null. */
  greedyReward: number | null;
  /** The mean number of words of the sampled captions (`<END>` not counted). */
  meanLength: number;
}

/**
 * Weighted minibatches of sampled captions: a {@linkcode BatchSource} for the solver.
 *
 * @example Self-critical training of a tiny model
 * ```ts
 * import { CaptioningRNN, CaptioningSolver, LocalEngine, Tensor } from "../../mod.ts";
 * import { ScstBatches } from "./scst.ts";
 * import { CiderReward } from "./scst_reward.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3, dog: 4 };
 * const data = {
 *   train_captions: Tensor.fromValues([1, 3, 2, 0, 1, 4, 2, 0], [2, 4], "int32"),
 *   train_image_idxs: Tensor.fromValues([0, 1], [2], "int32"),
 *   train_features: Tensor.randn([2, 8], 0, "float32"),
 *   idx_to_word: Object.keys(wordToIdx), word_to_idx: wordToIdx,
 * };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 8, hiddenDim: 16, wordvecDim: 8 });
 * const engine = new LocalEngine(model);
 * const { reward } = await CiderReward.fromData(data, "train", null);
 * const batches = new ScstBatches(data, wordToIdx, model.idxToWord, {
 *   engine, reward, batchSize: 2, samples: 3, temperature: 1, maxLength: 4, baseline: "mean", seed: 1,
 * });
 * const solver = new CaptioningSolver(model, data, {
 *   engine, batches, batchSize: 2, numEpochs: 3, updateRule: "adam", explodeFactor: 0, verbose: false,
 * });
 * await solver.train();
 * console.log(batches.lastStats!.reward >= 0); // true
 * ```
 */
export class ScstBatches implements BatchSource {
  readonly #data: CaptionData;
  readonly #idxToWord: readonly string[];
  readonly #options: ScstBatchOptions;
  readonly #images: Int32Array;
  readonly #rng: Rng;
  readonly #startIdx: number;
  readonly #endIdx: number;
  readonly #nullIdx: number;
  /** The rewards of the last batch, or null before the first. */
  lastStats: ScstStats | null = null;

  /**
   * A source of self-critical batches over a split's images with references.
   * @param data The data dictionary (its training features and captions).
   * @param wordToIdx The vocabulary: word → index (`<START>`, `<END>`, `<NULL>` needed).
   * @param idxToWord The vocabulary: index → word.
   * @param options Engine, reward, sizes, baseline and seed.
   */
  constructor(
    data: CaptionData,
    wordToIdx: Readonly<Record<string, number>>,
    idxToWord: readonly string[],
    options: ScstBatchOptions,
  ) {
    this.#data = data;
    this.#idxToWord = idxToWord;
    this.#options = options;
    const features = splitOf(data, "train").features;
    this.#images = Int32Array.from(
      [...options.reward.references.keys()].filter((i) => i < features.shape[0]),
    );
    if (this.#images.length === 0) {
      throw new RangeError("Cannot train self-critically: no training image has references");
    }
    this.#rng = new Rng(options.seed);
    this.#startIdx = wordToIdx["<START>"];
    this.#endIdx = wordToIdx["<END>"];
    this.#nullIdx = wordToIdx["<NULL>"];
  }

  /** The number of training images (an epoch draws this many images). */
  get size(): number {
    return this.#images.length;
  }

  /**
   * The next batch: B images' k sampled captions each, as (B k, L + 1) caption rows starting
   * with `<START>`, weighted by reward minus baseline.
   * @returns The minibatch, with `weights`.
   */
  async next(): Promise<Minibatch> {
    const o = this.#options, b = o.batchSize, k = o.samples, l = o.maxLength;
    const images = new Int32Array(b);
    for (let i = 0; i < b; i++) images[i] = this.#images[this.#rng.randint(this.#images.length)];
    const seed = this.#rng.nextUint32();
    const feats = gatherRows(splitOf(this.#data, "train").features, images) as Tensor<FloatDType>;
    const sampled = await o.engine.sample(feats, {
      method: "sample",
      samples: k,
      temperature: o.temperature,
      maxLength: l,
      seed,
    });
    const rewards = o.reward.scoreCaptions(sampled.captions, images, this.#idxToWord);
    let greedyRewards: Float64Array | undefined;
    if (o.baseline === "greedy") {
      const greedy = await o.engine.sample(feats, { method: "greedy", maxLength: l });
      greedyRewards = o.reward.scoreCaptions(greedy.captions, images, this.#idxToWord);
    }
    const baselines = scstBaselines(rewards, k, o.baseline, greedyRewards);
    const weights = rewards.map((r, i) => r - baselines[i]);
    // <START>, then the sampled words (<NULL> after <END>): what the training step reads.
    const captions = Tensor.zeros([b * k, l + 1], "int32");
    captions.data.fill(this.#nullIdx);
    let words = 0;
    for (let r = 0; r < b * k; r++) {
      captions.data[r * (l + 1)] = this.#startIdx;
      const row = sampled.captions.data.subarray(r * l, (r + 1) * l);
      captions.data.set(row, r * (l + 1) + 1);
      const end = row.indexOf(this.#endIdx);
      words += end < 0 ? l : end;
    }
    const rows = Int32Array.from({ length: b * k }, (_, r) => images[Math.floor(r / k)]);
    this.lastStats = {
      reward: mean(rewards),
      baseline: mean(baselines),
      beatBaseline: rewards.filter((r, i) => r > baselines[i]).length / rewards.length,
      greedyReward: greedyRewards ? mean(greedyRewards) : null,
      meanLength: words / (b * k),
    };
    return {
      captions,
      features: gatherRows(splitOf(this.#data, "train").features, rows) as Tensor<FloatDType>,
      imageIdxs: rows,
      weights,
    };
  }

  /** The generator state that decides the following batches' images and samples. */
  getState(): RngState {
    return this.#rng.getState();
  }

  /** Restores a saved generator state. */
  setState(state: RngState): void {
    this.#rng.setState(state);
  }
}

function mean(xs: Float64Array): number {
  return xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : 0;
}
