/**
 * Per-image scores (pycocoevalcap's imgToEval): each image's BLEU and unigram BLEU are the
 * metric on that image alone; each image's CIDEr-D uses the whole set's document frequencies,
 * so their mean is the corpus CIDEr-D.
 */
import { corpusBleu, evaluateCaptions, unigramBleu } from "../pipeline/eval/metrics/mod.ts";
import { scoreCaptions } from "../pipeline/eval/metrics/per_image.ts";
import { assertAlmostEquals, assertEquals } from "./assert.ts";

const references = {
  1: ["a cat sits on a red mat", "a cat on a mat"],
  2: ["a dog runs in a green park", "the dog is running"],
  3: ["two birds on a wire", "birds sitting on a power line"],
};
const candidates = { 1: "a cat on the mat", 2: "a dog in the park", 3: "a bird on a line" };

Deno.test("scoreCaptions() gives the corpus scores and each image's, as imgToEval does", () => {
  const metrics = ["bleu1", "bleu4", "cider", "unigram_bleu"] as const;
  const { corpus, perImage } = scoreCaptions(candidates, references, metrics);
  assertEquals(corpus, evaluateCaptions(candidates, references, metrics));
  assertEquals([...perImage.keys()], ["1", "2", "3"]);
  for (const [id, scores] of perImage) {
    const key = Number(id) as 1 | 2 | 3;
    assertEquals(Object.keys(scores), Object.keys(corpus), "the corpus's metric order");
    const alone = corpusBleu({ [id]: candidates[key] }, { [id]: references[key] });
    assertEquals([scores.bleu1, scores.bleu4], [alone.bleu1, alone.bleu4]);
    assertEquals(scores.unigram_bleu, unigramBleu(candidates[key], references[key][0]));
  }
  const scores = [...perImage.values()];
  const mean = (m: "cider" | "unigram_bleu") => scores.reduce((a, s) => a + s[m]!, 0) / 3;
  assertAlmostEquals(mean("cider"), corpus.cider!, 1e-12);
  assertAlmostEquals(mean("unigram_bleu"), corpus.unigram_bleu!, 1e-12);
  // Corpus BLEU is not the mean of the images' (counts are summed first).
  const bleu4 = scores.reduce((a, s) => a + s.bleu4!, 0) / 3;
  assertEquals(Math.abs(bleu4 - corpus.bleu4!) > 1e-6, true);
});

Deno.test("scoreCaptions() with only CIDEr-D or only BLEU asked gives those per image", () => {
  const cider = scoreCaptions(candidates, references, ["cider"]);
  assertEquals([...cider.perImage.values()].map((s) => Object.keys(s)), [["cider"], ["cider"], [
    "cider",
  ]]);
  const bleu = scoreCaptions(candidates, references, ["bleu2"]);
  assertEquals(Object.keys(bleu.perImage.get("2")!), ["bleu2"]);
});
