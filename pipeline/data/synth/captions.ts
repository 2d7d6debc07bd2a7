/**
 * The caption writer: turns a scene into varied English sentences, the way people describe
 * a picture: synonyms, optional details (colour, size, adjective, place, time, weather,
 * position), and several word orders. Every caption has at most 15 words, so with
 * `<START>` and `<END>` it fits a 17-token row.
 * @module
 */
import type { Rng } from "../../../layers/random.ts";
import {
  ACTIONS,
  ADJECTIVES,
  COLLECTIVES,
  COLOURS,
  GARMENTS,
  NOUNS,
  NUMBER_WORDS,
  PICTURE_OPENERS,
  PLACES,
  POSITIONS,
  RELATIONS,
  SIZES,
  TIMES,
  WEATHERS,
} from "./lexicon.ts";
import type { Scene, SceneObject } from "./scene.ts";

/** The most words in a caption (17-token rows minus `<START>` and `<END>`). */
export const MAX_CAPTION_WORDS = 15;

function choose<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.randint(items.length)];
}

/** The usual name with probability `p`, else a synonym (each later one rarer). */
function name<T>(rng: Rng, names: readonly T[], p = 0.65): T {
  if (names.length === 1 || rng.random() < p) return names[0];
  for (let i = 1; i < names.length - 1; i++) if (rng.random() < 0.7) return names[i];
  return names[names.length - 1];
}

function article(next: string): string {
  return /^[aeiou]/.test(next) && !/^(uni|one|eu)/.test(next) ? "an" : "a";
}

interface Detail {
  colour: boolean;
  size: boolean;
  adj: boolean;
}

function nounPhrase(rng: Rng, o: SceneObject, d: Detail, definite = false): string[] {
  const noun = NOUNS[o.noun];
  const [sing, plur] = name(rng, noun.names, 0.7);
  const mods: string[] = [];
  if (d.size && SIZES[o.size].names.length) mods.push(name(rng, SIZES[o.size].names, 0.75));
  if (d.adj && o.adj >= 0) mods.push(ADJECTIVES[noun.kind][o.adj]);
  const person = noun.kind === "person";
  if (d.colour && !person) mods.push(name(rng, COLOURS[o.colour].names, 0.8));
  if (mods.length === 2 && rng.random() < 0.15) mods.reverse();
  const head = [...mods, ...(o.count === 1 ? sing : plur).split(" ")];
  if (d.colour && person) {
    // People are described by their clothes: "a man in a red shirt".
    const garment = GARMENTS[(o.noun * 7 + o.colour * 3) % GARMENTS.length];
    const colour = name(rng, COLOURS[o.colour].names, 0.8);
    const cloth = o.count === 1 ? [article(colour), colour, garment] : [colour, garment + "s"];
    head.push(...(rng.random() < 0.6 ? ["in", ...cloth] : ["wearing", ...cloth]));
  }
  if (o.count === 1) {
    if (definite) return ["the", ...head];
    const u = rng.random();
    return [u < 0.88 ? article(head[0]) : u < 0.94 ? "one" : "the", ...head];
  }
  if (definite && rng.random() < 0.5) return ["the", ...head];
  if (o.count === 2) {
    return [
      ...choose(rng, [["two"], ["two"], ["a", "pair", "of"], ["a", "couple", "of"]]),
      ...head,
    ];
  }
  if (o.count <= 5) {
    const u = rng.random();
    const q = u < 0.6
      ? [NUMBER_WORDS[o.count]]
      : u < 0.8
      ? ["several"]
      : u < 0.9
      ? ["some"]
      : ["a", "few"];
    return [...q, ...head];
  }
  const u = rng.random();
  const collective = COLLECTIVES[noun.kind] ?? ["group"];
  const q = u < 0.45
    ? ["a", name(rng, collective, 0.5), "of"]
    : u < 0.75
    ? ["many"]
    : u < 0.88
    ? ["lots", "of"]
    : ["a", "bunch", "of"];
  return [...q, ...head];
}

function actionWord(rng: Rng, o: SceneObject): string {
  return name(rng, ACTIONS[NOUNS[o.noun].kind][o.action], 0.7);
}

function placePhrase(rng: Rng, scene: Scene): string[] {
  const place = PLACES[scene.place];
  const word = name(rng, place.names, 0.7);
  const det = rng.random() < 0.72 ? "the" : article(word);
  return [...place.prep.split(" "), det, ...word.split(" ")];
}

function placeNoun(rng: Rng, scene: Scene): string[] {
  const word = name(rng, PLACES[scene.place].names, 0.7);
  return [article(word), ...word.split(" ")];
}

function extras(rng: Rng, scene: Scene, o: SceneObject): string[] {
  const out: string[] = [];
  if (POSITIONS[o.position].names.length && rng.random() < 0.3) {
    out.push(...name(rng, POSITIONS[o.position].names, 0.6).split(" "));
  }
  if (scene.time && rng.random() < 0.45) out.push(...name(rng, TIMES[scene.time], 0.6).split(" "));
  else if (scene.weather && rng.random() < 0.4) {
    out.push(...name(rng, WEATHERS[scene.weather], 0.6).split(" "));
  }
  return out;
}

function be(o: SceneObject): string {
  return o.count === 1 ? "is" : "are";
}

/** One attempt at a caption; `level` > 0 drops optional details to make it shorter. */
function attempt(rng: Rng, scene: Scene, level: number): string[] {
  const full = level === 0;
  const detail = (): Detail => ({
    colour: rng.random() < (full ? 0.55 : 0.25),
    size: rng.random() < (full ? 0.4 : 0.15),
    adj: rng.random() < (full ? 0.3 : 0.1),
  });
  const [o0, o1] = scene.objects;
  const np0 = nounPhrase(rng, o0, detail());
  const act = rng.random() < 0.85 ? [actionWord(rng, o0)] : [];
  const pp = rng.random() < 0.85 || !o1 ? placePhrase(rng, scene) : [];
  const tail = level < 2 ? extras(rng, scene, o0) : [];
  const template = rng.randint(o1 ? 10 : 7);
  const np1 = () =>
    nounPhrase(rng, o1, level < 2 ? detail() : { colour: false, size: false, adj: false });
  switch (template) {
    case 0:
      return [...np0, ...act, ...pp, ...tail];
    case 1:
      return [...np0, ...(act.length ? [be(o0), ...act] : []), ...pp, ...tail];
    case 2:
      return ["there", be(o0), ...np0, ...act, ...pp, ...tail];
    case 3:
      return pp.length && act.length
        ? [...pp, ...np0, be(o0), ...act, ...tail]
        : [...np0, ...act, ...pp, ...tail];
    case 4:
      return [...choose(rng, PICTURE_OPENERS).split(" "), ...np0, ...act, ...pp, ...tail];
    case 5:
      return [...placeNoun(rng, scene), "with", ...np0, ...act, ...tail];
    case 6:
      return tail.length
        ? [...tail, ...np0, ...act, ...pp]
        : act.length
        ? [...np0, "that", be(o0), ...act, ...pp]
        : [...np0, ...pp];
    case 7:
      return [...np0, "and", ...np1(), ...pp, ...tail];
    case 8:
      return [...np0, ...act, ...choose(rng, RELATIONS).split(" "), ...np1(), ...pp];
    default:
      return [...placeNoun(rng, scene), "with", ...np0, "and", ...np1()];
  }
}

/**
 * Writes one caption (a list of words) describing a scene.
 * @param rng The seeded generator (advanced).
 * @param scene The scene to describe.
 * @param typoRate The chance that a word of 4+ letters gets one wrong letter.
 * @returns The words, at most {@linkcode MAX_CAPTION_WORDS}.
 *
 * @example
 * ```ts
 * import { writeCaption } from "./captions.ts";
 * import { sampleScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * const rng = new Rng(4);
 * const words = writeCaption(rng, sampleScene(rng));
 * console.assert(words.length > 0 && words.length <= 15);
 * ```
 */
export function writeCaption(rng: Rng, scene: Scene, typoRate = 0.002): string[] {
  let words: string[] | null = null;
  for (let level = 0; level < 6 && !words; level++) {
    const w = attempt(rng, scene, Math.min(level, 2));
    if (w.length <= MAX_CAPTION_WORDS) words = w;
  }
  words ??= nounPhrase(rng, scene.objects[0], { colour: false, size: false, adj: false })
    .concat(placePhrase(rng, scene))
    .slice(0, MAX_CAPTION_WORDS);
  // People make typos: each gives a rare word that the frequency cut turns into <UNK>.
  for (let i = 0; i < words.length; i++) {
    if (words[i].length >= 4 && rng.random() < typoRate) {
      const at = rng.randint(words[i].length);
      const letter = String.fromCharCode(97 + rng.randint(26));
      words[i] = words[i].slice(0, at) + letter + words[i].slice(at + 1);
    }
  }
  return words;
}
