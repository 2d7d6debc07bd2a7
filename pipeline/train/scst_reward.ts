/**
 * The reward of self-critical sequence training (Rennie et al. 2017) and its baselines: each
 * sampled caption's CIDEr-D against its image's references, with the document frequencies of
 * the training split's references (computed once and cached in a file, as self-critical.pytorch's
 * `prepro_ngrams.py` does), and what it is compared with — the greedy caption's reward, or the
 * mean reward of the image's other samples ("new self-critical").
 *
 * Dimension legend: B images of a step, k samples per image.
 * @module
 */
import { decodeCaptions } from "../../model/decode.ts";
import type { Tensor } from "../../layers/tensor.ts";
import type { CaptionData, Split } from "../data/caption_data.ts";
import { InputError } from "../errors.ts";
import { cleanCaption, referencesByImage } from "../eval/evaluate.ts";
import {
  CiderDScorer,
  type CiderReferences,
  type DocumentFrequencies,
  documentFrequencies,
  tokenizeCaption,
  tokenizeReference,
} from "../eval/metrics/mod.ts";
import { writeTextFileAtomic } from "../io/atomic.ts";

/** The baselines of self-critical training. */
export type ScstBaseline = "greedy" | "mean";

/** The format of the document-frequency cache file. */
const DF_FORMAT = "recap-cider-df";

/**
 * CIDEr-D rewards of captions against the references of their images, with document
 * frequencies from a split's references.
 *
 * @example
 * ```ts
 * import { CiderReward } from "./scst_reward.ts";
 * const reward = new CiderReward(new Map([[0, [["a", "cat"]]], [1, [["a", "dog"]]]]));
 * console.log(reward.score(0, ["a", "cat"]), reward.score(1, ["a", "cat"])); // 10 0
 * ```
 */
export class CiderReward {
  /** Each image's references, tokenised. */
  readonly references: ReadonlyMap<number, readonly string[][]>;
  /** The document frequencies the scores use. */
  readonly df: DocumentFrequencies;
  readonly #scorer: CiderDScorer;
  readonly #vectors = new Map<number, CiderReferences>();

  /**
   * A reward over tokenised references.
   * @param references Image → its references' tokens.
   * @param df Document frequencies (default: those of these references).
   */
  constructor(references: ReadonlyMap<number, readonly string[][]>, df?: DocumentFrequencies) {
    this.references = references;
    this.df = df ?? documentFrequencies(references.values());
    this.#scorer = new CiderDScorer(this.df);
  }

  /**
   * The reward of a split's captions: its references, tokenised the COCO way, and their
   * document frequencies — read from `cachePath` when it holds those of the same references,
   * else computed and written there.
   * @param data The data dictionary.
   * @param split The split whose references count (self-critical training: "train").
   * @param cachePath Where the document frequencies are cached, or null for no cache.
   * @returns The reward, and whether the cache was used.
   */
  static async fromData(
    data: CaptionData,
    split: Split,
    cachePath: string | null,
  ): Promise<{ reward: CiderReward; cached: boolean }> {
    const { refs, order } = referencesByImage(data, split);
    const references = new Map(
      order.map((img) => [img, refs.get(img)!.map((r, j) => tokenizeReference(r, `${img}/${j}`))]),
    );
    const fingerprint = await fingerprintOf(references);
    const cached = cachePath === null ? null : await readDfCache(cachePath, fingerprint);
    const reward = new CiderReward(references, cached ?? undefined);
    if (cachePath !== null && cached === null) {
      await writeDfCache(cachePath, fingerprint, reward.df);
    }
    return { reward, cached: cached !== null };
  }

  /**
   * CIDEr-D of a caption against its image's references.
   * @param image The image (its feature row).
   * @param caption The caption's tokens.
   * @returns The reward.
   * @throws {RangeError} When the image has no references.
   */
  score(image: number, caption: readonly string[]): number {
    let vectors = this.#vectors.get(image);
    if (vectors === undefined) {
      const refs = this.references.get(image);
      if (!refs) {
        throw new RangeError(`Cannot reward a caption of image ${image}: it has no references`);
      }
      vectors = this.#scorer.references(refs);
      this.#vectors.set(image, vectors);
    }
    return this.#scorer.score(caption, vectors);
  }

  /**
   * The rewards of generated captions, m per image.
   * @param captions Word indices, (B m, L), as decoding returns them.
   * @param images The image of each group of m rows, (B,).
   * @param idxToWord The vocabulary.
   * @returns Each caption's reward, (B m,).
   */
  scoreCaptions(
    captions: Tensor<"int32">,
    images: ArrayLike<number>,
    idxToWord: readonly string[],
  ): Float64Array {
    const texts = decodeCaptions(captions, idxToWord);
    const m = texts.length / images.length, out = new Float64Array(texts.length);
    for (let r = 0; r < texts.length; r++) {
      out[r] = this.score(images[Math.floor(r / m)], tokenizeCaption(cleanCaption(texts[r])));
    }
    return out;
  }
}

/**
 * Each sample's baseline: its image's greedy reward, or the mean reward of the image's other
 * samples (which needs k ≥ 2).
 * @param rewards The samples' rewards, (B k,), image by image.
 * @param samples k.
 * @param baseline Which baseline.
 * @param greedyRewards The greedy captions' rewards, (B,) (for "greedy").
 * @returns The baselines, (B k,).
 * @throws {RangeError} For "mean" with k = 1, or "greedy" without greedy rewards.
 *
 * @example
 * ```ts
 * import { scstBaselines } from "./scst_reward.ts";
 * const rewards = new Float64Array([1, 2, 6]);
 * console.log(scstBaselines(rewards, 3, "mean")); // [4, 3.5, 1.5]
 * console.log(scstBaselines(rewards, 3, "greedy", new Float64Array([2]))); // [2, 2, 2]
 * ```
 */
export function scstBaselines(
  rewards: Float64Array,
  samples: number,
  baseline: ScstBaseline,
  greedyRewards?: Float64Array,
): Float64Array {
  const out = new Float64Array(rewards.length), images = rewards.length / samples;
  if (baseline === "greedy") {
    if (!greedyRewards || greedyRewards.length !== images) {
      throw new RangeError(`Invalid greedyRewards: expected ${images}, one per image`);
    }
    for (let r = 0; r < rewards.length; r++) out[r] = greedyRewards[Math.floor(r / samples)];
    return out;
  }
  if (samples < 2) {
    throw new RangeError(
      `Invalid samples: the "mean" baseline needs at least 2 per image, got ${samples}`,
    );
  }
  for (let i = 0; i < images; i++) {
    let sum = 0;
    for (let j = 0; j < samples; j++) sum += rewards[i * samples + j];
    for (let j = 0; j < samples; j++) {
      out[i * samples + j] = (sum - rewards[i * samples + j]) / (samples - 1);
    }
  }
  return out;
}

/** A fingerprint of tokenised references: the SHA-256 of their text, image by image. */
async function fingerprintOf(
  references: ReadonlyMap<number, readonly string[][]>,
): Promise<string> {
  const parts: string[] = [];
  for (const [img, refs] of references) {
    parts.push(`${img}\t${refs.map((r) => r.join(" ")).join("\t")}`);
  }
  const bytes = new TextEncoder().encode(parts.join("\n"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cached document frequencies, when the file holds those of the same references. */
async function readDfCache(path: string, fingerprint: string): Promise<DocumentFrequencies | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new InputError(
      `${path}: cannot read the CIDEr-D document frequencies: ${(e as Error).message}`,
    );
  }
  try {
    const saved = JSON.parse(text);
    if (saved?.format !== DF_FORMAT || saved.fingerprint !== fingerprint) return null;
    return {
      df: new Map(Object.entries(saved.df as Record<string, number>)),
      logImages: saved.logImages,
    };
  } catch {
    return null; // a damaged cache is recomputed and rewritten
  }
}

async function writeDfCache(
  path: string,
  fingerprint: string,
  df: DocumentFrequencies,
): Promise<void> {
  const saved = {
    format: DF_FORMAT,
    fingerprint,
    logImages: df.logImages,
    df: Object.fromEntries(df.df),
  };
  await writeTextFileAtomic(path, JSON.stringify(saved) + "\n");
}
