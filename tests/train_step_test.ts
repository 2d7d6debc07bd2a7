import "./backend.ts";
import { type ElementwiseKernels, tsElementwise } from "../layers/kernels/elementwise.ts";
import { sharedWorkspaceMemory, wasmElementwiseArena } from "../layers/kernels/elementwise_wasm.ts";
import { Rng } from "../layers/random.ts";
import { type FloatArray, type FloatDType, Tensor } from "../layers/tensor.ts";
import type { Activation } from "../layers/activations.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { TrainStep } from "../model/train_step.ts";
import { gemmTiles, teamUnitWidth } from "../model/step_team.ts";
import { columnBlockWidth } from "../layers/kernels/matmul.ts";
import { assert, assertEquals, assertThrows, scaledError } from "./assert.ts";

const VOCAB = 13;
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < VOCAB; i++) wordToIdx[`w${i}`] = i;

/** Captions of mixed lengths: full, short, one with a `<NULL>` inside, and one all `<NULL>`. */
function captionsFor(n: number, t1: number, rng: Rng): Tensor<"int32"> {
  const caps = Tensor.zeros([n, t1], "int32");
  for (let i = 0; i < n; i++) {
    const len = i % 4 === 3 ? 0 : 1 + rng.randint(t1 - 1); // targets before <END>
    caps.data[i * t1] = 1;
    for (let s = 1; s <= len && s < t1; s++) caps.data[i * t1 + s] = 3 + rng.randint(VOCAB - 3);
    if (len + 1 < t1) caps.data[i * t1 + len + 1] = 2;
    if (i % 5 === 1 && len > 2) caps.data[i * t1 + 2] = 0; // a masked step inside a caption
  }
  return caps;
}

function model<D extends FloatDType>(
  cell: CellType,
  activation: Activation,
  dtype: D,
  hiddenDim = 6,
): CaptioningRNN<D> {
  const m = new CaptioningRNN({
    wordToIdx,
    inputDim: 7,
    wordvecDim: 5,
    hiddenDim,
    cellType: cell,
    activation,
    dtype,
    seed: 3,
  });
  // Non-zero biases and larger weights, so every gate and nonlinearity matters.
  const rng = new Rng(11);
  for (let i = 0; i < m.flat.length; i++) m.flat[i] += 0.3 * rng.randn();
  return m;
}

function compare<D extends FloatDType>(
  m: CaptioningRNN<D>,
  feats: Tensor<FloatDType>,
  caps: Tensor<"int32">,
  tol: number,
  normalizer?: number,
): void {
  const fast = m.loss(feats, caps, { normalizer });
  const ref = m.lossReference(feats, caps, { normalizer });
  assert(ref.loss > 0, "the reference loss is positive");
  const lossErr = Math.abs(fast.loss - ref.loss) / Math.abs(ref.loss);
  assert(lossErr <= tol, `loss ${fast.loss} vs ${ref.loss} (relative error ${lossErr})`);
  for (const name of m.layout.slots.map((s) => s.name)) {
    const err = scaledError(fast.grads[name].data, ref.grads[name].data);
    assert(err <= tol, `d${name}: relative error ${err} > ${tol}`);
  }
}

const CELLS: Array<[CellType, Activation]> = [
  ["rnn", "tanh"],
  ["rnn", "sigmoid"],
  ["lstm", "tanh"],
  ["gru", "tanh"],
];

for (const [cell, activation] of CELLS) {
  const what = cell === "rnn" ? `rnn, ${activation}` : cell;
  Deno.test(`CaptioningRNN.loss() equals the layer-composed lossReference() in float64 (${what})`, () => {
    const rng = new Rng(5);
    const m = model(cell, activation, "float64");
    for (const n of [9, 1, 4]) {
      const caps = captionsFor(n, 8, rng);
      compare(m, Tensor.randn([n, 7], rng), caps, 1e-12);
      compare(m, Tensor.randn([n, 7], rng), caps, 1e-12, 3 * n);
    }
  });

  Deno.test(`CaptioningRNN.loss() matches lossReference() to float32 tolerance (${what})`, () => {
    const rng = new Rng(6);
    for (const hd of [6, 8]) { // a hidden size with and without a SIMD tail
      const m = model(cell, activation, "float32", hd);
      const caps = captionsFor(10, 9, rng);
      compare(m, Tensor.randn([10, 7], rng, "float32"), caps, 2e-4);
      compare(m, Tensor.randn([10, 7], rng), caps, 2e-4); // float64 features are converted
    }
  });
}

Deno.test("CaptioningRNN.loss() cuts the recurrent GEMMs of few rows into column blocks and equals lossReference()", () => {
  const rng = new Rng(14), hd = 320; // wide enough that 4 running captions are cut into blocks
  for (const [cell, gates] of [["lstm", 4], ["gru", 3], ["rnn", 1]] as const) {
    const g = gates * hd;
    assert(columnBlockWidth(4, g, hd, false) < g, `${cell}: the forward GEMM is cut`);
    if (cell !== "rnn") assert(columnBlockWidth(4, hd, g, true) < hd, `${cell}: the backward too`);
    const m = model(cell, "tanh", "float64", hd);
    compare(m, Tensor.randn([4, 7], rng), captionsFor(4, 9, rng), 1e-9);
  }
});

Deno.test("CaptioningRNN.loss() runs the cells on blocks of hidden units and tiles of every product, and equals lossReference() (float64 and the float32 SIMD cells)", () => {
  // H = 256: four recurrent tasks of 64 units; 70 captions: products of several row tiles.
  const rng = new Rng(15), hd = 256;
  assertEquals(teamUnitWidth(hd), 64);
  assert(gemmTiles(VOCAB, 4 * hd, 5).cols > 1, "the input projection is cut into column blocks");
  assert(gemmTiles(70 * 8, hd, VOCAB).rows > 1, "dh = dScores · W_vocabᵀ into row blocks");
  for (const [cell, activation] of CELLS) {
    for (const [dtype, tol] of [["float64", 1e-9], ["float32", 2e-3]] as const) {
      const m = model(cell, activation, dtype, hd);
      compare(m, Tensor.randn([70, 7], rng, dtype), captionsFor(70, 9, rng), tol);
    }
  }
});

Deno.test("CaptioningRNN.loss() projects each distinct word once: one word everywhere, or every word different, equals lossReference(), and unused words get a zero gradient", () => {
  const words: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
  for (let i = 3; i < 40; i++) words[`v${i}`] = i;
  const rng = new Rng(16);
  const oneWord = Tensor.zeros([6, 9], "int32"), allDifferent = Tensor.zeros([3, 9], "int32");
  for (let i = 0; i < 6; i++) {
    oneWord.data.fill(7, i * 9, i * 9 + 9 - (i % 3));
    oneWord.data[i * 9] = 1;
  }
  for (let i = 0, next = 3; i < 3; i++) {
    allDifferent.data[i * 9] = i === 0 ? 1 : next++; // one <START>, the other inputs all new
    for (let s = 1; s < 9; s++) allDifferent.data[i * 9 + s] = next++;
  }
  for (const cell of ["lstm", "gru", "rnn"] as CellType[]) {
    const m = new CaptioningRNN({
      wordToIdx: words,
      inputDim: 7,
      wordvecDim: 5,
      hiddenDim: 6,
      cellType: cell,
      dtype: "float64",
      seed: 4,
    });
    for (let i = 0; i < m.flat.length; i++) m.flat[i] += 0.3 * rng.randn();
    for (const caps of [oneWord, allDifferent]) {
      compare(m, Tensor.randn([caps.shape[0], 7], rng), caps, 1e-12);
      // Input words: each caption's words before its last one.
      const used = new Set<number>();
      for (let i = 0; i < caps.shape[0]; i++) {
        for (let s = 0; s < 8; s++) used.add(caps.data[i * 9 + s]);
      }
      used.delete(0);
      const dEmb = m.loss(Tensor.randn([caps.shape[0], 7], rng), caps).grads.W_embed.data;
      for (let word = 0; word < 40; word++) {
        const row = Array.from(dEmb.subarray(word * 5, word * 5 + 5));
        if (used.has(word)) {
          assert(row.some((x) => x !== 0), `${cell}: word ${word} has a gradient`);
        } else assertEquals(row, [0, 0, 0, 0, 0], `${cell}: word ${word} is not used`);
      }
    }
  }
});

Deno.test("CaptioningRNN.lossValue() is loss() without the gradients", () => {
  const rng = new Rng(12);
  for (const [cell, activation] of CELLS) {
    for (const dtype of ["float64", "float32"] as const) {
      const m = model(cell, activation, dtype);
      const caps = captionsFor(6, 7, rng), feats = Tensor.randn([6, 7], rng, dtype);
      const grad = new (dtype === "float64" ? Float64Array : Float32Array)(m.layout.total);
      const { loss } = m.loss(feats, caps, { gradBuffer: grad as never, normalizer: 10 });
      const before = grad.slice();
      assertEquals(m.lossValue(feats, caps, 10), loss);
      assertEquals(grad, before, "the gradient buffer is untouched");
      assertEquals(m.lossValue(feats, caps), m.loss(feats, caps).loss);
    }
  }
});

Deno.test("CaptioningRNN.loss() reports a NaN loss when a parameter is NaN (for the divergence guard)", () => {
  const rng = new Rng(13);
  for (const dtype of ["float64", "float32"] as const) {
    for (const name of ["Wh", "W_vocab", "b_vocab"] as const) {
      const m = model("lstm", "tanh", dtype);
      m.params[name].data[0] = NaN;
      const { loss } = m.loss(Tensor.randn([4, 7], rng, dtype), captionsFor(4, 6, rng));
      assert(Number.isNaN(loss), `${dtype} ${name}: loss ${loss}`);
    }
  }
});

Deno.test("TrainStep reuses its workspaces: a smaller batch after a larger one gives the same result", () => {
  const rng = new Rng(7);
  const big = captionsFor(12, 8, rng), small = captionsFor(3, 5, rng);
  const fb = Tensor.randn([12, 7], rng), fs = Tensor.randn([3, 7], rng);
  const used = model("lstm", "tanh", "float64"), fresh = model("lstm", "tanh", "float64");
  used.loss(fb, big);
  const a = used.loss(fs, small), b = fresh.loss(fs, small);
  assertEquals(a.loss, b.loss);
  assertEquals(Array.from(a.gradFlat), Array.from(b.gradFlat));
});

Deno.test("TrainStep on float32 uses WebAssembly SIMD elementwise kernels, or plain Math on request", () => {
  const config = {
    inputDim: 3,
    wordvecDim: 3,
    hiddenDim: 4,
    vocabSize: VOCAB,
    cellType: "lstm" as const,
    activation: "tanh" as const,
    nullIdx: 0,
  };
  assertEquals(new TrainStep({ ...config, dtype: "float32" }).elementwise, "wasm");
  assertEquals(new TrainStep({ ...config, dtype: "float32", elementwise: "ts" }).elementwise, "ts");
  assertEquals(new TrainStep({ ...config, dtype: "float64" }).elementwise, "ts");
});

Deno.test("CaptioningRNN.loss() of an all-<NULL> batch is 0 with zero gradients", () => {
  const m = model("lstm", "tanh", "float64");
  const caps = Tensor.zeros([2, 5], "int32");
  caps.data[0] = 1;
  const grad = new Float64Array(m.layout.total).fill(7);
  const { loss, gradFlat } = m.loss(Tensor.randn([2, 7], 1), caps, { gradBuffer: grad });
  assertEquals(loss, 0);
  assertEquals(gradFlat, grad);
  assert(grad.every((x) => x === 0), "every gradient is zero");
});

Deno.test("CaptioningRNN.loss() rejects word and target indices as lossReference() does", () => {
  const m = model("rnn", "tanh", "float64");
  const feats = Tensor.randn([1, 7], 1);
  const message = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert(e instanceof RangeError, "a RangeError");
      return e.message;
    }
    throw new Error("expected an error");
  };
  for (
    const [values, expected] of [
      [[1, 3, 2, VOCAB], "Invalid target index 13 at position 2"],
      [[1, -1, 3, 2], "Invalid word index -1 at position 1"],
    ] as const
  ) {
    const caps = Tensor.fromValues(values, [1, 4], "int32");
    const got = message(() => m.loss(feats, caps));
    assert(got.startsWith(expected), got);
    assertEquals(got, message(() => m.lossReference(feats, caps)));
  }
  assertThrows(() => m.loss(feats, Tensor.zeros([1, 1], "int32")), RangeError, "Invalid captions");
});

Deno.test("WebAssembly elementwise kernels match Math to float32 rounding, tails included", () => {
  const arena = wasmElementwiseArena();
  assert(arena, "WebAssembly SIMD is available");
  const rng = new Rng(8);
  for (const len of [1, 3, 4, 17, 1003]) {
    const [x] = arena.carve([len + 2]);
    for (const fn of ["exp", "sigmoid", "tanh"] as const) {
      const src = Array.from({ length: len + 2 }, () => 6 * rng.randn());
      src[0] = 1e-4; // tanh's small-argument polynomial
      x.set(src);
      const ref = Float64Array.from(x);
      arena[fn](x, 1, len);
      tsElementwise[fn](ref, 1, len);
      assertEquals(x[0], Math.fround(src[0]), "outside the range is untouched");
      assertEquals(x[len + 1], Math.fround(src[len + 1]), "outside the range is untouched");
      for (let i = 1; i <= len; i++) {
        const err = Math.abs(x[i] - ref[i]) / Math.abs(ref[i]);
        assert(err < 4e-7, `${fn}(${Math.fround(src[i])}) = ${x[i]}, Math: ${ref[i]}`);
      }
    }
  }
  for (const [rows, v] of [[3, 1003], [2, 3], [4, 8]]) {
    const [a, stats] = arena.carve([rows * v, 2 * rows]);
    for (let i = 0; i < a.length; i++) a[i] = 5 * rng.randn();
    const ref = Float64Array.from(a), refStats = new Float64Array(2 * rows);
    arena.softmaxRows(a, 0, rows, v, stats, 0, 0.5);
    tsElementwise.softmaxRows(ref, 0, rows, v, refStats, 0, 0.5);
    assert(scaledError(a, ref) < 1e-6, `softmax rows ${rows}×${v}`);
    assert(scaledError(stats, refStats) < 1e-6, `softmax stats ${rows}×${v}`);
  }
  // rowStats: the softmax's statistics with its bits, the rows untouched (both kernel sets).
  const kernelSets: [string, ElementwiseKernels, (sizes: number[]) => FloatArray[]][] = [
    ["wasm", arena, (sizes) => arena.carve(sizes)],
    ["ts", tsElementwise, (sizes) => sizes.map((n) => new Float64Array(n))],
  ];
  for (const [rows, v] of [[3, 1003], [2, 3], [4, 8]]) {
    for (const [name, kernels, carve] of kernelSets) {
      const [a, stats, soft, softStats] = carve([rows * v, 2 * rows, rows * v, 2 * rows]);
      for (let i = 0; i < a.length; i++) a[i] = 5 * rng.randn();
      soft.set(a);
      const before = Array.from(a);
      kernels.rowStats(a, 0, rows, v, stats, 0);
      kernels.softmaxRows(soft, 0, rows, v, softStats, 0, 1);
      const what = `${name} rowStats ${rows}×${v}`;
      assertEquals(Array.from(stats), Array.from(softStats), what);
      assertEquals(Array.from(a), before, `${what}: the rows are left as they are`);
    }
  }
});

Deno.test("WebAssembly LSTM cell forward and backward match Math, tails and c0 = 0 included", () => {
  const arena = wasmElementwiseArena();
  assert(arena, "WebAssembly SIMD is available");
  const rng = new Rng(9);
  for (const [rows, hd] of [[3, 5], [2, 8], [1, 1]]) {
    const [g, pc, c, tc, h, dh, dc, dA] = arena.carve([
      rows * 4 * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * 4 * hd,
    ]);
    for (const first of [false, true]) {
      const fill = (a: Float32Array, k: number) => a.forEach((_, i) => a[i] = k * rng.randn());
      fill(g, 2);
      fill(pc, 1);
      fill(dh, 1);
      fill(dc, 1);
      const [G, PC, DH, DC] = [g, pc, dh, dc].map((a) => Float64Array.from(a));
      const [C, TC, H, DA] = [c, tc, h, dA].map((a) => new Float64Array(a.length));
      const prev = first ? null : pc, PREV = first ? null : PC;
      arena.lstmCell(g, 0, prev, 0, c, tc, h, 0, rows, hd);
      tsElementwise.lstmCell(G, 0, PREV, 0, C, TC, H, 0, rows, hd);
      arena.lstmCellBackward(g, 0, dh, dc, 0, prev, 0, tc, 0, dA, rows, hd);
      tsElementwise.lstmCellBackward(G, 0, DH, DC, 0, PREV, 0, TC, 0, DA, rows, hd);
      for (
        const [name, a, b] of [["gates", g, G], ["c", c, C], ["h", h, H], ["dA", dA, DA], [
          "dc",
          dc,
          DC,
        ]] as const
      ) {
        assert(scaledError(a, b) < 1e-6, `${name} (${rows}×${hd}, c0 = 0: ${first})`);
      }
    }
  }
});

Deno.test("the cells' units option computes a block of each row's units, bitwise as the whole rows do (wasm, shared memory)", () => {
  // Two arenas over one shared memory, as two workers of a team hold them.
  const memory = sharedWorkspaceMemory();
  const [a, b] = [0, 1].map(() => wasmElementwiseArena(memory)!);
  const rows = 3, hd = 24, blocks = [[0, 8], [8, 12], [20, 4]] as const; // ends, tails and all
  const rng = new Rng(21);
  const lengths = [4 * hd, hd, hd, hd, hd, hd, hd, 4 * hd, 3 * hd, 3 * hd, 3 * hd, 3 * hd]
    .map((n) => rows * n);
  const whole = a.carve([...lengths, ...lengths]);
  const mine = b.carve([...lengths, ...lengths]).slice(lengths.length); // the second set
  const [g, pc, c, tc, h, dh, dc, dA, gg, ah, dAx, dAh] = whole;
  const [g2, pc2, c2, tc2, h2, dh2, dc2, dA2, gg2, ah2, dAx2, dAh2] = mine;
  for (const x of whole.slice(0, lengths.length)) x.forEach((_, i) => x[i] = rng.randn());
  whole.slice(0, lengths.length).forEach((x, i) => mine[i].set(x));
  a.lstmCell(g, 0, pc, 0, c, tc, h, 0, rows, hd);
  a.lstmCellBackward(g, 0, dh, dc, 0, pc, 0, tc, 0, dA, rows, hd);
  a.gruCell(gg, ah, 0, pc, 0, h, 0, rows, hd);
  a.gruCellBackward(gg, ah, dAx, dAh, 0, dh, 0, pc, 0, dc, 0, rows, hd);
  for (const [u0, units] of blocks) {
    b.lstmCell(g2, u0, pc2, u0, c2, tc2, h2, u0, rows, hd, units);
  }
  for (const [u0, units] of blocks) {
    b.lstmCellBackward(g2, u0, dh2, dc2, u0, pc2, u0, tc2, u0, dA2, rows, hd, units);
  }
  for (const [u0, units] of blocks) b.gruCell(gg2, ah2, u0, pc2, u0, h2, u0, rows, hd, units);
  for (const [u0, units] of blocks) {
    b.gruCellBackward(gg2, ah2, dAx2, dAh2, u0, dh2, u0, pc2, u0, dc2, u0, rows, hd, units);
  }
  for (let i = 0; i < lengths.length; i++) {
    assertEquals(Array.from(mine[i]), Array.from(whole[i]), `array ${i}`);
  }
});

Deno.test("WebAssembly GRU cell forward and backward match Math, tails included", () => {
  const arena = wasmElementwiseArena();
  assert(arena, "WebAssembly SIMD is available");
  const rng = new Rng(10);
  for (const [rows, hd] of [[3, 5], [2, 8], [1, 1], [4, 13]]) {
    const [g, ah, ph, h, dh, dp, dAx, dAh] = arena.carve([
      rows * 3 * hd,
      rows * 3 * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * hd,
      rows * 3 * hd,
      rows * 3 * hd,
    ]);
    const fill = (a: Float32Array, k: number) => a.forEach((_, i) => a[i] = k * rng.randn());
    fill(g, 2);
    fill(ah, 2);
    fill(ph, 1);
    fill(dh, 1);
    fill(dp, 1);
    const [G, AH, PH, DH, DP] = [g, ah, ph, dh, dp].map((a) => Float64Array.from(a));
    const [H, DAX, DAH] = [h, dAx, dAh].map((a) => new Float64Array(a.length));
    arena.gruCell(g, ah, 0, ph, 0, h, 0, rows, hd);
    tsElementwise.gruCell(G, AH, 0, PH, 0, H, 0, rows, hd);
    assert(scaledError(g, G) < 1e-6 && scaledError(h, H) < 1e-6, `forward (${rows}×${hd})`);
    // The backward from the same (float32) gates: prev_h - n cancels, which would otherwise
    // magnify the forward's float32 rounding.
    G.set(g);
    arena.gruCellBackward(g, ah, dAx, dAh, 0, dh, 0, ph, 0, dp, 0, rows, hd);
    tsElementwise.gruCellBackward(G, AH, DAX, DAH, 0, DH, 0, PH, 0, DP, 0, rows, hd);
    for (
      const [name, a, b] of [
        ["dAx", dAx, DAX],
        ["dAh", dAh, DAH],
        ["dPrev", dp, DP],
      ] as const
    ) {
      assert(scaledError(a, b) < 1e-6, `${name} (${rows}×${hd}): ${scaledError(a, b)}`);
    }
  }
});
