/**
 * Annotation and feature files as users bring them, made from the synthetic dataset (so a
 * model trained on an import learns something): a Karpathy split file or COCO captions files
 * (raw captions with a capital and a full stop, tokens on some images), and the features as
 * an HDF5 matrix in the annotations' image order, the splits interleaved.
 * @module
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { decodeCaptions } from "../model/decode.ts";
import { loadCocoData } from "../pipeline/data/coco.ts";
import { writeSyntheticDataset } from "../pipeline/data/synth/writer.ts";
import { cleanCaption } from "../pipeline/eval/evaluate.ts";
import { H5File } from "../pipeline/io/h5.ts";

/** One image of the fixture. */
export interface FixtureImage {
  /** Its id (like a COCO id). */
  id: number;
  /** Its file name. */
  file: string;
  /** Its split. */
  split: "train" | "val" | "test" | "restval";
  /** Its raw captions. */
  raw: string[];
  /** Its features. */
  features: Float32Array;
}

/** Options of {@linkcode importFixture}. */
export interface FixtureOptions {
  /** Synthetic train images (default 60). */
  train?: number;
  /** Synthetic val images, half of which become test images (default 40). */
  val?: number;
  /** Train images marked `restval` (default 0). */
  restval?: number;
  /** Test images shipped without captions (default 0). */
  captionless?: number;
}

/** The images of a small captioning dataset, splits interleaved in a fixed order. */
export async function fixtureImages(options: FixtureOptions = {}): Promise<FixtureImage[]> {
  const { train = 60, val = 40, restval = 0, captionless = 0 } = options;
  const tmp = await Deno.makeTempDir({ prefix: "recap_fixture_" });
  await writeSyntheticDataset({
    dir: tmp,
    numTrain: train,
    numVal: val,
    seed: 3,
    images: false,
    minWordCount: 1, // every word in the text: the raw captions have no <UNK>
  });
  const data = await loadCocoData({ baseDir: tmp });
  await Deno.remove(tmp, { recursive: true });
  const images: FixtureImage[] = [];
  for (const split of ["train", "val"] as const) {
    const texts = decodeCaptions(data[`${split}_captions`], data.idx_to_word).map(cleanCaption);
    const idxs = data[`${split}_image_idxs`].data, feats = data[`${split}_features`];
    const n = feats.shape[0], D = feats.shape[1];
    for (let i = 0; i < n; i++) {
      const raw = texts.filter((_, r) => idxs[r] === i).map((t) =>
        `${t[0].toUpperCase()}${t.slice(1).replaceAll("<UNK>", "thingamajig")}.`
      );
      const kind = split === "train"
        ? (i < restval ? "restval" : "train")
        : (i < n / 2 ? "val" : "test");
      const id = 100000 + images.length * 7;
      images.push({
        id,
        file: `IMG_${String(id).padStart(8, "0")}.jpg`,
        split: kind,
        raw: kind === "test" && i >= n - captionless ? [] : raw,
        features: feats.data.slice(i * D, (i + 1) * D) as Float32Array,
      });
    }
  }
  // Interleave the splits, as real annotation files do.
  return images.map((im, k) => ({ im, key: (k * 37) % images.length })).sort((a, b) =>
    a.key - b.key
  ).map((e) => e.im);
}

/** Writes the images' features as an HDF5 matrix, rows in the given order. */
export async function writeFeaturesH5(
  path: string,
  images: readonly FixtureImage[],
  dataset = "features",
): Promise<string> {
  const D = images[0].features.length;
  const data = new Float32Array(images.length * D);
  images.forEach((im, i) => data.set(im.features, i * D));
  const f = await H5File.open(path, "w");
  try {
    f.write(dataset, Tensor.fromValues(data, [images.length, D], "float32"));
  } finally {
    f.close();
  }
  return path;
}

/** A Karpathy split file of the images (tokens given on every other image, as some files do). */
export function karpathyJson(images: readonly FixtureImage[], dataset = "fixture"): unknown {
  return {
    dataset,
    images: images.map((im, i) => ({
      filepath: "images",
      filename: im.file,
      imgid: i,
      cocoid: im.id,
      split: im.split,
      sentids: im.raw.map((_, j) => i * 10 + j),
      sentences: im.raw.map((raw, j) => ({
        raw,
        imgid: i,
        sentid: i * 10 + j,
        ...(i % 2 === 0 ? { tokens: raw.toLowerCase().replace(/\.$/, "").split(" ") } : {}),
      })),
    })),
  };
}

/** A COCO captions file of the images of some splits. */
export function cocoJson(images: readonly FixtureImage[], withCaptions = true): unknown {
  let annId = 1;
  return {
    info: { description: "fixture" },
    images: images.map((im) => ({ id: im.id, file_name: im.file, height: 32, width: 32 })),
    ...(withCaptions
      ? {
        annotations: images.flatMap((im) =>
          im.raw.map((caption) => ({ id: annId++, image_id: im.id, caption }))
        ),
      }
      : {}),
  };
}

/** The files of a Karpathy-format fixture: annotations and features, in `dir`. */
export async function importFixture(
  dir: string,
  options: FixtureOptions = {},
): Promise<{ images: FixtureImage[]; annotations: string; features: string }> {
  const images = await fixtureImages(options);
  const annotations = join(dir, "dataset_fixture.json");
  await Deno.writeTextFile(annotations, JSON.stringify(karpathyJson(images)));
  const features = await writeFeaturesH5(join(dir, "features.h5"), images);
  return { images, annotations, features };
}
