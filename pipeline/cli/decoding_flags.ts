/**
 * What the decoding flags of the verbs that caption (`evaluate`, `sample`; declared in
 * verbs.ts) mean together: beam search's controls, sampling's, and those of every decoder,
 * each defaulting to the checkpoint's experiment. A
 * control given on the command line turns its decoder on: a beam-search control asks for beam
 * search (with at least `--nBest` beams, a multiple of `--beamGroups`), a sampling control for
 * sampling. Contradictory flags are one-line errors naming them.
 * @module
 */
import { resolveDecodeOptions } from "../../model/decode_options.ts";
import { InputError } from "../errors.ts";
import { type DecoderName, decoderOptions, type DecodingControls } from "../eval/evaluate.ts";

const BEAM_CONTROLS = [
  "nBest",
  "lengthPenalty",
  "lengthAlpha",
  "beamGroups",
  "diversity",
  "plainBeam",
] as const;
const SAMPLING_CONTROLS = ["temperature", "topK", "topP"] as const;

/** What the flags resolve to. */
export interface Decoding {
  /** The beam width (raised for the beam controls given). */
  beamSize: number;
  /** The decoding controls. */
  controls: DecodingControls;
  /** Whether a beam-search control was given on the command line. */
  beamAsked: boolean;
  /** Whether a sampling control was given on the command line. */
  samplingAsked: boolean;
}

/**
 * Resolves the decoding flags: explicit flags win over the checkpoint's saved values, and a
 * beam width not given is raised to fit `--nBest` and `--beamGroups` (and to `minBeam` when a
 * beam control is given).
 * @param given The command line's own values (undefined for a flag not given).
 * @param values The values with the saved defaults filled in.
 * @param minBeam The least beam width beam search needs here (2 for `evaluate`, which scores
 * beam search only then; 1 for `sample`).
 * @returns The beam width and the controls.
 * @throws {InputError} When given flags contradict each other.
 *
 * @example
 * ```ts
 * import { resolveDecodingFlags } from "./decoding_flags.ts";
 * const values = { beamSize: 1, nBest: 3, beamGroups: 1 };
 * console.log(resolveDecodingFlags({ nBest: 3 }, values, 2).beamSize); // 3
 * ```
 */
export function resolveDecodingFlags(
  given: Readonly<Record<string, unknown>>,
  values: Readonly<Record<string, unknown>>,
  minBeam: number,
): Decoding {
  const v = values as Record<string, number | string | boolean | undefined>;
  const has = (k: string) => given[k] !== undefined && given[k] !== false;
  const beamAsked = BEAM_CONTROLS.some(has), samplingAsked = SAMPLING_CONTROLS.some(has);
  let beamSize = v.beamSize as number;
  let nBest = (v.nBest as number | undefined) ?? 1,
    groups = (v.beamGroups as number | undefined) ?? 1;
  if (!has("beamSize")) {
    // Enough beams for what was asked: nBest of them, in whole groups.
    if (beamAsked) beamSize = Math.max(beamSize, minBeam);
    beamSize = Math.ceil(Math.max(beamSize, nBest, groups) / groups) * groups;
  } else {
    // An explicit width: saved n-best and groups that do not fit it give way.
    if (!has("nBest")) nBest = Math.min(nBest, beamSize);
    if (!has("beamGroups") && beamSize % groups !== 0) groups = 1;
  }
  const controls: DecodingControls = {
    nBest,
    lengthPenalty: v.lengthPenalty as DecodingControls["lengthPenalty"],
    lengthAlpha: v.lengthAlpha as number,
    beamGroups: groups,
    diversity: v.diversity as number,
    plainBeam: v.plainBeam === true,
    blockTrigrams: v.blockTrigrams === true,
    suppressUnk: v.suppressUnk === true,
    temperature: v.temperature as number,
    topK: v.topK as number,
    topP: v.topP as number,
    ...(typeof v.seed === "number" ? { seed: v.seed } : {}),
  };
  for (const d of ["beam", "sample"] as DecoderName[]) {
    try {
      resolveDecodeOptions(decoderOptions(d, Math.max(beamSize, 1), 1, controls));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new InputError(`command line: ${e.message.replace(/^Invalid (\w+)/, "--$1")}`);
    }
  }
  return { beamSize, controls, beamAsked, samplingAsked };
}

/**
 * The decoder a verb that captions one way (`sample`, `caption`) uses: `--decoder` when given,
 * else sampling when a sampling control was given, else beam search when the beam is wider
 * than 1 or a beam control was given, else greedy decoding.
 * @param given The command line's own values.
 * @param flags The resolved decoding flags.
 * @param sampleFlags Other flags that only sampling reads (e.g. `samples`).
 * @returns The decoder.
 * @throws {InputError} When `--decoder` contradicts the flags given.
 *
 * @example
 * ```ts
 * import { chooseDecoder, resolveDecodingFlags } from "./decoding_flags.ts";
 * const values = { beamSize: 1, nBest: 1, beamGroups: 1, topK: 5 };
 * console.log(chooseDecoder({ topK: 5 }, resolveDecodingFlags({ topK: 5 }, values, 1))); // sample
 * ```
 */
export function chooseDecoder(
  given: Readonly<Record<string, unknown>>,
  flags: Decoding,
  sampleFlags: readonly string[] = [],
): DecoderName {
  const samplingAsked = flags.samplingAsked || sampleFlags.some((k) => given[k] !== undefined);
  const decoder = (given.decoder as DecoderName | undefined) ??
    (samplingAsked ? "sample" : flags.beamAsked || flags.beamSize > 1 ? "beam" : "greedy");
  if (decoder === "sample" && given.beamSize !== undefined) {
    throw new InputError(`command line: --beamSize: sampling draws captions one by one; drop it`);
  }
  if (decoder !== "sample" && samplingAsked) {
    throw new InputError(
      `command line: --decoder ${decoder}: the sampling options ask for --decoder sample`,
    );
  }
  return decoder;
}
