/**
 * Beam search over a `StepDecoder`, with the controls of mature captioners: a length penalty
 * (GNMT's or the average), trigram blocking, diverse beam search (Vijayakumar et al. 2016:
 * groups of beams, each penalised for the words earlier groups chose at the same step), and
 * the n best captions of each image.
 *
 * Every image's search is independent; the live beams of all images of a chunk share each
 * step's GEMMs. A beam ranks by its score: its log-probability, minus the diversity penalties
 * it collected (none with one group). A finished caption ranks by its score divided by the
 * length penalty of its length (words and `<END>`).
 *
 * Dimension legend: C images of a chunk, V vocabulary, B beams (≤ beamSize), L maxLength,
 * m captions returned per image (nBest).
 * @module
 */
import type { FloatArray } from "../layers/tensor.ts";
import type { DecodeOptions, LengthPenalty } from "./decode_options.ts";
import type { StepDecoder } from "./decoder.ts";
import { argmaxAllowed, topWords, trigramRepeats, withBanned } from "./next_words.ts";

/** A chunk of images to search and where results go. */
export interface BeamChunk {
  /** Image features, (C, D). */
  feats: FloatArray;
  /** C */
  n: number;
  /** Where the captions go, (C m, L). */
  captions: Int32Array;
  /** Where their log-probabilities go, (C m,); -Infinity for a missing n-best entry. */
  logProbs: Float64Array;
}

/** A caption being extended, or finished. */
interface Hypothesis {
  /** Its words (a finished one ends with `<END>`, unless it reached maxLength). */
  words: number[];
  /** Its log-probability. */
  logProb: number;
  /** Its log-probability minus the diversity penalties (equal with one group). */
  score: number;
}

/**
 * An image's greedy caption, decoded beside its beams: the argmax word after each prefix, with
 * the same bans. While its prefix is one of the live beams it reads that beam's row (`beam`,
 * an index into the image's beams); once it leaves them (it cannot come back: every later beam
 * extends a beam) it has a row of its own (`row`).
 */
interface GreedyPath {
  words: number[];
  logProb: number;
  beam: number;
  row: number;
  /** "live", "finished" (ended, or reached maxLength) or "hopeless" (cannot rank in the n best). */
  state: "live" | "finished" | "hopeless";
}

/** A live beam: a hypothesis and the state row it continues from. */
interface Beam extends Hypothesis {
  row: number;
}

/** A beam's extension by one word. */
interface Candidate {
  beam: number;
  word: number;
  logProb: number;
  score: number;
}

/**
 * The length penalty: what a finished caption's score is divided by.
 * @param form "none" (1), "gnmt" (((5 + len) / 6)^α) or "average" (len).
 * @param alpha The GNMT α.
 * @returns The penalty of a length (words and `<END>`).
 *
 * @example
 * ```ts
 * import { lengthPenalty } from "./beam_search.ts";
 * console.log(lengthPenalty("gnmt", 1)(7), lengthPenalty("average", 0)(4)); // 2 4
 * ```
 */
export function lengthPenalty(form: LengthPenalty, alpha: number): (len: number) => number {
  if (form === "gnmt") return (len) => ((5 + len) / 6) ** alpha;
  if (form === "average") return (len) => Math.max(len, 1);
  return () => 1;
}

/**
 * Beam search of a chunk of images. An image's candidates are its finished captions and, with
 * one group and unless `plainBeam`, its greedy caption too: beam search is not monotone in the beam size, and
 * greedy's caption is one of its candidates, so a wider beam never returns a worse caption.
 * The greedy caption is decoded beside the beams, on the row of the beam it coincides with
 * while it does (for a confident model, most of the way), so it costs a row only after it
 * leaves them. The `nBest` best (by penalised score, distinct captions) are written, best
 * first, each padded with `<NULL>` after its `<END>`.
 * @param dec The model's step decoder.
 * @param chunk The images and the greedy captions; results go into it.
 * @param options Resolved decoding options (method "beam").
 * @param banned The (V,) mask of words never written (restored on return).
 *
 * @example
 * ```ts
 * import { CaptioningRNN } from "../mod.ts";
 * import { beamSearch } from "./beam_search.ts";
 * import { resolveDecodeOptions } from "./decode_options.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 }, inputDim: 2 });
 * const chunk = { feats: new Float32Array(2), n: 1, captions: new Int32Array(2 * 4), logProbs: new Float64Array(2) };
 * beamSearch(model.decoder, chunk, resolveDecodeOptions({ beamSize: 2, nBest: 2, maxLength: 4 }), new Uint8Array(4));
 * console.log(chunk.logProbs[0] >= chunk.logProbs[1]); // true
 * ```
 */
export function beamSearch(
  dec: StepDecoder,
  chunk: BeamChunk,
  options: DecodeOptions,
  banned: Uint8Array,
): void {
  const { n } = chunk, { vocabSize: v, startIdx, endIdx } = dec.model;
  const { beamSize, beamGroups, diversity, nBest, maxLength, blockTrigrams } = options;
  const perGroup = beamSize / beamGroups;
  const penalty = lengthPenalty(options.lengthPenalty, options.lengthAlpha);
  // A live beam's finished captions score at most its score over the largest penalty.
  const largestPenalty = penalty(maxLength);
  const finalScore = (h: Hypothesis) => h.score / penalty(h.words.length);
  const withGreedy = beamGroups === 1 && !options.plainBeam;
  dec.reserve(n * (beamSize + (withGreedy ? 1 : 0)));
  dec.start(chunk.feats, n); // row i is image i's initial state, shared by its groups
  const groups: Beam[][][] = Array.from(
    { length: n },
    (_, i) =>
      Array.from({ length: beamGroups }, () => [{ words: [], logProb: 0, score: 0, row: i }]),
  );
  const greedy: GreedyPath[] = Array.from({ length: n }, () => ({
    words: [],
    logProb: 0,
    beam: 0,
    row: -1,
    state: withGreedy ? "live" : "hopeless",
  }));
  const finished: Hypothesis[][] = Array.from({ length: n }, () => []);
  const last = new Int32Array(n * (beamSize + 1));
  const chosen = new Float64Array(v); // this step's choices of the image's earlier groups
  const augmented = new Float64Array(v);
  const repeats: number[] = [];
  let rows = n;
  for (let t = 0; t < maxLength && rows > 0; t++) {
    for (const imageGroups of groups) {
      for (const beams of imageGroups) {
        for (const b of beams) {
          last[b.row] = b.words.length ? b.words[b.words.length - 1] : startIdx;
        }
      }
    }
    for (const path of greedy) {
      if (path.state === "live" && path.row >= 0) {
        last[path.row] = path.words[path.words.length - 1];
      }
    }
    dec.step(last, rows);
    const sc = dec.scores;
    let next = 0;
    for (let i = 0; i < n; i++) {
      // The greedy caption's next word, from the row it reads (before its beams move on).
      const path = greedy[i];
      let greedyWord = -1, greedyFrom = -1;
      if (path.state === "live") {
        greedyFrom = path.row >= 0 ? path.row : groups[i][0][path.beam].row;
        if (blockTrigrams) trigramRepeats(path.words, 0, path.words.length, repeats);
        greedyWord = withBanned(
          banned,
          blockTrigrams ? repeats : [],
          () => argmaxAllowed(sc, greedyFrom * v, v, banned),
        );
        if (greedyWord < 0) greedyWord = endIdx >= 0 ? endIdx : 0; // all banned: end it
        path.logProb += sc[greedyFrom * v + greedyWord] - dec.lse[greedyFrom];
        path.words.push(greedyWord);
        if (greedyWord === endIdx || t === maxLength - 1) path.state = "finished";
      }
      const greedyBeam = path.row < 0 ? path.beam : -1;
      let greedyOn = -1;
      const touched: number[] = [];
      for (let g = 0; g < beamGroups; g++) {
        const beams = groups[i][g];
        if (beams.length === 0) continue;
        const candidates: Candidate[] = [];
        for (let b = 0; b < beams.length; b++) {
          const beam = beams[b], o = beam.row * v, lse = dec.lse[beam.row];
          if (blockTrigrams) trigramRepeats(beam.words, 0, beam.words.length, repeats);
          const penalised = touched.length > 0 && diversity > 0;
          if (penalised) {
            for (let j = 0; j < v; j++) augmented[j] = sc[o + j] - diversity * chosen[j];
          }
          // A beam's best perGroup words are enough to find its group's best continuations.
          const words = withBanned(
            banned,
            blockTrigrams ? repeats : [],
            () =>
              penalised
                ? topWords(augmented, 0, v, perGroup, banned)
                : topWords(sc, o, v, perGroup, banned),
          );
          for (const word of words) {
            const lp = sc[o + word] - lse;
            candidates.push({
              beam: b,
              word,
              logProb: beam.logProb + lp,
              score: beam.score + lp - diversity * chosen[word],
            });
          }
        }
        candidates.sort((a, b) => b.score - a.score || a.beam - b.beam || a.word - b.word);
        const kept: Candidate[] = [];
        for (const cand of candidates) {
          if (kept.length === perGroup) break;
          const beam = beams[cand.beam];
          if (cand.word === endIdx) {
            finished[i].push({
              words: [...beam.words, cand.word],
              logProb: cand.logProb,
              score: cand.score,
            });
          } else kept.push(cand);
          if (beamGroups > 1) {
            if (chosen[cand.word] === 0) touched.push(cand.word);
            chosen[cand.word]++;
          }
        }
        // Scores only fall as words are added: a beam that cannot beat the nBest-th finished
        // caption even at the largest length penalty is done.
        const threshold = nthBest(finished[i].map(finalScore), nBest);
        const live = kept.filter((c) => c.score / largestPenalty > threshold);
        const extend = (c: Candidate) => ({
          words: [...beams[c.beam].words, c.word],
          logProb: c.logProb,
          score: c.score,
        });
        if (t === maxLength - 1) {
          for (const c of live) finished[i].push(extend(c));
          groups[i][g] = [];
          continue;
        }
        // The surviving beams' states, gathered from the state just written.
        groups[i][g] = live.map((c) => {
          dec.keep(beams[c.beam].row, next);
          return { ...extend(c), row: next++ };
        });
        if (greedyBeam >= 0) {
          greedyOn = live.findIndex((c) => c.beam === greedyBeam && c.word === greedyWord);
        }
      }
      for (const w of touched) chosen[w] = 0;
      if (path.state === "live") {
        // Still on a beam when that beam's greedy extension survived; else on a row of its own
        // — unless even its best final score could not rank among the n best.
        if (greedyOn >= 0) path.beam = greedyOn;
        else if (path.logProb / largestPenalty <= nthBest(finished[i].map(finalScore), nBest)) {
          path.state = "hopeless";
        } else {
          dec.keep(greedyFrom, next);
          path.row = next++;
        }
      }
    }
    rows = next;
  }
  for (let i = 0; i < n; i++) {
    const path = greedy[i];
    // Appended last, so that on a tie (a stable sort) the beams' captions win over greedy's.
    if (path.state === "finished" && path.logProb > -Infinity) {
      finished[i].push({ words: path.words, logProb: path.logProb, score: path.logProb });
    }
    writeBest(chunk, i, finished[i], options, dec.model, finalScore);
  }
}

/** The k-th largest of the values, or -Infinity when there are fewer. */
function nthBest(values: number[], k: number): number {
  if (values.length < k) return -Infinity;
  if (k === 1) return Math.max(...values);
  return values.sort((a, b) => b - a)[k - 1];
}

/** Ranks an image's candidates and writes its nBest distinct captions, best first. */
function writeBest(
  chunk: BeamChunk,
  i: number,
  finished: Hypothesis[],
  options: DecodeOptions,
  { nullIdx }: { nullIdx: number },
  finalScore: (h: Hypothesis) => number,
): void {
  const { maxLength: l, nBest: m } = options;
  const ranked = finished.map((h) => ({ h, s: finalScore(h) })).sort((a, b) => b.s - a.s);
  const seen = new Set<string>();
  let j = 0;
  for (const { h } of ranked) {
    if (j === m) break;
    const key = h.words.join(" ");
    if (seen.has(key)) continue;
    seen.add(key);
    const out = chunk.captions.subarray((i * m + j) * l, (i * m + j + 1) * l);
    out.fill(nullIdx);
    out.set(h.words.slice(0, l));
    chunk.logProbs[i * m + j] = h.logProb;
    j++;
  }
  for (; j < m; j++) {
    chunk.captions.fill(nullIdx, (i * m + j) * l, (i * m + j + 1) * l);
    chunk.logProbs[i * m + j] = -Infinity;
  }
}
