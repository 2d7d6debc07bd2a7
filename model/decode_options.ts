/**
 * The options of caption decoding: the strategy (greedy, beam search, or sampling), its
 * controls, their defaults, and the checks that turn a wrong option into a one-line error
 * naming it. Every strategy drives a model's `StepDecoder`, so every control works for any
 * model that implements it.
 *
 * | option          | read by      | what it does                                                  |
 * | --------------- | ------------ | ------------------------------------------------------------- |
 * | `maxLength`     | all          | the longest caption, in words                                 |
 * | `blockTrigrams` | all          | never repeat a trigram within a caption                       |
 * | `suppressUnk`   | all          | never write `<UNK>`                                           |
 * | `beamSize`      | beam         | beams per image (all groups together)                         |
 * | `nBest`         | beam         | captions returned per image, best first                       |
 * | `lengthPenalty` | beam         | "none", "gnmt" ((5 + len)^α / 6^α) or "average" (len)         |
 * | `lengthAlpha`   | beam         | the GNMT α                                                    |
 * | `beamGroups`    | beam         | diverse beam search: groups of beamSize / beamGroups beams    |
 * | `diversity`     | beam         | diverse beam search: the penalty λ per earlier group's choice |
 * | `plainBeam`     | beam         | leave greedy's caption out of the candidates                  |
 * | `temperature`   | sample       | divides the scores before the softmax                         |
 * | `topK`          | sample       | draw among the k likeliest words only (0 = all)               |
 * | `topP`          | sample       | draw among the likeliest words of total probability ≥ p       |
 * | `samples`       | sample       | captions drawn per image                                      |
 * | `seed`          | sample       | the seed; image i's draws depend only on (seed, i)            |
 * | `firstImage`    | sample       | the number of the first image in that count                   |
 * @module
 */
import { accepts, checkOptionNames, type OptionRule } from "../layers/options.ts";

/** A decoding strategy: argmax, beam search, or multinomial sampling. */
export type DecodeMethod = "greedy" | "beam" | "sample";
/** The decoding strategies. */
export const DECODE_METHODS: readonly DecodeMethod[] = ["greedy", "beam", "sample"];
/** How beam search ranks finished captions of different lengths. */
export type LengthPenalty = "none" | "gnmt" | "average";
/** The length penalties of beam search. */
export const LENGTH_PENALTIES: readonly LengthPenalty[] = ["none", "gnmt", "average"];

/** Options of caption decoding; every one has a default. */
export interface SampleOptions {
  /** L, the number of words to generate at most (default 30; at most 100). */
  maxLength?: number;
  /** The strategy (default "beam" when `beamSize` > 1, else "greedy"). */
  method?: DecodeMethod;
  /** Beams per image, all groups together (default 1; at most 50). */
  beamSize?: number;
  /** Beam search: captions returned per image, best first (default 1; at most beamSize). */
  nBest?: number;
  /**
   * Beam search: how finished captions of different lengths are ranked: by their
   * log-probability ("none", the default), divided by ((5 + len) / 6)^α ("gnmt", Wu et al.
   * 2016) or by len ("average"), len counting the words and `<END>`.
   */
  lengthPenalty?: LengthPenalty;
  /** Beam search: the α of the GNMT length penalty (default 0.6; higher = longer captions). */
  lengthAlpha?: number;
  /** Beam search: the groups of diverse beam search (Vijayakumar et al. 2016; default 1). */
  beamGroups?: number;
  /** Beam search: the diversity strength λ between groups (default 0.5). */
  diversity?: number;
  /**
   * Beam search: leave greedy's caption out of the candidates (default false). By default it
   * is one of them, decoded beside the beams, so a wider beam never returns a worse caption
   * than greedy decoding; the plain beam search of other toolkits skips that, and is faster
   * when greedy's caption leaves the beams early (24% on the benchmark's beam 3).
   */
  plainBeam?: boolean;
  /** Sampling: the temperature the scores are divided by (default 1). */
  temperature?: number;
  /** Sampling: draw among the k likeliest allowed words only (default 0 = all). */
  topK?: number;
  /** Sampling: draw among the likeliest words whose probabilities add up to ≥ p (default 1 = all). */
  topP?: number;
  /** Sampling: captions drawn per image (default 1; at most 100). */
  samples?: number;
  /** Sampling: the seed (default 0). */
  seed?: number;
  /**
   * Sampling: the number of the first image, in the count the seed's streams follow (default
   * 0): a part of a set of images, sampled with its offset, gets the captions of the whole.
   */
  firstImage?: number;
  /** Never write the same trigram twice in a caption (default false). */
  blockTrigrams?: boolean;
  /** Never write `<UNK>` (default false). */
  suppressUnk?: boolean;
}

/** Decoding options with every field resolved. */
export type DecodeOptions = Required<SampleOptions>;

/** The defaults (`method` is resolved from `beamSize`). */
const DEFAULTS: Omit<DecodeOptions, "method"> = {
  maxLength: 30,
  beamSize: 1,
  nBest: 1,
  lengthPenalty: "none",
  lengthAlpha: 0.6,
  beamGroups: 1,
  diversity: 0.5,
  plainBeam: false,
  temperature: 1,
  topK: 0,
  topP: 1,
  samples: 1,
  seed: 0,
  firstImage: 0,
  blockTrigrams: false,
  suppressUnk: false,
};

/**
 * The bounds of the sizes decoding allocates for (captions, beams, samples per image): far
 * beyond any captioning use, and small enough that a typo fails fast instead of running out of
 * memory or running for hours.
 */
export const DECODE_LIMITS = { maxLength: 100, beamSize: 50, samples: 100 } as const;

/** The options only one strategy reads. */
const READ_BY: Partial<Record<keyof DecodeOptions, DecodeMethod>> = {
  nBest: "beam",
  lengthPenalty: "beam",
  lengthAlpha: "beam",
  beamGroups: "beam",
  diversity: "beam",
  plainBeam: "beam",
  temperature: "sample",
  topK: "sample",
  topP: "sample",
  samples: "sample",
  seed: "sample",
  firstImage: "sample",
};

const RULES: Record<keyof DecodeOptions, OptionRule> = {
  maxLength: accepts.intIn(1, DECODE_LIMITS.maxLength),
  method: accepts.oneOf(DECODE_METHODS),
  beamSize: accepts.intIn(1, DECODE_LIMITS.beamSize),
  nBest: accepts.positiveInt,
  lengthPenalty: accepts.oneOf(LENGTH_PENALTIES),
  lengthAlpha: accepts.nonNegativeNumber,
  beamGroups: accepts.positiveInt,
  diversity: accepts.nonNegativeNumber,
  plainBeam: accepts.boolean,
  temperature: accepts.positiveNumber,
  topK: accepts.nonNegativeInt,
  topP: {
    expected: "a number in (0, 1]",
    type: "number",
    test: (x) => Number.isFinite(x) && (x as number) > 0 && (x as number) <= 1,
  },
  samples: accepts.intIn(1, DECODE_LIMITS.samples),
  seed: accepts.nonNegativeInt,
  firstImage: accepts.nonNegativeInt,
  blockTrigrams: accepts.boolean,
  suppressUnk: accepts.boolean,
};

/** The option names decoding accepts, in the order of {@linkcode SampleOptions}. */
export const DECODE_OPTION_NAMES: readonly (keyof DecodeOptions)[] = Object.keys(
  RULES,
) as (keyof DecodeOptions)[];

/** The decoding options that are true or false (e.g. `blockTrigrams`). */
export const DECODE_FLAG_NAMES: readonly (keyof DecodeOptions)[] = DECODE_OPTION_NAMES.filter(
  (name) => RULES[name] === accepts.boolean,
);

/**
 * Checks decoding options and fills in the defaults. An option that only another strategy
 * reads must keep its default (`{ method: "greedy", temperature: 0.5 }` is a mistake).
 * @param options The options given.
 * @returns Every option, resolved.
 * @throws {TypeError} For an unknown option name or a value of the wrong type.
 * @throws {RangeError} For a value out of range, or an option the strategy does not read.
 *
 * @example
 * ```ts
 * import { resolveDecodeOptions } from "./decode_options.ts";
 * console.log(resolveDecodeOptions({ beamSize: 3 }).method); // beam
 * console.log(resolveDecodeOptions({ method: "sample", topK: 5 }).temperature); // 1
 * ```
 */
export function resolveDecodeOptions(options: SampleOptions = {}): DecodeOptions {
  checkOptionNames("sample options", options, DECODE_OPTION_NAMES);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const rule = RULES[key as keyof DecodeOptions];
    const detail = `Invalid ${key}: expected ${rule.expected}, got ${JSON.stringify(value)}`;
    const type: string = typeof value; // every rule here names a JavaScript type
    if (type !== rule.type) throw new TypeError(detail);
    if (!rule.test(value)) throw new RangeError(detail);
  }
  const given = Object.fromEntries(
    Object.entries(options).filter(([, v]) => v !== undefined),
  ) as SampleOptions;
  const beamSize = given.beamSize ?? DEFAULTS.beamSize;
  const resolved: DecodeOptions = {
    ...DEFAULTS,
    method: beamSize > 1 ? "beam" : "greedy",
    ...given,
  };
  const { method } = resolved;
  for (const [key, reader] of Object.entries(READ_BY) as [keyof DecodeOptions, DecodeMethod][]) {
    if (reader !== method && resolved[key] !== DEFAULTS[key as keyof typeof DEFAULTS]) {
      throw new RangeError(
        `Invalid ${key}: only method "${reader}" reads it (method is "${method}")`,
      );
    }
  }
  if (method !== "beam" && beamSize !== 1) {
    throw new RangeError(`Invalid beamSize: method "${method}" decodes one beam, got ${beamSize}`);
  }
  if (resolved.nBest > beamSize) {
    throw new RangeError(
      `Invalid nBest: expected at most beamSize (${beamSize}) captions per image, got ${resolved.nBest}`,
    );
  }
  if (beamSize % resolved.beamGroups !== 0) {
    throw new RangeError(
      `Invalid beamGroups: beamSize (${beamSize}) must be a multiple of it, got ${resolved.beamGroups}`,
    );
  }
  return resolved;
}

/**
 * How many captions decoding returns per image: `samples` for sampling, `nBest` for beam
 * search, 1 for greedy decoding. They are stored image by image: image i's j-th is row
 * i · m + j.
 * @param options Resolved options.
 * @returns m.
 *
 * @example
 * ```ts
 * import { captionsPerImage, resolveDecodeOptions } from "./decode_options.ts";
 * console.log(captionsPerImage(resolveDecodeOptions({ method: "sample", samples: 5 }))); // 5
 * ```
 */
export function captionsPerImage(options: DecodeOptions): number {
  return options.method === "sample"
    ? options.samples
    : options.method === "beam"
    ? options.nBest
    : 1;
}
