/**
 * NumPy's `.npy` format, read: the header (format versions 1, 2 and 3) and rows of a
 * little-endian float32 or float64 array in C order, read from disk a block at a time (the
 * file is never held whole). Anything else — another dtype, big-endian bytes, Fortran order,
 * a truncated file — is refused with a message that says how to save it so it can be read.
 *
 * The format (numpy/lib/format.py): the magic `\x93NUMPY`, a major and a minor version byte,
 * the header length (2 bytes little-endian in version 1, 4 bytes in 2 and 3), then the header,
 * a Python dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (5, 512), }`
 * padded with spaces to align the data, then the data.
 *
 * Dimension letters: I rows, D columns (the product of the other dimensions).
 * @module
 */
import { InputError } from "../../errors.ts";

/** The dtypes recap reads, by NumPy's `descr`. */
const DTYPES = { "<f4": "float32", "<f8": "float64" } as const;

/** What a NumPy dtype string is, for messages. */
const DTYPE_NAMES: Record<string, string> = {
  f2: "float16",
  f4: "float32",
  f8: "float64",
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  b1: "bool",
  c8: "complex64",
  c16: "complex128",
  O: "object",
};

/** The header of an `.npy` file. */
export interface NpyHeader {
  /** The format version, `[major, minor]`. */
  version: [number, number];
  /** The element type (only these two are read). */
  dtype: "float32" | "float64";
  /** The array's shape. */
  shape: number[];
  /** Where the data starts, in bytes. */
  dataOffset: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Whether bytes start like an `.npy` file.
 * @param head The first bytes of a file (at least 6).
 * @returns True for the `\x93NUMPY` magic.
 *
 * @example
 * ```ts
 * import { isNpy } from "./npy.ts";
 * console.log(isNpy(new Uint8Array([0x93, 78, 85, 77, 80, 89, 1, 0]))); // true
 * ```
 */
export function isNpy(head: Uint8Array): boolean {
  return MAGIC.every((b, i) => head[i] === b);
}

/**
 * Parses an `.npy` header.
 * @param bytes The file's first bytes (enough to hold the header; 64 KiB always is).
 * @param path The file, for messages.
 * @returns The header.
 * @throws InputError naming the file when it is not an `.npy` file, or holds something recap
 *   does not read (another dtype, big-endian data, Fortran order).
 *
 * @example
 * ```ts
 * import { parseNpyHeader } from "./npy.ts";
 * const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }";
 * const text = dict.padEnd(118, " ") + "\n";
 * const bytes = new Uint8Array(10 + text.length);
 * bytes.set([0x93, 78, 85, 77, 80, 89, 1, 0, text.length, 0]);
 * bytes.set(new TextEncoder().encode(text), 10);
 * console.log(parseNpyHeader(bytes, "x.npy")); // { version: [1, 0], dtype: "float32", shape: [3, 2], dataOffset: 128 }
 * ```
 */
export function parseNpyHeader(bytes: Uint8Array, path: string): NpyHeader {
  const where = `${path}: `;
  if (bytes.length < 10 || !isNpy(bytes)) {
    throw new InputError(
      `${where}not a NumPy .npy file (no \\x93NUMPY magic); save it with np.save`,
    );
  }
  const major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3) {
    throw new InputError(
      `${where}.npy format version ${major}.${minor} is not one recap reads (1, 2 or 3)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = major === 1 ? 10 : 12;
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (start + length > bytes.length) {
    throw new InputError(`${where}the .npy header is cut short (the file is truncated)`);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, start + length),
  );
  const field = (name: string, pattern: string) =>
    new RegExp(`['"]${name}['"]\\s*:\\s*${pattern}`).exec(header)?.[1];
  const descr = field("descr", `['"]([^'"]*)['"]`);
  const fortran = field("fortran_order", "(True|False)");
  const shapeText = field("shape", "\\(([^)]*)\\)");
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InputError(
      `${where}the .npy header ${JSON.stringify(header.trim())} is not a plain array's ` +
        `(structured dtypes are not read); save a plain float32 array`,
    );
  }
  const dtype = DTYPES[descr as keyof typeof DTYPES];
  if (dtype === undefined) {
    const kind = descr.replace(/^[<>|=]/, "");
    const name = DTYPE_NAMES[kind] ?? descr;
    const order = descr.startsWith(">") && DTYPE_NAMES[kind] ? "big-endian " : "";
    throw new InputError(
      `${where}dtype ${descr} (${order}${name}): expected float32 (<f4) or float64 (<f8); ` +
        `convert it with np.save(path, a.astype("<f4"))`,
    );
  }
  if (fortran === "True") {
    throw new InputError(
      `${where}fortran_order is True: expected a C-ordered array; save it with ` +
        `np.save(path, np.ascontiguousarray(a))`,
    );
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new InputError(`${where}the .npy shape (${shapeText}) is not a list of sizes`);
  }
  return { version: [major, minor], dtype, shape, dataOffset: start + length };
}

/** Bytes read at a time when rows are converted from float64 (bounds memory). */
const BLOCK_BYTES = 8 << 20;

/**
 * An open `.npy` file of float32 or float64, read by rows into float32 (float64 values are
 * rounded to the nearest float32, as `a.astype(np.float32)` does).
 *
 * @example
 * ```ts ignore
 * import { NpyFile } from "./npy.ts";
 * const f = await NpyFile.open("features.npy");
 * const rows = new Float32Array(2 * f.rowSize);
 * await f.readRows(0, 2, rows);
 * f.close();
 * ```
 */
export class NpyFile {
  /** The path it was opened with. */
  readonly path: string;
  /** The header. */
  readonly header: NpyHeader;
  /** Elements per row (the product of the dimensions after the first; the size of a 1-D array's only row). */
  readonly rowSize: number;
  /** Rows: the first dimension (1 for a 1-D array). */
  readonly rows: number;
  #file: Deno.FsFile | null;
  #scratch = new Uint8Array(0);

  private constructor(path: string, file: Deno.FsFile, header: NpyHeader) {
    this.path = path;
    this.#file = file;
    this.header = header;
    const { shape } = header;
    this.rows = shape.length === 0 ? 1 : shape.length === 1 ? 1 : shape[0];
    this.rowSize = shape.length <= 1 ? (shape[0] ?? 1) : shape.slice(1).reduce((a, b) => a * b, 1);
  }

  /**
   * Opens an `.npy` file and checks its header and its size.
   * @param path The file.
   * @returns The open file.
   * @throws InputError naming the file when it is missing, not `.npy`, of another dtype or
   *   order, or shorter than its header says.
   */
  static async open(path: string): Promise<NpyFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new InputError(`${path}: the file does not exist; check the path`);
      }
      throw e;
    }
    try {
      const stat = await file.stat();
      if (!stat.isFile) throw new InputError(`${path}: not a regular file`);
      const head = new Uint8Array(Math.min(stat.size, 1 << 16));
      await readFull(file, head, path);
      const header = parseNpyHeader(head, path);
      const npy = new NpyFile(path, file, header);
      const itemBytes = header.dtype === "float32" ? 4 : 8;
      const want = header.dataOffset + npy.rows * npy.rowSize * itemBytes;
      if (stat.size < want) {
        throw new InputError(
          `${path}: the file is truncated: its header says shape (${header.shape.join(", ")}), ` +
            `${want} bytes, but it has ${stat.size}; save it again`,
        );
      }
      return npy;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Reads rows [start, end) into `out` as float32, row-major.
   * @param start The first row.
   * @param end One past the last row.
   * @param out At least `(end - start) * rowSize` elements.
   * @returns Resolves once read.
   */
  async readRows(start: number, end: number, out: Float32Array): Promise<void> {
    if (!this.#file) throw new Error(`Cannot read ${this.path}: it is closed`);
    if (
      !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end &&
        end <= this.rows)
    ) {
      throw new RangeError(
        `Cannot read rows [${start}, ${end}) of ${this.path}: it has ${this.rows}`,
      );
    }
    const n = (end - start) * this.rowSize;
    if (out.length < n) throw new RangeError(`Cannot read ${n} elements into ${out.length}`);
    const file = this.#file;
    if (this.header.dtype === "float32") {
      await file.seek(this.header.dataOffset + start * this.rowSize * 4, Deno.SeekMode.Start);
      // Little-endian float32 on a little-endian host: the bytes are the values.
      await readFull(file, new Uint8Array(out.buffer, out.byteOffset, n * 4), this.path);
      return;
    }
    await file.seek(this.header.dataOffset + start * this.rowSize * 8, Deno.SeekMode.Start);
    const block = Math.max(1, Math.floor(BLOCK_BYTES / 8));
    if (this.#scratch.length < Math.min(n, block) * 8) {
      this.#scratch = new Uint8Array(Math.min(n, block) * 8);
    }
    for (let i = 0; i < n; i += block) {
      const m = Math.min(block, n - i);
      const bytes = this.#scratch.subarray(0, m * 8);
      await readFull(file, bytes, this.path);
      out.set(new Float64Array(bytes.buffer, 0, m), i);
    }
  }

  /** Closes the file (idempotent). */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/** Fills `buf` from the file's position, looping over short reads. */
async function readFull(file: Deno.FsFile, buf: Uint8Array, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const got = await file.read(buf.subarray(done));
    if (got === null) {
      throw new InputError(`${path}: the file is truncated (${buf.length - done} bytes short)`);
    }
    done += got;
  }
}
