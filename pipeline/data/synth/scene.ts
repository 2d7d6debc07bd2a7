/**
 * The scene grammar: a scene is a place, a time of day, a weather and one to three groups
 * of objects, each with a count, colour, size, descriptive adjective, action and position.
 * Scenes are sampled from a seeded generator with popular and rare choices (Zipf-like), and
 * packed into a fixed-length Int16Array record so millions fit in little memory.
 * @module
 */
import type { Rng } from "../../../layers/random.ts";
import {
  ACTIONS,
  ADJECTIVES,
  COLOURS,
  type Kind,
  KIND_PLACES,
  NOUNS,
  PLACES,
  POSITIONS,
  TIMES,
} from "./lexicon.ts";

/** One group of identical objects in a scene. */
export interface SceneObject {
  /** Index into NOUNS. */
  noun: number;
  /** How many (1..9). */
  count: number;
  /** Index into COLOURS. */
  colour: number;
  /** Index into SIZES (2 is the unremarkable medium). */
  size: number;
  /** Index into ACTIONS[kind]. */
  action: number;
  /** Index into ADJECTIVES[kind], or -1 for none. */
  adj: number;
  /** Index into POSITIONS. */
  position: number;
}

/** A scene: where, when, and which objects. */
export interface Scene {
  /** Index into PLACES. */
  place: number;
  /** Index into TIMES (0: plain daytime). */
  time: number;
  /** Index into WEATHERS (0: clear). */
  weather: number;
  /** One to three object groups, the most salient first. */
  objects: SceneObject[];
}

/** The most object groups a scene has. */
export const MAX_OBJECTS = 3;
/** Int16 words per packed scene: 4 header words + 7 per object slot. */
export const SCENE_WORDS: number = 4 + 7 * MAX_OBJECTS;

const KINDS: Kind[] = [
  "person",
  "animal",
  "bird",
  "vehicle",
  "food",
  "furniture",
  "item",
  "sport",
  "plant",
];
const KIND_WEIGHTS = [0.3, 0.17, 0.06, 0.14, 0.12, 0.08, 0.07, 0.03, 0.03];
const NOUNS_BY_KIND = new Map<Kind, number[]>(
  KINDS.map((k) => [k, NOUNS.flatMap((n, i) => (n.kind === k ? [i] : []))]),
);

function pick(rng: Rng, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  let u = rng.random() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

const zipfCache = new Map<string, number[]>();
/** Zipf-like weights 1/(rank+offset)^s for n items (popular first, long tail). */
function zipf(n: number, s = 1.1, offset = 1.5): number[] {
  const key = `${n},${s},${offset}`;
  let w = zipfCache.get(key);
  if (!w) {
    w = Array.from({ length: n }, (_, r) => 1 / Math.pow(r + offset, s));
    zipfCache.set(key, w);
  }
  return w;
}

/**
 * The kind of the object a noun names.
 * @param noun Index into NOUNS.
 * @returns The kind.
 *
 * @example
 * ```ts
 * import { kindOf } from "./scene.ts";
 * console.assert(kindOf(0) === "person");
 * ```
 */
export function kindOf(noun: number): Kind {
  return NOUNS[noun].kind;
}

function sampleObject(rng: Rng, kind: Kind, usedPositions: Set<number>): SceneObject {
  const pool = NOUNS_BY_KIND.get(kind)!;
  const noun = pool[pick(rng, zipf(pool.length, 1.6, 2))];
  const u = rng.random();
  const count = u < 0.55
    ? 1
    : u < 0.73
    ? 2
    : u < 0.81
    ? 3
    : u < 0.86
    ? 4
    : u < 0.89
    ? 5
    : 6 + rng.randint(4);
  let position = pick(rng, [0.4, 0.17, 0.17, 0.14, 0.12]);
  for (let t = 0; t < 5 && usedPositions.has(position); t++) {
    position = rng.randint(POSITIONS.length);
  }
  usedPositions.add(position);
  return {
    noun,
    count,
    colour: pick(rng, zipf(COLOURS.length, 0.8, 2)),
    size: pick(rng, [0.07, 0.2, 0.44, 0.2, 0.09]),
    action: pick(rng, zipf(ACTIONS[kind].length, 0.9, 2)),
    adj: rng.random() < 0.5 ? -1 : pick(rng, zipf(ADJECTIVES[kind].length, 0.8, 2)),
    position,
  };
}

/**
 * Samples a scene from the grammar.
 * @param rng The seeded generator (advanced).
 * @returns A new scene.
 *
 * @example
 * ```ts
 * import { sampleScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * const s = sampleScene(new Rng(1));
 * console.assert(s.objects.length >= 1 && s.objects.length <= 3);
 * ```
 */
export function sampleScene(rng: Rng): Scene {
  const kind0 = KINDS[pick(rng, KIND_WEIGHTS)];
  const groups = KIND_PLACES[kind0];
  const group = groups[pick(rng, groups.map((_, i) => 1 / (i + 1)))];
  const placeIdx = PLACES.flatMap((p, i) => (p.group === group ? [i] : []));
  const place = placeIdx[pick(rng, zipf(placeIdx.length, 0.9, 2))];
  const indoor = group === "home" || group === "kitchen";
  const time = indoor
    ? (rng.random() < 0.85 ? 0 : 1 + rng.randint(TIMES.length - 1))
    : pick(rng, [0.7, 0.1, 0.1, 0.1]);
  const weather = indoor ? 0 : pick(rng, [0.55, 0.12, 0.1, 0.13, 0.1]);
  const used = new Set<number>();
  const objects = [sampleObject(rng, kind0, used)];
  const nObjects = 1 + pick(rng, [0.45, 0.35, 0.2]);
  const compatible = KINDS.filter((k) => KIND_PLACES[k].includes(group));
  const weights = compatible.map((k) => KIND_WEIGHTS[KINDS.indexOf(k)]);
  while (objects.length < nObjects) {
    const o = sampleObject(rng, compatible[pick(rng, weights)], used);
    if (!objects.some((p) => p.noun === o.noun)) objects.push(o);
    else if (rng.random() < 0.5) break;
  }
  return { place, time, weather, objects };
}

/**
 * Packs a scene into `SCENE_WORDS` Int16 words at `offset`.
 * @param scene The scene.
 * @param out The destination.
 * @param offset The first word to write.
 *
 * @example
 * ```ts
 * import { packScene, sampleScene, SCENE_WORDS, unpackScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * const s = sampleScene(new Rng(2)), buf = new Int16Array(SCENE_WORDS);
 * packScene(s, buf, 0);
 * console.assert(JSON.stringify(unpackScene(buf, 0)) === JSON.stringify(s));
 * ```
 */
export function packScene(scene: Scene, out: Int16Array, offset: number): void {
  out[offset] = scene.place;
  out[offset + 1] = scene.time;
  out[offset + 2] = scene.weather;
  out[offset + 3] = scene.objects.length;
  scene.objects.forEach((o, k) => {
    const b = offset + 4 + 7 * k;
    out[b] = o.noun;
    out[b + 1] = o.count;
    out[b + 2] = o.colour;
    out[b + 3] = o.size;
    out[b + 4] = o.action;
    out[b + 5] = o.adj;
    out[b + 6] = o.position;
  });
}

/**
 * Unpacks a scene written by {@linkcode packScene}.
 * @param buf The packed scenes.
 * @param offset The scene's first word.
 * @returns The scene.
 *
 * @example
 * ```ts
 * import { packScene, sampleScene, SCENE_WORDS, unpackScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * const buf = new Int16Array(SCENE_WORDS);
 * packScene(sampleScene(new Rng(3)), buf, 0);
 * console.assert(unpackScene(buf, 0).objects.length >= 1);
 * ```
 */
export function unpackScene(buf: Int16Array, offset: number): Scene {
  const objects: SceneObject[] = [];
  for (let k = 0; k < buf[offset + 3]; k++) {
    const b = offset + 4 + 7 * k;
    objects.push({
      noun: buf[b],
      count: buf[b + 1],
      colour: buf[b + 2],
      size: buf[b + 3],
      action: buf[b + 4],
      adj: buf[b + 5],
      position: buf[b + 6],
    });
  }
  return { place: buf[offset], time: buf[offset + 1], weather: buf[offset + 2], objects };
}
