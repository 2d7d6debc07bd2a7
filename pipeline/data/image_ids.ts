/**
 * Naming images: an `--ids` file (one image id or file name per feature row, for features
 * whose rows are not in the annotation file's image order, or that have no annotations at all,
 * for captioning), ids as results files write them, and finding an image by a name — its id,
 * its file name, or its file name's stem, tried in that order (an `--ids` line, a results
 * file's `image_id`).
 * @module
 */
import { basename, extname } from "node:path";
import { InputError } from "../errors.ts";
import type { ImageId } from "./caption_data.ts";
import { readLines } from "./image_list.ts";

/**
 * Reads an `--ids` file: one id or file name per line, trimmed (a last empty line is fine).
 * @param path The file.
 * @param option What to call the option, for messages (e.g. `--ids`).
 * @returns The lines.
 * @throws InputError naming the file and line of an empty line, or when the file is missing.
 *
 * @example
 * ```ts
 * import { readIdList } from "./image_ids.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "391895\nCOCO_val2014_000000522418.jpg\n");
 * console.log(await readIdList(path, "--ids")); // ["391895", "COCO_val2014_000000522418.jpg"]
 * ```
 */
export async function readIdList(path: string, option: string): Promise<string[]> {
  const lines: string[] = [];
  try {
    for await (const line of readLines(path)) lines.push(line.trim());
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`command line: ${option}: ${path} does not exist; check the path`);
    }
    throw e;
  }
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  const blank = lines.indexOf("");
  if (blank >= 0) {
    throw new InputError(`${path}: line ${blank + 1} is empty; expected one image id per line`);
  }
  if (lines.length === 0) throw new InputError(`${path}: the file lists no image id`);
  return lines;
}

/**
 * An image id as results files write it: a whole number when the text is one (COCO's ids),
 * else the text.
 * @param text An id as read from a file, e.g. `"391895"` or `"1000268201_693b08cb0e"`.
 * @returns The id.
 *
 * @example
 * ```ts
 * import { parseImageId } from "./image_ids.ts";
 * console.log(parseImageId("391895"), parseImageId("0042"), parseImageId("cat.jpg")); // 391895 0042 cat.jpg
 * ```
 */
export function parseImageId(text: string): ImageId {
  return /^(0|[1-9]\d*)$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text;
}

/** An image as a name may refer to it: by id, file name or file stem. */
export interface NamedImage {
  /** Its id. */
  id: ImageId;
  /** Its file name (or a path or URL ending in it). */
  file: string;
}

/**
 * Finds images by a name: their id, else their file name, else their file name's stem — how
 * an `--ids` line or a results file's `image_id` names an image.
 *
 * @example
 * ```ts
 * import { ImageNames } from "./image_ids.ts";
 * const names = new ImageNames([{ id: 7, file: "http://x/a.jpg" }, { id: 9, file: "b.jpg" }]);
 * console.log(names.find("7"), names.find("a.jpg"), names.find("b"), names.find("c")); // 0 0 1 undefined
 * ```
 */
export class ImageNames {
  #byId = new Map<string, number>();
  #byFile = new Map<string, number>();
  #byStem = new Map<string, number>();

  /**
   * Indexes the images.
   * @param images The images, by index.
   */
  constructor(images: readonly NamedImage[]) {
    images.forEach((im, i) => {
      this.#byId.set(String(im.id), i);
      const base = basename(im.file);
      this.#byFile.set(im.file, i).set(base, i);
      this.#byStem.set(base.slice(0, base.length - extname(base).length), i);
    });
  }

  /**
   * The image a name refers to.
   * @param name An id, a file name or a file stem.
   * @returns The image's index, or undefined when no image has that name.
   */
  find(name: string): number | undefined {
    return this.#byId.get(name) ?? this.#byFile.get(name) ?? this.#byStem.get(name);
  }
}

/**
 * The image each line of an `--ids` file names (see {@linkcode ImageNames}).
 * @param lines The file's lines.
 * @param images The images of the annotations.
 * @param path The file, for messages.
 * @returns The image index of each line.
 * @throws InputError naming the file and line of a name that matches no image, or of an
 *   image named twice.
 *
 * @example
 * ```ts
 * import { imagesOfIds } from "./image_ids.ts";
 * const images = [{ id: 7, file: "a.jpg" }, { id: 9, file: "b.jpg" }];
 * console.log(imagesOfIds(["b", "7"], images, "ids.txt")); // Int32Array [1, 0]
 * ```
 */
export function imagesOfIds(
  lines: readonly string[],
  images: readonly NamedImage[],
  path: string,
): Int32Array {
  const names = new ImageNames(images);
  const out = new Int32Array(lines.length);
  const lineOf = new Map<number, number>();
  lines.forEach((line, l) => {
    const i = names.find(line);
    if (i === undefined) {
      throw new InputError(
        `${path}: line ${l + 1}: ${
          JSON.stringify(line)
        } names no image of the annotations (by id, file name or file stem)`,
      );
    }
    const first = lineOf.get(i);
    if (first !== undefined) {
      throw new InputError(
        `${path}: line ${l + 1}: image ${
          JSON.stringify(images[i].id)
        } is named twice (first on line ${first + 1}); one feature row per image`,
      );
    }
    lineOf.set(i, l);
    out[l] = i;
  });
  return out;
}
