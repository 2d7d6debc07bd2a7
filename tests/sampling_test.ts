import { testBackend } from "./backend.ts";
import { affineForward } from "../layers/affine.ts";
import { kernels, setKernels } from "../layers/kernels/mod.ts";
import { tsKernels } from "../layers/kernels/ts.ts";
import type { Kernels } from "../layers/kernels/types.ts";
import { gruStepForward } from "../layers/gru.ts";
import { lstmStepForward } from "../layers/lstm.ts";
import { rnnStepForward } from "../layers/rnn.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { SAMPLE_CHUNK, sampleCaptions } from "../model/sampling.ts";
import { beamSearch } from "../model/beam_search.ts";
import type { StepDecoder } from "../model/decoder.ts";
import { resolveDecodeOptions } from "../model/decode_options.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";

const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < 40; i++) wordToIdx[`w${i}`] = i;

/** A caption's log-probability (up to its first <END>), scored with the layer functions. */
function scoreCaption(
  m: CaptioningRNN<"float64">,
  feat: Tensor<"float64">,
  words: Int32Array,
): number {
  const p = m.params;
  let [h] = affineForward(feat, p.W_proj, p.b_proj);
  let c: Tensor<"float64"> = Tensor.zeros(h.shape);
  let word = m.startIdx, total = 0;
  for (const next of words) {
    const x = new Tensor(p.W_embed.data.slice(word * 5, (word + 1) * 5), [1, 5]) as Tensor<
      "float64"
    >;
    if (m.config.cellType === "rnn") [h] = rnnStepForward(x, h, p.Wx, p.Wh, p.b);
    else if (m.config.cellType === "gru") [h] = gruStepForward(x, h, p.Wx, p.Wh, p.bx, p.bh);
    else [h, c] = lstmStepForward(x, h, c, p.Wx, p.Wh, p.b);
    const [scores] = affineForward(h, p.W_vocab, p.b_vocab);
    const max = Math.max(...scores.data);
    const lse = max + Math.log(scores.data.reduce((a, s) => a + Math.exp(s - max), 0));
    total += scores.data[next] - lse;
    if (next === m.endIdx) break;
    word = next;
  }
  return total;
}

for (const cell of ["rnn", "lstm", "gru"] as CellType[]) {
  Deno.test(`beam search of a batch equals beam search of each image alone (${cell})`, () => {
    const m = new CaptioningRNN({
      wordToIdx,
      inputDim: 6,
      wordvecDim: 5,
      hiddenDim: 7,
      cellType: cell,
      dtype: "float64",
      seed: 4,
    });
    for (let i = 0; i < m.flat.length; i++) m.flat[i] *= 4; // peaky, varied distributions
    m.params.b_vocab.data[2] += 3; // and <END> likely enough that beams finish early
    const n = SAMPLE_CHUNK + 6; // more than one chunk of images
    const feats = Tensor.randn([n, 6], 9);
    const images = [0, 1, 33, 63, 64, 69, SAMPLE_CHUNK - 1, SAMPLE_CHUNK, n - 1];
    for (const beamSize of [1, 2, 4]) { // 1: greedy decoding
      const all = m.sampleWithScores(feats, { beamSize, maxLength: 9 });
      // Both sides of the chunk boundary, and the first captions that end early.
      const endsEarly = Array.from({ length: n }, (_, i) => i).filter((i) =>
        all.captions.data.subarray(i * 9, i * 9 + 8).includes(2)
      );
      const checked = new Set([...images.filter((i) => i < n), ...endsEarly.slice(0, 3)]);
      let ended = 0;
      for (const i of checked) {
        const one = m.sampleWithScores(
          new Tensor(feats.data.slice(i * 6, (i + 1) * 6), [1, 6]),
          { beamSize, maxLength: 9 },
        );
        assertEquals(
          Array.from(all.captions.data.subarray(i * 9, (i + 1) * 9)),
          Array.from(one.captions.data),
          `image ${i}, beam ${beamSize}`,
        );
        // One image alone is a GEMM of other row counts: the same bits on the ts and wasm
        // kernels (each row of C is computed alone), not on BLAS.
        if (testBackend === "blas") assertAlmostEquals(all.logProbs[i], one.logProbs[0], 1e-9);
        else assertEquals(all.logProbs[i], one.logProbs[0]);
        const feat = new Tensor(feats.data.slice(i * 6, (i + 1) * 6), [1, 6]) as Tensor<"float64">;
        assertAlmostEquals(all.logProbs[i], scoreCaption(m, feat, one.captions.data), 1e-9);
        const caption = Array.from(one.captions.data), end = caption.indexOf(2);
        if (end >= 0) {
          ended++;
          assert(caption.slice(end + 1).every((w) => w === 0), `image ${i}: <NULL> after <END>`);
        }
      }
      assert(ended > 0, "some captions end before maxLength");
    }
  });
}

for (const cell of ["rnn", "lstm", "gru"] as CellType[]) {
  Deno.test(`a decoder follows changes of W_embed, Wx and the input bias between calls (${cell})`, () => {
    const config = { wordToIdx, inputDim: 6, wordvecDim: 5, hiddenDim: 7, cellType: cell, seed: 2 };
    const m = new CaptioningRNN(config);
    for (let i = 0; i < m.flat.length; i++) m.flat[i] *= 4;
    const feats = Tensor.randn([9, 6], 1, "float32");
    const options = { maxLength: 6, beamSize: 2 };
    let before = m.sampleWithScores(feats, options); // the decoder's word table is made here
    for (const name of ["W_embed", "Wx", cell === "gru" ? "bx" : "b"] as const) {
      const data = m.params[name].data;
      for (let i = 0; i < data.length; i++) data[i] = -2 * data[i] + 0.5; // as training would
      const fresh = new CaptioningRNN(config);
      fresh.copyParamsFrom(m);
      const want = fresh.sampleWithScores(feats, options); // a new decoder: a new table
      const got = m.sampleWithScores(feats, options);
      assertEquals(got.captions.data, want.captions.data, `captions after ${name} changed`);
      assertEquals(got.logProbs, want.logProbs, `log-probabilities after ${name} changed`);
      assert(
        got.logProbs.some((lp, i) => lp !== before.logProbs[i]),
        `changing ${name} changes the result`,
      );
      before = got;
    }
  });
}

/** The ts gemm, then a rounding that depends on the row count m, as a BLAS kernel's may. */
const rowCountRounding: Kernels = {
  name: "ts",
  gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc) {
    tsKernels.gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) c[cOff + i * ldc + j] *= 1 + m * 2 ** -24;
    }
  },
};

for (const cell of ["rnn", "lstm", "gru"] as CellType[]) {
  Deno.test(`sampling any run of whole chunks alone gives the bits of one call with all images (${cell})`, () => {
    const m = new CaptioningRNN({
      wordToIdx,
      inputDim: 16,
      wordvecDim: 12,
      hiddenDim: 24,
      cellType: cell,
      seed: 5,
    });
    for (let i = 0; i < m.flat.length; i++) m.flat[i] *= 3;
    const n = 2 * SAMPLE_CHUNK + 5, d = 16;
    const feats = Tensor.randn([n, d], 3, "float32");
    const rows = (i0: number, i1: number) =>
      new Tensor<"float32">(feats.data.slice(i0 * d, i1 * d), [i1 - i0, d]);
    // On the test backend, and on kernels whose rounding surely depends on the row count.
    for (const gemm of [kernels(), rowCountRounding]) {
      const previous = setKernels(gemm);
      try {
        for (const beamSize of [1, 3]) {
          const options = { maxLength: 7, beamSize };
          const all = m.sampleWithScores(feats, options);
          // The split a pool of workers makes: whole chunks from image 0, the last one partial.
          for (const [i0, i1] of [[0, SAMPLE_CHUNK], [SAMPLE_CHUNK, n], [2 * SAMPLE_CHUNK, n]]) {
            const part = m.sampleWithScores(rows(i0, i1), options);
            const what = `${gemm === rowCountRounding ? "m-dependent" : gemm.name} gemm, ` +
              `beam ${beamSize}, images ${i0}…${i1}`;
            assertEquals(part.captions.data, all.captions.data.slice(i0 * 7, i1 * 7), what);
            assertEquals(part.logProbs, all.logProbs.slice(i0, i1), what);
          }
        }
      } finally {
        setKernels(previous);
      }
    }
  });
}

Deno.test("sample() rejects unknown option names and bad values", () => {
  const m = new CaptioningRNN({ wordToIdx, inputDim: 6, wordvecDim: 5, hiddenDim: 7 });
  const feats = Tensor.randn([2, 6], 1, "float32");
  assertThrows(
    () => m.sample(feats, { beamsize: 3 } as never),
    TypeError,
    'Invalid sample options: unknown option "beamsize" (did you mean "beamSize"?)',
  );
  assertThrows(
    () => m.sampleWithScores(feats, { temprature: 0.5 } as never),
    TypeError,
    'unknown option "temprature" (did you mean "temperature"?)',
  );
  assertThrows(() => m.sample(feats, null as never), TypeError, "expected an object, got null");
  assertThrows(
    () => m.sample(feats, { beamSize: 0 }),
    RangeError,
    "Invalid beamSize: expected an integer from 1 to 50, got 0",
  );
  assertThrows(
    () => m.sample(feats, { maxLength: 2.5 }),
    RangeError,
    "Invalid maxLength: expected an integer from 1 to 100, got 2.5",
  );
});

/**
 * A decoder whose next-word probabilities depend on the caption so far, from a table: enough
 * to make a beam of 2 lose greedy's caption. Row state is the caption so far.
 */
class ScriptedDecoder implements StepDecoder {
  readonly model = {
    config: { inputDim: 1, dtype: "float32" as const },
    vocabSize: 8,
    startIdx: 1,
    endIdx: 2,
    nullIdx: 0,
    unkIdx: -1,
  };
  scores = new Float32Array(0);
  lse = new Float64Array(0);
  steps = 0;
  rowsDecoded = 0;
  #state: number[][] = [];
  #next: number[][] = [];
  constructor(readonly table: Record<string, Record<number, number>>) {}
  reserve(rows: number): void {
    if (this.scores.length < rows * 8) {
      this.scores = new Float32Array(rows * 8);
      this.lse = new Float64Array(rows);
    }
  }
  start(_feats: Float32Array | Float64Array, rows: number): void {
    this.reserve(rows);
    this.#state = Array.from({ length: rows }, () => []);
  }
  step(words: ArrayLike<number>, rows: number): void {
    this.steps++;
    this.rowsDecoded += rows;
    this.#next = [];
    for (let r = 0; r < rows; r++) {
      const prefix = words[r] === 1 ? [] : [...this.#state[r], words[r]];
      this.#next.push(prefix);
      const p = this.table[prefix.join(" ")] ?? {};
      const given = Object.values(p).reduce((a, b) => a + b, 0);
      const free = [3, 4, 5, 6, 7, 2].filter((w) => !(w in p));
      let sum = 0;
      for (let w = 0; w < 8; w++) {
        const q = w in p ? p[w] : free.includes(w) ? (1 - given) / free.length : 1e-9;
        this.scores[r * 8 + w] = Math.log(q);
        sum += Math.fround(q);
      }
      this.lse[r] = Math.log(sum);
    }
  }
  advance(): void {
    this.#state = this.#next;
  }
  keep(from: number, to: number): void {
    this.#state[to] = this.#next[from];
  }
}

/**
 * A decoder whose row r writes `feats[r]` words (3) and then <END> (each word at probability
 * 0.9), counting the rows it decodes.
 */
class CountdownDecoder implements StepDecoder {
  readonly model = new ScriptedDecoder({}).model;
  scores = new Float32Array(0);
  lse = new Float64Array(0);
  rowsDecoded = 0;
  #left: number[] = [];
  #next: number[] = [];
  reserve(rows: number): void {
    if (this.scores.length < rows * 8) {
      this.scores = new Float32Array(rows * 8);
      this.lse = new Float64Array(rows);
    }
  }
  start(feats: Float32Array | Float64Array, rows: number): void {
    this.reserve(rows);
    this.#left = Array.from(feats.subarray(0, rows));
  }
  step(_words: ArrayLike<number>, rows: number): void {
    this.rowsDecoded += rows;
    this.scores.fill(Math.log(0.1 / 7), 0, rows * 8);
    for (let r = 0; r < rows; r++) this.scores[r * 8 + (this.#left[r] > 0 ? 3 : 2)] = Math.log(0.9);
    this.lse.fill(0, 0, rows);
    this.#next = this.#left.slice(0, rows).map((left) => left - 1);
  }
  advance(): void {
    this.#left = this.#next;
  }
  keep(from: number, to: number): void {
    this.#left[to] = this.#next[from];
  }
}

Deno.test("greedy decoding stops decoding a caption at its <END> and pads it with <NULL>", () => {
  const dec = new CountdownDecoder();
  const feats = new Tensor<"float32">(Float32Array.from([0, 2, 5, 1]), [4, 1]);
  const { captions, logProbs } = sampleCaptions({ decoder: dec }, feats, { maxLength: 6 });
  assertEquals(Array.from(captions.data), [
    ...[2, 0, 0, 0, 0, 0],
    ...[3, 3, 2, 0, 0, 0],
    ...[3, 3, 3, 3, 3, 2],
    ...[3, 2, 0, 0, 0, 0],
  ]);
  for (const [i, words] of [1, 3, 6, 2].entries()) {
    assertAlmostEquals(logProbs[i], words * Math.log(0.9), 1e-6);
  }
  // 4 running captions at the first step, then 3, 2, 1, 1, 1 (not 4 rows at each of 6 steps).
  assertEquals(dec.rowsDecoded, 4 + 3 + 2 + 1 + 1 + 1);
});

Deno.test("beam search keeps greedy's caption as a candidate after greedy leaves the beams, and wins with it", () => {
  // a = 3, b = 4, x = 5, y = 6, z = 7. Greedy: "a x <END>" (0.4 · 0.3 · 0.99 = 0.119). A beam of
  // 2 keeps "b y" and "b z" over "a x" at step 2 (0.175, 0.158 against 0.12), and every caption
  // from there is worth less than greedy's (0.35 · 0.5 · 0.8⁴ = 0.072 at best).
  const table = {
    "": { 3: 0.4, 4: 0.35, 2: 0.05, 5: 0.05, 6: 0.05, 7: 0.1 },
    "3": { 5: 0.3, 6: 0.29, 7: 0.29, 2: 0.1 },
    "4": { 6: 0.5, 7: 0.45, 2: 0.05 },
    "3 5": { 2: 0.99 },
  };
  const junk = 0.8; // after "b y" or "b z": the same word again, or <END> at 0.2 · 1/6
  for (const key of ["4 6", "4 7"]) {
    let prefix = key;
    for (let s = 0; s < 4; s++) {
      const again = Number(prefix.split(" ").at(-1));
      (table as Record<string, Record<number, number>>)[prefix] = { [again]: junk, 2: 0.03 };
      prefix += ` ${again}`;
    }
  }
  const dec = new ScriptedDecoder(table);
  const chunk = {
    feats: new Float32Array(1),
    n: 1,
    captions: new Int32Array(6),
    logProbs: new Float64Array(1),
  };
  const options = resolveDecodeOptions({ beamSize: 2, maxLength: 6 });
  beamSearch(dec, chunk, options, new Uint8Array(8));
  assertEquals(Array.from(chunk.captions), [3, 5, 2, 0, 0, 0], "greedy's caption, padded");
  assertAlmostEquals(chunk.logProbs[0], Math.log(0.4 * 0.3 * 0.99), 1e-6);
  // Greedy had a row of its own after step 2 until its <END> at step 3: 1 + 2 + 3 + 2 rows
  // for the first four steps (then the two beams alone).
  assertEquals(dec.steps, 6);
  assertEquals(dec.rowsDecoded, 1 + 2 + 3 + 2 + 2 + 2);

  // plainBeam: the beams' best alone, "b y y y y y" (0.35 · 0.5 · 0.8⁴), and no row for greedy.
  const plain = new ScriptedDecoder(table);
  beamSearch(
    plain,
    chunk,
    resolveDecodeOptions({ beamSize: 2, maxLength: 6, plainBeam: true }),
    new Uint8Array(8),
  );
  assertEquals(Array.from(chunk.captions), [4, 6, 6, 6, 6, 6]);
  assertAlmostEquals(chunk.logProbs[0], Math.log(0.35 * 0.5 * 0.8 ** 4), 1e-6);
  assertEquals(plain.rowsDecoded, 1 + 2 * 5);
  assertThrows(
    () => resolveDecodeOptions({ plainBeam: true }),
    RangeError,
    "plainBeam",
  );
});
