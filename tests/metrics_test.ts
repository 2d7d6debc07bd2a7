import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import {
  captionDiagnostics,
  captionSet,
  ciderD,
  ciderDFromTokens,
  CiderDScorer,
  closestRefLength,
  corpusBleu,
  documentFrequencies,
  evaluateCaptions,
  lcsLength,
  mostFrequentCaptionBaseline,
  rougeL,
  rougeLScore,
  tokenizeCaption,
  tokenizePairs,
  unigramBleu,
} from "../pipeline/eval/metrics/mod.ts";
import { METRIC_NAMES } from "../pipeline/config/schema.ts";

const TOL = 1e-6;

Deno.test("tokenizeCaption() lower-cases, drops punctuation and special tokens, splits clitics", () => {
  assertEquals(tokenizeCaption("<START> A man, riding a <UNK>! <END> <NULL>"), [
    "a",
    "man",
    "riding",
    "a",
    "<unk>",
  ]);
  assertEquals(tokenizeCaption(`The dog's "red" ball (big) -- t-shirt 3.5 don't...`), [
    "the",
    "dog",
    "'s",
    "red",
    "ball",
    "big",
    "t-shirt",
    "3.5",
    "do",
    "n't",
  ]);
  assertEquals(tokenizeCaption(""), []);
});

Deno.test("corpusBleu() clips by the max count over all references and uses the closest length", () => {
  // cand "a dog runs on grass" (5 words); refs of 6 and 2 words: closest is 6.
  // 1-grams: 5/5; 2-grams: a dog, dog runs, runs on (not "on grass") = 3/4;
  // 3-grams: a dog runs, dog runs on = 2/3; 4-grams: a dog runs on = 1/2.
  // BP = exp(1 - 6/5) = exp(-0.2) = 0.8187308
  // bleu1 = 1 * BP = 0.8187308; bleu2 = (3/4)^(1/2) * BP = 0.7090416
  // bleu3 = (1/2)^(1/3) * BP = 0.6498270; bleu4 = (1/4)^(1/4) * BP = 0.5789301
  const s = corpusBleu({ 1: "a dog runs on grass" }, { 1: ["a dog runs on the grass", "a dog"] });
  assertAlmostEquals(s.bleu1, 0.8187308, TOL);
  assertAlmostEquals(s.bleu2, 0.7090416, TOL);
  assertAlmostEquals(s.bleu3, 0.6498270, TOL);
  assertAlmostEquals(s.bleu4, 0.5789301, TOL);
});

Deno.test("corpusBleu() clips repeated words by the largest count in any one reference", () => {
  // "the the the the": "the" occurs at most 2 times in one reference -> 1-grams 2/4.
  // "the the" x3 against at most 1 in a reference -> 2-grams 1/3.
  // Lengths: 4 vs refs 2 and 3 -> closest 3, ratio 4/3 > 1, BP = 1.
  // bleu1 = 0.5; bleu2 = sqrt(0.5 * 1/3) = 0.4082483
  const s = corpusBleu({ 1: "the the the the" }, { 1: ["the cat", "the the dog"] });
  assertAlmostEquals(s.bleu1, 0.5, TOL);
  assertAlmostEquals(s.bleu2, 0.4082483, TOL);
});

Deno.test("corpusBleu() sums counts over the corpus before taking ratios", () => {
  // image 1: "a cat" vs "a cat": 1-grams 2/2, 2-grams 1/1, lengths 2/2.
  // image 2: "a dog sits" vs "a cat sits here": 1-grams 2/3, 2-grams 0/2, lengths 3/4.
  // corpus: 1-grams 4/5, 2-grams 1/3, lengths 5 vs 6 -> BP = exp(1 - 6/5) = 0.8187308
  // bleu1 = 0.8 * BP = 0.6549846; bleu2 = sqrt(0.8/3) * BP = 0.4227907
  const s = corpusBleu(new Map([[1, "a cat"], [2, "a dog sits"]]), {
    1: ["a cat"],
    2: ["a cat sits here"],
  });
  assertAlmostEquals(s.bleu1, 0.6549846, TOL);
  assertAlmostEquals(s.bleu2, 0.4227907, TOL);
});

Deno.test("corpusBleu() breaks a closest-length tie toward the shorter reference", () => {
  assertEquals(closestRefLength(4, [5, 3]), 3);
  assertEquals(closestRefLength(4, [3, 5]), 3);
  assertEquals(closestRefLength(4, [9, 4, 2]), 4);
  // 4 words, refs of 3 and 5: tie -> 3, so no brevity penalty (with 5 it would be exp(-0.25)).
  const s = corpusBleu({ 1: "a b c d" }, { 1: ["a b c d e", "a b c"] });
  assertAlmostEquals(s.bleu1, 1, TOL);
});

Deno.test("corpusBleu() gives 1 for a perfect match and 0 for an empty candidate", () => {
  const perfect = corpusBleu({ 1: "<START> a cat on a mat <END>" }, { 1: ["A cat on a mat."] });
  for (const v of Object.values(perfect)) assertAlmostEquals(v, 1, TOL);
  const empty = corpusBleu({ 1: "<START> <END>" }, { 1: ["a cat"] });
  assertEquals(empty, { bleu1: 0, bleu2: 0, bleu3: 0, bleu4: 0 });
});

Deno.test("corpusBleu() lets no candidate word match a reference <UNK>", () => {
  // cand [a, <unk>] vs ref [a, <unk#...>]: 1-grams 1/2, BP 1.
  assertAlmostEquals(corpusBleu({ 1: "a <UNK>" }, { 1: ["a <UNK>"] }).bleu1, 0.5, TOL);
});

Deno.test("ciderD() uses reference document frequencies, so a word in every image weighs 0", () => {
  // 2 images, idf = log(2) - log(df). "a" is in both reference sets: idf 0.
  // image 1 "a cat" vs "a cat": n=1 cos 1, n=2 cos 1, n=3,4 no n-grams (0); mean 0.5, x10 = 5.
  // image 2 "a cat" vs "a dog": only "cat" has weight, absent from the reference: 0.
  // mean over images = 2.5
  assertAlmostEquals(ciderD({ 1: "a cat", 2: "a cat" }, { 1: ["a cat"], 2: ["a dog"] }), 2.5, TOL);
});

Deno.test("ciderD() averages over several references with the Gaussian length penalty", () => {
  // L = log 2. Image 1 refs "a cat sat", "a cat"; image 2 ref "a dog". Every n-gram but "a"
  // has df 1 -> weight L. Candidate "a cat sat": 2 bigrams (the scorer's length).
  // vs "a cat sat": cos 1, 1, 1, 0 (no 4-grams).
  // vs "a cat" (1 bigram): n=1: L*L / (L*sqrt2 * L) = 0.7071068, n=2 the same, n=3,4: 0;
  //   penalty exp(-(2-1)^2 / (2*36)) = 0.9862071.
  // image 1 = 10 * mean_n(sum over refs) / 2 refs
  //         = 10 * ((1 + 0.6973538) * 2 + 1 + 0) / 4 / 2 = 5.4933843
  // image 2 "a dog" vs "a dog": (1 + 1 + 0 + 0) / 4 * 10 = 5. Mean = 5.2466922
  const refs = { 1: ["a cat sat", "a cat"], 2: ["a dog"] };
  assertAlmostEquals(ciderD({ 1: "a cat sat", 2: "a dog" }, refs), 5.2466922, TOL);
});

Deno.test("ciderD() clips candidate weights by the reference's", () => {
  // "cat cat": cat has tf 2 -> weight 2L, reference "a cat" has L.
  // n=1: min(2L, L) * L / (2L * L) = 0.5 (unclipped it would be 1).
  // "cat cat" is in no reference (df 0 -> idf log 2) but the reference lacks it: 0.
  // image 1 = 0.5 / 4 * 10 = 1.25; image 2 = 5 (as above). Mean = 3.125
  assertAlmostEquals(
    ciderD({ 1: "cat cat", 2: "a dog" }, { 1: ["a cat"], 2: ["a dog"] }),
    3.125,
    TOL,
  );
});

Deno.test("ciderD() is 0 for empty candidates and for a single image", () => {
  assertEquals(ciderD({ 1: "", 2: "" }, { 1: ["a cat"], 2: ["a dog"] }), 0);
  assertEquals(ciderD({ 1: "a cat" }, { 1: ["a cat"] }), 0); // idf = log(1/1) = 0 everywhere
  assertEquals(ciderD({}, {}), 0);
});

Deno.test("corpusBleu() and ciderD() match pycocoevalcap's scorers on a random corpus", () => {
  // Values printed by a straight port of pycocoevalcap's bleu_scorer.py (option "closest")
  // and cider_scorer.py on these captions.
  const res = {
    0: "ball a the in the of a cat cat",
    1: "cat man cat cat on the man the",
  };
  const gts = {
    0: [
      "dog the sits dog cat dog the",
      "in man man sits on the cat",
      "a a a man on sits",
      "on in the the on sits the",
      "cat sits on man dog",
    ],
    1: ["on cat", "man a on dog on man cat", "the the cat cat a cat", "the man the the a a man"],
  };
  const b = corpusBleu(res, gts);
  assertAlmostEquals(b.bleu1, 0.823529411716263, 1e-12);
  assertAlmostEquals(b.bleu2, 0.5239368319627093, 1e-12);
  assertAlmostEquals(b.bleu3, 0.27640008296542046, 1e-12);
  assertAlmostEquals(b.bleu4, 3.7222492878348565e-05, 1e-15);
  assertAlmostEquals(ciderD(res, gts), 0.5445009570689041, 1e-12);
  // And a straight port of pycocoevalcap's rouge.py (β = 1.2).
  assertAlmostEquals(rougeLScore(res, gts), 0.41177582244799227, 1e-12);
});

Deno.test("rougeL() is pycocoevalcap's LCS F-measure with β = 1.2, on hand-computed cases", () => {
  const w = (s: string) => s.split(" ");
  assertEquals(lcsLength(w("a cat on a mat"), w("a mat on a cat")), 3);
  assertEquals(lcsLength([], w("a cat")), 0);
  assertEquals(rougeL(w("a cat on a mat"), [w("a cat on a mat")]), 1);
  // LCS 2: precision 2/2, recall 2/4: (1 + 1.44) · 1 · 0.5 / (0.5 + 1.44 · 1) = 1.22 / 1.94
  assertAlmostEquals(rougeL(w("a cat"), [w("a black cat sits")]), 1.22 / 1.94, 1e-15);
  // The best precision (ref 2: 4/4) and the best recall (ref 1: 2/2) come from different
  // references, and pycocoevalcap combines them: F = 1, where the best single reference
  // would give (2.44 · 0.5 · 1) / (1 + 1.44 · 0.5) = 0.709.
  assertEquals(rougeL(w("a b c d"), [w("a b"), w("a b c d e f g h")]), 1);
  assertEquals(rougeL(w("red ball"), [w("a cat")]), 0);
  assertEquals(rougeL([], [w("a cat")]), 0);
  // The mean over images, after the COCO tokenisation.
  const refs = { 1: ["A cat on a mat."], 2: ["a black cat sits"] };
  assertAlmostEquals(
    rougeLScore({ 1: "a cat on a mat", 2: "a cat" }, refs),
    (1 + 1.22 / 1.94) / 2,
    1e-15,
  );
  assertAlmostEquals(
    evaluateCaptions({ 1: "a cat on a mat", 2: "a cat" }, refs, ["rougeL"]).rougeL!,
    (1 + 1.22 / 1.94) / 2,
    1e-15,
  );
});

Deno.test("CiderDScorer with other document frequencies: the training split's, as self-critical training uses", () => {
  const pairs = tokenizePairs(
    { 1: "a cat sat", 2: "a dog" },
    { 1: ["a cat sat on a mat", "a cat"], 2: ["a dog runs", "the dog"] },
  );
  // With the pairs' own frequencies it is pycocoevalcap's CIDEr-D.
  const own = documentFrequencies(pairs.map((p) => p.references));
  assertEquals(ciderDFromTokens(pairs, own), ciderDFromTokens(pairs));
  assertEquals(own.logImages, Math.log(2));
  assertEquals(own.df.get("a"), 2);
  assertEquals(own.df.get("cat"), 1);
  // A corpus where "cat" is everywhere: it weighs log(3/3) = 0, so only "sat" and its
  // n-grams can match; a third image makes log(3/1) the idf of rarer n-grams.
  const corpus = documentFrequencies([
    [["a", "cat", "sat", "on", "a", "mat"], ["a", "cat"]],
    [["a", "cat"]],
    [["the", "cat"]],
  ]);
  assertEquals(corpus.df.get("cat"), 3);
  const scorer = new CiderDScorer(corpus);
  const refs = scorer.references(pairs[0].references);
  const withCat = scorer.score(["a", "cat", "sat"], refs);
  const withoutCat = scorer.score(["a", "sat"], refs);
  assert(withCat > 0 && withoutCat > 0);
  assertEquals(scorer.score(["cat"], refs), 0); // only a word of idf 0
  assertEquals(scorer.score(pairs[0].candidate, refs), ciderDFromTokens([pairs[0]], corpus).score);
});

Deno.test("captionDiagnostics() counts words used, novel captions, mean length and repeated trigrams", () => {
  const training = captionSet(["<START> a cat on a mat <END>", "A dog."]);
  const d = captionDiagnostics([
    "a cat on a mat",
    "a dog",
    "a red dog",
    "a dog and a dog and a cat",
  ], training);
  assertEquals(d.vocabulary, 7); // a cat on mat dog red and
  assertEquals(d.novel, 2 / 4);
  assertEquals(d.meanLength, (5 + 2 + 3 + 8) / 4);
  assertEquals(d.repeatedTrigrams, 1 / 4); // "a dog and" twice
  assertEquals(captionDiagnostics([], training), {
    vocabulary: 0,
    novel: 0,
    meanLength: 0,
    repeatedTrigrams: 0,
  });
});

Deno.test("unigramBleu() is clipped unigram precision times the brevity penalty (nltk, weights [1])", () => {
  // [a, dog] vs [a, big, dog]: precision 2/2, BP = exp(1 - 3/2) = 0.6065307
  assertAlmostEquals(unigramBleu("<START> a dog <END>", "a big dog"), 0.6065307, TOL);
  // [a, a, a] vs [a, cat]: clipped 1/3, candidate longer -> BP 1
  assertAlmostEquals(unigramBleu("a a a", "a cat"), 1 / 3, TOL);
  // <UNK> is dropped from both, as in the exercise.
  assertAlmostEquals(unigramBleu("a <UNK> dog", "a dog <UNK>"), 1, TOL);
  assertEquals(unigramBleu("<START> <END>", "a dog"), 0);
  assertEquals(unigramBleu("red ball", "a dog"), 0);
});

Deno.test("evaluateCaptions() returns exactly the chosen metrics", () => {
  const refs = new Map([[1, ["a cat on a mat", "a cat"]], [2, ["a dog in a park"]]]);
  const cands = new Map([[1, "a cat on a mat"], [2, "a big dog"]]);
  const some = evaluateCaptions(cands, refs, ["bleu4", "cider"]);
  assertEquals(Object.keys(some).sort(), ["bleu4", "cider"]);
  const all = evaluateCaptions(cands, refs);
  assertEquals(Object.keys(all), [...METRIC_NAMES]); // every metric, in the table's order
  assertEquals(all.bleu4, some.bleu4);
  assertEquals(all.bleu1, corpusBleu(cands, refs).bleu1);
  // unigram_bleu: image 1 vs its first reference = 1; image 2 [a, big, dog] vs
  // [a, dog, in, a, park]: 2/3 * exp(1 - 5/3) = 0.3422781; mean = 0.6711390
  assertAlmostEquals(all.unigram_bleu!, 0.6711390, TOL);
  assertThrows(
    () => evaluateCaptions({ 3: "a cat" }, refs),
    RangeError,
    "image 3 has no reference",
  );
});

Deno.test("mostFrequentCaptionBaseline() picks the most frequent normalised caption", () => {
  const train = ["<START> a cat <END>", "a dog", "A cat.", "a dog <END>", "a dog", "<NULL>"];
  assertEquals(mostFrequentCaptionBaseline(train), "a dog");
  assertEquals(mostFrequentCaptionBaseline(["b", "a", "a", "b"]), "a");
  assertEquals(mostFrequentCaptionBaseline([]), "");
  // The baseline scores below a caption that matches.
  const refs = { 1: ["a cat on a mat"], 2: ["a dog in a park"], 3: ["a man on a bike"] };
  const base = evaluateCaptions({ 1: "a dog", 2: "a dog", 3: "a dog" }, refs, ["cider"]);
  const good = evaluateCaptions({ 1: "a cat on a mat", 2: "a dog", 3: "a man" }, refs, ["cider"]);
  assert(base.cider! < good.cider!);
});
