import "./backend.ts";
import { affineForward } from "../layers/affine.ts";
import { lstmStepForward } from "../layers/lstm.ts";
import { rnnStepForward } from "../layers/rnn.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";

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

for (const cell of ["rnn", "lstm"] as CellType[]) {
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
    const n = 70; // more than one chunk of images
    const feats = Tensor.randn([n, 6], 9);
    for (const beamSize of [2, 4]) {
      const all = m.sampleWithScores(feats, { beamSize, maxLength: 9 });
      let ended = 0;
      for (const i of [0, 1, 33, 63, 64, 69]) {
        const one = m.sampleWithScores(
          new Tensor(feats.data.slice(i * 6, (i + 1) * 6), [1, 6]),
          { beamSize, maxLength: 9 },
        );
        assertEquals(
          Array.from(all.captions.data.subarray(i * 9, (i + 1) * 9)),
          Array.from(one.captions.data),
          `image ${i}, beam ${beamSize}`,
        );
        assertEquals(all.logProbs[i], one.logProbs[0]);
        const feat = new Tensor(feats.data.slice(i * 6, (i + 1) * 6), [1, 6]) as Tensor<"float64">;
        assertAlmostEquals(all.logProbs[i], scoreCaption(m, feat, one.captions.data), 1e-9);
        if (one.captions.data.includes(2)) ended++;
      }
      assert(ended > 0, "some captions end before maxLength");
    }
  });
}
