import "./backend.ts";
import { Tensor } from "../layers/tensor.ts";
import { CaptioningRNN, type CellType } from "../model/captioning_rnn.ts";
import { assert, assertEquals } from "./assert.ts";

const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < 40; i++) wordToIdx[`w${i}`] = i;

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
        if (one.captions.data.includes(2)) ended++;
      }
      assert(ended > 0, "some captions end before maxLength");
    }
  });
}
