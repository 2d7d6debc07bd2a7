/**
 * The captioning model's options: what `new CaptioningRNN(…)` and its loss take, their
 * defaults, and the checks that turn a wrong option into a one-line error naming it (plain
 * JavaScript callers get no type error for `{ hiddenSize: 512 }` or `{ hiddenDim: "512" }`).
 * @module
 */
import { type Activation, checkActivation } from "../layers/activations.ts";
import { checkOptionNames } from "../layers/options.ts";
import type { ArrayOf, FloatArray, FloatDType } from "../layers/tensor.ts";

/** The recurrent cell of the language model: the vanilla RNN, the LSTM or the GRU. */
export type CellType = "rnn" | "lstm" | "gru";

/** How to build a `CaptioningRNN`; every field but `wordToIdx` has a default. */
export interface CaptioningRNNOptions<D extends FloatDType = FloatDType> {
  /** The vocabulary: word → index, with `<NULL>` (and `<START>`, `<END>` to sample). */
  wordToIdx: Record<string, number>;
  /** D, the image feature size (default 512). */
  inputDim?: number;
  /** W, the word-vector size (default 128). */
  wordvecDim?: number;
  /** H, the hidden size (default 128). */
  hiddenDim?: number;
  /** "rnn" (default), "lstm" or "gru". */
  cellType?: CellType;
  /** The vanilla RNN's nonlinearity: "tanh" (default) or "sigmoid". */
  activation?: Activation;
  /** "float32" (default, for training speed) or "float64" (for gradient checks). */
  dtype?: D;
  /** The seed of the parameter initialisation (default 0). */
  seed?: number;
  /** An existing flat parameter buffer to use instead of a new one (e.g. shared by workers). */
  paramBuffer?: ArrayOf<D>;
}

/** The resolved constructor arguments, as saved in checkpoints. */
export interface ModelConfig {
  /** D */
  inputDim: number;
  /** W */
  wordvecDim: number;
  /** H */
  hiddenDim: number;
  /** The recurrent cell. */
  cellType: CellType;
  /** The vanilla RNN's nonlinearity. */
  activation: Activation;
  /** The element type. */
  dtype: FloatDType;
  /** The initialisation seed. */
  seed: number;
}

/** Options of a captioning model's `loss` and `lossReference`. */
export interface LossOptions<D extends FloatDType> {
  /**
   * What the summed loss is divided by (default N, the exercise's). A shard of a larger batch
   * passes the whole batch's size so that shard losses and gradients add up to the batch's.
   */
  normalizer?: number;
  /** A flat gradient buffer (the parameter layout) to write into instead of a new one. */
  gradBuffer?: ArrayOf<D>;
  /**
   * Each caption's weight, (N,) finite numbers (default 1 each): the loss is
   * Σ_i weights[i] · (−Σ_t log p(target)) / normalizer. Self-critical training passes each
   * sampled caption's reward minus its baseline.
   */
  weights?: ArrayLike<number>;
  /**
   * Turns on dropout (for models that have it, the Transformer) with masks drawn from this
   * integer and the model's seed; without it (the default) the loss is deterministic, as for
   * gradient checks and validation. The training engines pass one per step and fixed shard.
   */
  dropoutSeed?: number;
}

/** The option names a `CaptioningRNN` takes. */
export const RNN_OPTIONS: readonly (keyof CaptioningRNNOptions)[] = [
  "wordToIdx",
  "inputDim",
  "wordvecDim",
  "hiddenDim",
  "cellType",
  "activation",
  "dtype",
  "seed",
  "paramBuffer",
];
const LOSS_OPTIONS: readonly (keyof LossOptions<FloatDType>)[] = [
  "normalizer",
  "gradBuffer",
  "weights",
  "dropoutSeed",
];

/**
 * Checks the options of a `CaptioningRNN` and fills in the defaults.
 * @param options The options given.
 * @returns The resolved configuration (the vocabulary is checked by the model).
 * @throws {TypeError} For an unknown option name or a value of the wrong type.
 * @throws {RangeError} For a value out of range.
 *
 * @example
 * ```ts
 * import { resolveModelConfig } from "./model_config.ts";
 * console.log(resolveModelConfig({ wordToIdx: { "<NULL>": 0 }, hiddenDim: 64 }).hiddenDim); // 64
 * try {
 *   resolveModelConfig({ wordToIdx: { "<NULL>": 0 }, hiddenDim: 2.5 });
 * } catch (e) {
 *   console.log((e as Error).message); // Invalid hiddenDim: expected a positive integer, got 2.5
 * }
 * ```
 */
export function resolveModelConfig(options: CaptioningRNNOptions): ModelConfig {
  if (options === undefined) {
    throw new TypeError("Invalid CaptioningRNN options: expected an object with wordToIdx");
  }
  checkOptionNames("CaptioningRNN options", options, RNN_OPTIONS);
  const { wordToIdx } = options;
  if (typeof wordToIdx !== "object" || wordToIdx === null || Array.isArray(wordToIdx)) {
    throw new TypeError(
      `Invalid wordToIdx: expected an object of word → index, got ${describe(wordToIdx)}`,
    );
  }
  if ((options.cellType as string) === "transformer") {
    throw new RangeError(
      `Invalid cellType: "transformer" is CaptioningTransformer's; CaptioningRNN takes "rnn", ` +
        `"lstm" or "gru" (createCaptioningModel builds either)`,
    );
  }
  const config: ModelConfig = {
    inputDim: positiveInteger("inputDim", options.inputDim ?? 512),
    wordvecDim: positiveInteger("wordvecDim", options.wordvecDim ?? 128),
    hiddenDim: positiveInteger("hiddenDim", options.hiddenDim ?? 128),
    cellType: oneOf("cellType", options.cellType ?? "rnn", ["rnn", "lstm", "gru"]),
    activation: checkActivation(options.activation ?? "tanh"),
    dtype: oneOf("dtype", options.dtype ?? "float32", ["float32", "float64"]),
    seed: integer("seed", options.seed ?? 0),
  };
  if (options.paramBuffer !== undefined) checkBuffer("paramBuffer", options.paramBuffer, config);
  return config;
}

/**
 * Checks the options of a loss call.
 * @param options The options given.
 * @param dtype The model's element type.
 * @param total The length of the parameter layout.
 * @throws {TypeError} For an unknown option name or a value of the wrong type.
 * @throws {RangeError} For a value out of range.
 *
 * @example
 * ```ts
 * import { checkLossOptions } from "./model_config.ts";
 * checkLossOptions({ normalizer: 50, gradBuffer: new Float32Array(10) }, "float32", 10); // fine
 * ```
 */
export function checkLossOptions(
  options: LossOptions<FloatDType>,
  dtype: FloatDType,
  total: number,
): void {
  checkOptionNames("loss options", options, LOSS_OPTIONS);
  if (options.normalizer !== undefined) checkNormalizer(options.normalizer);
  if (options.gradBuffer !== undefined) {
    checkBuffer("gradBuffer", options.gradBuffer, { dtype }, total);
  }
  if (options.dropoutSeed !== undefined) integer("dropoutSeed", options.dropoutSeed);
}

/**
 * Checks per-caption loss weights: N finite numbers.
 * @param weights The weights given.
 * @param n N, the number of captions.
 * @throws {TypeError} When they are not an array of numbers.
 * @throws {RangeError} When there are not N of them, or one is not finite.
 *
 * @example
 * ```ts
 * import { checkCaptionWeights } from "./model_config.ts";
 * checkCaptionWeights(new Float64Array([0.5, -1]), 2); // fine
 * ```
 */
export function checkCaptionWeights(weights: ArrayLike<number>, n: number): void {
  if (typeof weights !== "object" || weights === null || typeof weights.length !== "number") {
    throw new TypeError(`Invalid weights: expected an array of numbers, got ${describe(weights)}`);
  }
  if (weights.length !== n) {
    throw new RangeError(
      `Invalid weights: expected ${n} (one per caption), got ${weights.length}`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (typeof weights[i] !== "number" || !Number.isFinite(weights[i])) {
      throw new RangeError(
        `Invalid weights: weight ${i} is ${weights[i]}, expected a finite number`,
      );
    }
  }
}

/** A positive, finite number. */
function checkNormalizer(normalizer: number): void {
  expectNumber("normalizer", normalizer, "a positive number");
  if (!(normalizer > 0 && Number.isFinite(normalizer))) {
    throw new RangeError(`Invalid normalizer: expected a positive number, got ${normalizer}`);
  }
}

/**
 * Checks that an option is a number, naming it otherwise.
 * @param name The option's name.
 * @param value Its value.
 * @param expected What it accepts, for the message.
 * @throws {TypeError} When it is not a number.
 *
 * @example
 * ```ts
 * import { expectNumber } from "./model_config.ts";
 * expectNumber("seed", 3, "an integer"); // fine
 * ```
 */
export function expectNumber(
  name: string,
  value: unknown,
  expected: string,
): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}: expected ${expected}, got ${describe(value)}`);
  }
}

/**
 * Checks a positive-integer option.
 * @param name The option's name.
 * @param value Its value.
 * @returns The value.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer ≥ 1.
 *
 * @example
 * ```ts
 * import { positiveInteger } from "./model_config.ts";
 * console.log(positiveInteger("hiddenDim", 64)); // 64
 * ```
 */
export function positiveInteger(name: string, value: number): number {
  expectNumber(name, value, "a positive integer");
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Invalid ${name}: expected a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Checks an integer option.
 * @param name The option's name.
 * @param value Its value.
 * @returns The value.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer.
 *
 * @example
 * ```ts
 * import { integer } from "./model_config.ts";
 * console.log(integer("seed", -3)); // -3
 * ```
 */
export function integer(name: string, value: number): number {
  expectNumber(name, value, "an integer");
  if (!Number.isInteger(value)) {
    throw new RangeError(`Invalid ${name}: expected an integer, got ${value}`);
  }
  return value;
}

/**
 * Checks an option that takes one of some strings.
 * @param name The option's name.
 * @param value Its value.
 * @param allowed The strings it takes.
 * @returns The value.
 * @throws {RangeError} When it is not one of them.
 *
 * @example
 * ```ts
 * import { oneOf } from "./model_config.ts";
 * console.log(oneOf("dtype", "float64", ["float32", "float64"])); // float64
 * ```
 */
export function oneOf<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    const names = allowed.map((a) => `"${a}"`).join(" or ");
    throw new RangeError(`Invalid ${name}: expected ${names}, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks a flat buffer: of the model's dtype and, when given, of the layout's length.
 * @param name The option's name.
 * @param buffer Its value.
 * @param config The model's element type.
 * @param length The layout's length, when known.
 * @throws {TypeError} For an array of another type.
 * @throws {RangeError} For another length.
 *
 * @example
 * ```ts
 * import { checkBuffer } from "./model_config.ts";
 * checkBuffer("gradBuffer", new Float32Array(4), { dtype: "float32" }, 4); // fine
 * ```
 */
export function checkBuffer(
  name: string,
  buffer: unknown,
  config: { dtype: FloatDType },
  length?: number,
): asserts buffer is FloatArray {
  const want = config.dtype === "float32" ? Float32Array : Float64Array;
  if (!(buffer instanceof want)) {
    throw new TypeError(
      `Invalid ${name}: expected a ${want.name} (the model's dtype is ${config.dtype}), got ` +
        describe(buffer),
    );
  }
  if (length !== undefined && buffer.length !== length) {
    throw new RangeError(
      `Invalid ${name}: expected ${length} elements (the parameter layout), got ${buffer.length}`,
    );
  }
}

/**
 * A value as an error message shows it: strings quoted, objects by their constructor.
 * @param value Any value.
 * @returns Its description.
 *
 * @example
 * ```ts
 * import { describe } from "./model_config.ts";
 * console.log(describe("512"), describe(new Float64Array(1))); // "512" Float64Array
 * ```
 */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return "an array";
  return value.constructor?.name ?? "an object";
}
