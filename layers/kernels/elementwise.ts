/**
 * Elementwise kernels: the recurrent cells' math (the vanilla RNN's activation, the LSTM and
 * the GRU cell, forward and backward) and softmax rows, on (array, offset) ranges. This is their
 * one implementation: the layers (`rnn.ts`, `lstm.ts`, `gru.ts`) run the plain `Math` loops below, the fused
 * training step and the decoders run an arena's kernels, which are these loops too or, for
 * float32, WebAssembly SIMD (`elementwise_wasm.ts`, a backend as BLAS is for gemm). An arena
 * hands out the work arrays the kernels run on.
 *
 * Dimension legend: H hidden (the LSTM's gates are 4H wide, the GRU's 3H), V vocabulary.
 * @module
 */
import { type Activation, sigmoid } from "../activations.ts";
import type { FloatArray, FloatDType } from "../tensor.ts";

/** The elementwise kernels; all work in place on `a[off …]`. */
export interface ElementwiseKernels {
  /** "ts" (plain Math) or "wasm" (SIMD polynomials, float32). */
  readonly name: "ts" | "wasm";
  /** a[off … off+len) = exp(a). */
  exp(a: FloatArray, off: number, len: number): void;
  /** a[off … off+len) = sigmoid(a). */
  sigmoid(a: FloatArray, off: number, len: number): void;
  /** a[off … off+len) = tanh(a). */
  tanh(a: FloatArray, off: number, len: number): void;
  /** a[off … off+len) = act(a), the vanilla RNN's activation (tanh or sigmoid). */
  activate(a: FloatArray, off: number, len: number, activation: Activation): void;
  /**
   * The activation's backward over `len` elements: out = dout ⊙ act'(a), written with the
   * activation's output y: tanh' = 1 - y², σ' = y (1 - y). `out` may be `dout` itself.
   */
  activationBackward(
    dout: FloatArray,
    dOff: number,
    y: FloatArray,
    yOff: number,
    out: FloatArray,
    outOff: number,
    len: number,
    activation: Activation,
  ): void;
  /**
   * The LSTM cell forward over `rows` rows: gates (rows, 4H) at g[gOff] hold the
   * pre-activations i, f, o, g and are activated in place; then c = f ⊙ prevC + i ⊙ g,
   * tanhC = tanh(c), h = o ⊙ tanhC, all (rows, H) at offset `outOff`. prevC (rows, H) at
   * `pOff`, or null for a zero initial cell. `units` (default H) limits each row to its first
   * units (with the offsets shifted by j0: units j0 … j0 + units of every gate), so a team of
   * workers can each run a block of hidden units.
   */
  lstmCell(
    g: FloatArray,
    gOff: number,
    prevC: FloatArray | null,
    pOff: number,
    c: FloatArray,
    tanhC: FloatArray,
    h: FloatArray,
    outOff: number,
    rows: number,
    hd: number,
    units?: number,
  ): void;
  /**
   * The LSTM cell backward over `rows` rows. Gates (activated) and dA are (rows, 4H) at
   * `gOff`; dh and tanhC (rows, H) at `hOff`; dc (rows, H) at `dcOff` holds dnext_c on entry
   * and dprev_c on exit; prevC (rows, H) at `pOff`, or null for a zero initial cell:
   *   dc += dh o (1 - tanh_c²); da_i = dc g i(1-i), da_f = dc prev_c f(1-f),
   *   da_o = dh tanh_c o(1-o), da_g = dc i (1-g²); dprev_c = dc f
   * `units` (default H) limits each row to its first units, as for `lstmCell`.
   */
  lstmCellBackward(
    g: FloatArray,
    gOff: number,
    dh: FloatArray,
    dc: FloatArray,
    dcOff: number,
    prevC: FloatArray | null,
    pOff: number,
    tanhC: FloatArray,
    hOff: number,
    dA: FloatArray,
    rows: number,
    hd: number,
    units?: number,
  ): void;
  /**
   * The GRU cell forward over `rows` rows (gates r, z, n, each H wide, as PyTorch's `nn.GRU`).
   * On entry the gates (rows, 3H) at `g[gOff]` hold the input projections a_x = x · Wx + bx and
   * `ah` (rows, 3H) at the same offset the recurrent ones a_h = prev_h · Wh + bh; on exit the
   * gates hold r, z, n (a_h is kept: the backward pass reads its n part):
   *   r = σ(a_x[r] + a_h[r]), z = σ(a_x[z] + a_h[z]), n = tanh(a_x[n] + r ⊙ a_h[n]),
   *   h = (1 - z) ⊙ n + z ⊙ prev_h
   * prevH (rows, H) at `pOff`; h (rows, H) at `hOff`. `units` (default H) limits each row to
   * its first units, as for `lstmCell`.
   */
  gruCell(
    g: FloatArray,
    ah: FloatArray,
    gOff: number,
    prevH: FloatArray,
    pOff: number,
    h: FloatArray,
    hOff: number,
    rows: number,
    hd: number,
    units?: number,
  ): void;
  /**
   * The GRU cell backward over `rows` rows. The gates r, z, n (activated), a_h and the
   * pre-activation gradients dAx, dAh are (rows, 3H) at `gOff`; dh (rows, H) at `hOff`;
   * prevH (rows, H) at `pOff`; dPrev (rows, H) at `dpOff` is accumulated into:
   *   dn = dh (1 - z) (1 - n²), dz = dh (prev_h - n) z (1 - z), dr = dn a_h[n] r (1 - r);
   *   dAx = [dr, dz, dn], dAh = [dr, dz, dn ⊙ r]; dPrev += dh ⊙ z
   * (the rest of dprev_h, dAh · Whᵀ, is the caller's GEMM). `units` (default H) limits each
   * row to its first units, as for `lstmCell`.
   */
  gruCellBackward(
    g: FloatArray,
    ah: FloatArray,
    dAx: FloatArray,
    dAh: FloatArray,
    gOff: number,
    dh: FloatArray,
    hOff: number,
    prevH: FloatArray,
    pOff: number,
    dPrev: FloatArray,
    dpOff: number,
    rows: number,
    hd: number,
    units?: number,
  ): void;
  /**
   * Each of `rows` rows of V values at a[off] becomes scale · softmax(row);
   * stats[sOff + 2r] = the row's max, stats[sOff + 2r + 1] = Σ exp(x - max), so the caller
   * can form -log p[target] = log(sum) - (x[target] - max) from the target's raw score.
   */
  softmaxRows(
    a: FloatArray,
    off: number,
    rows: number,
    v: number,
    stats: FloatArray,
    sOff: number,
    scale: number,
  ): void;
  /**
   * The statistics `softmaxRows` writes, with the same bits, leaving the rows as they are:
   * stats[sOff + 2r] = the max of row r, stats[sOff + 2r + 1] = Σ exp(x - max), so
   * log Σ exp(row) = max + log(sum) (how a decoder scores its words).
   */
  rowStats(
    a: FloatArray,
    off: number,
    rows: number,
    v: number,
    stats: FloatArray,
    sOff: number,
  ): void;
}

/** Hands out work arrays; `carve` may invalidate the arrays it handed out before. */
export interface FloatArena<A extends FloatArray = FloatArray> {
  /**
   * Views of one region, one per requested length (zero-filled only when new memory is used).
   * Calling it again re-carves the same region: earlier views may be detached or overlap.
   */
  carve(lengths: number[]): A[];
}

/**
 * The plain `Math` kernels (the float64 path, and float32 where WebAssembly is unavailable).
 *
 * @example
 * ```ts
 * import { tsElementwise } from "./elementwise.ts";
 * const x = new Float64Array([0, 1]);
 * tsElementwise.sigmoid(x, 0, 2);
 * console.log(x[0]); // 0.5
 * ```
 */
export const tsElementwise: ElementwiseKernels = {
  name: "ts",
  exp(a, off, len) {
    for (let i = off; i < off + len; i++) a[i] = Math.exp(a[i]);
  },
  sigmoid: sigmoidTs,
  tanh: tanhTs,
  activate(a, off, len, activation) {
    if (activation === "tanh") tanhTs(a, off, len);
    else sigmoidTs(a, off, len);
  },
  activationBackward(dout, dOff, y, yOff, out, outOff, len, activation) {
    if (activation === "tanh") {
      for (let j = 0; j < len; j++) {
        const v = y[yOff + j];
        out[outOff + j] = dout[dOff + j] * (1 - v * v);
      }
    } else {
      for (let j = 0; j < len; j++) {
        const v = y[yOff + j];
        out[outOff + j] = dout[dOff + j] * (v * (1 - v));
      }
    }
  },
  lstmCell(g, gOff, prevC, pOff, c, tanhC, h, outOff, rows, hd, units = hd) {
    for (let r = 0; r < rows; r++) {
      const go = gOff + 4 * hd * r, po = pOff + hd * r, o = outOff + hd * r;
      for (let j = 0; j < units; j++) {
        const i = sigmoid(g[go + j]);
        const f = sigmoid(g[go + hd + j]);
        const og = sigmoid(g[go + 2 * hd + j]);
        const gg = Math.tanh(g[go + 3 * hd + j]);
        g[go + j] = i;
        g[go + hd + j] = f;
        g[go + 2 * hd + j] = og;
        g[go + 3 * hd + j] = gg;
        const cNew = (prevC ? f * prevC[po + j] : 0) + i * gg;
        const tc = Math.tanh(cNew);
        c[o + j] = cNew;
        tanhC[o + j] = tc;
        h[o + j] = og * tc;
      }
    }
  },
  lstmCellBackward(g, gOff, dh, dc, dcOff, prevC, pOff, tanhC, hOff, dA, rows, hd, units = hd) {
    for (let r = 0; r < rows; r++) {
      const go = gOff + 4 * hd * r, ho = hOff + hd * r, po = pOff + hd * r, co = dcOff + hd * r;
      for (let j = 0; j < units; j++) {
        const i = g[go + j], f = g[go + hd + j], o = g[go + 2 * hd + j], gg = g[go + 3 * hd + j];
        const tc = tanhC[ho + j], dhj = dh[ho + j];
        const dcj = dc[co + j] + dhj * o * (1 - tc * tc);
        const pc = prevC ? prevC[po + j] : 0;
        dA[go + j] = dcj * gg * i * (1 - i);
        dA[go + hd + j] = dcj * pc * f * (1 - f);
        dA[go + 2 * hd + j] = dhj * tc * o * (1 - o);
        dA[go + 3 * hd + j] = dcj * i * (1 - gg * gg);
        dc[co + j] = dcj * f;
      }
    }
  },
  gruCell(g, ah, gOff, prevH, pOff, h, hOff, rows, hd, units = hd) {
    for (let row = 0; row < rows; row++) {
      const go = gOff + 3 * hd * row, po = pOff + hd * row, o = hOff + hd * row;
      for (let j = 0; j < units; j++) {
        const r = sigmoid(g[go + j] + ah[go + j]);
        const z = sigmoid(g[go + hd + j] + ah[go + hd + j]);
        const n = Math.tanh(g[go + 2 * hd + j] + r * ah[go + 2 * hd + j]);
        g[go + j] = r;
        g[go + hd + j] = z;
        g[go + 2 * hd + j] = n;
        h[o + j] = (1 - z) * n + z * prevH[po + j];
      }
    }
  },
  gruCellBackward(
    g,
    ah,
    dAx,
    dAh,
    gOff,
    dh,
    hOff,
    prevH,
    pOff,
    dPrev,
    dpOff,
    rows,
    hd,
    units = hd,
  ) {
    for (let row = 0; row < rows; row++) {
      const go = gOff + 3 * hd * row, ho = hOff + hd * row, po = pOff + hd * row;
      const dpo = dpOff + hd * row;
      for (let j = 0; j < units; j++) {
        const r = g[go + j], z = g[go + hd + j], n = g[go + 2 * hd + j], d = dh[ho + j];
        const dn = d * (1 - z) * (1 - n * n);
        const dz = d * (prevH[po + j] - n) * z * (1 - z);
        const dr = dn * ah[go + 2 * hd + j] * r * (1 - r);
        dAx[go + j] = dr;
        dAx[go + hd + j] = dz;
        dAx[go + 2 * hd + j] = dn;
        dAh[go + j] = dr;
        dAh[go + hd + j] = dz;
        dAh[go + 2 * hd + j] = dn * r;
        dPrev[dpo + j] += d * z;
      }
    }
  },
  softmaxRows(a, off, rows, v, stats, sOff, scale) {
    for (let r = 0; r < rows; r++) {
      const o = off + r * v;
      let max = -Infinity;
      for (let j = 0; j < v; j++) if (a[o + j] > max) max = a[o + j];
      let sum = 0;
      for (let j = 0; j < v; j++) {
        const e = Math.exp(a[o + j] - max);
        a[o + j] = e;
        sum += e;
      }
      const k = scale / sum;
      for (let j = 0; j < v; j++) a[o + j] *= k;
      stats[sOff + 2 * r] = max;
      stats[sOff + 2 * r + 1] = sum;
    }
  },
  rowStats(a, off, rows, v, stats, sOff) {
    for (let r = 0; r < rows; r++) {
      const o = off + r * v;
      let max = -Infinity;
      for (let j = 0; j < v; j++) if (a[o + j] > max) max = a[o + j];
      let sum = 0;
      for (let j = 0; j < v; j++) sum += Math.exp(a[o + j] - max);
      stats[sOff + 2 * r] = max;
      stats[sOff + 2 * r + 1] = sum;
    }
  },
};

function sigmoidTs(a: FloatArray, off: number, len: number): void {
  for (let i = off; i < off + len; i++) a[i] = sigmoid(a[i]);
}

function tanhTs(a: FloatArray, off: number, len: number): void {
  for (let i = off; i < off + len; i++) a[i] = Math.tanh(a[i]);
}

/**
 * An arena of plain typed arrays over one growable ArrayBuffer.
 * @param dtype The element type of the arrays it hands out.
 * @returns The arena.
 *
 * @example
 * ```ts
 * import { typedArena } from "./elementwise.ts";
 * const [a, b] = typedArena("float64").carve([3, 5]);
 * console.log(a.length, b.length); // 3 5
 * ```
 */
export function typedArena(dtype: FloatDType): FloatArena {
  const bytesPer = dtype === "float32" ? 4 : 8;
  let buffer = new ArrayBuffer(0);
  return {
    carve(lengths: number[]): FloatArray[] {
      const total = lengths.reduce((a, b) => a + b, 0);
      if (total * bytesPer > buffer.byteLength) buffer = new ArrayBuffer(total * bytesPer);
      const out: FloatArray[] = [];
      let at = 0;
      for (const n of lengths) {
        out.push(
          dtype === "float32"
            ? new Float32Array(buffer, at * 4, n)
            : new Float64Array(buffer, at * 8, n),
        );
        at += n;
      }
      return out;
    },
  };
}
