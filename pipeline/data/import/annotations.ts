/**
 * Caption annotation files, in the two formats captioning datasets ship in, read into one
 * list of images (id, file name, URL, split, captions), the format found from the content:
 *
 * - **Karpathy split files** (`dataset_coco.json`, `dataset_flickr8k.json`,
 *   `dataset_flickr30k.json`): `{"images": [{"filename", "filepath"?, "split", "sentences":
 *   [{"tokens", "raw"}], "imgid", "cocoid"?}], "dataset"}`. Every image names its split;
 *   `restval` joins train, as the usual training recipes do. The id is `cocoid` when present
 *   (COCO), else `imgid`.
 * - **COCO captions files** (`captions_train2014.json`, …, and `image_info_test2014.json`, which
 *   has no annotations): `{"images": [{"id", "file_name", "coco_url"?}], "annotations":
 *   [{"image_id", "caption"}]}`, one file per split: the caller says which, else the file name
 *   does (`train`, `val` or `test` in it).
 *
 * A caption's words are the annotation's `tokens` when it has them, else the PTB-style
 * tokenisation of its raw text that the metrics use (data/tokenize.ts). Captions with no words
 * are dropped (and counted); images with no captions are kept (they can be captioned, not
 * trained on or scored).
 * @module
 */
import { basename } from "node:path";
import { InputError } from "../../errors.ts";
import { type ImageId, type Split, SPLITS } from "../caption_data.ts";
import { tokenizeCaption } from "../tokenize.ts";

/** One caption of an image. */
export interface AnnotatedCaption {
  /** The human's text, untruncated (a reference for evaluation). */
  raw: string;
  /** Its words, joined by single spaces (what the model is trained on). */
  words: string;
}

/** One image of the annotations. */
export interface AnnotatedImage {
  /** Its id (COCO `id`/`cocoid`, else `imgid`). */
  id: ImageId;
  /** Its file name, as the annotations give it. */
  file: string;
  /** A URL (COCO images) or path for a report to link to. */
  url: string;
  /** The split it belongs to (`restval` is train). */
  split: Split;
  /** Its captions, in file order (empty for an image shipped without captions). */
  captions: AnnotatedCaption[];
  /** Where it was listed, for messages: `file: images[i]`. */
  where: string;
}

/** The images of every annotation file, and what reading them found. */
export interface Annotations {
  /** The images, in file order (files in the order given). */
  images: AnnotatedImage[];
  /** Each file's format. */
  formats: ("karpathy" | "coco")[];
  /** Karpathy images whose split was `restval`, now in train. */
  restval: number;
  /** Captions dropped because they have no words. */
  emptyCaptions: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads annotation files: Karpathy split files, or COCO captions files (one per split).
 * @param files The annotation files, in order.
 * @param splits For COCO captions files, the split of each file, in order (default: from the
 *   file's name); must not be given for Karpathy files, whose images name their splits.
 * @param splitOption What to call the option that gave `splits`, for messages.
 * @returns The images and what reading them found.
 * @throws InputError naming the file and the field: not JSON, an unknown format, a missing or
 *   unknown split, a duplicate image id or file name, a caption of an unknown image.
 *
 * @example
 * ```ts
 * import { readAnnotations } from "./annotations.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.writeTextFile(path, JSON.stringify({
 *   dataset: "flickr8k",
 *   images: [{ filename: "a.jpg", imgid: 0, split: "train", sentences: [{ tokens: ["a", "dog"], raw: "A dog." }] }],
 * }));
 * const { images } = await readAnnotations([path]);
 * console.log(images[0].id, images[0].split, images[0].captions); // 0 train [{ raw: "A dog.", words: "a dog" }]
 * ```
 */
export async function readAnnotations(
  files: readonly string[],
  splits?: readonly Split[],
  splitOption = "splits",
): Promise<Annotations> {
  if (splits && splits.length !== files.length) {
    throw new InputError(
      `command line: ${splitOption}: give one split per annotation file (${files.length} ` +
        `file${files.length === 1 ? "" : "s"}, ${splits.length} split${
          splits.length === 1 ? "" : "s"
        })`,
    );
  }
  const out: Annotations = { images: [], formats: [], restval: 0, emptyCaptions: 0 };
  const ids = new Map<ImageId, string>(), names = new Map<string, string>();
  for (let f = 0; f < files.length; f++) {
    const path = files[f];
    const json = await readJson(path);
    const format = formatOf(json, path);
    out.formats.push(format);
    const images = format === "karpathy"
      ? karpathyImages(json, path, out, splits?.[f], splitOption)
      : cocoImages(json, path, out, splits?.[f] ?? splitFromName(path, splitOption));
    for (const image of images) {
      const key = typeof image.id === "number" ? image.id : String(image.id);
      const seen = ids.get(key) ?? names.get(image.file);
      if (seen !== undefined) {
        const what = ids.has(key) ? `id ${JSON.stringify(image.id)}` : `file ${image.file}`;
        throw new InputError(
          `${image.where}: image ${what} is listed twice (first at ${seen}); every image must appear once`,
        );
      }
      ids.set(key, image.where);
      names.set(image.file, image.where);
      out.images.push(image);
    }
  }
  return out;
}

async function readJson(path: string): Promise<Json> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: the annotations file does not exist; check the path`);
    }
    throw new InputError(`${path}: cannot read the annotations: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json) || !Array.isArray(json.images)) {
    throw new InputError(
      `${path}: images: expected an array of images (a Karpathy split file or a COCO captions file)`,
    );
  }
  return json;
}

/** A Karpathy file's images carry `sentences` or `split`; a COCO file has `annotations` or `file_name`s. */
function formatOf(json: Json, path: string): "karpathy" | "coco" {
  const first = (json.images as unknown[])[0];
  if (isObject(first) && ("sentences" in first || "split" in first)) return "karpathy";
  if ("annotations" in json || (isObject(first) && "file_name" in first)) return "coco";
  if (first === undefined) {
    throw new InputError(`${path}: images: the list is empty; the file names no image`);
  }
  throw new InputError(
    `${path}: images[0]: neither a Karpathy split file's image (with "sentences" and "split") ` +
      `nor a COCO captions file's (with "id" and "file_name")`,
  );
}

/** The words of a caption: its tokens when given, else the tokenisation of its text. */
function wordsOf(raw: string, tokens: unknown, where: string): string {
  if (tokens === undefined) return tokenizeCaption(raw).join(" ");
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
    throw new InputError(`${where}.tokens: expected a list of words`);
  }
  return tokens.join(" ").split(/\s+/).filter((w) => w !== "").join(" ");
}

const KARPATHY_SPLITS = ["train", "val", "test", "restval"];

function karpathyImages(
  json: Json,
  path: string,
  out: Annotations,
  given: Split | undefined,
  splitOption: string,
): AnnotatedImage[] {
  if (given !== undefined) {
    throw new InputError(
      `command line: ${splitOption}: ${path} is a Karpathy split file, whose images name their ` +
        `own splits; give splits only for COCO captions files`,
    );
  }
  return (json.images as unknown[]).map((img, i) => {
    const where = `${path}: images[${i}]`;
    if (!isObject(img)) throw new InputError(`${where}: expected an object`);
    const split = img.split;
    if (typeof split !== "string" || !KARPATHY_SPLITS.includes(split)) {
      throw new InputError(
        `${where}.split: ${
          split === undefined ? "missing" : `${JSON.stringify(split)} is not a split`
        }; expected "train", "val", "test" or "restval"`,
      );
    }
    if (split === "restval") out.restval++;
    const file = img.filename;
    if (typeof file !== "string" || file === "") {
      throw new InputError(`${where}.filename: expected the image's file name`);
    }
    const id = img.cocoid ?? img.imgid;
    if (typeof id !== "number" && typeof id !== "string") {
      throw new InputError(`${where}: expected an id ("cocoid" or "imgid")`);
    }
    const sentences = img.sentences ?? [];
    if (!Array.isArray(sentences)) throw new InputError(`${where}.sentences: expected a list`);
    const captions: AnnotatedCaption[] = [];
    sentences.forEach((s, j) => {
      const at = `${where}.sentences[${j}]`;
      if (!isObject(s)) throw new InputError(`${at}: expected an object with "raw" and "tokens"`);
      const tokens = s.tokens;
      let raw = s.raw;
      if (raw === undefined && Array.isArray(tokens)) raw = tokens.join(" ");
      if (typeof raw !== "string") throw new InputError(`${at}.raw: expected the caption's text`);
      const words = wordsOf(raw, tokens, at);
      if (words === "") out.emptyCaptions++;
      else captions.push({ raw, words });
    });
    const filepath = typeof img.filepath === "string" ? img.filepath : "";
    const url = img.cocoid !== undefined && /^(train|val)2014$/.test(filepath)
      ? `http://images.cocodataset.org/${filepath}/${file}`
      : filepath
      ? `${filepath}/${file}`
      : file;
    return {
      id,
      file,
      url,
      split: split === "restval" ? "train" : split as Split,
      captions,
      where,
    };
  });
}

/** The split a COCO file's name says (`captions_val2014.json` → val), or an error. */
function splitFromName(path: string, splitOption: string): Split {
  const said = SPLITS.filter((s) => new RegExp(`(^|[^a-z])${s}`, "i").test(basename(path)));
  if (said.length === 1) return said[0];
  throw new InputError(
    `command line: ${splitOption}: which split is ${path}? its name does not say; pass ` +
      `${splitOption} with one of train, val, test per COCO captions file`,
  );
}

function cocoImages(json: Json, path: string, out: Annotations, split: Split): AnnotatedImage[] {
  const byId = new Map<ImageId, AnnotatedImage>();
  const images = (json.images as unknown[]).map((img, i) => {
    const where = `${path}: images[${i}]`;
    if (!isObject(img)) throw new InputError(`${where}: expected an object`);
    const { id, file_name: file } = img;
    if (typeof id !== "number" && typeof id !== "string") {
      throw new InputError(`${where}.id: expected the image's id`);
    }
    if (typeof file !== "string" || file === "") {
      throw new InputError(`${where}.file_name: expected the image's file name`);
    }
    const url = typeof img.coco_url === "string"
      ? img.coco_url
      : typeof img.flickr_url === "string"
      ? img.flickr_url
      : file;
    const image: AnnotatedImage = { id, file, url, split, captions: [], where };
    if (!byId.has(id)) byId.set(id, image);
    return image;
  });
  const annotations = json.annotations ?? [];
  if (!Array.isArray(annotations)) {
    throw new InputError(`${path}: annotations: expected a list of captions`);
  }
  annotations.forEach((a, i) => {
    const where = `${path}: annotations[${i}]`;
    if (!isObject(a)) throw new InputError(`${where}: expected {"image_id", "caption"}`);
    const image = byId.get(a.image_id as ImageId);
    if (image === undefined) {
      throw new InputError(
        `${where}.image_id: ${JSON.stringify(a.image_id)} is not an image of this file's images`,
      );
    }
    if (typeof a.caption !== "string") {
      throw new InputError(`${where}.caption: expected the caption's text`);
    }
    const words = wordsOf(a.caption, a.tokens, where);
    if (words === "") out.emptyCaptions++;
    else image.captions.push({ raw: a.caption, words });
  });
  return images;
}
