/**
 * Experiment configuration: defaults from the schema table, a JSON experiment file that
 * lists only what it changes, and `--section.key=value` overrides from the command line.
 * Every bad input is an {@linkcode InputError} with a one-line message naming the file
 * and the field, e.g. `exp.json: train.learningRate: expected a positive number, got "fast"`.
 * @module
 */
import type { OptimConfig, UpdateRule } from "../../layers/optim.ts";
import { suggestName } from "../../layers/options.ts";
import { InputError } from "../errors.ts";
import { defaultShards } from "../../workers/engine.ts";
import { readTextFileChecked, UnreadableFile } from "../io/files.ts";
import { parseJson } from "../io/json.ts";
import {
  describeExpected,
  EXPERIMENT_SCHEMA,
  forEachOption,
  isOption,
  type METRIC_NAMES,
  type OptionSpec,
  type SectionSpec,
  type STAGE_NAMES,
} from "./schema.ts";
import type { LengthPenalty } from "../../model/decode_options.ts";

/** The largest experiment file read (experiments list only what they change: a few kB). */
export const MAX_EXPERIMENT_BYTES = 1_000_000;

/** A metric `evaluate.metrics` may list. */
export type MetricName = typeof METRIC_NAMES[number];
/** A stage `stages` may list. */
export type StageName = typeof STAGE_NAMES[number];

/** Where the captions and features come from (`data` section). */
export interface DataConfig {
  /**
   * What `dir` holds when it is left unset, and what to do when it holds no dataset: "coco"
   * expects the real files there, "synthetic" generates the synthetic set. A directory that
   * holds a dataset is read whatever its format (CS231n files or an imported dataset).
   */
  source: "coco" | "synthetic";
  /** Dataset directory (resolved: never null). */
  dir: string;
  /** Use the 512-d PCA features rather than the 4096-d fc7 features. */
  pcaFeatures: boolean;
  /** Use at most this many training captions; null = all. */
  maxTrain: number | null;
  /** Stream training minibatches from the HDF5 files (a loader worker) instead of loading them. */
  stream: boolean;
  /** Sizes and seed of the synthetic set, used when it must be generated. */
  synthetic: { numTrain: number; numVal: number; seed: number };
}

/**
 * The captioning model (`model` section): `cellType` picks the model; the recurrent cells read
 * `activation` and `hiddenDim`, the Transformer `numLayers` … `maxLength`, and each ignores the
 * other's options.
 */
export interface ModelConfig {
  /** The language model: a recurrent cell (rnn, lstm, gru), or the Transformer. */
  cellType: "rnn" | "lstm" | "gru" | "transformer";
  /** Vanilla RNN nonlinearity. */
  activation: "tanh" | "sigmoid";
  /** Word vector size W (the Transformer's width). */
  wordvecDim: number;
  /** Hidden size H of the recurrent cells. */
  hiddenDim: number;
  /** The Transformer's decoder layers. */
  numLayers: number;
  /** The Transformer's attention heads (they divide wordvecDim). */
  numHeads: number;
  /** The Transformer's feed-forward hidden size. */
  ffDim: number;
  /** The Transformer's dropout probability of training steps. */
  dropout: number;
  /** The Transformer's positions: the longest caption it reads or writes. */
  maxLength: number;
  /** Precision of parameters and activations. */
  dtype: "float32" | "float64";
  /** Seed of the weight initialisation. */
  seed: number;
}

/** The solver (`train` section): the update rule's hyper-parameters and the rest. */
export interface TrainConfig extends OptimConfig {
  /** Optimizer. */
  updateRule: UpdateRule;
  /** Learning-rate multiplier applied after each epoch. */
  lrDecay: number;
  /** Passes over the training captions. */
  numEpochs: number;
  /** Captions per minibatch. */
  batchSize: number;
  /** Bound on the global gradient norm; 0 = off. */
  gradClip: number;
  /** Number of compute workers, or "auto" (one per core). */
  workers: number | "auto";
  /**
   * Fixed shards each minibatch is split into: results are bitwise the same for any worker
   * count at the same value (fewer, larger shards run faster). Resolved: unset means 1 for the
   * recurrent models, whose workers share each shard's step, and 4 for the Transformer, whose
   * workers take whole shards (`defaultShards`).
   */
  shards: number;
  /** Seed of the minibatch order. */
  seed: number;
  /** Log the loss every this many iterations. */
  printEvery: number;
  /** Checkpoint every this many iterations; 0 = at the end of each epoch. */
  checkpointEvery: number;
  /** Score val captions (BLEU-4, CIDEr-D) and keep best.h5 every this many iterations; 0 = each epoch. */
  evalEvery: number;
  /** Kernel backend. */
  backend: "auto" | "blas" | "wasm" | "ts";
  /** Seconds a worker may take over one job before the run stops it as stuck. */
  workerTimeout: number;
  /** Training across the processes of an MPI job (`train.distributed` section). */
  distributed: {
    /** Join an MPI job: "auto" when launched by mpiexec or srun, "on" always, "off" never. */
    mpi: "auto" | "on" | "off";
    /** Compare the ranks' parameter checksums every this many steps (0 = never). */
    checkEvery: number;
  };
  /** Self-critical training after cross-entropy. */
  scst: ScstConfig;
}

/** Self-critical sequence training on CIDEr-D (`train.scst` section). */
export interface ScstConfig {
  /** Passes over the training images; 0 = no SCST. */
  numEpochs: number;
  /** The checkpoint to start from; null = this run's cross-entropy best.h5. */
  from: string | null;
  /** Captions sampled per image (k). */
  samples: number;
  /** Sampling temperature. */
  temperature: number;
  /** The baseline: the greedy caption's reward, or the mean of the other samples'. */
  baseline: "greedy" | "mean";
  /** Images per step. */
  batchSize: number;
  /** Step size; the optimizer's state starts afresh. */
  learningRate: number;
  /** Longest sampled caption, in words. */
  maxLength: number;
}

/** Caption generation and scoring (`evaluate` section). */
export interface EvaluateConfig {
  /** Splits to evaluate (test: datasets that have one, such as imported ones). */
  splits: ("train" | "val" | "test")[];
  /** Images per split to caption and score. */
  numImages: number;
  /** Beam width; 1 = greedy only. */
  beamSize: number;
  /** Longest generated caption, in words. */
  maxLength: number;
  /** Metrics to compute. */
  metrics: MetricName[];
  /** Beam captions kept per image, best first. */
  nBest: number;
  /** How beam search ranks finished captions of different lengths. */
  lengthPenalty: LengthPenalty;
  /** The GNMT length penalty's α. */
  lengthAlpha: number;
  /** Diverse beam search: groups. */
  beamGroups: number;
  /** Diverse beam search: the penalty for a word earlier groups chose. */
  diversity: number;
  /** Beam search without greedy's caption among the candidates. */
  plainBeam: boolean;
  /** Never repeat a trigram (every decoder). */
  blockTrigrams: boolean;
  /** Never write `<UNK>` (every decoder). */
  suppressUnk: boolean;
  /** Also score one sampled caption per image. */
  sample: boolean;
  /** Sampling temperature. */
  temperature: number;
  /** Sampling: the k likeliest words only (0 = all). */
  topK: number;
  /** Sampling: the likeliest words of total probability p (1 = all). */
  topP: number;
  /** Sampling seed. */
  seed: number;
}

/** A fully resolved experiment: every field present and valid. */
export interface ExperimentConfig {
  /** The `$schema` reference the file had, if any (ignored). */
  $schema: string | null;
  /** Run name (resolved: the file name when the file gives none). */
  name: string;
  /** Free text. */
  description: string;
  /** Data section. */
  data: DataConfig;
  /** Model section. */
  model: ModelConfig;
  /** Train section. */
  train: TrainConfig;
  /** Evaluate section. */
  evaluate: EvaluateConfig;
  /** Output section (resolved: `dir` is never null). */
  output: { dir: string };
  /** Stages to run, in order. */
  stages: StageName[];
}

/** The default dataset directory of each data source. */
export const DEFAULT_DATA_DIRS = {
  coco: "datasets/coco_captioning",
  synthetic: "datasets/synthetic",
} as const;

type Json = unknown;
type Obj = Record<string, Json>;
const isObj = (v: Json): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function buildDefaults(section: SectionSpec): Obj {
  const out: Obj = {};
  for (const [key, node] of Object.entries(section)) {
    out[key] = isOption(node) ? structuredClone(node.default) : buildDefaults(node);
  }
  return out;
}

/**
 * The default experiment, resolved as if loaded from a file called `name`.json with `{}`.
 * @param name The run name (also used for `output.dir`).
 * @returns A fresh, fully resolved config.
 *
 * @example
 * ```ts
 * import { defaultExperiment } from "./config.ts";
 * const cfg = defaultExperiment("demo");
 * console.log(cfg.model.cellType, cfg.output.dir); // lstm runs/demo
 * ```
 */
export function defaultExperiment(name = "default"): ExperimentConfig {
  return resolveExperiment({}, `${name}.json`);
}

function shown(value: Json): string {
  // JSON would show Infinity and NaN as null.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Checks one value against its option; returns an error detail or undefined. */
function checkValue(spec: OptionSpec, value: Json): string | undefined {
  const bad = `expected ${describeExpected(spec)}, got ${shown(value)}`;
  if (value === null) return spec.nullable ? undefined : bad;
  const inRange = (x: number) =>
    (spec.min === undefined || (spec.exclusiveMin ? x > spec.min : x >= spec.min)) &&
    (spec.max === undefined || (spec.exclusiveMax ? x < spec.max : x <= spec.max));
  switch (spec.type) {
    case "int":
      return typeof value === "number" && Number.isInteger(value) && inRange(value)
        ? undefined
        : bad;
    case "number":
      return typeof value === "number" && Number.isFinite(value) && inRange(value)
        ? undefined
        : bad;
    case "intOrAuto":
      return value === "auto" ||
          (typeof value === "number" && Number.isInteger(value) && inRange(value))
        ? undefined
        : bad;
    case "bool":
      return typeof value === "boolean" ? undefined : bad;
    case "string":
      return typeof value === "string" ? undefined : bad;
    case "enum":
      return typeof value === "string" && spec.values!.includes(value) ? undefined : bad;
    case "enumList": {
      if (!Array.isArray(value) || value.length < (spec.minItems ?? 0)) return bad;
      for (const item of value) {
        if (typeof item !== "string" || !spec.values!.includes(item)) {
          return `expected ${describeExpected(spec)}, got ${shown(value)} (${
            shown(item)
          } is not allowed)`;
        }
      }
      const dup = value.find((v, i) => value.indexOf(v) !== i);
      return dup === undefined ? undefined : `${shown(dup)} is listed twice`;
    }
  }
}

/** Validates `input` against `section`, merging it over `target` in place. */
function mergeSection(
  target: Obj,
  input: Json,
  section: SectionSpec,
  path: string[],
  file: string,
) {
  const where = path.length ? `${file}: ${path.join(".")}` : file;
  if (!isObj(input)) {
    throw new InputError(`${where}: expected an object, got ${shown(input)}`);
  }
  for (const [key, value] of Object.entries(input)) {
    const node = (section as Record<string, OptionSpec | SectionSpec>)[key];
    const fieldPath = [...path, key].join(".");
    if (!Object.hasOwn(section, key)) {
      const hint = suggestName(key, Object.keys(section));
      const valid = Object.keys(section).filter((k) => k !== "$schema").join(", ");
      throw new InputError(
        `${file}: ${fieldPath}: unknown option ` +
          (hint ? `(did you mean "${[...path, hint].join(".")}"?)` : `(valid here: ${valid})`),
      );
    }
    if (isOption(node)) {
      const problem = checkValue(node, value);
      if (problem) throw new InputError(`${file}: ${fieldPath}: ${problem}`);
      target[key] = structuredClone(value);
    } else {
      mergeSection(target[key] as Obj, value, node, [...path, key], file);
    }
  }
}

/**
 * Resolves a parsed experiment object: deep-merges it over the defaults, validates every
 * field, and fills the derived defaults (`name`, `data.dir`, `output.dir`).
 * @param input The parsed JSON of an experiment file (only what it changes).
 * @param file The file name used in messages and for the default run name.
 * @returns The resolved config.
 * @throws {InputError} On an unknown key, a wrong type or an out-of-range value.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./config.ts";
 * const cfg = resolveExperiment({ train: { batchSize: 25 } }, "small.json");
 * console.log(cfg.train.batchSize, cfg.name); // 25 small
 * ```
 */
export function resolveExperiment(input: unknown, file: string): ExperimentConfig {
  const cfg = resolveFields(input, file);
  checkCombinations(cfg, file);
  return cfg;
}

/** Every field of an experiment, merged over the defaults and checked one by one. */
function resolveFields(input: unknown, file: string): ExperimentConfig {
  const merged = buildDefaults(EXPERIMENT_SCHEMA);
  mergeSection(merged, input, EXPERIMENT_SCHEMA, [], file);
  const cfg = merged as unknown as ExperimentConfig & {
    name: string | null;
    data: { dir: string | null };
    output: { dir: string | null };
    train: { shards: number | null };
  };
  if (cfg.name === null) {
    // Derived from the file name: made safe for a directory name rather than rejected.
    const base = file.replace(/^.*[\\/]/, "").replace(/\.json$/i, "");
    cfg.name = base.replace(/[^\w.-]+/g, "_").replace(/^\.+/, "") || "experiment";
  } else if (!/^[\w-][\w.-]*$/.test(cfg.name)) {
    throw new InputError(
      `${file}: name: expected letters, digits, ".", "_" or "-" only (not starting with "."), got ${
        shown(cfg.name)
      }`,
    );
  }
  cfg.data.dir ??= DEFAULT_DATA_DIRS[cfg.data.source];
  cfg.train.shards ??= defaultShards(cfg.model.cellType);
  cfg.output.dir ??= `runs/${cfg.name}`;
  return cfg as ExperimentConfig;
}

/**
 * Checks a resolved experiment again (a library caller may have built or changed one by
 * hand): every field, and the options that are valid alone but not together.
 * @param config The experiment.
 * @param where What to name in messages (default "experiment").
 * @throws {InputError} On an unknown key, a wrong or out-of-range value, or a bad combination.
 *
 * @example
 * ```ts
 * import { checkExperiment, defaultExperiment } from "./config.ts";
 * checkExperiment(defaultExperiment()); // fine
 * ```
 */
export function checkExperiment(config: ExperimentConfig, where = "experiment"): void {
  resolveExperiment(config, where);
}

/** The checks between options, so a run that would fail late is refused before any work. */
function checkCombinations(cfg: ExperimentConfig, file: string): void {
  const ev = cfg.evaluate;
  if (ev.nBest > ev.beamSize) {
    throw new InputError(
      `${file}: evaluate.nBest: expected at most evaluate.beamSize (${ev.beamSize}), got ${ev.nBest}`,
    );
  }
  if (ev.beamSize % ev.beamGroups !== 0) {
    throw new InputError(
      `${file}: evaluate.beamGroups: expected a divisor of evaluate.beamSize (${ev.beamSize}), got ${ev.beamGroups}`,
    );
  }
  if (cfg.data.stream && cfg.data.maxTrain !== null) {
    throw new InputError(
      `${file}: data.maxTrain: cannot be combined with data.stream (a streamed run samples ` +
        `every caption); remove one of them`,
    );
  }
  const scst = cfg.train.scst;
  if ((scst.numEpochs > 0 || scst.from !== null) && cfg.data.stream) {
    throw new InputError(
      `${file}: train.scst: self-critical training samples from the training features in memory; ` +
        `set data.stream to false`,
    );
  }
  if (scst.baseline === "mean" && scst.samples < 2) {
    throw new InputError(
      `${file}: train.scst.samples: the "mean" baseline needs at least 2 samples per image, got ${scst.samples}`,
    );
  }
  if (scst.from !== null && scst.numEpochs === 0) {
    throw new InputError(
      `${file}: train.scst.numEpochs: expected a positive integer with train.scst.from, got 0`,
    );
  }
  checkTransformer(cfg, file);
}

/** The Transformer's options that depend on each other (each alone is checked by the schema). */
function checkTransformer(cfg: ExperimentConfig, file: string): void {
  const m = cfg.model;
  if (m.cellType !== "transformer") return;
  if (m.wordvecDim % m.numHeads !== 0) {
    throw new InputError(
      `${file}: model.numHeads: ${m.numHeads} heads do not divide model.wordvecDim ` +
        `${m.wordvecDim}; pick a divisor of it`,
    );
  }
  if (m.wordvecDim % 2 !== 0) {
    throw new InputError(
      `${file}: model.wordvecDim: the Transformer's positional encoding needs an even width, ` +
        `got ${m.wordvecDim}`,
    );
  }
  const scst = cfg.train.scst, selfCritical = scst.numEpochs > 0 || scst.from !== null;
  const lengths: [string, number][] = [["evaluate.maxLength", cfg.evaluate.maxLength]];
  if (selfCritical) lengths.push(["train.scst.maxLength", scst.maxLength]);
  for (const [name, words] of lengths) {
    if (words > m.maxLength) {
      throw new InputError(
        `${file}: ${name}: ${words} words is more than the Transformer's model.maxLength ` +
          `(${m.maxLength} positions); lower it or raise model.maxLength`,
      );
    }
  }
}

/** The type of every option by dotted path, for overrides. */
function optionsByPath(): Map<string, OptionSpec> {
  const map = new Map<string, OptionSpec>();
  forEachOption((path, spec) => map.set(path.join("."), spec));
  return map;
}

function parseOverrideValue(spec: OptionSpec, text: string, flag: string): Json {
  const bad = () =>
    new InputError(`${flag}: expected ${describeExpected(spec)}, got ${JSON.stringify(text)}`);
  if (spec.nullable && text === "null") return null;
  // Plain decimal numbers only: Number() would also take "0x19", " 2" and "".
  const decimal = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  switch (spec.type) {
    case "int":
    case "number":
      if (!decimal.test(text)) throw bad();
      return Number(text);
    case "intOrAuto":
      if (text === "auto") return "auto";
      if (!decimal.test(text)) throw bad();
      return Number(text);
    case "bool":
      if (text === "true") return true;
      if (text === "false") return false;
      throw bad();
    case "string":
    case "enum":
      return text;
    case "enumList":
      return text === "" ? [] : text.split(",").map((s) => s.trim());
  }
}

/**
 * Parses dotted command-line overrides (`--train.learningRate=1e-3`, `--train.workers 2`,
 * `--data.pcaFeatures` for true) into a nested object shaped like an experiment file.
 * Values are typed like the option: numbers, booleans, enums, comma-separated lists, `null`.
 * @param args The override arguments, in order; later ones win.
 * @returns A partial experiment object.
 * @throws {InputError} On an unknown option, a missing value or a value of the wrong type.
 *
 * @example
 * ```ts
 * import { parseOverrides } from "./config.ts";
 * const o = parseOverrides(["--train.learningRate=1e-3", "--evaluate.splits", "train,val"]);
 * console.log(o); // { train: { learningRate: 0.001 }, evaluate: { splits: ["train", "val"] } }
 * ```
 */
export function parseOverrides(args: readonly string[]): Record<string, unknown> {
  const options = optionsByPath();
  const out: Obj = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      throw new InputError(
        `command line: unexpected argument ${
          JSON.stringify(arg)
        }: overrides look like --train.learningRate=1e-3`,
      );
    }
    const key = m[1];
    const flag = `command line: --${key}`;
    const spec = options.get(key);
    if (!spec || key === "$schema") {
      const hint = suggestName(key, [...options.keys()].filter((k) => k !== "$schema"));
      throw new InputError(
        `${flag}: unknown option${hint ? ` (did you mean --${hint}?)` : ""}; see --help`,
      );
    }
    let text = m[2];
    if (text === undefined) {
      const next = args[i + 1];
      if (spec.type === "bool" && (next === undefined || next.startsWith("--"))) {
        text = "true";
      } else if (next === undefined || (next.startsWith("--") && Number.isNaN(Number(next)))) {
        throw new InputError(`${flag}: missing value, e.g. --${key}=VALUE`);
      } else {
        text = next;
        i++;
      }
    }
    const value = parseOverrideValue(spec, text, flag);
    const problem = checkValue(spec, value);
    if (problem) throw new InputError(`${flag}: ${problem}`);
    const path = key.split(".");
    let node = out;
    for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Obj;
    node[path[path.length - 1]] = value;
  }
  return out;
}

function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : v;
  }
  return out;
}

/**
 * Loads an experiment: reads the JSON file, applies the command-line overrides, validates,
 * and returns the resolved config. An experiment file lists only what it changes.
 * @param path The experiment JSON file.
 * @param overrides Dotted overrides such as `--train.learningRate=1e-3` (see {@linkcode parseOverrides}).
 * @returns The resolved config.
 * @throws {InputError} When the file is missing or not JSON, or a field is unknown or invalid.
 *
 * @example
 * ```ts ignore
 * import { loadExperiment } from "./config.ts";
 * const cfg = await loadExperiment("experiments/overfit_small.json", ["--train.workers", "2"]);
 * console.log(cfg.train.workers); // 2
 * ```
 */
export async function loadExperiment(
  path: string,
  overrides: readonly string[] = [],
): Promise<ExperimentConfig> {
  let text: string;
  try {
    text = await readTextFileChecked(path, MAX_EXPERIMENT_BYTES);
  } catch (e) {
    if (!(e instanceof UnreadableFile)) {
      throw new InputError(`${path}: cannot read experiment file: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const detail = e.problem === "missing"
      ? "experiment file not found"
      : e.problem === "too large"
      ? `${e.detail}; an experiment file lists only what it changes`
      : `${e.detail.replace("a file", "an experiment JSON file")}`;
    throw new InputError(`${path}: ${detail}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (e) {
    throw new InputError(`${path}: invalid JSON at ${(e as Error).message}`, { cause: e });
  }
  // Validate the file's fields alone first, so their errors name the file rather than the
  // overrides (the checks between options wait for the overrides, which may settle them).
  resolveFields(parsed, path);
  const merged = deepMerge(parsed as Obj, parseOverrides(overrides));
  return resolveExperiment(merged, path);
}
