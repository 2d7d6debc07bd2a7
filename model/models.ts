/**
 * The model factory: one options object names its model with `cellType` — "rnn", "lstm" and
 * "gru" build a `CaptioningRNN`, "transformer" a `CaptioningTransformer` — so an experiment's
 * model section, a checkpoint's saved config and the worker pool's init message all build
 * their model the same way.
 * @module
 */
import { checkOptionNames } from "../layers/options.ts";
import type { FloatDType } from "../layers/tensor.ts";
import type { CaptioningModel, CaptioningModelConfig, ModelKind } from "./captioning_model.ts";
import { CaptioningRNN } from "./captioning_rnn.ts";
import { CaptioningTransformer } from "./captioning_transformer.ts";
import { type CaptioningRNNOptions, RNN_OPTIONS } from "./model_config.ts";
import { type CaptioningTransformerOptions, TRANSFORMER_OPTIONS } from "./transformer_config.ts";

/** The language models `cellType` can name, recurrent ones first. */
export const MODEL_KINDS: readonly ModelKind[] = ["rnn", "lstm", "gru", "transformer"];

/**
 * The options of any captioning model: a `CaptioningRNN`'s and a `CaptioningTransformer`'s, with
 * `cellType` ("rnn" by default) naming the model; each model reads its own and ignores the
 * other's.
 */
export interface CaptioningModelOptions<D extends FloatDType = FloatDType>
  extends
    Omit<CaptioningRNNOptions<D>, "cellType">,
    Omit<CaptioningTransformerOptions<D>, "cellType"> {
  /** "rnn" (default), "lstm", "gru" or "transformer". */
  cellType?: ModelKind;
}

const ALL_OPTIONS = [...new Set<string>([...RNN_OPTIONS, ...TRANSFORMER_OPTIONS])];

/** The options named in `keys`, when given. */
function pick<O extends object>(options: O, keys: readonly string[]): Partial<O> {
  return Object.fromEntries(
    Object.entries(options).filter(([k, v]) => keys.includes(k) && v !== undefined),
  ) as Partial<O>;
}

/**
 * Builds the captioning model an options object names.
 * @param options The vocabulary, `cellType` and sizes; options of the other kind of model are
 * ignored (a recurrent model has no `numHeads`, the Transformer no `hiddenDim`).
 * @returns A `CaptioningRNN` or a `CaptioningTransformer`.
 * @throws {TypeError} For an option no model takes, or a value of the wrong type.
 * @throws {RangeError} For a value out of range or an invalid vocabulary.
 *
 * @example
 * ```ts
 * import { createCaptioningModel } from "./models.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
 * const gru = createCaptioningModel({ wordToIdx, cellType: "gru", inputDim: 4, numHeads: 2 });
 * const tf = createCaptioningModel({ wordToIdx, cellType: "transformer", inputDim: 4, hiddenDim: 64 });
 * console.log(gru.config.cellType, tf.config.cellType); // gru transformer
 * ```
 */
export function createCaptioningModel<D extends FloatDType = FloatDType>(
  options: CaptioningModelOptions<D>,
): CaptioningModel<D> {
  checkOptionNames("model options", options, ALL_OPTIONS);
  const cellType = options?.cellType ?? "rnn";
  if (!MODEL_KINDS.includes(cellType)) {
    throw new RangeError(
      `Invalid cellType: expected one of ${MODEL_KINDS.map((k) => `"${k}"`).join(", ")}, got ${
        JSON.stringify(cellType)
      }`,
    );
  }
  if (cellType === "transformer") {
    return new CaptioningTransformer(
      pick(options, TRANSFORMER_OPTIONS) as CaptioningModelOptions<D> & { cellType: "transformer" },
    );
  }
  return new CaptioningRNN(
    pick(options, RNN_OPTIONS) as CaptioningModelOptions<D> & { cellType: "rnn" },
  );
}

/**
 * A model's kind and sizes in a few words, for the line a training run starts with.
 * @param config A model's resolved config.
 * @returns E.g. "lstm (H=512, W=256)" or "transformer (L=2, 4 heads, W=256, F=2048, dropout 0.1)".
 *
 * @example
 * ```ts
 * import { createCaptioningModel, describeModel } from "./models.ts";
 * const model = createCaptioningModel({ wordToIdx: { "<NULL>": 0 }, cellType: "gru", hiddenDim: 64 });
 * console.log(describeModel(model.config)); // gru (H=64, W=128)
 * ```
 */
export function describeModel(config: CaptioningModelConfig): string {
  if (config.cellType !== "transformer") {
    return `${config.cellType} (H=${config.hiddenDim}, W=${config.wordvecDim})`;
  }
  const { numLayers, numHeads, wordvecDim, ffDim, dropout } = config;
  return `transformer (L=${numLayers}, ${numHeads} heads, W=${wordvecDim}, F=${ffDim}, dropout ${dropout})`;
}
