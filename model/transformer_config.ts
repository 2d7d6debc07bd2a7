/**
 * The Transformer captioner's options: what `new CaptioningTransformer(…)` takes, their defaults
 * (the course's `CaptioningTransformer` and `TransformerDecoderLayer`), and the checks that turn
 * a wrong option into a one-line error naming it.
 * @module
 */
import { checkOptionNames } from "../layers/options.ts";
import type { ArrayOf, FloatDType } from "../layers/tensor.ts";
import {
  checkBuffer,
  describe,
  expectNumber,
  integer,
  oneOf,
  positiveInteger,
} from "./model_config.ts";

/** How to build a `CaptioningTransformer`; every field but `wordToIdx` has a default. */
export interface CaptioningTransformerOptions<D extends FloatDType = FloatDType> {
  /** The vocabulary: word → index, with `<NULL>` (and `<START>`, `<END>` to sample). */
  wordToIdx: Record<string, number>;
  /** D, the image feature size (default 512). */
  inputDim?: number;
  /** W, the word-vector size and the width of every layer (default 128); even, a multiple of numHeads. */
  wordvecDim?: number;
  /** "transformer", the only value (so one options object can name its model). */
  cellType?: "transformer";
  /** L, the number of decoder layers (default 2). */
  numLayers?: number;
  /** The attention heads of every attention layer (default 4). */
  numHeads?: number;
  /** F, the hidden size of each layer's feed-forward block (default 2048). */
  ffDim?: number;
  /** The dropout probability of training steps (default 0.1; never applied at evaluation). */
  dropout?: number;
  /** P, the positions the model reads: the longest caption it trains on or writes (default 50). */
  maxLength?: number;
  /** "float32" (default, for training speed) or "float64" (for gradient checks). */
  dtype?: D;
  /** The seed of the parameter initialisation and of the dropout masks (default 0). */
  seed?: number;
  /** An existing flat parameter buffer to use instead of a new one (e.g. shared by workers). */
  paramBuffer?: ArrayOf<D>;
}

/** The resolved constructor arguments of a `CaptioningTransformer`, as saved in checkpoints. */
export interface TransformerConfig {
  /** D */
  inputDim: number;
  /** W */
  wordvecDim: number;
  /** Always "transformer": tells this config from a recurrent model's. */
  cellType: "transformer";
  /** L */
  numLayers: number;
  /** Attention heads. */
  numHeads: number;
  /** F */
  ffDim: number;
  /** Dropout probability of training steps. */
  dropout: number;
  /** P, the positions. */
  maxLength: number;
  /** The element type. */
  dtype: FloatDType;
  /** The initialisation (and dropout) seed. */
  seed: number;
}

/** The option names a `CaptioningTransformer` takes. */
export const TRANSFORMER_OPTIONS: readonly (keyof CaptioningTransformerOptions)[] = [
  "wordToIdx",
  "inputDim",
  "wordvecDim",
  "cellType",
  "numLayers",
  "numHeads",
  "ffDim",
  "dropout",
  "maxLength",
  "dtype",
  "seed",
  "paramBuffer",
];

/**
 * Checks the options of a `CaptioningTransformer` and fills in the defaults.
 * @param options The options given.
 * @returns The resolved configuration (the vocabulary is checked by the model).
 * @throws {TypeError} For an unknown option name or a value of the wrong type.
 * @throws {RangeError} For a value out of range, or a width that the heads do not divide.
 *
 * @example
 * ```ts
 * import { resolveTransformerConfig } from "./transformer_config.ts";
 * console.log(resolveTransformerConfig({ wordToIdx: { "<NULL>": 0 }, numLayers: 3 }).numLayers); // 3
 * try {
 *   resolveTransformerConfig({ wordToIdx: { "<NULL>": 0 }, wordvecDim: 30, numHeads: 4 });
 * } catch (e) {
 *   console.log((e as Error).message);
 *   // Invalid numHeads: 4 heads do not divide wordvecDim 30; pick a divisor of it
 * }
 * ```
 */
export function resolveTransformerConfig(options: CaptioningTransformerOptions): TransformerConfig {
  if (options === undefined) {
    throw new TypeError("Invalid CaptioningTransformer options: expected an object with wordToIdx");
  }
  checkOptionNames("CaptioningTransformer options", options, TRANSFORMER_OPTIONS);
  const { wordToIdx } = options;
  if (typeof wordToIdx !== "object" || wordToIdx === null || Array.isArray(wordToIdx)) {
    throw new TypeError(
      `Invalid wordToIdx: expected an object of word → index, got ${describe(wordToIdx)}`,
    );
  }
  const config: TransformerConfig = {
    inputDim: positiveInteger("inputDim", options.inputDim ?? 512),
    wordvecDim: positiveInteger("wordvecDim", options.wordvecDim ?? 128),
    cellType: oneOf("cellType", options.cellType ?? "transformer", ["transformer"]),
    numLayers: positiveInteger("numLayers", options.numLayers ?? 2),
    numHeads: positiveInteger("numHeads", options.numHeads ?? 4),
    ffDim: positiveInteger("ffDim", options.ffDim ?? 2048),
    dropout: probability("dropout", options.dropout ?? 0.1),
    maxLength: positiveInteger("maxLength", options.maxLength ?? 50),
    dtype: oneOf("dtype", options.dtype ?? "float32", ["float32", "float64"]),
    seed: integer("seed", options.seed ?? 0),
  };
  const { wordvecDim: w, numHeads: heads } = config;
  if (w % heads !== 0) {
    throw new RangeError(
      `Invalid numHeads: ${heads} heads do not divide wordvecDim ${w}; pick a divisor of it`,
    );
  }
  if (w % 2 !== 0) {
    throw new RangeError(
      `Invalid wordvecDim: the positional encoding pairs sin and cos, so it must be even, got ${w}`,
    );
  }
  if (options.paramBuffer !== undefined) checkBuffer("paramBuffer", options.paramBuffer, config);
  return config;
}

function probability(name: string, value: number): number {
  expectNumber(name, value, "a number in [0, 1)");
  if (!(value >= 0 && value < 1)) {
    throw new RangeError(`Invalid ${name}: expected a number in [0, 1), got ${value}`);
  }
  return value;
}
