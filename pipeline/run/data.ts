/**
 * A run's data: loads the experiment's dataset — generating the synthetic one first when its
 * files are absent — in memory, or, for streamed runs, only what evaluation reads.
 * @module
 */
import { join } from "node:path";
import { type LoadedCaptionData, requireCaptions, requireSplits } from "../data/caption_data.ts";
import { loadCocoData } from "../data/coco.ts";
import { CAPTIONS_FILE } from "../data/coco_layout.ts";
import { loadCocoForStreaming } from "../data/coco_subset.ts";
import { findDatasetFormat } from "../data/dataset_layout.ts";
import type { ExperimentConfig } from "../config/config.ts";
import { InputError } from "../errors.ts";
import { partialDir, removeStalePartials } from "../io/atomic.ts";
import { exists } from "../io/files.ts";
import { writeSyntheticDataset } from "../data/synth/writer.ts";

/** Validation images captioned during training to pick best.h5 by CIDEr-D. */
export const QUICK_EVAL_IMAGES = 200;
/** Images whose captions the sample stage prints. */
export const SAMPLE_IMAGES = 8;

/**
 * Loads the experiment's data, generating the synthetic dataset first when its files are absent.
 * The dataset's format is found from its files (see `findDatasetFormat`): an imported
 * dataset, or the CS231n layout (the COCO files, or the synthetic set).
 * @param config The experiment.
 * @param log Where progress messages go.
 * @returns The data dictionary, with every split `evaluate.splits` names.
 */
export async function prepareData(
  config: ExperimentConfig,
  log: (line: string) => void,
): Promise<LoadedCaptionData> {
  const { data } = config;
  await ensureDataset(config, log);
  if (data.stream) {
    // Only the features that evaluation, validation and samples read are loaded; training
    // minibatches are streamed from the files (see StreamBatches), so memory stays bounded.
    const evaluate = config.evaluate;
    const val = Math.max(evaluate.numImages, QUICK_EVAL_IMAGES, SAMPLE_IMAGES);
    return checkSplits(
      config,
      await loadCocoForStreaming({
        baseDir: data.dir,
        pcaFeatures: data.pcaFeatures,
        numImages: {
          train: evaluate.splits.includes("train") ? evaluate.numImages : 0,
          val,
          test: evaluate.splits.includes("test") ? evaluate.numImages : 0,
        },
      }),
    );
  }
  return checkSplits(
    config,
    await loadCocoData({
      baseDir: data.dir,
      pcaFeatures: data.pcaFeatures,
      ...(data.maxTrain !== null ? { maxTrain: data.maxTrain } : {}),
      rng: config.train.seed,
    }),
  );
}

/**
 * Makes sure the experiment's dataset exists: generates the synthetic dataset when its files
 * are absent (the only write of data preparation), or refuses a missing COCO dataset.
 * @param config The experiment.
 * @param log Where progress messages go.
 * @throws InputError when the COCO files are missing or data.dir cannot hold the synthetic set.
 *
 * @example
 * ```ts ignore
 * import { loadExperiment } from "../config/config.ts";
 * import { ensureDataset } from "./data.ts";
 * await ensureDataset(await loadExperiment("experiments/overfit_lstm.json"), console.log);
 * ```
 */
export async function ensureDataset(
  config: ExperimentConfig,
  log: (line: string) => void,
): Promise<void> {
  const { data } = config;
  const found = await findDatasetFormat(data.dir);
  if (data.source === "synthetic" && found === null) await generateSynthetic(config, log);
  if (data.source === "coco" && found === null) {
    throw new InputError(
      `${join(data.dir, CAPTIONS_FILE)}: file not found; put the CS231n COCO captioning files ` +
        `in ${data.dir} (or set data.dir to them, or to a dataset made with deno task dataset ` +
        `import), or use data.source "synthetic"`,
    );
  }
}

/** Checks that the splits the stages need are there and have captions. */
function checkSplits(config: ExperimentConfig, data: LoadedCaptionData): LoadedCaptionData {
  const dir = config.data.dir, stages = config.stages;
  requireSplits(data, config.evaluate.splits, "evaluate.splits", dir);
  if (stages.includes("train")) requireCaptions(data, "train", dir, "training");
  if (stages.includes("evaluate")) {
    for (const split of config.evaluate.splits) {
      requireCaptions(data, split, dir, "evaluate.splits");
    }
  }
  if (stages.includes("sample")) requireCaptions(data, "val", dir, "the sample stage");
  return data;
}

/**
 * Writes the synthetic dataset into `data.dir`, which must not exist: recap never writes into
 * a directory it did not create (it may hold a user's dataset whose captions file is still
 * downloading). The dataset is written beside its place and renamed into it once complete, so
 * an interrupted generation never leaves a half dataset that looks ready.
 */
async function generateSynthetic(
  config: ExperimentConfig,
  log: (line: string) => void,
): Promise<void> {
  const { data } = config;
  if (await exists(data.dir)) {
    throw new InputError(
      `${data.dir}: data.dir exists but holds no dataset (no ${CAPTIONS_FILE}), and recap writes ` +
        `the synthetic dataset only into a directory it creates; choose another data.dir, or ` +
        `write it there yourself with: deno task dataset synth --dir ${data.dir}`,
    );
  }
  log(
    `Generating the synthetic dataset in ${data.dir} (${data.synthetic.numTrain} train / ` +
      `${data.synthetic.numVal} val images, seed ${data.synthetic.seed})`,
  );
  await removeStalePartials(data.dir);
  const partial = partialDir(data.dir);
  try {
    const summary = await writeSyntheticDataset({
      dir: partial,
      numTrain: data.synthetic.numTrain,
      numVal: data.synthetic.numVal,
      seed: data.synthetic.seed,
    });
    await Deno.rename(partial, data.dir);
    log(
      `  ${summary.trainCaptions} train captions, vocabulary of ${summary.vocabSize} words, ` +
        `${summary.seconds.toFixed(1)}s`,
    );
  } catch (e) {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    throw e;
  }
}
