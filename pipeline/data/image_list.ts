/**
 * The image list of an imported dataset's split (`<split>_images.jsonl`): one JSON line per
 * feature row, in row order, with the image's id, its file name, the URL a report links to,
 * and every raw human caption of it (the references evaluation scores against):
 *
 * ```
 * {"id":391895,"file":"COCO_val2014_000000391895.jpg","url":"http://images.cocodataset.org/val2014/COCO_val2014_000000391895.jpg","references":["A man with a red helmet on a small moped on a dirt road.", …]}
 * ```
 *
 * JSON lines rather than one JSON document so the file is read a line at a time: a streamed
 * run keeps only the rows it loads.
 * @module
 */
import { InputError } from "../errors.ts";
import type { ImageId } from "./caption_data.ts";

/** One image of a split. */
export interface ImageRecord {
  /** The image id (COCO's `id`/`cocoid`, else the annotation file's `imgid`). */
  id: ImageId;
  /** The image's file name, as the annotations give it. */
  file: string;
  /** What a report links to: a URL, or a path relative to the dataset directory. */
  url: string;
  /** Every raw human caption (none for an image shipped without captions). */
  references: string[];
}

/** Where a bad list is reported: the data's name and what to do (a dataset layout has both). */
export interface ListContext {
  /** What messages call the data, e.g. "the dataset". */
  label: string;
  /** What to do about a bad or missing file. */
  remedy: string;
}

/**
 * Reads the lines of a text file one at a time (without the line ends).
 * @param path The file.
 * @returns The lines; a last empty line (after the final newline) is not returned.
 *
 * @example
 * ```ts
 * import { readLines } from "./image_list.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\r\nb\n");
 * console.log(await Array.fromAsync(readLines(path))); // ["a", "b"]
 * ```
 */
export async function* readLines(path: string): AsyncGenerator<string> {
  const file = await Deno.open(path);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const line of parts) yield line.endsWith("\r") ? line.slice(0, -1) : line;
  }
  if (rest !== "") yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
}

/**
 * Reads a split's image list, checking every line, and keeps the rows asked for.
 * @param path The `<split>_images.jsonl` file.
 * @param numImages I, the split's feature rows: the list must have one line for each.
 * @param rows Keep only these (distinct) rows, in this order (default: all).
 * @param context What the messages call the data and what to do.
 * @returns The images kept.
 * @throws InputError naming the file and the line.
 *
 * @example
 * ```ts
 * import { readImageList, writeImageList } from "./image_list.ts";
 * const path = await Deno.makeTempFile();
 * await writeImageList(path, [
 *   { id: 1, file: "a.jpg", url: "a.jpg", references: ["A dog."] },
 *   { id: "b", file: "b.jpg", url: "b.jpg", references: [] },
 * ]);
 * const context = { label: "the dataset", remedy: "import it again" };
 * console.log((await readImageList(path, 2, [1], context))[0].id); // b
 * ```
 */
export async function readImageList(
  path: string,
  numImages: number,
  rows: ArrayLike<number> | undefined,
  context: ListContext,
): Promise<ImageRecord[]> {
  const where = `Cannot load ${context.label}: ${path}`;
  // slot[row]: the output position of a kept row, -1 for a row left out.
  const slot = new Int32Array(numImages).fill(rows ? -1 : 0);
  if (rows) { for (let i = 0; i < rows.length; i++) slot[rows[i]] = i; }
  const out: ImageRecord[] = new Array(rows ? rows.length : numImages);
  let line = 0;
  try {
    for await (const text of readLines(path)) {
      if (line >= numImages) {
        throw new InputError(
          `${where} has more than ${numImages} lines, one per feature row expected; ${context.remedy}`,
        );
      }
      const at = rows ? slot[line] : line;
      if (at >= 0) out[at] = parseRecord(text, `${where}: line ${line + 1}`, context);
      line++;
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${where} does not exist; ${context.remedy}`);
    }
    throw e;
  }
  if (line !== numImages) {
    throw new InputError(
      `${where} has ${line} lines but the features have ${numImages} rows; ${context.remedy}`,
    );
  }
  return out;
}

function parseRecord(text: string, where: string, context: ListContext): ImageRecord {
  let r: Partial<ImageRecord>;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${where}: not valid JSON (${(e as Error).message}); ${context.remedy}`);
  }
  const ok = typeof r === "object" && r !== null &&
    (typeof r.id === "number" || typeof r.id === "string") && typeof r.file === "string" &&
    typeof r.url === "string" && Array.isArray(r.references) &&
    r.references.every((c) => typeof c === "string");
  if (!ok) {
    throw new InputError(
      `${where}: expected {"id", "file", "url", "references": [strings]}, got ${
        text.slice(0, 80)
      }; ${context.remedy}`,
    );
  }
  return r as ImageRecord;
}

/**
 * Writes a split's image list, one JSON line per image.
 * @param path The file to write.
 * @param images The images, in feature row order.
 * @returns Resolves once written.
 *
 * @example
 * ```ts
 * import { writeImageList } from "./image_list.ts";
 * const path = await Deno.makeTempFile();
 * await writeImageList(path, [{ id: 7, file: "7.jpg", url: "7.jpg", references: ["A cat."] }]);
 * console.log(await Deno.readTextFile(path)); // {"id":7,"file":"7.jpg","url":"7.jpg","references":["A cat."]}
 * ```
 */
export async function writeImageList(path: string, images: Iterable<ImageRecord>): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const writer = file.writable.getWriter();
  const encoder = new TextEncoder();
  let batch: string[] = [];
  try {
    for (const { id, file: name, url, references } of images) {
      batch.push(JSON.stringify({ id, file: name, url, references }));
      if (batch.length === 1024) {
        await writer.write(encoder.encode(batch.join("\n") + "\n"));
        batch = [];
      }
    }
    if (batch.length) await writer.write(encoder.encode(batch.join("\n") + "\n"));
  } finally {
    await writer.close();
  }
}
