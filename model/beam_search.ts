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
import { topWords, trigramRepeats, withBanned } from "./next_words.ts";

/** A chunk of images to search, the greedy captions to compare with, and where results go. */
export interface BeamChunk {
  /** Image features, (C, D). */
  feats: FloatArray;
  /** C */
  n: number;
  /** The greedy captions of the chunk, (C, L), decoded with the same word bans. */
  greedy: Int32Array;
  /** Their log-probabilities, (C,). */
  greedyLogProbs: Float64Array;
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
  /** Whether it is the greedy caption (whose row keeps what greedy wrote after `<END>`). */
  greedy?: boolean;
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
 * one group, its greedy caption too: beam search is not monotone in the beam size, and
 * greedy's caption is one of its candidates, so a wider beam never returns a worse caption.
 * The `nBest` best (by penalised score, distinct captions) are written, best first.
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
 * const chunk = {
 *   feats: new Float32Array(2), n: 1, greedy: new Int32Array(4), greedyLogProbs: new Float64Array([-Infinity]),
 *   captions: new Int32Array(2 * 4), logProbs: new Float64Array(2),
 * };
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
  dec.reserve(n * beamSize);
  dec.start(chunk.feats, n); // row i is image i's initial state, shared by its groups
  const groups: Beam[][][] = Array.from(
    { length: n },
    (_, i) =>
      Array.from({ length: beamGroups }, () => [{ words: [], logProb: 0, score: 0, row: i }]),
  );
  const finished: Hypothesis[][] = Array.from({ length: n }, () => []);
  const last = new Int32Array(Math.max(n, n * beamSize));
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
    dec.step(last, rows);
    const sc = dec.scores;
    let next = 0;
    for (let i = 0; i < n; i++) {
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
      }
      for (const w of touched) chosen[w] = 0;
    }
    rows = next;
  }
  for (let i = 0; i < n; i++) writeBest(chunk, i, finished[i], options, dec.model, finalScore);
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
  { endIdx, nullIdx }: { endIdx: number; nullIdx: number },
  finalScore: (h: Hypothesis) => number,
): void {
  const { maxLength: l, nBest: m } = options;
  if (options.beamGroups === 1 && chunk.greedyLogProbs[i] > -Infinity) {
    // Appended last: on a tie (a stable sort) the beam's caption wins over greedy's.
    const row = chunk.greedy.subarray(i * l, (i + 1) * l);
    const end = row.indexOf(endIdx) + 1 || l; // through its first <END>, or all L words
    const logProb = chunk.greedyLogProbs[i];
    finished.push({
      words: Array.from(row.subarray(0, end)),
      logProb,
      score: logProb,
      greedy: true,
    });
  }
  const ranked = finished.map((h) => ({ h, s: finalScore(h) })).sort((a, b) => b.s - a.s);
  const seen = new Set<string>();
  let j = 0;
  for (const { h } of ranked) {
    if (j === m) break;
    const key = h.words.join(" ");
    if (seen.has(key)) continue;
    seen.add(key);
    const out = chunk.captions.subarray((i * m + j) * l, (i * m + j + 1) * l);
    if (h.greedy) out.set(chunk.greedy.subarray(i * l, (i + 1) * l));
    else {
      out.fill(nullIdx);
      out.set(h.words.slice(0, l));
    }
    chunk.logProbs[i * m + j] = h.logProb;
    j++;
  }
  for (; j < m; j++) {
    chunk.captions.fill(nullIdx, (i * m + j) * l, (i * m + j + 1) * l);
    chunk.logProbs[i * m + j] = -Infinity;
  }
}
