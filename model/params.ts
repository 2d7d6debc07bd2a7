/**
 * The parameter layout: every parameter of a model as a named, shaped range of ONE flat
 * buffer (like llm.c's single allocation), so workers can share it through a
 * SharedArrayBuffer and gradients and optimizer moments can use the same layout. Each model
 * kind lists its own parameters (the recurrent cells' names below, the Transformer's in
 * `transformer_params.ts`); the layout follows the order they are listed in.
 * @module
 */
import { allocArray, type ArrayOf, type FloatDType, shapeSize, Tensor } from "../layers/tensor.ts";
import { sharedWasmArray } from "../layers/kernels/wasm_arrays.ts";

/** The parameter names of the rnn and lstm models, in the exercise's order. */
export const PARAM_NAMES = [
  "W_proj",
  "b_proj",
  "W_embed",
  "Wx",
  "Wh",
  "b",
  "W_vocab",
  "b_vocab",
] as const;

/**
 * The GRU model's parameter names: the exercise's, with the gate bias split into the input
 * side's `bx` and the hidden side's `bh`, as PyTorch's `nn.GRU` has them (b_ih, b_hh).
 */
export const GRU_PARAM_NAMES = [
  "W_proj",
  "b_proj",
  "W_embed",
  "Wx",
  "Wh",
  "bx",
  "bh",
  "W_vocab",
  "b_vocab",
] as const;

/** A parameter name of a recurrent captioning model (rnn, lstm or gru). */
export type RecurrentParamName = typeof PARAM_NAMES[number] | typeof GRU_PARAM_NAMES[number];

/**
 * A parameter's name in a model's layout, which is also its dataset path in a checkpoint:
 * {@linkcode PARAM_NAMES} for the rnn and lstm, {@linkcode GRU_PARAM_NAMES} for the gru, and
 * paths such as `"layer0/self_attn/Wq"` for the Transformer.
 */
export type ParamName = string;

/** Where one parameter lives in the flat buffer. */
export interface ParamSlot {
  /** The parameter's name. */
  name: ParamName;
  /** Its shape. */
  shape: number[];
  /** Its first element in the flat buffer. */
  offset: number;
  /** Its number of elements. */
  size: number;
}

/** The whole layout: slots in order and the total number of elements. */
export interface ParamLayout {
  /** One slot per parameter, in the model's order (e.g. {@linkcode PARAM_NAMES}). */
  slots: ParamSlot[];
  /** The flat buffer's length. */
  total: number;
}

/** Named views of one flat buffer: `views.W_embed` etc. share `flat`'s memory. */
export interface ParamBuffer<D extends FloatDType = FloatDType> {
  /** The flat buffer. */
  flat: ArrayOf<D>;
  /** One tensor view per parameter. */
  views: Record<ParamName, Tensor<D>>;
}

/**
 * The layout for given parameter shapes, in the order the shapes are listed.
 * @param shapes The shape of each parameter, in layout order.
 * @returns The slots, in that order.
 *
 * @example
 * ```ts
 * import { makeLayout } from "./params.ts";
 * const layout = makeLayout({
 *   W_proj: [4, 3], b_proj: [3], W_embed: [5, 2], Wx: [2, 3], Wh: [3, 3], b: [3], W_vocab: [3, 5], b_vocab: [5],
 * });
 * console.log(layout.total); // 73
 * ```
 */
export function makeLayout(shapes: Readonly<Record<ParamName, readonly number[]>>): ParamLayout {
  let offset = 0;
  const slots = Object.keys(shapes).map((name) => {
    const size = shapeSize(shapes[name]);
    const slot = { name, shape: [...shapes[name]], offset, size };
    offset += size;
    return slot;
  });
  return { slots, total: offset };
}

/**
 * Named tensor views over a flat buffer (allocated when not given).
 * @param layout The layout.
 * @param dtype The element type.
 * @param flat An existing buffer to view (e.g. one shared by workers); must match the layout.
 * @returns The buffer and its views.
 *
 * @example
 * ```ts
 * import { makeLayout, viewParams } from "./params.ts";
 * const layout = makeLayout({
 *   W_proj: [4, 3], b_proj: [3], W_embed: [5, 2], Wx: [2, 3], Wh: [3, 3], b: [3], W_vocab: [3, 5], b_vocab: [5],
 * });
 * const { flat, views } = viewParams(layout, "float32");
 * views.b_vocab.data[0] = 1;
 * console.log(flat[layout.total - 5]); // 1
 * ```
 */
export function viewParams<D extends FloatDType>(
  layout: ParamLayout,
  dtype: D,
  flat?: ArrayOf<D>,
): ParamBuffer<D> {
  const buffer = flat ?? sharedWasmArray(dtype, layout.total);
  if (buffer.length !== layout.total) {
    throw new RangeError(
      `Cannot view parameters: buffer has ${buffer.length} elements, layout needs ${layout.total}`,
    );
  }
  const views = {} as Record<ParamName, Tensor<D>>;
  for (const s of layout.slots) {
    views[s.name] = new Tensor(buffer.subarray(s.offset, s.offset + s.size) as ArrayOf<D>, s.shape);
  }
  return { flat: buffer, views };
}

/**
 * The views of a gradient buffer for a loss call: of the buffer given, or of a new one, reusing
 * the views made for the same buffer last time (a training engine passes the same shard buffer
 * every step).
 * @param layout The layout.
 * @param dtype The element type.
 * @param buffer The caller's gradient buffer, if any.
 * @param cached The views made last time, if any.
 * @returns The buffer and its views.
 *
 * @example
 * ```ts
 * import { gradientViews, makeLayout } from "./params.ts";
 * const layout = makeLayout({ w: [2, 2], b: [2] });
 * const buffer = new Float64Array(6);
 * const views = gradientViews(layout, "float64", buffer);
 * console.log(gradientViews(layout, "float64", buffer, views) === views); // true
 * ```
 */
export function gradientViews<D extends FloatDType>(
  layout: ParamLayout,
  dtype: D,
  buffer: ArrayOf<D> | undefined,
  cached?: ParamBuffer<D>,
): ParamBuffer<D> {
  const flat = buffer ?? allocArray(dtype, layout.total);
  return cached?.flat === flat ? cached : viewParams(layout, dtype, flat);
}
