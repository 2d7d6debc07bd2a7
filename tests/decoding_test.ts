/**
 * The decoding controls, each shown to have its effect: `<UNK>` suppression, trigram
 * blocking, the length penalties, diverse beam search, n-best lists, and sampling with a
 * temperature, top-k and top-p, seeded per image. Each effect is checked against the same
 * decoding without the control, so a control that did nothing would fail.
 */
import "./backend.ts";
import { wasmElementwiseArena } from "../layers/kernels/elementwise_wasm.ts";
import { setKernels } from "../layers/kernels/mod.ts";
import { topIndices } from "../layers/kernels/top_wasm.ts";
import { tsKernels } from "../layers/kernels/ts.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN } from "../model/captioning_rnn.ts";
import { resolveDecodeOptions } from "../model/decode_options.ts";
import { imagesPerChunk, type SampleOptions, type SampleResult } from "../model/sampling.ts";
import { argmaxAllowed, topWords } from "../model/next_words.ts";
import { resolveDecodingFlags } from "../pipeline/cli/decoding_flags.ts";
import { decoderOptions } from "../pipeline/eval/evaluate.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";

const V = 24;
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3 };
for (let i = 4; i < V; i++) wordToIdx[`w${i}`] = i;

/** A small LSTM with peaky, varied distributions; <NULL> and <START> made unlikely. */
function model(seed = 4, endBias = 1.5): CaptioningRNN<"float64"> {
  const m = new CaptioningRNN({
    wordToIdx,
    inputDim: 6,
    wordvecDim: 5,
    hiddenDim: 8,
    cellType: "lstm",
    dtype: "float64",
    seed,
  });
  for (let i = 0; i < m.flat.length; i++) m.flat[i] *= 4;
  const b = m.params.b_vocab.data;
  b[m.nullIdx] -= 20;
  b[m.startIdx] -= 20;
  b[m.endIdx] += endBias;
  return m;
}

const feats = Tensor.randn([40, 6], 9);

/** Caption `r` of a result: its words through the first <END>. */
function words(result: SampleResult, r: number, m: CaptioningRNN<"float64">): number[] {
  const l = result.captions.shape[1];
  const row = Array.from(result.captions.data.subarray(r * l, (r + 1) * l));
  const end = row.indexOf(m.endIdx);
  return end < 0 ? row : row.slice(0, end + 1);
}

function all(result: SampleResult, m: CaptioningRNN<"float64">): number[][] {
  return Array.from({ length: result.captions.shape[0] }, (_, r) => words(result, r, m));
}

function hasRepeatedTrigram(caption: number[]): boolean {
  const seen = new Set<string>();
  for (let i = 0; i + 2 < caption.length; i++) {
    const key = caption.slice(i, i + 3).join(" ");
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

const meanLength = (captions: number[][]) =>
  captions.reduce((s, c) => s + c.length, 0) / captions.length;

const METHODS: SampleOptions[] = [
  { method: "greedy" },
  { method: "beam", beamSize: 3 },
  { method: "sample", samples: 2, seed: 5 },
];

Deno.test("decoding options are checked by name, type, range and the strategy that reads them", () => {
  assertThrows(
    () => resolveDecodeOptions({ temprature: 0.5 } as never),
    TypeError,
    'unknown option "temprature" (did you mean "temperature"?)',
  );
  assertThrows(
    () => resolveDecodeOptions({ topP: 0 }),
    RangeError,
    "Invalid topP: expected a number in (0, 1], got 0",
  );
  assertThrows(
    () => resolveDecodeOptions({ blockTrigrams: 1 } as never),
    TypeError,
    "Invalid blockTrigrams",
  );
  assertThrows(
    () => resolveDecodeOptions({ method: "greedy", temperature: 0.5 }),
    RangeError,
    'Invalid temperature: only method "sample" reads it (method is "greedy")',
  );
  assertThrows(() => resolveDecodeOptions({ beamSize: 3, nBest: 4 }), RangeError, "Invalid nBest");
  assertThrows(
    () => resolveDecodeOptions({ beamSize: 4, beamGroups: 3 }),
    RangeError,
    "Invalid beamGroups",
  );
  assertThrows(
    () => resolveDecodeOptions({ method: "sample", beamSize: 2 }),
    RangeError,
    "Invalid beamSize",
  );
  assertEquals(resolveDecodeOptions({ beamSize: 2 }).method, "beam");
  assertEquals(resolveDecodeOptions({}).method, "greedy");
  const m = new CaptioningRNN({
    wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 },
    inputDim: 6,
  });
  assertThrows(
    () => m.sample(Tensor.zeros([1, 6]), { suppressUnk: true }),
    RangeError,
    'no "<UNK>"',
  );
});

Deno.test("decoding bounds what it allocates for, and names a non-finite feature's image", () => {
  for (
    const [options, message] of [
      [{ maxLength: 1_000_000_000 }, "Invalid maxLength: expected an integer from 1 to 100"],
      [{ beamSize: 1_000_000 }, "Invalid beamSize: expected an integer from 1 to 50"],
      [{ method: "sample", samples: 101 }, "Invalid samples: expected an integer from 1 to 100"],
    ] as [SampleOptions, string][]
  ) assertThrows(() => resolveDecodeOptions(options), RangeError, message);
  assertEquals(resolveDecodeOptions({ maxLength: 100, beamSize: 50 }).beamSize, 50);
  const m = model();
  const bad = Tensor.randn([3, 6], 1);
  bad.data[2 * 6 + 4] = NaN;
  for (const options of METHODS) {
    assertThrows(
      () => m.sample(bad, options),
      RangeError,
      "Invalid features: row 2 has a non-finite value (NaN) at column 4",
    );
  }
});

Deno.test("topWords and argmaxAllowed equal a stable sort of the allowed words (ties, bans, NaN, few allowed), in plain arrays and through the SIMD kernel", () => {
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const arena = wasmElementwiseArena();
  assert(arena, "WebAssembly SIMD is available");
  let kernelRows = 0;
  for (let trial = 0; trial < 400; trial++) {
    // Short rows, then rows long enough for the kernel's four-word compares and their tails.
    const v = 1 + Math.floor(rand() * (trial < 300 ? 40 : 1100)), off = Math.floor(rand() * 3);
    const a = new Float32Array(off + v);
    // Few distinct values, so ties are common; some NaN and -Infinity.
    for (let j = 0; j < a.length; j++) {
      const r = rand();
      a[j] = r < 0.05 ? NaN : r < 0.1 ? -Infinity : Math.floor(rand() * 6) - 3;
    }
    const banned = new Uint8Array(v).map(() => (rand() < 0.3 ? 1 : 0));
    const allowed = Array.from({ length: v }, (_, j) => j).filter((j) => !banned[j]);
    for (const k of [1, 2, 3, 7, v + 2]) {
      // The reference: the insertion order the functions define — a word displaces the held
      // ones only when it is strictly larger, so NaN joins only while fewer than k are held.
      const want: number[] = [];
      for (const j of allowed) {
        const val = a[off + j];
        if (want.length < k || val > a[off + want[want.length - 1]]) {
          if (want.length === k) want.pop();
          let pos = want.length;
          while (pos > 0 && a[off + want[pos - 1]] < val) pos--;
          want.splice(pos, 0, j);
        }
      }
      assertEquals(topWords(a, off, v, k, banned), want, `trial ${trial}, k ${k}`);
      // The same row in a WebAssembly memory: the SIMD kernel, or the loop when it holds NaN.
      const row: Float32Array = arena.carve([off + v])[0];
      row.set(a);
      assertEquals(topWords(row, off, v, k, banned), want, `kernel, trial ${trial}, k ${k}`);
      const direct = topIndices(row, off, v, k, banned);
      if (a.subarray(off).some(Number.isNaN)) assertEquals(direct, null, "NaN: the loop decides");
      else {
        assertEquals(direct, want, `topIndices, trial ${trial}, k ${k}`);
        kernelRows++;
        assertEquals(topIndices(row, off, v, k, null), topWords(a, off, v, k, null), "no mask");
      }
      if (!a.subarray(off).some(Number.isNaN)) {
        const sorted = allowed.slice().sort((x, y) => a[off + y] - a[off + x] || x - y);
        assertEquals(want, sorted.slice(0, k), `sorted, trial ${trial}, k ${k}`);
      }
    }
    const best = allowed.reduce((b, j) => (b < 0 || a[off + j] > a[off + b] ? j : b), -1);
    assertEquals(argmaxAllowed(a, off, v, banned), best, `argmax, trial ${trial}`);
    const row: Float32Array = arena.carve([off + v])[0];
    row.set(a);
    assertEquals(argmaxAllowed(row, off, v, banned), best, `kernel argmax, trial ${trial}`);
  }
  assert(kernelRows > 500, `the kernel took ${kernelRows} rows`);
});

Deno.test("suppressUnk: no strategy writes <UNK>, which the model would otherwise write", () => {
  const m = model();
  m.params.b_vocab.data[m.unkIdx] += 6; // <UNK> is the likeliest word
  for (const options of METHODS) {
    const plain = all(m.sampleWithScores(feats, { ...options, maxLength: 8 }), m);
    assert(plain.some((c) => c.includes(m.unkIdx)), `${options.method}: <UNK> without suppression`);
    const suppressed = all(
      m.sampleWithScores(feats, { ...options, maxLength: 8, suppressUnk: true }),
      m,
    );
    assert(suppressed.every((c) => !c.includes(m.unkIdx)), `${options.method}: <UNK> suppressed`);
  }
});

Deno.test("blockTrigrams: no caption repeats a trigram, which the model would otherwise do", () => {
  const m = model(4, -3);
  m.params.b_vocab.data[7] += 5; // w7 w7 w7 …
  for (const options of METHODS) {
    const plain = all(m.sampleWithScores(feats, { ...options, maxLength: 12 }), m);
    assert(plain.some(hasRepeatedTrigram), `${options.method}: repeats without blocking`);
    const blocked = all(
      m.sampleWithScores(feats, { ...options, maxLength: 12, blockTrigrams: true }),
      m,
    );
    assert(!blocked.some(hasRepeatedTrigram), `${options.method}: a repeated trigram`);
    assert(blocked.some((c) => c.length > 4), `${options.method}: long captions were checked`);
  }
});

Deno.test("a higher length penalty gives longer beam captions (GNMT and average forms)", () => {
  const m = model(6, 0.5);
  const lengths = (options: SampleOptions) =>
    meanLength(all(m.sampleWithScores(feats, { beamSize: 4, maxLength: 16, ...options }), m));
  const none = lengths({});
  const gnmt = [0.5, 1.5, 3].map((lengthAlpha) => lengths({ lengthPenalty: "gnmt", lengthAlpha }));
  assertEquals(lengths({ lengthPenalty: "gnmt", lengthAlpha: 0 }), none); // α = 0: no penalty
  assert(gnmt[0] >= none && gnmt[1] >= gnmt[0] && gnmt[2] >= gnmt[1], `${none} ${gnmt}`);
  assert(gnmt[2] > none, `GNMT α = 3 gives longer captions: ${none} → ${gnmt[2]}`);
  assert(lengths({ lengthPenalty: "average" }) > none, "the average form gives longer captions");
});

Deno.test("nBest: the n best distinct beam captions per image, best first; the first is nBest 1's", () => {
  const m = model();
  const one = m.sampleWithScores(feats, { beamSize: 4, maxLength: 10 });
  const best = m.sampleWithScores(feats, { beamSize: 4, nBest: 3, maxLength: 10 });
  assertEquals(best.captions.shape, [3 * feats.shape[0], 10]);
  for (let i = 0; i < feats.shape[0]; i++) {
    assertEquals(words(best, 3 * i, m), words(one, i, m), `image ${i}`);
    assertEquals(best.logProbs[3 * i], one.logProbs[i]);
    const keys = [0, 1, 2].map((j) => words(best, 3 * i + j, m).join(" "));
    assertEquals(new Set(keys).size, 3, `image ${i}: distinct captions`);
    assert(best.logProbs[3 * i] >= best.logProbs[3 * i + 1], `image ${i}: best first`);
    assert(best.logProbs[3 * i + 1] >= best.logProbs[3 * i + 2], `image ${i}: best first`);
  }
});

Deno.test("diverse beam search: each group starts with another word; one group is plain beam search", () => {
  const m = model();
  const plain = m.sampleWithScores(feats, { beamSize: 3, nBest: 3, maxLength: 10 });
  const oneGroup = m.sampleWithScores(feats, {
    beamSize: 3,
    nBest: 3,
    maxLength: 10,
    beamGroups: 1,
    diversity: 5,
  });
  assertEquals(oneGroup.captions.data, plain.captions.data);
  const diverse = m.sampleWithScores(feats, {
    beamSize: 3,
    nBest: 3,
    beamGroups: 3,
    diversity: 100,
    maxLength: 10,
  });
  let sharedPlain = 0;
  for (let i = 0; i < feats.shape[0]; i++) {
    const first = (r: SampleResult) => [0, 1, 2].map((j) => words(r, 3 * i + j, m)[0]);
    assertEquals(new Set(first(diverse)).size, 3, `image ${i}: three first words`);
    if (new Set(first(plain)).size < 3) sharedPlain++;
  }
  assert(sharedPlain > 0, "plain beam search repeats first words on some image");
});

Deno.test("sampling: top-k 1, a tiny top-p and a tiny temperature are greedy decoding", () => {
  const previous = setKernels(tsKernels); // each row alone: the same bits at any row count
  try {
    const m = model();
    const greedy = m.sampleWithScores(feats, { maxLength: 10 });
    for (const options of [{ topK: 1 }, { topP: 1e-6 }, { temperature: 1e-3 }]) {
      const sampled = m.sampleWithScores(feats, {
        method: "sample",
        maxLength: 10,
        seed: 3,
        ...options,
      });
      for (let i = 0; i < feats.shape[0]; i++) {
        assertEquals(
          words(sampled, i, m),
          words(greedy, i, m),
          `${JSON.stringify(options)} image ${i}`,
        );
        assertEquals(sampled.logProbs[i], greedy.logProbs[i]);
      }
    }
  } finally {
    setKernels(previous);
  }
});

Deno.test("sampling: seeded per image, so a seed repeats and a part of the images draws what the whole drew", () => {
  const m = model();
  const options = { method: "sample", samples: 3, maxLength: 10, seed: 11 } as const;
  const a = m.sampleWithScores(feats, options), b = m.sampleWithScores(feats, options);
  assertEquals(a.captions.data, b.captions.data);
  const other = m.sampleWithScores(feats, { ...options, seed: 12 });
  assert(
    all(other, m).some((c, r) => c.join() !== all(a, m)[r].join()),
    "another seed draws others",
  );
  for (const i of [0, 17, 39]) {
    const alone = m.sampleWithScores(new Tensor(feats.data.slice(i * 6, (i + 1) * 6), [1, 6]), {
      ...options,
      firstImage: i,
    });
    for (let j = 0; j < 3; j++) {
      assertEquals(words(alone, j, m), words(a, 3 * i + j, m), `image ${i} sample ${j}`);
      assertAlmostEquals(alone.logProbs[j], a.logProbs[3 * i + j], 1e-9);
    }
  }
  assertEquals(imagesPerChunk(resolveDecodeOptions(options)), 42);
});

Deno.test("sampling: a higher temperature draws more different captions; top-k and top-p draw fewer", () => {
  const m = model();
  const distinct = (options: SampleOptions) => {
    const r = m.sampleWithScores(feats, {
      method: "sample",
      samples: 8,
      maxLength: 8,
      seed: 1,
      ...options,
    });
    let total = 0;
    for (let i = 0; i < feats.shape[0]; i++) {
      total += new Set(Array.from({ length: 8 }, (_, j) => words(r, 8 * i + j, m).join())).size;
    }
    return total;
  };
  const base = distinct({});
  assert(distinct({ temperature: 2 }) > base, "temperature 2");
  assert(distinct({ temperature: 0.5 }) < base, "temperature 0.5");
  assert(distinct({ topK: 2 }) < base, "top-k 2");
  assert(distinct({ topP: 0.5 }) < base, "top-p 0.5");
});

Deno.test("a sampled caption's log-probability is minus its loss in the training step", () => {
  const m = model();
  const r = m.sampleWithScores(feats, { method: "sample", samples: 2, maxLength: 10, seed: 2 });
  const n = r.captions.shape[0], l = 10;
  // <START> then the sampled words (<NULL> after <END>): the training step's caption rows.
  const caps = Tensor.zeros([n, l + 1], "int32");
  for (let c = 0; c < n; c++) {
    caps.data[c * (l + 1)] = m.startIdx;
    caps.data.set(r.captions.data.subarray(c * l, (c + 1) * l), c * (l + 1) + 1);
  }
  const rows = Array.from({ length: n }, (_, c) => Math.floor(c / 2));
  const imageFeats = new Tensor<"float64">(new Float64Array(n * 6), [n, 6]);
  rows.forEach((i, c) => imageFeats.data.set(feats.data.subarray(i * 6, (i + 1) * 6), c * 6));
  for (let c = 0; c < n; c++) {
    const weights = new Float64Array(n);
    weights[c] = 1;
    const loss = m.lossValue(imageFeats, caps, 1, weights);
    assertAlmostEquals(loss, -r.logProbs[c], 1e-9, `caption ${c}`);
  }
});

Deno.test("--plainBeam reaches beam search: it asks for a beam, and only beam search reads it", () => {
  const values = { beamSize: 1, nBest: 1, beamGroups: 1, plainBeam: true };
  const { beamSize, controls, beamAsked } = resolveDecodingFlags({ plainBeam: true }, values, 2);
  assertEquals([beamSize, beamAsked, controls.plainBeam], [2, true, true]);
  assertEquals(decoderOptions("beam", beamSize, 16, controls).plainBeam, true);
  assertEquals("plainBeam" in decoderOptions("greedy", 1, 16, controls), false);
  assertEquals(
    resolveDecodeOptions(decoderOptions("beam", beamSize, 16, controls)).plainBeam,
    true,
  );
  assertEquals(resolveDecodeOptions({ beamSize: 2 }).plainBeam, false);
});
