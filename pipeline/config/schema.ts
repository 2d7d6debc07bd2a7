/**
 * The experiment schema, defined once as data: every option is one line (name, type,
 * default, range or choices, help). The defaults, the validation in `config.ts`, the help
 * text and `experiments/experiment.schema.json` all come from this table.
 *
 * Run `deno task schema` after changing it: it regenerates the JSON Schema file and the
 * options table of `docs/experiments.md` (tests check both are current).
 * @module
 */
import { UPDATE_RULES } from "../../layers/optim.ts";
import { DECODE_LIMITS, LENGTH_PENALTIES } from "../../model/decode_options.ts";
import { MODEL_KINDS } from "../../model/models.ts";

/** The kind of value an option holds. */
export type OptionType =
  | "int"
  | "number"
  | "bool"
  | "string"
  | "enum"
  | "enumList"
  | "intOrAuto";

/** One option of the experiment schema. */
export interface OptionSpec {
  /** The kind of value. */
  type: OptionType;
  /** The default value; `null` for a nullable option means "unset" (or "derived", see help). */
  default: unknown;
  /** One-line help text. */
  help: string;
  /** Smallest allowed value (numbers). */
  min?: number;
  /** Whether `min` itself is excluded. */
  exclusiveMin?: boolean;
  /** Largest allowed value (numbers). */
  max?: number;
  /** Whether `max` itself is excluded. */
  exclusiveMax?: boolean;
  /** The allowed values (`enum` and `enumList`). */
  values?: readonly string[];
  /** Whether `null` is allowed. */
  nullable?: boolean;
  /** For `enumList`: whether the list may be empty. */
  minItems?: number;
}

/** A group of options (or nested groups), keyed by name. */
export interface SectionSpec {
  /** An option or a nested section. */
  [key: string]: OptionSpec | SectionSpec;
}

/**
 * Tells an option from a nested section.
 * @param node A node of the schema table.
 * @returns True when `node` is an option.
 *
 * @example
 * ```ts
 * import { EXPERIMENT_SCHEMA, isOption } from "./schema.ts";
 * console.assert(isOption(EXPERIMENT_SCHEMA.name));
 * console.assert(!isOption(EXPERIMENT_SCHEMA.train));
 * ```
 */
export function isOption(node: OptionSpec | SectionSpec): node is OptionSpec {
  return typeof (node as OptionSpec).type === "string" &&
    typeof (node as OptionSpec).help === "string";
}

// A range is written compactly: ">0", ">=0", "<=1", "[0,1)", "[1,)" (open end = unbounded).
function parseRange(range: string | undefined): Partial<OptionSpec> {
  if (!range) return {};
  let m = /^(>=|>)(-?[\d.e+-]+)$/.exec(range);
  if (m) return { min: Number(m[2]), exclusiveMin: m[1] === ">" };
  m = /^([[(])(-?[\d.e+-]*),(-?[\d.e+-]*)([\])])$/.exec(range);
  if (!m) throw new Error(`Bad range in schema: ${range}`);
  const out: Partial<OptionSpec> = {};
  if (m[2] !== "") Object.assign(out, { min: Number(m[2]), exclusiveMin: m[1] === "(" });
  if (m[3] !== "") Object.assign(out, { max: Number(m[3]), exclusiveMax: m[4] === ")" });
  return out;
}

const int = (def: number | null, range: string, help: string, nullable = false): OptionSpec => ({
  type: "int",
  default: def,
  help,
  ...parseRange(range),
  ...(nullable ? { nullable } : {}),
});
const num = (def: number, range: string, help: string): OptionSpec => ({
  type: "number",
  default: def,
  help,
  ...parseRange(range),
});
const bool = (def: boolean, help: string): OptionSpec => ({ type: "bool", default: def, help });
const str = (def: string | null, help: string, nullable = false): OptionSpec => ({
  type: "string",
  default: def,
  help,
  ...(nullable ? { nullable } : {}),
});
const oneOf = (values: readonly string[], def: string, help: string): OptionSpec => ({
  type: "enum",
  default: def,
  help,
  values,
});
const listOf = (values: readonly string[], def: string[], help: string): OptionSpec => ({
  type: "enumList",
  default: def,
  help,
  values,
  minItems: 1,
});

/** The metric names `evaluate.metrics` may list. */
export const METRIC_NAMES = [
  "bleu1",
  "bleu2",
  "bleu3",
  "bleu4",
  "cider",
  "rougeL",
  "unigram_bleu",
] as const;
/** The baselines of self-critical training. */
export const SCST_BASELINES = ["mean", "greedy"] as const;
/** The stage names `stages` may list, in the order they run. */
export const STAGE_NAMES = ["train", "evaluate", "sample", "report"] as const;

/**
 * Every experiment option, one line each. Nested objects are sections.
 *
 * @example
 * ```ts
 * import { EXPERIMENT_SCHEMA } from "./schema.ts";
 * console.log(EXPERIMENT_SCHEMA.train.learningRate.default); // 0.005
 * ```
 */
export const EXPERIMENT_SCHEMA = {
  $schema: str(null, "Path or URL of the JSON Schema, for editors (ignored)", true),
  name: str(null, "Run name; default: the experiment file's name without .json", true),
  description: str("", "Free text describing the experiment"),
  data: {
    source: oneOf(
      ["coco", "synthetic"],
      "synthetic",
      "Without a dataset in dir: expect the COCO files, or generate the synthetic set",
    ),
    dir: str(
      null,
      "Dataset dir (COCO files, synthetic or imported); default datasets/coco_captioning or datasets/synthetic",
      true,
    ),
    pcaFeatures: bool(true, "CS231n files: use the 512-d PCA features instead of the 4096-d fc7"),
    maxTrain: int(null, ">=1", "Use at most this many training captions (null = all)", true),
    stream: bool(
      false,
      "Stream training batches from the HDF5 files in a loader worker (bounded memory)",
    ),
    synthetic: {
      numTrain: int(
        4000,
        "[1,1000000]",
        "Synthetic training images, generated if the dir is absent",
      ),
      numVal: int(500, "[1,1000000]", "Synthetic validation images"),
      seed: int(0, ">=0", "Seed of the synthetic scene generator"),
    },
  },
  model: {
    cellType: oneOf(MODEL_KINDS, "lstm", "Language model: a recurrent cell, or the Transformer"),
    activation: oneOf(["tanh", "sigmoid"], "tanh", "Vanilla RNN nonlinearity"),
    wordvecDim: int(256, ">=1", "Word embedding size (W); the Transformer's width"),
    hiddenDim: int(512, ">=1", "Hidden state size (H) of the recurrent cells"),
    numLayers: int(2, ">=1", "Transformer decoder layers (L)"),
    numHeads: int(4, ">=1", "Transformer attention heads; must divide wordvecDim"),
    ffDim: int(2048, ">=1", "Transformer feed-forward hidden size (F)"),
    dropout: num(0.1, "[0,1)", "Transformer dropout probability of training steps"),
    maxLength: int(50, ">=1", "Transformer positions: the longest caption it reads or writes"),
    dtype: oneOf(["float32", "float64"], "float32", "Parameter and activation precision"),
    seed: int(231, ">=0", "Seed of the weight initialisation"),
  },
  train: {
    updateRule: oneOf(UPDATE_RULES, "adam", "Optimizer"),
    learningRate: num(5e-3, ">0", "Step size"),
    momentum: num(0.9, "[0,1)", "Momentum of sgd_momentum"),
    beta1: num(0.9, "[0,1)", "Adam first-moment decay"),
    beta2: num(0.999, "[0,1)", "Adam second-moment decay"),
    epsilon: num(1e-8, ">0", "Adam and RMSProp denominator smoothing"),
    decayRate: num(0.99, "[0,1)", "RMSProp squared-gradient decay"),
    lrDecay: num(0.95, "(0,1]", "Learning rate multiplier after each epoch"),
    numEpochs: int(6, ">=1", "Passes over the training captions"),
    batchSize: int(100, ">=1", "Captions per minibatch"),
    gradClip: num(0, ">=0", "Clip the global gradient norm (L2, all parameters) to this (0 = off)"),
    workers: { type: "intOrAuto", default: "auto", min: 1, help: "Compute workers, or auto" },
    shards: int(
      null,
      ">=1",
      "Fixed shards per batch; any worker count gives identical results; default 1 for the recurrent models (their workers share each shard's step), 4 for the Transformer; an MPI job needs one per process",
      true,
    ),
    seed: int(231, ">=0", "Seed of the minibatch order"),
    printEvery: int(10, ">=1", "Log the loss every this many iterations"),
    checkpointEvery: int(0, ">=0", "Checkpoint every this many iterations (0 = each epoch)"),
    evalEvery: int(
      0,
      ">=0",
      "Score val captions and keep best.h5 every this many iterations (0 = each epoch)",
    ),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend"),
    workerTimeout: num(
      900,
      ">0",
      "Seconds a worker may take over one job (a step's phase) before the run stops it as stuck",
    ),
    distributed: {
      mpi: oneOf(
        ["auto", "on", "off"],
        "auto",
        "Train across the processes of an MPI job (MPICH): auto when launched by mpiexec or srun, on to require it, off to ignore a launcher",
      ),
      checkEvery: int(
        100,
        ">=0",
        "MPI job: compare the ranks' checksums of parameters and optimizer state every this many steps (0 = never)",
      ),
    },
    scst: {
      numEpochs: int(
        0,
        ">=0",
        "Self-critical training (SCST) on CIDEr-D after cross-entropy: passes over the training images (0 = none)",
      ),
      from: str(
        null,
        "Start SCST from this checkpoint (e.g. runs/default/best.h5) instead of this run's cross-entropy best.h5; the run then trains SCST only",
        true,
      ),
      samples: int(5, `[1,${DECODE_LIMITS.samples}]`, "SCST: captions sampled per image (k)"),
      temperature: num(1, ">0", "SCST: sampling temperature"),
      baseline: oneOf(
        SCST_BASELINES,
        "mean",
        "SCST: baseline of a sample's reward: the mean of the image's other samples' (Luo 2020), or the greedy caption's (Rennie et al. 2017)",
      ),
      batchSize: int(50, ">=1", "SCST: images per step"),
      learningRate: num(5e-5, ">0", "SCST: step size (the optimizer starts afresh)"),
      maxLength: int(
        16,
        `[1,${DECODE_LIMITS.maxLength}]`,
        "SCST: longest sampled caption, in words",
      ),
    },
  },
  evaluate: {
    splits: listOf(
      ["train", "val", "test"],
      ["val"],
      "Splits to evaluate (test: if the dataset has one)",
    ),
    numImages: int(500, ">=1", "Images per split to caption and score"),
    beamSize: int(2, `[1,${DECODE_LIMITS.beamSize}]`, "Beam width (1 = greedy only)"),
    maxLength: int(30, `[1,${DECODE_LIMITS.maxLength}]`, "Longest generated caption, in words"),
    metrics: listOf(
      METRIC_NAMES,
      ["bleu1", "bleu2", "bleu3", "bleu4", "cider", "rougeL"],
      "Metrics",
    ),
    nBest: int(
      1,
      ">=1",
      "Beam captions kept per image in evaluation.json, best first (<= beamSize)",
    ),
    lengthPenalty: oneOf(
      LENGTH_PENALTIES,
      "none",
      "Beam search ranks finished captions by log p, or log p / ((5 + len) / 6)^α (gnmt), or log p / len (average)",
    ),
    lengthAlpha: num(0.6, ">=0", "Beam search: the α of the gnmt length penalty (higher = longer)"),
    beamGroups: int(1, ">=1", "Diverse beam search: groups of beams (beamSize must be a multiple)"),
    diversity: num(0.5, ">=0", "Diverse beam search: penalty for a word earlier groups chose"),
    plainBeam: bool(
      false,
      "Beam search without greedy's caption among the candidates (faster; a wider beam may then return a worse caption than greedy)",
    ),
    blockTrigrams: bool(false, "Never repeat a trigram within a caption (every decoder)"),
    suppressUnk: bool(false, "Never write <UNK> (every decoder)"),
    sample: bool(false, "Also score one sampled caption per image (temperature, topK, topP, seed)"),
    temperature: num(1, ">0", "Sampling: temperature"),
    topK: int(0, ">=0", "Sampling: draw among the k likeliest words only (0 = all)"),
    topP: num(
      1,
      "(0,1]",
      "Sampling: draw among the likeliest words of total probability p (1 = all)",
    ),
    seed: int(0, ">=0", "Sampling: seed"),
  },
  output: {
    dir: str(null, "Run dir; default runs/<name>", true),
  },
  stages: listOf(STAGE_NAMES, [...STAGE_NAMES], "Stages to run, in order"),
} as const satisfies SectionSpec;

/** The option table's type. */
export type ExperimentSchema = typeof EXPERIMENT_SCHEMA;

/**
 * Walks the schema and calls `fn` for each option with its dotted path.
 * @param fn Called with the path (e.g. `["train", "learningRate"]`) and the option.
 * @param section The section to walk; the whole schema by default.
 * @param prefix The path of `section`.
 * @returns Nothing.
 *
 * @example
 * ```ts
 * import { forEachOption } from "./schema.ts";
 * const paths: string[] = [];
 * forEachOption((path) => paths.push(path.join(".")));
 * console.assert(paths.includes("train.learningRate"));
 * ```
 */
export function forEachOption(
  fn: (path: string[], spec: OptionSpec) => void,
  section: SectionSpec = EXPERIMENT_SCHEMA,
  prefix: string[] = [],
): void {
  for (const [key, node] of Object.entries(section)) {
    if (isOption(node)) fn([...prefix, key], node);
    else forEachOption(fn, node, [...prefix, key]);
  }
}

/**
 * Describes what an option accepts, as used in error messages and help:
 * "a positive number", `one of "rnn", "lstm"`, "an integer ≥ 1 or null".
 * @param spec The option.
 * @returns A short noun phrase.
 *
 * @example
 * ```ts
 * import { describeExpected, EXPERIMENT_SCHEMA } from "./schema.ts";
 * console.log(describeExpected(EXPERIMENT_SCHEMA.train.learningRate)); // a positive number
 * ```
 */
export function describeExpected(spec: OptionSpec): string {
  const quoted = (spec.values ?? []).map((v) => JSON.stringify(v)).join(", ");
  let base: string;
  switch (spec.type) {
    case "bool":
      base = "true or false";
      break;
    case "string":
      base = "a string";
      break;
    case "enum":
      base = `one of ${quoted}`;
      break;
    case "enumList":
      base = `a non-empty list of ${quoted}`;
      break;
    case "intOrAuto":
      base = `${numberPhrase(spec, "integer")} or "auto"`;
      break;
    case "int":
      base = numberPhrase(spec, "integer");
      break;
    case "number":
      base = numberPhrase(spec, "number");
      break;
  }
  return spec.nullable && spec.type !== "string" ? `${base} or null` : base;
}

function numberPhrase(spec: OptionSpec, noun: string): string {
  const { min, max, exclusiveMin, exclusiveMax } = spec;
  if (max === undefined) {
    if (min === undefined) return `a${noun === "integer" ? "n" : ""} ${noun}`;
    if (min === 0 && exclusiveMin) return `a positive ${noun}`;
    if (min === 0) return `a non-negative ${noun}`;
    if (min === 1 && noun === "integer" && !exclusiveMin) return "a positive integer";
    return `a${noun === "integer" ? "n" : ""} ${noun} ${exclusiveMin ? ">" : "≥"} ${min}`;
  }
  const lo = min === undefined ? "(-inf" : `${exclusiveMin ? "(" : "["}${min}`;
  return `a${noun === "integer" ? "n" : ""} ${noun} in ${lo}, ${max}${exclusiveMax ? ")" : "]"}`;
}

/**
 * The help text listing every option as a command-line override, one per line.
 * @returns The text, ending with a newline.
 *
 * @example
 * ```ts
 * import { experimentHelp } from "./schema.ts";
 * console.log(experimentHelp().includes("--train.learningRate"));
 * ```
 */
export function experimentHelp(): string {
  const rows: [string, string][] = [];
  forEachOption((path, spec) => {
    if (path[0] === "$schema") return;
    const def = Array.isArray(spec.default) ? spec.default.join(",") : JSON.stringify(spec.default);
    rows.push([`--${path.join(".")}`, `${spec.help}: ${describeExpected(spec)} (default ${def})`]);
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
  return [
    "Experiment options (set them in the JSON file, or override: --section.key=value):",
    ...lines,
    "Lists are comma-separated (--evaluate.splits=train,val); null unsets a nullable option.",
    "",
  ].join("\n");
}

function optionJsonSchema(spec: OptionSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { description: spec.help };
  const nullable = (t: string) => (spec.nullable ? [t, "null"] : t);
  const bounds = (o: Record<string, unknown>) => {
    if (spec.min !== undefined) o[spec.exclusiveMin ? "exclusiveMinimum" : "minimum"] = spec.min;
    if (spec.max !== undefined) o[spec.exclusiveMax ? "exclusiveMaximum" : "maximum"] = spec.max;
    return o;
  };
  switch (spec.type) {
    case "int":
      Object.assign(out, bounds({ type: nullable("integer") }));
      break;
    case "number":
      Object.assign(out, bounds({ type: nullable("number") }));
      break;
    case "bool":
      out.type = nullable("boolean");
      break;
    case "string":
      out.type = nullable("string");
      break;
    case "enum":
      out.enum = spec.nullable ? [...spec.values!, null] : [...spec.values!];
      break;
    case "enumList":
      Object.assign(out, {
        type: "array",
        items: { enum: [...spec.values!] },
        minItems: spec.minItems ?? 0,
        uniqueItems: true,
      });
      break;
    case "intOrAuto":
      out.anyOf = [bounds({ type: "integer" }), { const: "auto" }];
      break;
  }
  out.default = spec.default;
  return out;
}

function sectionJsonSchema(section: SectionSpec, description?: string): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(section)) {
    properties[key] = isOption(node) ? optionJsonSchema(node) : sectionJsonSchema(node);
  }
  return {
    ...(description ? { description } : {}),
    type: "object",
    properties,
    additionalProperties: false,
  };
}

/**
 * The JSON Schema (draft 2020-12) of an experiment file, as the text committed in
 * `experiments/experiment.schema.json` (two-space indent, trailing newline).
 * @returns The schema as JSON text.
 *
 * @example
 * ```ts
 * import { experimentJsonSchema } from "./schema.ts";
 * const schema = JSON.parse(experimentJsonSchema());
 * console.log(schema.properties.train.properties.batchSize.default); // 100
 * ```
 */
export function experimentJsonSchema(): string {
  const schema = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "experiment.schema.json",
    title: "recap experiment",
    ...sectionJsonSchema(
      EXPERIMENT_SCHEMA,
      "A recap experiment: lists only what it changes from the defaults. " +
        "Generated from pipeline/config/schema.ts by `deno task schema`; do not edit.",
    ),
  };
  return JSON.stringify(schema, null, 2) + "\n";
}

/** Where `deno task schema` writes the JSON Schema, relative to the repository root. */
export const JSON_SCHEMA_PATH = "experiments/experiment.schema.json";
/** The experiment-file reference whose options table `deno task schema` regenerates. */
export const OPTIONS_DOC_PATH = "docs/experiments.md";
/** The markers around the generated options table in {@linkcode OPTIONS_DOC_PATH}. */
export const OPTIONS_DOC_MARKERS = [
  "<!-- BEGIN generated options: deno task schema -->",
  "<!-- END generated options -->",
] as const;

/**
 * The options reference as a Markdown table, one row per option.
 * @returns The table, ending with a newline.
 *
 * @example
 * ```ts
 * import { experimentOptionsMarkdown } from "./schema.ts";
 * console.log(experimentOptionsMarkdown().includes("`train.learningRate`")); // true
 * ```
 */
export function experimentOptionsMarkdown(): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows: string[][] = [["option", "accepts", "default", "meaning"]];
  forEachOption((path, spec) => {
    rows.push([
      `\`${path.join(".")}\``,
      cell(describeExpected(spec)),
      `\`${JSON.stringify(spec.default)}\``,
      cell(spec.help),
    ]);
  });
  // Padded the way `deno fmt` pads Markdown tables, so the file stays fmt-clean.
  const widths = rows[0].map((_, c) => Math.max(3, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(widths[c])).join(" | ")} |`;
  return [line(rows[0]), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)]
    .join("\n") + "\n";
}

/**
 * Replaces the generated options table between the markers of a Markdown document.
 * @param doc The document text.
 * @returns The document with a fresh table.
 * @throws {Error} When the markers are missing.
 *
 * @example
 * ```ts
 * import { OPTIONS_DOC_MARKERS, withGeneratedOptions } from "./schema.ts";
 * const doc = withGeneratedOptions(`# Options\n${OPTIONS_DOC_MARKERS[0]}\n${OPTIONS_DOC_MARKERS[1]}\n`);
 * console.log(doc.includes("train.learningRate")); // true
 * ```
 */
export function withGeneratedOptions(doc: string): string {
  const [begin, end] = OPTIONS_DOC_MARKERS;
  const i = doc.indexOf(begin), j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`Cannot update the options table: markers not found`);
  return `${doc.slice(0, i + begin.length)}\n\n${experimentOptionsMarkdown()}\n${doc.slice(j)}`;
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url);
  await Deno.writeTextFile(new URL(JSON_SCHEMA_PATH, root), experimentJsonSchema());
  console.log(`Wrote ${JSON_SCHEMA_PATH}`);
  const docUrl = new URL(OPTIONS_DOC_PATH, root);
  await Deno.writeTextFile(docUrl, withGeneratedOptions(await Deno.readTextFile(docUrl)));
  console.log(`Updated the options table in ${OPTIONS_DOC_PATH}`);
}
