/**
 * Results files and scores files. A results file is the COCO results format every captioner
 * writes and the COCO evaluation reads: `[{"image_id": 391895, "caption": "a man riding a
 * bike"}, …]`, one entry per image. `deno task caption` writes one; `deno task evaluate
 * --results` scores one (recap's or any other captioner's) against a dataset split's
 * references. A scores file is what `deno task evaluate` writes: the corpus scores and each
 * image's, as pycocoevalcap's `eval` and `imgToEval`:
 *
 * ```
 * {"source": "results.json", "dataset": "datasets/flickr8k", "split": "test", "numImages": 1000,
 *  "leftOut": {"noReferences": 0, "otherSplits": 0}, "baseline": {"caption": "a dog runs through the grass", "metrics": {…}},
 *  "scored": {"results": {"metrics": {"bleu4": 0.21, "cider": 0.55},
 *                         "imgToEval": {"97": {"image_id": 97, "caption": "…", "bleu4": 0.3, …}}}}}
 * ```
 *
 * A checkpoint's scores file lists its decoders under `scored` (`greedy`, and `beam` with a
 * beam width above 1). In a results file, an `image_id` names an image of the split by its id,
 * else its file name or file stem; the CS231n files and the synthetic dataset have no ids, so
 * their images are their feature row numbers (what `deno task caption` writes without `--ids`).
 * @module
 */
import {
  type CaptionData,
  type ImageId,
  type Split,
  splitOf,
  splitsOf,
} from "../data/caption_data.ts";
import { ImageNames } from "../data/image_ids.ts";
import { InputError } from "../errors.ts";
import { writeTextFileAtomic } from "../io/atomic.ts";
import { baselineCaption, referencesByImage, type SplitEvaluation } from "./evaluate.ts";
import { evaluateCaptions, type Metric, type MetricScores } from "./metrics/mod.ts";
import { scoreCaptions } from "./metrics/per_image.ts";

/** One entry of a results file. */
export interface CaptionResult {
  /** The image. */
  image_id: ImageId;
  /** The generated caption. */
  caption: string;
}

/** One image's scores in a scores file, with its caption. */
export type ImageScores = { image_id: ImageId; caption: string } & MetricScores;

/** The scores of one set of captions: the corpus's and each image's. */
export interface ScoredSet {
  /** The corpus scores. */
  metrics: MetricScores;
  /** Each image's scores, by image id. */
  imgToEval: Record<string, ImageScores>;
}

/** A scores file (see the module documentation). */
export interface ScoresFile {
  /** The results file or checkpoint scored. */
  source: string;
  /** The dataset whose references were used. */
  dataset: string;
  /** The split. */
  split: Split;
  /** Images scored. */
  numImages: number;
  /** Entries of a results file left out: images without reference captions, or of other splits. */
  leftOut: { noReferences: number; otherSplits: number };
  /** The trivial captioner's caption and scores on the same images. */
  baseline: { caption: string; metrics: MetricScores };
  /** Each set of captions scored: `results`, or a checkpoint's `greedy` and `beam`. */
  scored: Record<string, ScoredSet>;
}

/**
 * Writes a results file (atomically: the old file stays whole until the new one is complete).
 * @param path The file.
 * @param results One entry per image.
 * @returns Resolves once written.
 *
 * @example
 * ```ts
 * import { readResults, writeResults } from "./results.ts";
 * const path = `${await Deno.makeTempDir()}/results.json`;
 * await writeResults(path, [{ image_id: 42, caption: "a dog on the grass" }]);
 * console.log(await readResults(path)); // [{ image_id: 42, caption: "a dog on the grass" }]
 * ```
 */
export async function writeResults(
  path: string,
  results: readonly CaptionResult[],
): Promise<void> {
  const lines = results.map((r) => JSON.stringify({ image_id: r.image_id, caption: r.caption }));
  await writeTextFileAtomic(path, `[\n${lines.join(",\n")}\n]\n`);
}

/**
 * Reads and checks a results file: a JSON array of `{"image_id", "caption"}`, every image once.
 * @param path The file.
 * @returns Its entries.
 * @throws InputError naming the file and the entry.
 *
 * @example
 * ```ts
 * import { readResults } from "./results.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '[{"image_id": "cat", "caption": "a cat"}]');
 * console.log((await readResults(path))[0].image_id); // cat
 * ```
 */
export async function readResults(path: string): Promise<CaptionResult[]> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: the results file does not exist; check the path`);
    }
    throw new InputError(`${path}: not a JSON results file (${(e as Error).message})`);
  }
  if (!Array.isArray(json)) {
    throw new InputError(
      `${path}: expected the COCO results format, a list of {"image_id", "caption"}`,
    );
  }
  const seen = new Map<string, number>();
  return json.map((r, i) => {
    const ok = typeof r === "object" && r !== null &&
      (typeof r.image_id === "number" || typeof r.image_id === "string") &&
      typeof r.caption === "string";
    if (!ok) {
      throw new InputError(
        `${path}: [${i}]: expected {"image_id": number or string, "caption": string}, got ${
          JSON.stringify(r)?.slice(0, 60)
        }`,
      );
    }
    const first = seen.get(String(r.image_id));
    if (first !== undefined) {
      throw new InputError(
        `${path}: [${i}].image_id: ${
          JSON.stringify(r.image_id)
        } has a caption already (at [${first}]); one caption per image`,
      );
    }
    seen.set(String(r.image_id), i);
    return { image_id: r.image_id, caption: r.caption };
  });
}

/**
 * The id of each image of a split: the dataset's ids, else the feature row numbers.
 * @param data The data dictionary.
 * @param split The split.
 * @returns One id per image (feature row).
 *
 * @example
 * ```ts
 * import { imageIdsOf } from "./results.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const data = {
 *   train_captions: Tensor.zeros([2, 3], "int32"), train_image_idxs: Tensor.zeros([2], "int32"),
 *   train_features: Tensor.zeros([2, 4], "float32"), idx_to_word: [], word_to_idx: {},
 * };
 * console.log(imageIdsOf(data, "train")); // [0, 1]
 * ```
 */
export function imageIdsOf(data: CaptionData, split: Split): ImageId[] {
  const { imageIds, features } = splitOf(data, split);
  return imageIds ?? Array.from({ length: features.shape[0] }, (_, i) => i);
}

/** Options of {@linkcode scoreResults}. */
export interface ScoreResultsOptions {
  /** The split whose references the captions are scored against. */
  split: Split;
  /** The metrics. */
  metrics: readonly Metric[];
  /** The results file's path, for messages and the scores file. */
  source: string;
  /** The dataset directory, for messages and the scores file. */
  dataset: string;
}

/**
 * Scores a results file's captions against a split's references: the corpus scores, each
 * image's (keyed by the results file's own `image_id`s), and the trivial baseline's on the
 * same images. Entries of images without reference
 * captions are left out (and counted); an entry naming no image of the split is an error.
 * @param results The results file's entries.
 * @param data The dataset.
 * @param options The split, the metrics, and the names for messages.
 * @returns The scores file.
 * @throws InputError naming the entry of an unknown image, or when no entry can be scored.
 *
 * @example
 * ```ts ignore
 * import { readResults, scoreResults } from "./results.ts";
 * const data = await loadCocoData({ baseDir: "datasets/flickr8k" });
 * const scores = scoreResults(await readResults("results.json"), data, {
 *   split: "test", metrics: ["bleu4", "cider"], source: "results.json", dataset: "datasets/flickr8k",
 * });
 * console.log(scores.scored.results.metrics.cider);
 * ```
 */
export function scoreResults(
  results: readonly CaptionResult[],
  data: CaptionData,
  options: ScoreResultsOptions,
): ScoresFile {
  const { split, metrics, source, dataset } = options;
  const namesOf = (s: Split) => {
    const { urls } = splitOf(data, s);
    return new ImageNames(
      imageIdsOf(data, s).map((id, i) => ({ id, file: urls?.[i] ?? String(id) })),
    );
  };
  const names = namesOf(split);
  // Other splits' images are known only by real ids (CS231n images are row numbers).
  const others = splitOf(data, split).imageIds
    ? splitsOf(data).filter((s) => s !== split).map(namesOf)
    : [];
  const { refs } = referencesByImage(data, split);
  const candidates = new Map<number, string>(), named = new Map<number, ImageId>();
  const leftOut = { noReferences: 0, otherSplits: 0 };
  results.forEach((r, i) => {
    const img = names.find(String(r.image_id));
    if (img === undefined && others.some((o) => o.find(String(r.image_id)) !== undefined)) {
      leftOut.otherSplits++;
      return;
    }
    if (img === undefined) {
      throw new InputError(
        `${source}: [${i}].image_id: ${
          JSON.stringify(r.image_id)
        } names no image of ${dataset} (by id, file name or file stem)`,
      );
    }
    if (refs.has(img)) {
      candidates.set(img, r.caption);
      named.set(img, r.image_id);
    } else leftOut.noReferences++;
  });
  if (candidates.size === 0) {
    throw new InputError(
      `${source}: none of its ${results.length} images has reference captions in the ${split} ` +
        `split of ${dataset}; score it against the split it captioned`,
    );
  }
  const references = new Map([...candidates.keys()].map((img) => [img, refs.get(img)!]));
  const base = baselineCaption(data);
  const baseline = evaluateCaptions(
    new Map([...candidates.keys()].map((img) => [img, base])),
    references,
    metrics,
  );
  const scored = scoreCaptions(candidates, references, metrics);
  return {
    source,
    dataset,
    split,
    numImages: candidates.size,
    leftOut,
    baseline: { caption: base, metrics: baseline },
    scored: { results: scoredSet(scored, candidates, (img) => named.get(img)!) },
  };
}

/** A scored set of captions with its per-image entries keyed by the results' image ids. */
function scoredSet(
  scored: ReturnType<typeof scoreCaptions>,
  captions: ReadonlyMap<number, string>,
  idOf: (img: number) => ImageId,
): ScoredSet {
  const imgToEval: Record<string, ImageScores> = {};
  for (const [img, caption] of captions) {
    imgToEval[String(idOf(img))] = {
      image_id: idOf(img),
      caption,
      ...scored.perImage.get(String(img))!,
    };
  }
  return { metrics: scored.corpus, imgToEval };
}

/**
 * A checkpoint's evaluation of a split as a scores file: its greedy (and beam) captions'
 * corpus and per-image scores.
 * @param ev The evaluation.
 * @param data The dataset (for the image ids).
 * @param source The checkpoint's path.
 * @param dataset The dataset directory.
 * @returns The scores file.
 *
 * @example
 * ```ts ignore
 * const file = evaluationScores(await evaluateSplit(model, data, options), data, "best.h5", "datasets/mine");
 * console.log(Object.keys(file.scored)); // ["greedy", "beam"]
 * ```
 */
export function evaluationScores(
  ev: SplitEvaluation,
  data: CaptionData,
  source: string,
  dataset: string,
): ScoresFile {
  const ids = imageIdsOf(data, ev.split);
  const set = (decoder: "greedy" | "beam", metrics: MetricScores): ScoredSet => {
    const imgToEval: Record<string, ImageScores> = {};
    for (const im of ev.images) {
      const id = im.imageId ?? ids[im.imageIdx];
      imgToEval[String(id)] = {
        image_id: id,
        caption: im[decoder]!,
        ...im.scores?.[decoder],
      };
    }
    return { metrics, imgToEval };
  };
  return {
    source,
    dataset,
    split: ev.split,
    numImages: ev.numImages,
    leftOut: { noReferences: 0, otherSplits: 0 },
    baseline: { caption: ev.baselineCaption, metrics: ev.baseline },
    scored: {
      greedy: set("greedy", ev.greedy),
      ...(ev.beam ? { beam: set("beam", ev.beam) } : {}),
    },
  };
}

/**
 * Writes a scores file (atomically).
 * @param path The file.
 * @param scores The scores.
 * @returns Resolves once written.
 *
 * @example
 * ```ts
 * import { writeScores } from "./results.ts";
 * const path = `${await Deno.makeTempDir()}/scores.json`;
 * await writeScores(path, {
 *   source: "results.json", dataset: "datasets/mine", split: "test", numImages: 0,
 *   leftOut: { noReferences: 0, otherSplits: 0 },
 *   baseline: { caption: "", metrics: {} }, scored: {},
 * });
 * ```
 */
export async function writeScores(path: string, scores: ScoresFile): Promise<void> {
  await writeTextFileAtomic(path, JSON.stringify(scores, null, 1) + "\n");
}
