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
 * tokenisation of its raw text that the metrics use (data/tokenize.ts); they are kept as ids
 * into one lexicon of every distinct word, in one shared array (COCO has 6 million words in
 * 616k captions: as strings they would cost hundreds of MB). Captions with no words are
 * dropped (and counted); images with no captions are kept (they can be captioned, not trained
 * on or scored).
 * @module
 */
import { basename } from "node:path";
import { InputError } from "../../errors.ts";
import { type ImageId, type Split, SPLITS } from "../caption_data.ts";
import { tokenizeCaption } from "../tokenize.ts";
import { type JsonScan, scanJsonObject } from "./json_pieces.ts";

/** One caption of an image. */
export interface AnnotatedCaption {
  /** The human's text, untruncated (a reference for evaluation). */
  raw: string;
  /** Where its words start in {@linkcode Words.ids}. */
  start: number;
  /** How many words it has (what the model is trained on). */
  length: number;
}

/**
 * The words of every caption: each distinct word once in `lexicon`, and the captions' words
 * as lexicon indices, one caption after the other, in `ids`.
 *
 * @example
 * ```ts
 * import { Words } from "./annotations.ts";
 * const words = new Words();
 * const c = words.add(["a", "dog"]), d = words.add(["a", "cat"]);
 * console.log(words.text(d), words.lexicon, c); // ["a", "cat"] ["a", "dog", "cat"] { start: 0, length: 2 }
 * ```
 */
export class Words {
  /** Each distinct word, by id. */
  readonly lexicon: string[] = [];
  #index = new Map<string, number>();
  #ids = new Int32Array(1 << 16);
  #size = 0;

  /**
   * Adds a caption's words.
   * @param words The words.
   * @returns Where they start in `ids`, and how many there are.
   */
  add(words: readonly string[]): { start: number; length: number } {
    if (this.#size + words.length > this.#ids.length) {
      const grown = new Int32Array(Math.max(this.#ids.length * 2, this.#size + words.length));
      grown.set(this.#ids.subarray(0, this.#size));
      this.#ids = grown;
    }
    const start = this.#size;
    for (const w of words) {
      let id = this.#index.get(w);
      if (id === undefined) {
        id = this.lexicon.length;
        this.lexicon.push(w);
        this.#index.set(w, id);
      }
      this.#ids[this.#size++] = id;
    }
    return { start, length: words.length };
  }

  /** The lexicon index of every word added, caption after caption. */
  get ids(): Int32Array {
    return this.#ids.subarray(0, this.#size);
  }

  /**
   * A caption's words as text.
   * @param caption Where they are.
   * @returns The words.
   */
  text(caption: { start: number; length: number }): string[] {
    return Array.from(
      this.ids.subarray(caption.start, caption.start + caption.length),
      (i) => this.lexicon[i],
    );
  }
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
  /** The words of every caption. */
  words: Words;
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
 * const { images, words } = await readAnnotations([path]);
 * console.log(images[0].id, images[0].split, words.text(images[0].captions[0])); // 0 train ["a", "dog"]
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
  const out: Annotations = {
    images: [],
    words: new Words(),
    formats: [],
    restval: 0,
    emptyCaptions: 0,
  };
  const ids = new Map<ImageId, string>(), names = new Map<string, string>();
  for (let f = 0; f < files.length; f++) {
    const path = files[f];
    const images = await readFile(path, out, splits?.[f], splitOption);
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

/**
 * The images of one annotation file, its format found from its first image. The file's
 * `images` and `annotations` are parsed an element at a time (json_pieces.ts), so memory holds
 * the file's bytes and what is kept of each image, never the whole parsed document.
 */
async function readFile(
  path: string,
  out: Annotations,
  given: Split | undefined,
  splitOption: string,
): Promise<AnnotatedImage[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path); // scanned as bytes: never one 140 MB string
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: the annotations file does not exist; check the path`);
    }
    throw new InputError(`${path}: cannot read the annotations: ${(e as Error).message}`);
  }
  let format: "karpathy" | "coco" | undefined;
  const images: AnnotatedImage[] = [];
  const captions: { value: unknown; index: number }[] = [];
  let scanned: JsonScan;
  try {
    scanned = scanJsonObject(bytes, ["images", "annotations"], (member, value, index) => {
      if (member === "annotations") {
        captions.push({ value, index }); // matched to their images once all are read
        return;
      }
      const where = `${path}: images[${index}]`;
      format ??= formatOf(value, where);
      images.push(
        format === "karpathy"
          ? karpathyImage(value, where, out, given, path, splitOption)
          : cocoImage(value, where, given ?? splitFromName(path, splitOption)),
      );
    });
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    throw new InputError(`${path}: not valid JSON (${e.message})`);
  }
  if (format === undefined) {
    throw new InputError(
      scanned.counts.images === 0
        ? `${path}: images: the list is empty; the file names no image`
        : `${path}: images: expected an array of images (a Karpathy split file or a COCO captions file)`,
    );
  }
  if ("annotations" in scanned.members) {
    throw new InputError(`${path}: annotations: expected a list of captions`);
  }
  out.formats.push(format);
  if (format === "coco") cocoCaptions(images, captions, path, out);
  return images;
}

/** A Karpathy file's images carry `sentences` or `split`; a COCO file's carry `file_name`. */
function formatOf(first: unknown, where: string): "karpathy" | "coco" {
  if (isObject(first) && ("sentences" in first || "split" in first)) return "karpathy";
  if (isObject(first) && "file_name" in first) return "coco";
  throw new InputError(
    `${where}: neither a Karpathy split file's image (with "sentences" and "split") ` +
      `nor a COCO captions file's (with "id" and "file_name")`,
  );
}

/**
 * A caption, its words added to `out.words`: its tokens when given, else the tokenisation of
 * its text; null (and counted) when it has no words.
 */
function captionOf(
  raw: string,
  tokens: unknown,
  where: string,
  out: Annotations,
): AnnotatedCaption | null {
  let words: string[];
  if (tokens === undefined) words = tokenizeCaption(raw);
  else if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
    throw new InputError(`${where}.tokens: expected a list of words`);
  } else words = tokens.flatMap((t: string) => t.split(/\s+/)).filter((w) => w !== "");
  if (words.length === 0) {
    out.emptyCaptions++;
    return null;
  }
  const { start, length } = out.words.add(words);
  return { raw, start, length }; // a plain literal: a spread one takes three times the memory
}

const KARPATHY_SPLITS = ["train", "val", "test", "restval"];

function karpathyImage(
  img: unknown,
  where: string,
  out: Annotations,
  given: Split | undefined,
  path: string,
  splitOption: string,
): AnnotatedImage {
  if (given !== undefined) {
    throw new InputError(
      `command line: ${splitOption}: ${path} is a Karpathy split file, whose images name their ` +
        `own splits; give splits only for COCO captions files`,
    );
  }
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
    const caption = captionOf(raw, tokens, at, out);
    if (caption) captions.push(caption);
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

function cocoImage(img: unknown, where: string, split: Split): AnnotatedImage {
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
  return { id, file, url, split, captions: [], where };
}

/** A COCO file's captions added to their images (a file may list them before its images). */
function cocoCaptions(
  images: readonly AnnotatedImage[],
  annotations: readonly { value: unknown; index: number }[],
  path: string,
  out: Annotations,
): void {
  const byId = new Map<ImageId, AnnotatedImage>();
  for (const image of images) if (!byId.has(image.id)) byId.set(image.id, image);
  for (const { value: a, index: i } of annotations) {
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
    const caption = captionOf(a.caption, a.tokens, where, out);
    if (caption) image.captions.push(caption);
  }
}
