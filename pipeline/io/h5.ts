/**
 * A small wrapper over h5wasm's Node build (host files opened by path): one-time
 * initialisation, typed dataset reads (whole, or row ranges by hyperslab straight into a
 * caller's array), dataset writes (float32/float64/int32, any shape, optionally chunked and
 * gzip-compressed, or created empty and filled in row blocks), string/JSON attributes, and
 * errors turned into one-line {@linkcode InputError}s naming the file.
 *
 * Dimension letters: N rows (the first dimension), R elements per row (the product of the
 * other dimensions).
 * @module
 */
// The full npm: specifier (same version as deno.json's import map) keeps recap importable from
// a URL, where the importer's import map does not apply.
// deno-lint-ignore no-import-prefix
import type { Dataset as H5Dataset, File as H5RawFile, Metadata } from "npm:h5wasm@0.10.3/node";
import { allocArray, type ArrayOf, type DType, shapeSize, Tensor } from "../../layers/tensor.ts";
import { InputError } from "../errors.ts";

/** The element types {@linkcode H5File} reads and writes as typed arrays. */
export type H5DType = DType;
/** An open mode: read-only, read-write (existing file), or write (create/truncate). */
export type H5Mode = "r" | "a" | "w";

/** HDF5 file-format bounds for a new file (h5wasm's `libver`): one bound, or [low, high]. */
export type H5LibverBounds = LibverBound | [LibverBound, LibverBound];
/** One HDF5 file-format version bound. */
export type LibverBound = "earliest" | "v108" | "v110" | "v112" | "v114" | "v200" | "latest";

/** What a dataset holds, from its metadata (no data read). */
export interface DatasetInfo {
  /** The dataset's path inside the file, e.g. `"features"`. */
  name: string;
  /** `"float32"`, `"float64"`, `"int32"`, or another HDF5 type name (`"uint8"`, `"string"`, ...). */
  dtype: string;
  /** The dimensions, outermost first (`[]` for a scalar). */
  shape: number[];
  /** The chunk dimensions, or null for contiguous storage. */
  chunks: number[] | null;
  /** The filter names in the pipeline, e.g. `["deflate"]`. */
  filters: string[];
}

/** Storage options for a written dataset. */
export interface WriteOptions {
  /** Chunk dimensions (same rank as the shape); required for gzip and for row-block writes. */
  chunks?: number[];
  /** gzip (deflate) level 1-9; implies chunking (one chunk of up to 64 KiB rows by default). */
  gzip?: number;
}

// deno-lint-ignore no-explicit-any
type H5Module = any;
type H5Lib = typeof import("npm:h5wasm@0.10.3/node").default;
/** The h5wasm library (File, Dataset classes), set once initH5() has loaded it. */
let h5wasm: H5Lib;
let modulePromise: Promise<H5Module> | null = null;
let module: H5Module = null;

/**
 * Initialises h5wasm once (later calls return the same promise) and switches HDF5's error
 * printing to thrown errors, so failures never spill diagnostics onto stderr.
 * @returns Resolves when h5wasm is ready.
 *
 * @example
 * ```ts
 * import { initH5 } from "./h5.ts";
 * await initH5();
 * ```
 */
export function initH5(): Promise<void> {
  if (!modulePromise) {
    // Loaded on first use, so importing recap costs nothing (and needs no permission) until
    // an HDF5 file is opened.
    // deno-lint-ignore no-import-prefix
    modulePromise = import("npm:h5wasm@0.10.3/node").then((lib) => {
      h5wasm = lib.default;
      return h5wasm.ready;
    }).then(
      (m: H5Module) => {
        m.activate_throwing_error_handler();
        module = m;
        return m;
      },
    );
  }
  return modulePromise.then(() => {});
}

const ELEMENT_BYTES = { float32: 4, float64: 8, int32: 4 } as const;
const DTYPE_STRINGS = { float32: "<f", float64: "<d", int32: "<i" } as const;
/** Rows per read when a whole dataset is read in blocks: bounds the wasm heap to ~16 MiB. */
const READ_BLOCK_BYTES = 16 << 20;

function dtypeName(m: Metadata): string {
  if (m.type === 0) return `${m.signed ? "int" : "uint"}${m.size * 8}`;
  if (m.type === 1) return `float${m.size * 8}`;
  const names = ["integer", "float", "time", "string", "bitfield", "opaque", "compound"];
  return names[m.type] ?? ["reference", "enum", "vlen", "array"][m.type - 7] ?? "unknown";
}

/** The last HDF5 diagnostic line of an h5wasm error, without the source location. */
function hdf5Reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split("\n").filter((l) => /#\d+:/.test(l));
  const last = lines.length ? lines[lines.length - 1] : text.split("\n")[0];
  const m = last.match(/\):\s*(.*)$/);
  return (m ? m[1] : last).trim();
}

/**
 * Turns any failure inside h5wasm (a thrown HDF5 error, a wasm abort) into an InputError
 * that names the file and what was being done.
 */
function wrapError(path: string, what: string, e: unknown): InputError {
  if (e instanceof InputError) return e;
  const reason = hdf5Reason(e);
  if (/truncated file/.test(reason)) {
    return new InputError(
      `Cannot read ${path}: the file is truncated (${reason}); download or generate it again`,
      { cause: e },
    );
  }
  if (/signature not found/.test(reason)) {
    return new InputError(
      `Cannot read ${path}: not an HDF5 file (no HDF5 signature); check the path points at an .h5 file`,
      { cause: e },
    );
  }
  return new InputError(`Cannot ${what} in ${path}: ${reason}; the file may be damaged`, {
    cause: e,
  });
}

/**
 * An open HDF5 file. Open with {@linkcode H5File.open} (or {@linkcode withH5File}, which
 * always closes); every method throws {@linkcode InputError} naming the file on failure.
 *
 * @example Write a dataset and an attribute, read a row range back
 * ```ts
 * import { H5File } from "./h5.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const path = await Deno.makeTempFile({ suffix: ".h5" });
 * const f = await H5File.open(path, "w");
 * f.write("x", Tensor.fromValues([1, 2, 3, 4, 5, 6], [3, 2], "float32"), { gzip: 4 });
 * f.setJsonAttr("/", "config", { lr: 0.01 });
 * f.close();
 * const g = await H5File.open(path);
 * console.assert(g.readRows("x", 1, 3)[0] === 3);
 * g.close();
 * ```
 */
export class H5File {
  /** The path the file was opened with. */
  readonly path: string;
  /** The open mode. */
  readonly mode: H5Mode;
  #file: H5RawFile | null;
  #info = new Map<string, DatasetInfo>();
  #scratch = 0;
  #scratchBytes = 0;

  private constructor(path: string, mode: H5Mode, file: H5RawFile) {
    this.path = path;
    this.mode = mode;
    this.#file = file;
  }

  /**
   * Opens a file by path. Mode `"r"` and `"a"` need an existing file; `"w"` creates or
   * truncates.
   * @param path The file path on the host filesystem.
   * @param mode `"r"` read-only (default), `"a"` read-write, `"w"` create/truncate.
   * @param options `libver`: the HDF5 format bounds of a new file, e.g. `["v110", "v110"]`
   *   for the faster chunk indexes of HDF5 1.10+ (default: the most compatible format).
   * @returns The open file.
   * @throws InputError when the file is missing, not HDF5, truncated or unreadable.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.close();
   * ```
   */
  static async open(
    path: string,
    mode: H5Mode = "r",
    options: { libver?: H5LibverBounds } = {},
  ): Promise<H5File> {
    await initH5();
    if (mode !== "w") {
      let stat: Deno.FileInfo;
      try {
        stat = await Deno.stat(path);
      } catch {
        throw new InputError(`Cannot open ${path}: the file does not exist; check the path`);
      }
      if (!stat.isFile) throw new InputError(`Cannot open ${path}: not a regular file`);
    }
    let raw: H5RawFile;
    try {
      raw = options.libver
        ? new h5wasm.File(path, mode, { libver: options.libver })
        : new h5wasm.File(path, mode);
    } catch (e) {
      throw wrapError(path, "open the file", e);
    }
    if (raw.file_id < 0n) throw new InputError(`Cannot open ${path}: HDF5 could not open it`);
    return new H5File(path, mode, raw);
  }

  #raw(): H5RawFile {
    if (!this.#file) throw new Error(`Cannot use ${this.path}: the file is closed`);
    return this.#file;
  }

  /**
   * Closes the file (idempotent) and frees the read buffer.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.close();
   * f.close();
   * ```
   */
  close(): void {
    if (!this.#file) return;
    const file = this.#file;
    this.#file = null;
    if (this.#scratch) module._free(this.#scratch);
    this.#scratch = 0;
    try {
      file.close();
    } catch (e) {
      throw wrapError(this.path, "close the file", e);
    }
  }

  /**
   * The names of the members of the root group (or of a group path).
   * @param group A group path (default `"/"`).
   * @returns The member names.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * console.assert(f.keys().length === 0);
   * f.close();
   * ```
   */
  keys(group = "/"): string[] {
    try {
      const g = group === "/" ? this.#raw() : this.#raw().get(group);
      if (!g || !("keys" in g)) return [];
      return (g as H5RawFile).keys();
    } catch (e) {
      throw wrapError(this.path, `list group "${group}"`, e);
    }
  }

  /**
   * Whether a dataset exists at a path.
   * @param name The dataset path.
   * @returns True when a dataset (not a group) is there.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * console.assert(!f.hasDataset("features"));
   * f.close();
   * ```
   */
  hasDataset(name: string): boolean {
    try {
      const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) || "/" : "/";
      const leaf = name.slice(name.lastIndexOf("/") + 1);
      if (!this.keys(parent).includes(leaf)) return false;
      return this.#raw().get(name) instanceof h5wasm.Dataset;
    } catch (e) {
      throw wrapError(this.path, `look up dataset "${name}"`, e);
    }
  }

  /**
   * A dataset's dtype, shape and storage, from its metadata.
   * @param name The dataset path.
   * @returns Its description.
   * @throws InputError when there is no such dataset.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * import { Tensor } from "../../layers/tensor.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("y", Tensor.zeros([2, 3], "int32"));
   * console.assert(f.info("y").dtype === "int32");
   * f.close();
   * ```
   */
  info(name: string): DatasetInfo {
    const cached = this.#info.get(name);
    if (cached) return cached;
    if (!this.hasDataset(name)) {
      throw new InputError(
        `Cannot read ${this.path}: dataset "${name}" is missing (found: ${
          this.keys().join(", ") || "nothing"
        }); check the file is the right one`,
      );
    }
    try {
      const ds = this.#raw().get(name) as H5Dataset;
      const m = ds.metadata;
      const info: DatasetInfo = {
        name,
        dtype: dtypeName(m),
        shape: m.shape ?? [],
        chunks: m.chunks ?? null,
        filters: ds.filters.map((f) => f.name),
      };
      this.#info.set(name, info);
      return info;
    } catch (e) {
      throw wrapError(this.path, `read the metadata of dataset "${name}"`, e);
    }
  }

  /**
   * Checks a dataset's dtype and shape, throwing a one-line InputError if they differ.
   * @param name The dataset path.
   * @param dtype The expected element type.
   * @param shape The expected dimensions; `-1` matches any size.
   * @returns The dataset's description.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * import { Tensor } from "../../layers/tensor.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("y", Tensor.zeros([5, 17], "int32"));
   * console.assert(f.expect("y", "int32", [-1, 17]).shape[0] === 5);
   * f.close();
   * ```
   */
  expect(name: string, dtype: H5DType, shape: number[]): DatasetInfo {
    const info = this.info(name);
    if (info.dtype !== dtype) {
      throw new InputError(
        `Cannot use ${this.path}: dataset "${name}" has dtype ${info.dtype}, expected ${dtype}`,
      );
    }
    const ok = info.shape.length === shape.length &&
      shape.every((d, i) => d < 0 || d === info.shape[i]);
    if (!ok) {
      const want = shape.map((d) => (d < 0 ? "*" : d)).join(", ");
      throw new InputError(
        `Cannot use ${this.path}: dataset "${name}" has shape [${
          info.shape.join(", ")
        }], expected [${want}]`,
      );
    }
    return info;
  }

  #typed(name: string): { info: DatasetInfo; dtype: H5DType; rowElems: number } {
    const info = this.info(name);
    if (!(info.dtype in ELEMENT_BYTES)) {
      throw new InputError(
        `Cannot read ${this.path}: dataset "${name}" has dtype ${info.dtype}, expected float32, float64 or int32`,
      );
    }
    const rowElems = info.shape.length ? shapeSize(info.shape.slice(1)) : 1;
    return { info, dtype: info.dtype as H5DType, rowElems };
  }

  #ensureScratch(bytes: number): number {
    if (bytes > this.#scratchBytes) {
      if (this.#scratch) module._free(this.#scratch);
      this.#scratch = 0;
      this.#scratchBytes = 0;
      const size = Math.max(bytes, 64 << 10);
      const ptr = module._malloc(size);
      if (!ptr) throw new InputError(`Cannot read ${this.path}: out of wasm memory`);
      this.#scratch = ptr;
      this.#scratchBytes = size;
    }
    return this.#scratch;
  }

  /**
   * Reads rows [start, end) of a dataset by a hyperslab, straight into `out` at element
   * offset `outOffset` (no intermediate array). The workhorse of the streaming loader.
   * @param name The dataset path.
   * @param start The first row.
   * @param end One past the last row.
   * @param out The destination, of the dataset's element type.
   * @param outOffset Where in `out` the first element goes (default 0).
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * import { Tensor } from "../../layers/tensor.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("y", Tensor.fromValues([1, 2, 3, 4], [2, 2], "int32"));
   * const out = new Int32Array(4);
   * f.readRowsInto("y", 1, 2, out, 2);
   * console.assert(out[2] === 3 && out[3] === 4);
   * f.close();
   * ```
   */
  readRowsInto(
    name: string,
    start: number,
    end: number,
    out: Float32Array | Float64Array | Int32Array,
    outOffset = 0,
  ): void {
    const { info, dtype, rowElems } = this.#typed(name);
    const rows = info.shape[0] ?? 1;
    if (
      !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end &&
        end <= rows)
    ) {
      throw new RangeError(`Cannot read rows [${start}, ${end}) of "${name}": it has ${rows} rows`);
    }
    const n = (end - start) * rowElems;
    if (
      !(out instanceof { float32: Float32Array, float64: Float64Array, int32: Int32Array }[dtype])
    ) {
      throw new TypeError(`Cannot read "${name}" (${dtype}) into a ${out.constructor.name}`);
    }
    if (outOffset + n > out.length) {
      throw new RangeError(`Cannot read ${n} elements of "${name}" into ${out.length - outOffset}`);
    }
    if (n === 0) return;
    const bytes = n * ELEMENT_BYTES[dtype];
    const blockRows = Math.max(1, Math.floor(READ_BLOCK_BYTES / (rowElems * ELEMENT_BYTES[dtype])));
    const raw = this.#raw();
    for (let r = start; r < end; r += blockRows) {
      const r1 = Math.min(end, r + blockRows);
      const ptr = this.#ensureScratch(Math.min(bytes, (r1 - r) * rowElems * ELEMENT_BYTES[dtype]));
      const count = info.shape.length ? [BigInt(r1 - r), ...info.shape.slice(1).map(BigInt)] : null;
      const offset = info.shape.length ? [BigInt(r), ...info.shape.slice(1).map(() => 0n)] : null;
      const strides = info.shape.length ? info.shape.map(() => 1n) : null;
      try {
        const status = module.get_dataset_data(
          raw.file_id,
          name,
          count,
          offset,
          strides,
          BigInt(ptr),
        );
        if (status < 0) throw new Error(`status ${status}`);
      } catch (e) {
        throw wrapError(this.path, `read rows ${r}-${r1} of dataset "${name}"`, e);
      }
      const len = (r1 - r) * rowElems;
      const heap = module.HEAPU8.buffer as ArrayBuffer;
      const src = dtype === "float32"
        ? new Float32Array(heap, ptr, len)
        : dtype === "float64"
        ? new Float64Array(heap, ptr, len)
        : new Int32Array(heap, ptr, len);
      out.set(src, outOffset + (r - start) * rowElems);
    }
  }

  /**
   * Reads rows [start, end) of a dataset (all rows by default) into a new typed array.
   * @param name The dataset path.
   * @param start The first row (default 0).
   * @param end One past the last row (default: all rows).
   * @returns The elements, row-major.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * import { Tensor } from "../../layers/tensor.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("y", Tensor.fromValues([1, 2, 3], [3], "float64"));
   * console.assert(f.readRows("y", 2)[0] === 3);
   * f.close();
   * ```
   */
  readRows(
    name: string,
    start = 0,
    end?: number,
  ): Float32Array | Float64Array | Int32Array {
    const { info, dtype, rowElems } = this.#typed(name);
    const stop = end ?? (info.shape[0] ?? 1);
    const out = allocArray(dtype, Math.max(0, stop - start) * rowElems);
    this.readRowsInto(name, start, stop, out, 0);
    return out;
  }

  /**
   * Reads a whole dataset as a tensor (in bounded blocks, so the wasm heap stays small),
   * checking its dtype when one is given.
   * @param name The dataset path.
   * @param dtype The expected element type (optional).
   * @returns The dataset as a tensor.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * import { Tensor } from "../../layers/tensor.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("w", Tensor.randn([4, 3], 1, "float32"));
   * console.assert(f.read("w", "float32").shape[1] === 3);
   * f.close();
   * ```
   */
  read<D extends H5DType>(name: string, dtype?: D): Tensor<D> {
    const info = this.info(name);
    if (dtype && info.dtype !== dtype) {
      throw new InputError(
        `Cannot use ${this.path}: dataset "${name}" has dtype ${info.dtype}, expected ${dtype}`,
      );
    }
    return new Tensor(this.readRows(name) as ArrayOf<D>, info.shape);
  }

  /**
   * Writes a dataset from a tensor (or typed array + shape), contiguous by default, or
   * chunked and gzip-compressed.
   * @param name The dataset path (parent groups are created).
   * @param value The data: a Tensor, or `{ data, shape }`.
   * @param options Chunking and compression.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.write("idx", { data: new Int32Array([3, 1, 2]), shape: [3] }, { gzip: 6 });
   * console.assert(f.info("idx").filters[0] === "deflate");
   * f.close();
   * ```
   */
  write(
    name: string,
    value: Tensor | { data: Float32Array | Float64Array | Int32Array; shape: readonly number[] },
    options: WriteOptions = {},
  ): void {
    const t = value instanceof Tensor ? value : new Tensor(value.data, value.shape);
    this.#create(name, t.dtype, [...t.shape], t.data, null, options);
  }

  /**
   * Creates a chunked dataset of a fixed shape without data, to fill in row blocks with
   * {@linkcode H5File.writeRows} (bounded memory for datasets larger than RAM).
   * @param name The dataset path.
   * @param dtype The element type.
   * @param shape The final dimensions.
   * @param options Chunking (default: rows of ~64 KiB) and gzip level.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.createDataset("features", "float32", [10, 4]);
   * f.writeRows("features", 5, new Float32Array(8).fill(1));
   * console.assert(f.readRows("features", 5, 6)[0] === 1);
   * f.close();
   * ```
   */
  createDataset(name: string, dtype: H5DType, shape: number[], options: WriteOptions = {}): void {
    const rowShape = shape.slice(1);
    const chunks = (options.chunks ?? defaultChunks(dtype, shape)).map((c, i) =>
      Math.max(1, Math.min(c, Math.max(shape[i], 1)))
    );
    this.#create(name, dtype, [0, ...rowShape], allocArray(dtype, 0), [null, ...rowShape], {
      ...options,
      chunks,
    });
    try {
      (this.#raw().get(name) as H5Dataset).resize(shape);
    } catch (e) {
      throw wrapError(this.path, `resize dataset "${name}"`, e);
    }
    this.#info.delete(name);
  }

  /**
   * Writes whole rows of an existing dataset starting at row `start`.
   * @param name The dataset path.
   * @param start The first row to write.
   * @param data The rows, row-major; its length must be a multiple of the row size.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.createDataset("c", "int32", [4, 2]);
   * f.writeRows("c", 0, new Int32Array([1, 2, 3, 4]));
   * console.assert(f.readRows("c", 1, 2)[1] === 4);
   * f.close();
   * ```
   */
  writeRows(name: string, start: number, data: Float32Array | Float64Array | Int32Array): void {
    const { info, rowElems } = this.#typed(name);
    const rows = data.length / rowElems;
    if (!Number.isInteger(rows) || start + rows > info.shape[0]) {
      throw new RangeError(
        `Cannot write ${data.length} elements at row ${start} of "${name}" [${info.shape}]`,
      );
    }
    if (rows === 0) return;
    try {
      const ds = this.#raw().get(name) as H5Dataset;
      ds.write_slice([[start, start + rows], ...info.shape.slice(1).map((): [] => [])], data);
    } catch (e) {
      throw wrapError(this.path, `write rows of dataset "${name}"`, e);
    }
  }

  #create(
    name: string,
    dtype: H5DType,
    shape: number[],
    data: Float32Array | Float64Array | Int32Array,
    maxshape: (number | null)[] | null,
    options: WriteOptions,
  ): void {
    if (this.mode === "r") throw new Error(`Cannot write to ${this.path}: opened read-only`);
    let chunks = options.chunks ?? null;
    if (options.gzip !== undefined && !chunks) chunks = defaultChunks(dtype, shape);
    if (chunks) {
      chunks = chunks.map((c, i) =>
        maxshape?.[i] === null ? Math.max(1, c) : Math.max(1, Math.min(c, Math.max(shape[i], 1)))
      );
    }
    try {
      const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
      if (parent) this.#ensureGroup(parent);
      const args: Parameters<H5RawFile["create_dataset"]>[0] = {
        name,
        data,
        shape,
        dtype: DTYPE_STRINGS[dtype],
      };
      if (maxshape) args.maxshape = maxshape;
      if (chunks) args.chunks = chunks;
      if (options.gzip !== undefined) {
        args.compression = "gzip";
        args.compression_opts = options.gzip;
      }
      this.#raw().create_dataset(args);
    } catch (e) {
      throw wrapError(this.path, `write dataset "${name}"`, e);
    }
    this.#info.delete(name);
  }

  #ensureGroup(path: string): void {
    let cur = "";
    for (const part of path.split("/").filter(Boolean)) {
      const parent = cur || "/";
      cur = `${cur}/${part}`;
      if (!this.keys(parent).includes(part)) this.#raw().create_group(cur);
    }
  }

  /**
   * Sets an attribute (a string, a number, or an array of numbers) on the root (`"/"`), a
   * group or a dataset; replaces an existing one.
   * @param path The object path.
   * @param key The attribute name.
   * @param value The value.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.setAttr("/", "iteration", 120);
   * console.assert(f.getAttr("/", "iteration") === 120);
   * f.close();
   * ```
   */
  setAttr(path: string, key: string, value: string | number | number[]): void {
    try {
      const obj = path === "/" ? this.#raw() : this.#raw().get(path);
      if (!obj || !("create_attribute" in obj)) throw new Error(`no object at "${path}"`);
      if (key in obj.attrs) obj.delete_attribute(key);
      if (typeof value === "number") obj.create_attribute(key, value, [], "<d");
      else if (Array.isArray(value)) {
        obj.create_attribute(key, new Float64Array(value), [value.length], "<d");
      } else obj.create_attribute(key, value);
    } catch (e) {
      throw wrapError(this.path, `set attribute "${key}" on "${path}"`, e);
    }
  }

  /**
   * Reads an attribute.
   * @param path The object path (`"/"` for the root).
   * @param key The attribute name.
   * @returns A string, a number, an array of numbers, or undefined when absent.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.setAttr("/", "name", "lstm");
   * console.assert(f.getAttr("/", "name") === "lstm");
   * f.close();
   * ```
   */
  getAttr(path: string, key: string): string | number | number[] | undefined {
    try {
      const obj = path === "/" ? this.#raw() : this.#raw().get(path);
      if (!obj || !("attrs" in obj) || !(key in obj.attrs)) return undefined;
      const v = obj.get_attribute(key, true);
      if (Array.isArray(v)) {
        if (v.length === 1 && typeof v[0] === "string") return v[0];
        return v.map(Number);
      }
      return typeof v === "boolean" ? Number(v) : v as string | number;
    } catch (e) {
      throw wrapError(this.path, `read attribute "${key}" of "${path}"`, e);
    }
  }

  /**
   * Stores a JSON-serialisable value as a string attribute.
   * @param path The object path.
   * @param key The attribute name.
   * @param value Any JSON-serialisable value.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.setJsonAttr("/", "vocab", ["<NULL>", "<START>"]);
   * console.assert((f.getJsonAttr("/", "vocab") as string[])[1] === "<START>");
   * f.close();
   * ```
   */
  setJsonAttr(path: string, key: string, value: unknown): void {
    this.setAttr(path, key, JSON.stringify(value));
  }

  /**
   * Reads a JSON attribute written by {@linkcode H5File.setJsonAttr}.
   * @param path The object path.
   * @param key The attribute name.
   * @returns The parsed value, or undefined when absent.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.setJsonAttr("/", "cfg", { a: 1 });
   * console.assert((f.getJsonAttr("/", "cfg") as { a: number }).a === 1);
   * f.close();
   * ```
   */
  getJsonAttr(path: string, key: string): unknown {
    const v = this.getAttr(path, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      throw new InputError(`Cannot read ${this.path}: attribute "${key}" of "${path}" is not JSON`);
    }
    try {
      return JSON.parse(v);
    } catch {
      throw new InputError(`Cannot read ${this.path}: attribute "${key}" of "${path}" is not JSON`);
    }
  }

  /**
   * Flushes pending writes to disk.
   *
   * @example
   * ```ts
   * import { H5File } from "./h5.ts";
   * const f = await H5File.open(await Deno.makeTempFile(), "w");
   * f.flush();
   * f.close();
   * ```
   */
  flush(): void {
    try {
      this.#raw().flush();
    } catch (e) {
      throw wrapError(this.path, "flush the file", e);
    }
  }
}

/** Default chunk shape: whole rows, about 64 KiB per chunk. */
function defaultChunks(dtype: H5DType, shape: readonly number[]): number[] {
  if (shape.length === 0) return [];
  const rowBytes = shapeSize(shape.slice(1)) * ELEMENT_BYTES[dtype];
  const rows = Math.max(1, Math.floor((64 << 10) / Math.max(rowBytes, 1)));
  return [rows, ...shape.slice(1)];
}

/**
 * Opens a file, runs `fn` on it, and always closes it (also when `fn` throws).
 * @param path The file path.
 * @param mode The open mode (default `"r"`).
 * @param fn What to do with the open file.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import { withH5File } from "./h5.ts";
 * import { Tensor } from "../../layers/tensor.ts";
 * const path = await Deno.makeTempFile({ suffix: ".h5" });
 * await withH5File(path, "w", (f) => f.write("a", Tensor.zeros([2], "float64")));
 * const n = await withH5File(path, "r", (f) => f.info("a").shape[0]);
 * console.assert(n === 2);
 * ```
 */
export async function withH5File<T>(
  path: string,
  mode: H5Mode,
  fn: (file: H5File) => T | Promise<T>,
): Promise<T> {
  const file = await H5File.open(path, mode);
  try {
    return await fn(file);
  } finally {
    file.close();
  }
}
