/**
 * The WebAssembly SIMD128 backend: the portable fast path when FFI is not allowed or no BLAS is
 * installed. The module is generated from TypeScript ({@link ./wasm_gemm.ts}) and compiled
 * synchronously at load; float32 and float64 both run SIMD micro-kernels (f32x4 and f64x2).
 * Each call copies A, B (and C unless beta = 0) into the module's memory, which grows as needed
 * and is reused across calls, then copies C back: O(n²) copying around O(n³) work.
 * @module
 */
import type { FloatArray } from "../tensor.ts";
import { checkedGemm, scaleC } from "./check.ts";
import type { Kernels } from "./types.ts";
import { assemble, Func, op } from "./wasm_asm.ts";
import { gemmModuleBytes, type TileConfig, TILES } from "./wasm_gemm.ts";

/** Cache-blocking sizes in elements: MC rows of A, KC (the shared dimension), NC columns of B. */
export interface BlockSizes {
  /** Rows of op(A) packed per block (rounded up to the tile's rows). */
  mc: number;
  /** Depth of one packed block. */
  kc: number;
  /** Columns of op(B) packed per block (rounded up to the tile's columns). */
  nc: number;
}

/**
 * Block sizes per element type, tuned on a 48 KiB L1 / 2 MiB L2 core (Sapphire Rapids).
 * @example
 * ```ts
 * import { DEFAULT_BLOCKS, loadWasmKernels } from "./wasm.ts";
 * const wasm = loadWasmKernels({ blocks: { f32: { kc: DEFAULT_BLOCKS.f32.kc * 2 } } });
 * ```
 */
export const DEFAULT_BLOCKS: { f32: BlockSizes; f64: BlockSizes } = {
  f32: { mc: 72, kc: 512, nc: 2048 },
  f64: { mc: 96, kc: 192, nc: 1024 },
};

/** Options for {@linkcode loadWasmKernels}. */
export interface WasmOptions {
  /** Use relaxed SIMD fused multiply-add if the engine supports it (default true). */
  relaxed?: boolean;
  /** Override the cache-blocking sizes. */
  blocks?: { f32?: Partial<BlockSizes>; f64?: Partial<BlockSizes> };
  /** Up to how many rows of op(A) an untransposed B is read in place, not packed (default 32). */
  directRows?: number;
  /** Override the register tiles (for tuning; nr must be a multiple of the vector lanes). */
  tiles?: { f32?: TileConfig; f64?: TileConfig };
}

/** The wasm backend, with what it runs on. */
export interface WasmKernels extends Kernels {
  /** Whether the micro-kernels use relaxed SIMD fused multiply-add. */
  readonly relaxed: boolean;
  /** The module memory's current size in bytes. */
  memoryBytes(): number;
}

type GemmExport = (
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
  ldc: number,
  packA: number,
  packB: number,
  tile: number,
  mc: number,
  kc: number,
  nc: number,
  overwrite: number,
  direct: number,
) => void;

/** Whether the engine has relaxed SIMD: validates a one-function module using relaxed_madd. */
function relaxedSupported(): boolean {
  const probe = new Func([]);
  probe.body = op.drop(op.f32x4RelaxedMadd(op.v128Zero(), op.v128Zero(), op.v128Zero()));
  return WebAssembly.validate(assemble([probe], {}, 0));
}

/**
 * Compiles the wasm backend (synchronously).
 * @param options Relaxed SIMD on or off, block sizes.
 * @returns The wasm kernels.
 * @throws {Error} If this engine has no WebAssembly SIMD128.
 *
 * @example
 * ```ts
 * import { loadWasmKernels } from "./wasm.ts";
 * const wasm = loadWasmKernels();
 * const c = new Float32Array(1);
 * wasm.gemm(false, false, 1, 1, 1, 1, new Float32Array([2]), 0, 1, new Float32Array([3]), 0, 1, 0, c, 0, 1);
 * console.log(c[0]); // 6
 * ```
 */
export function loadWasmKernels(options: WasmOptions = {}): WasmKernels {
  if (typeof WebAssembly !== "object") {
    throw new Error("Cannot load the wasm backend: this runtime has no WebAssembly");
  }
  const relaxed = (options.relaxed ?? true) && relaxedSupported();
  const tiles = { f32: options.tiles?.f32 ?? TILES.f32, f64: options.tiles?.f64 ?? TILES.f64 };
  const bytes = gemmModuleBytes(relaxed, tiles);
  if (!WebAssembly.validate(bytes)) {
    throw new Error(
      "Cannot load the wasm backend: this engine does not support WebAssembly SIMD128",
    );
  }
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const memory = instance.exports.memory as WebAssembly.Memory;
  const sgemm = instance.exports.sgemm as GemmExport;
  const dgemm = instance.exports.dgemm as GemmExport;
  const blocks = {
    f32: { ...DEFAULT_BLOCKS.f32, ...options.blocks?.f32 },
    f64: { ...DEFAULT_BLOCKS.f64, ...options.blocks?.f64 },
  };
  const directRows = options.directRows ?? 32;
  let f32 = new Float32Array(memory.buffer);
  let f64 = new Float64Array(memory.buffer);

  function ensure(bytes: number): void {
    const have = memory.buffer.byteLength;
    if (bytes <= have) return;
    if (bytes > 2 ** 32) {
      throw new RangeError(
        `Cannot run gemm: the wasm backend needs ${bytes} bytes of memory, more than 4 GiB`,
      );
    }
    // Grow geometrically so a slowly growing workload does not regrow every call.
    const pages = Math.min(
      65536,
      Math.max(Math.ceil(bytes / 65536), Math.ceil((have * 1.5) / 65536)),
    );
    try {
      memory.grow(pages - have / 65536);
    } catch (e) {
      throw new RangeError(
        `Cannot run gemm: the wasm backend could not grow its memory to ${bytes} bytes: ${
          (e as Error).message
        }`,
      );
    }
    f32 = new Float32Array(memory.buffer);
    f64 = new Float64Array(memory.buffer);
  }

  return {
    name: "wasm",
    relaxed,
    memoryBytes: () => memory.buffer.byteLength,
    gemm: checkedGemm((tA, tB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc) => {
      const single = c instanceof Float32Array;
      const es = single ? 4 : 8;
      const tile = single ? tiles.f32 : tiles.f64;
      const block = single ? blocks.f32 : blocks.f64;
      // Balanced blocks: ceil(k / KC) blocks of nearly equal depth, and so on.
      const kc = Math.ceil(k / Math.ceil(k / block.kc));
      const mc = roundUp(Math.ceil(m / Math.ceil(m / block.mc)), tile.mr);
      const nc = roundUp(Math.ceil(n / Math.ceil(n / block.nc)), tile.nr);
      const [aRows, aCols] = tA ? [k, m] : [m, k];
      const [bRows, bCols] = tB ? [n, k] : [k, n];
      // Few rows of A: each B panel serves only a few tiles, so packing B costs more than it
      // saves; the kernel then reads op(B) = B in place (its rows are contiguous).
      const direct = !tB && m <= directRows;
      // Layout: tile | packed A | packed B | A | B | C, each 64-byte aligned.
      const tileAt = 0;
      const packAAt = roundUp(tile.mr * tile.nr * es, 64);
      const packBAt = packAAt + roundUp(mc * kc * es, 64);
      const aAt = packBAt + roundUp(kc * nc * es, 64);
      const bAt = aAt + roundUp(aRows * aCols * es, 64);
      const cAt = bAt + roundUp(bRows * bCols * es, 64);
      // + 64: reading B in place, an edge tile's vectors may run up to NR - 1 elements past B's
      // last row (into C, or this slack); those lanes are never stored.
      ensure(cAt + m * n * es + 64);
      const view = single ? f32 : f64;
      copyIn(a, aOff, lda, aRows, aCols, view, aAt / es);
      copyIn(b, bOff, ldb, bRows, bCols, view, bAt / es);
      // beta = 0: the kernel's first k block overwrites C, so C is neither copied in nor cleared.
      if (beta !== 0) {
        copyIn(c, cOff, ldc, m, n, view, cAt / es);
        if (beta !== 1) scaleC(1, m * n, beta, view, cAt / es, m * n);
      }
      (single ? sgemm : dgemm)(
        tA ? 1 : 0,
        tB ? 1 : 0,
        m,
        n,
        k,
        alpha,
        aAt,
        aCols,
        bAt,
        bCols,
        cAt,
        n,
        packAAt,
        packBAt,
        tileAt,
        mc,
        kc,
        nc,
        beta === 0 ? 1 : 0,
        direct ? 1 : 0,
      );
      copyOut(view, cAt / es, m, n, c, cOff, ldc);
    }),
  };
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Copies a rows x cols matrix at (src, offset, ld) to dst[at..] with its rows packed. */
function copyIn(
  src: FloatArray,
  offset: number,
  ld: number,
  rows: number,
  cols: number,
  dst: FloatArray,
  at: number,
): void {
  if (ld === cols) {
    dst.set(src.subarray(offset, offset + rows * cols), at);
    return;
  }
  for (let i = 0; i < rows; i++) {
    dst.set(src.subarray(offset + i * ld, offset + i * ld + cols), at + i * cols);
  }
}

/** Copies the packed m x n matrix at src[at..] to (dst, offset, ld). */
function copyOut(
  src: FloatArray,
  at: number,
  m: number,
  n: number,
  dst: FloatArray,
  offset: number,
  ld: number,
): void {
  if (ld === n) {
    dst.set(src.subarray(at, at + m * n), offset);
    return;
  }
  for (let i = 0; i < m; i++) dst.set(src.subarray(at + i * n, at + (i + 1) * n), offset + i * ld);
}
