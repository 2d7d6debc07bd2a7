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
import { SAMPLE_CHUNK } from "../model/sampling.ts";
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
    const checked = new Set(images.filter((i) => i < n)); // both sides of the chunk boundary
    for (const beamSize of [2, 4]) {
      const all = m.sampleWithScores(feats, { beamSize, maxLength: 9 });
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
        if (one.captions.data.includes(2)) ended++;
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
