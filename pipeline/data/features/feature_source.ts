/**
 * Image features to import or caption, whatever file they come in, read a block of rows at a
 * time as float32 (never the whole matrix):
 *
 * - a 2-D `.npy` file (float32 or float64, C order), as `np.save` writes it;
 * - a 2-D dataset of an HDF5 file (float32 or float64; `dataset` names it, else the file's
 *   only 2-D dataset, or the one called `features`);
 * - a directory with one `.npy` per image (shape `(D,)` or `(1, D)`), named by the image's id
 *   or its file name's stem — the layout self-critical.pytorch's feature extraction writes.
 *
 * The format is found from the path (a directory) or the file's first bytes, not its name.
 * Every value read is checked finite: NaN or Inf is an error naming the file and the row.
 *
 * Dimension letters: I rows (images), D feature dimension.
 * @module
 */
import { basename, extname, join } from "node:path";
import { InputError } from "../../errors.ts";
import { checkFiniteFeatures } from "../dataset_checks.ts";
import { H5File } from "../../io/h5.ts";
import { isNpy, NpyFile } from "./npy.ts";

/** Rows of image features, read in blocks. */
export interface FeatureSource {
  /** What messages call it: the path (and the HDF5 dataset). */
  readonly name: string;
  /** I, the rows. */
  readonly rows: number;
  /** D, the width of a row. */
  readonly dim: number;
  /** The rows' own names, when the source has them: a directory's file names without `.npy`. */
  readonly rowNames?: readonly string[];
  /**
   * Reads rows [start, end) into `out` as float32, row-major, checking every value is finite.
   * @throws InputError naming the file and the row of a NaN or Inf.
   */
  readRows(start: number, end: number, out: Float32Array): Promise<void>;
  /** Closes the files (idempotent). */
  close(): void;
}

/** Options of {@linkcode openFeatures}. */
export interface OpenFeaturesOptions {
  /** The dataset inside an HDF5 file (default: its only 2-D dataset, or `features`). */
  dataset?: string;
  /**
   * For a directory: the names each row's file may have (without `.npy`), tried in order, e.g.
   * `[["391895", "COCO_val2014_000000391895"], …]`. Without it, every `.npy` file of the
   * directory is a row, in name order.
   */
  rowNames?: readonly (readonly string[])[];
  /** What to call the option that gave the dataset, for messages (default `dataset`). */
  datasetOption?: string;
}

/**
 * Opens image features: a `.npy` file, an HDF5 file's dataset, or a directory of per-image
 * `.npy` files.
 * @param path The file or directory.
 * @param options The HDF5 dataset, or the file names of a directory's rows.
 * @returns The open source.
 * @throws InputError naming the file when it is missing, of an unknown format, not 2-D,
 *   of another dtype, or (a directory) lacks a row's file.
 *
 * @example
 * ```ts
 * import { openFeatures } from "./feature_source.ts";
 * import { H5File } from "../../io/h5.ts";
 * import { Tensor } from "../../../layers/tensor.ts";
 * const path = await Deno.makeTempFile({ suffix: ".h5" });
 * const f = await H5File.open(path, "w");
 * f.write("fc7", Tensor.fromValues([1, 2, 3, 4, 5, 6], [3, 2], "float64"));
 * f.close();
 * const features = await openFeatures(path);
 * const out = new Float32Array(2);
 * await features.readRows(2, 3, out);
 * console.log(features.rows, features.dim, out); // 3 2 Float32Array [5, 6]
 * features.close();
 * ```
 */
export async function openFeatures(
  path: string,
  options: OpenFeaturesOptions = {},
): Promise<FeatureSource> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    throw new InputError(`${path}: the features file does not exist; check the path`);
  }
  const datasetOption = options.datasetOption ?? "dataset";
  if (stat.isDirectory) {
    if (options.dataset !== undefined) {
      throw new InputError(`${path}: ${datasetOption} is for HDF5 files, not a directory of .npy`);
    }
    return await NpyDirectory.open(path, options.rowNames);
  }
  const head = new Uint8Array(8);
  const file = await Deno.open(path);
  try {
    await file.read(head);
  } finally {
    file.close();
  }
  if (isNpy(head)) {
    if (options.dataset !== undefined) {
      throw new InputError(`${path}: ${datasetOption} is for HDF5 files, not a .npy file`);
    }
    return await NpyMatrix.open(path);
  }
  if (head[0] === 0x89 && head[1] === 0x48 && head[2] === 0x44 && head[3] === 0x46) {
    return await H5Matrix.open(path, options.dataset, datasetOption);
  }
  throw new InputError(
    `${path}: not a .npy or HDF5 file; features must be a 2-D .npy file (np.save), an HDF5 ` +
      `dataset, or a directory of per-image .npy files`,
  );
}

/** The error for an array that is not (images, D). */
function notMatrix(name: string, shape: readonly number[]): InputError {
  return new InputError(
    `${name}: shape (${shape.join(", ")}): expected a 2-D (images, D) array of features`,
  );
}

/** A 2-D `.npy` file. */
class NpyMatrix implements FeatureSource {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  #npy: NpyFile;

  private constructor(npy: NpyFile) {
    this.#npy = npy;
    this.name = npy.path;
    this.rows = npy.rows;
    this.dim = npy.rowSize;
  }

  static async open(path: string): Promise<NpyMatrix> {
    const npy = await NpyFile.open(path);
    if (npy.header.shape.length !== 2) {
      npy.close();
      throw notMatrix(path, npy.header.shape);
    }
    return new NpyMatrix(npy);
  }

  async readRows(start: number, end: number, out: Float32Array): Promise<void> {
    await this.#npy.readRows(start, end, out);
    checkFiniteFeatures(
      out.subarray(0, (end - start) * this.dim),
      this.dim,
      this.name,
      (r) => start + r,
    );
  }

  close(): void {
    this.#npy.close();
  }
}

/** A 2-D float dataset of an HDF5 file. */
class H5Matrix implements FeatureSource {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  #file: H5File;
  #dataset: string;
  #float64: boolean;
  #scratch = new Float64Array(0);

  private constructor(file: H5File, dataset: string, shape: number[], float64: boolean) {
    this.#file = file;
    this.#dataset = dataset;
    this.#float64 = float64;
    this.name = `${file.path} (dataset "${dataset}")`;
    [this.rows, this.dim] = shape;
  }

  static async open(path: string, dataset: string | undefined, option: string): Promise<H5Matrix> {
    const file = await H5File.open(path);
    try {
      const name = dataset ?? defaultDataset(file, option);
      if (!file.hasDataset(name)) {
        throw new InputError(
          `${path}: ${option}: no dataset "${name}" (found: ${file.keys().join(", ") || "none"})`,
        );
      }
      const info = file.info(name);
      if (info.dtype !== "float32" && info.dtype !== "float64") {
        throw new InputError(
          `${path}: dataset "${name}" has dtype ${info.dtype}: expected float32 or float64 features`,
        );
      }
      if (info.shape.length !== 2) throw notMatrix(`${path} (dataset "${name}")`, info.shape);
      return new H5Matrix(file, name, info.shape, info.dtype === "float64");
    } catch (e) {
      file.close();
      throw e;
    }
  }

  readRows(start: number, end: number, out: Float32Array): Promise<void> {
    const n = (end - start) * this.dim;
    if (this.#float64) {
      if (this.#scratch.length < n) this.#scratch = new Float64Array(n);
      this.#file.readRowsInto(this.#dataset, start, end, this.#scratch);
      out.set(this.#scratch.subarray(0, n));
    } else {
      this.#file.readRowsInto(this.#dataset, start, end, out);
    }
    checkFiniteFeatures(out.subarray(0, n), this.dim, this.name, (r) => start + r);
    return Promise.resolve();
  }

  close(): void {
    this.#file.close();
  }
}

/** The dataset to read when none is named: `features`, else the only 2-D one at the root. */
function defaultDataset(file: H5File, option: string): string {
  if (file.hasDataset("features")) return "features";
  const matrices = file.keys().filter((k) => file.hasDataset(k) && file.info(k).shape.length === 2);
  if (matrices.length === 1) return matrices[0];
  throw new InputError(
    `${file.path}: which dataset holds the features? pass ${option} NAME (2-D datasets: ${
      matrices.join(", ") || "none"
    })`,
  );
}

/** A directory of one `.npy` per image; row i is the first existing file of its names. */
class NpyDirectory implements FeatureSource {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  readonly rowNames: readonly string[];
  /** The file of each row. */
  readonly files: string[];

  private constructor(dir: string, files: string[], dim: number) {
    this.name = dir;
    this.files = files;
    this.rows = files.length;
    this.dim = dim;
    this.rowNames = files.map((f) => basename(f, ".npy"));
  }

  static async open(
    dir: string,
    rowNames: readonly (readonly string[])[] | undefined,
  ): Promise<NpyDirectory> {
    const present = new Set<string>();
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".npy") && !e.isDirectory) present.add(e.name.slice(0, -4));
    }
    const files = rowNames
      ? rowNames.map((names, row) => {
        const found = names.find((n) => present.has(n));
        if (found === undefined) {
          throw new InputError(
            `${dir}: no features for row ${row}: none of ${
              names.map((n) => `${n}.npy`).join(", ")
            } exists; every image needs its .npy file`,
          );
        }
        return join(dir, `${found}.npy`);
      })
      : [...present].sort().map((n) => join(dir, `${n}.npy`));
    if (files.length === 0) {
      throw new InputError(`${dir}: no .npy files; expected one per image, named by image id`);
    }
    const first = await NpyDirectory.#row(files[0], -1);
    first.close();
    return new NpyDirectory(dir, files, first.rowSize);
  }

  /** Opens one image's file, checking it holds one row (of `dim` values, when known). */
  static async #row(path: string, dim: number): Promise<NpyFile> {
    const npy = await NpyFile.open(path);
    const { shape } = npy.header;
    const oneRow = shape.length === 1 || (shape.length === 2 && shape[0] === 1);
    if (!oneRow || (dim >= 0 && npy.rowSize !== dim)) {
      npy.close();
      throw new InputError(
        `${path}: shape (${shape.join(", ")}): expected one image's features, (${
          dim >= 0 ? dim : "D"
        },) or (1, ${dim >= 0 ? dim : "D"})`,
      );
    }
    return npy;
  }

  async readRows(start: number, end: number, out: Float32Array): Promise<void> {
    for (let r = start; r < end; r++) {
      const npy = await NpyDirectory.#row(this.files[r], this.dim);
      try {
        const row = out.subarray((r - start) * this.dim, (r - start + 1) * this.dim);
        await npy.readRows(0, 1, row);
        checkFiniteFeatures(row, this.dim, npy.path);
      } finally {
        npy.close();
      }
    }
  }

  close(): void {}
}

/**
 * The file names (without `.npy`) an image's features may have in a directory: its id, its
 * file name, and its file name's stem.
 * @param id The image id (or an `--ids` line).
 * @param file The image's file name, when known.
 * @returns The names to try, in order, without repeats.
 *
 * @example
 * ```ts
 * import { featureFileNames } from "./feature_source.ts";
 * console.log(featureFileNames(391895, "val2014/COCO_val2014_000000391895.jpg"));
 * // ["391895", "COCO_val2014_000000391895.jpg", "COCO_val2014_000000391895"]
 * ```
 */
export function featureFileNames(id: number | string, file?: string): string[] {
  const names = [String(id)];
  for (const f of file === undefined ? [String(id)] : [String(id), file]) {
    const base = basename(f);
    names.push(base, base.slice(0, base.length - extname(base).length));
  }
  return [...new Set(names.filter((n) => n !== ""))];
}
