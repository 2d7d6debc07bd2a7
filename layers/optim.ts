/**
 * The exercise's update rules (sgd, sgd_momentum, rmsprop, adam), elementwise and in place on
 * a flat parameter buffer, over any index range — so workers can each update their own range.
 * @module
 */
import type { FloatArray, FloatDType } from "./tensor.ts";
import { wasmAdam } from "./kernels/adam_wasm.ts";
import { sharedWasmArray } from "./kernels/wasm_arrays.ts";

/** The update rules of the exercise. */
export type UpdateRule = "sgd" | "sgd_momentum" | "rmsprop" | "adam";

/** The update rules, for validation and help. */
export const UPDATE_RULES: readonly UpdateRule[] = ["sgd", "sgd_momentum", "rmsprop", "adam"];

/**
 * The hyper-parameters of the update rules, the one list of them: learningRate (the step
 * size), momentum (sgd_momentum's velocity decay), decayRate (rmsprop's squared-gradient
 * decay), beta1 and beta2 (adam's moment decays), epsilon (rmsprop and adam: added to the
 * denominator). The order is also their order in the worker pool's shared scalars.
 */
export const OPTIM_HYPERPARAMS = [
  "learningRate",
  "momentum",
  "decayRate",
  "beta1",
  "beta2",
  "epsilon",
] as const;

/** The name of a hyper-parameter of the update rules. */
export type OptimHyperParam = typeof OPTIM_HYPERPARAMS[number];

/** Hyper-parameters of the update rules (each rule reads the ones it needs). */
export type OptimConfig = Record<OptimHyperParam, number>;

/**
 * The hyper-parameters of an object that has them among other fields (an experiment's train
 * section, say), in {@linkcode OPTIM_HYPERPARAMS} order.
 * @param from The object.
 * @returns Just the hyper-parameters that it defines.
 *
 * @example
 * ```ts
 * import { pickOptimConfig } from "./optim.ts";
 * console.log(pickOptimConfig({ learningRate: 0.1, batchSize: 25 })); // { learningRate: 0.1 }
 * ```
 */
export function pickOptimConfig(from: object): Partial<OptimConfig> {
  const out: Partial<OptimConfig> = {}, source = from as Partial<Record<string, unknown>>;
  for (const key of OPTIM_HYPERPARAMS) {
    if (typeof source[key] === "number") out[key] = source[key] as number;
  }
  return out;
}

/**
 * The exercise's defaults for a rule (sgd and sgd_momentum: lr 1e-2; rmsprop: lr 1e-2,
 * decay 0.99; adam: lr 1e-3, betas 0.9/0.999; epsilon 1e-8), overridden by `config`.
 * @param rule The update rule.
 * @param config Values that override the defaults.
 * @returns The complete configuration.
 *
 * @example
 * ```ts
 * import { optimDefaults } from "./optim.ts";
 * console.log(optimDefaults("adam").learningRate); // 0.001
 * ```
 */
export function optimDefaults(rule: UpdateRule, config: Partial<OptimConfig> = {}): OptimConfig {
  if (!UPDATE_RULES.includes(rule)) {
    throw new RangeError(
      `Unknown update rule "${rule}": expected one of ${UPDATE_RULES.join(", ")}`,
    );
  }
  const defined = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  return {
    learningRate: rule === "adam" ? 1e-3 : 1e-2,
    momentum: 0.9,
    decayRate: 0.99,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    ...defined,
  };
}

/**
 * The moment buffers each rule keeps, by name (as checkpoints store them under `optimizer/`):
 * sgd none, sgd_momentum its velocity, rmsprop its squared-gradient cache, adam m and v.
 */
export const MOMENT_NAMES: Readonly<Record<UpdateRule, readonly string[]>> = {
  sgd: [],
  sgd_momentum: ["velocity"],
  rmsprop: ["cache"],
  adam: ["m", "v"],
};

/** The optimizer's state, as saved in checkpoints. */
export interface OptimizerState {
  /** The update rule. */
  rule: UpdateRule;
  /** The hyper-parameters (with the current, decayed learning rate). */
  config: OptimConfig;
  /** The number of steps taken (adam's t). */
  t: number;
  /** The moment buffers, each of the parameter layout. */
  moments: FloatArray[];
}

/**
 * An update rule with its state, for one flat parameter buffer.
 *
 * @example One adam step on a tiny buffer
 * ```ts
 * import { Optimizer } from "./optim.ts";
 * const w = new Float64Array([1, 2]), dw = new Float64Array([0.5, -0.5]);
 * const opt = new Optimizer("adam", { learningRate: 0.1 }, w.length, "float64");
 * opt.beginStep();
 * opt.update(w, dw, 0, w.length);
 * console.log(w); // [0.9, 2.1] (adam's first step moves each weight by about lr)
 * ```
 */
export class Optimizer {
  /** The update rule. */
  readonly rule: UpdateRule;
  /** The hyper-parameters; `learningRate` is decayed in place by the solver. */
  readonly config: OptimConfig;
  /**
   * The moment buffers (SharedArrayBuffer-backed, so workers can update ranges; each in a
   * WebAssembly memory of its own, so Adam runs as SIMD).
   */
  readonly moments: FloatArray[];
  /** The number of steps taken. */
  t = 0;

  /**
   * Creates the optimizer and zeroed moment buffers.
   * @param rule The update rule.
   * @param config Hyper-parameters overriding the rule's defaults.
   * @param size The parameter buffer's length.
   * @param dtype The parameter buffer's element type.
   */
  constructor(rule: UpdateRule, config: Partial<OptimConfig>, size: number, dtype: FloatDType) {
    this.rule = rule;
    this.config = optimDefaults(rule, config);
    this.moments = MOMENT_NAMES[rule].map(() => sharedWasmArray(dtype, size));
  }

  /** Advances the step counter: once per training step, before any {@linkcode update}. */
  beginStep(): void {
    this.t++;
  }

  /**
   * Applies the rule to w[start … end) in place, given dw.
   * @param w The parameters.
   * @param dw Their gradients.
   * @param start The first index to update.
   * @param end One past the last index.
   */
  update(w: FloatArray, dw: FloatArray, start: number, end: number): void {
    applyUpdate(this.rule, this.config, this.t, this.moments, w, dw, start, end);
  }

  /**
   * The state to save in a checkpoint (moments are the live buffers, not copies).
   * @returns The rule, hyper-parameters, step count and moments.
   */
  getState(): OptimizerState {
    return { rule: this.rule, config: { ...this.config }, t: this.t, moments: this.moments };
  }

  /**
   * Restores a saved state into this optimizer.
   * @param state A state from {@linkcode Optimizer.getState} of the same rule and size.
   */
  setState(state: OptimizerState): void {
    if (state.rule !== this.rule || state.moments.length !== this.moments.length) {
      throw new RangeError(
        `Cannot restore optimizer: saved rule "${state.rule}", this one is "${this.rule}"`,
      );
    }
    Object.assign(this.config, state.config);
    this.t = state.t;
    state.moments.forEach((m, i) => {
      if (m.length !== this.moments[i].length) {
        throw new RangeError(
          `Cannot restore optimizer: moment ${i} has ${m.length} elements, expected ${
            this.moments[i].length
          }`,
        );
      }
      this.moments[i].set(m);
    });
  }
}

/**
 * One update of w[start … end) by a rule: the elementwise kernel every optimizer shares.
 * @param rule The update rule.
 * @param c Its hyper-parameters.
 * @param t The step number (1 for the first step; adam's bias correction uses it).
 * @param moments The rule's moment buffers.
 * @param w The parameters, updated in place.
 * @param dw The gradients.
 * @param start The first index.
 * @param end One past the last index.
 */
export function applyUpdate(
  rule: UpdateRule,
  c: OptimConfig,
  t: number,
  moments: FloatArray[],
  w: FloatArray,
  dw: FloatArray,
  start: number,
  end: number,
): void {
  const lr = c.learningRate;
  switch (rule) {
    case "sgd":
      for (let i = start; i < end; i++) w[i] -= lr * dw[i];
      return;
    case "sgd_momentum": {
      const v = moments[0], mu = c.momentum;
      for (let i = start; i < end; i++) {
        v[i] = mu * v[i] - lr * dw[i];
        w[i] += v[i];
      }
      return;
    }
    case "rmsprop": {
      const cache = moments[0], rho = c.decayRate, eps = c.epsilon;
      for (let i = start; i < end; i++) {
        const g = dw[i];
        cache[i] = rho * cache[i] + (1 - rho) * g * g;
        w[i] -= (lr * g) / (Math.sqrt(cache[i]) + eps);
      }
      return;
    }
    case "adam": {
      // The exercise's lr · (m / c1) / (√(v / c2) + ε), with the bias corrections folded into
      // two per-step constants: one division and one square root per parameter instead of
      // three and one, which bound the loop's speed (equal up to rounding).
      const [m, v] = moments, b1 = c.beta1, b2 = c.beta2, eps = c.epsilon;
      const stepSize = lr / (1 - b1 ** t), invRootC2 = 1 / Math.sqrt(1 - b2 ** t);
      const a1 = 1 - b1, a2 = 1 - b2;
      // Arrays in WebAssembly memories (the worker pool's) take the SIMD loop, the same bits;
      // the loops below do the rest.
      const k = { b1, a1, b2, a2, stepSize, invRootC2, eps };
      const from = wasmAdam(k, w, dw, m, v, start, end);
      if (m instanceof Float32Array && v instanceof Float32Array) {
        // The moments as stored (rounded to float32) without reading them back: 10% faster.
        for (let i = from; i < end; i++) {
          const g = dw[i];
          const mi = Math.fround(b1 * m[i] + a1 * g), vi = Math.fround(b2 * v[i] + a2 * g * g);
          m[i] = mi;
          v[i] = vi;
          w[i] -= (stepSize * mi) / (Math.sqrt(vi) * invRootC2 + eps);
        }
        return;
      }
      for (let i = from; i < end; i++) {
        const g = dw[i];
        const mi = b1 * m[i] + a1 * g, vi = b2 * v[i] + a2 * g * g;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (stepSize * mi) / (Math.sqrt(vi) * invRootC2 + eps);
      }
      return;
    }
  }
}
