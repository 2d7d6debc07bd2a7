/**
 * The feature projection: a scene's attributes (per object slot: noun, colour, size, count,
 * action, adjective, position; and place, time, weather) form a sparse attribute vector,
 * which a fixed random projection maps to a 4096-d fc7-like feature (non-negative, like a
 * ReLU layer) and a 512-d PCA-like feature (variance falling with the component index).
 * Noise makes weak attributes ambiguous: in attribute space (similar colours swapped or
 * blended, weak details dropped, clutter added) and in feature space (Gaussian noise).
 * @module
 */
import { Rng } from "../../../layers/random.ts";
import {
  ACTIONS,
  ADJECTIVES,
  COLOURS,
  type Kind,
  NOUNS,
  PLACES,
  POSITIONS,
  SIMILAR_COLOURS,
  SIZES,
  TIMES,
  WEATHERS,
} from "./lexicon.ts";
import { MAX_OBJECTS, type Scene } from "./scene.ts";

/** The dimension of the PCA-like features (the `_pca` files). */
export const PCA_DIM = 512;
/** The dimension of the full fc7-like features. */
export const FULL_DIM = 4096;

const KIND_LIST = Object.keys(ACTIONS) as Kind[];
const ACTION_BASE = new Map<Kind, number>();
const ADJ_BASE = new Map<Kind, number>();
let nActions = 0, nAdjs = 0;
for (const k of KIND_LIST) {
  ACTION_BASE.set(k, nActions);
  nActions += ACTIONS[k].length;
  ADJ_BASE.set(k, nAdjs);
  nAdjs += ADJECTIVES[k].length;
}

/** Column layout of the attribute vector. */
const SLOT = {
  noun: 0,
  colour: NOUNS.length,
  size: NOUNS.length + COLOURS.length,
  count: NOUNS.length + COLOURS.length + SIZES.length,
  action: NOUNS.length + COLOURS.length + SIZES.length + 4,
  adj: NOUNS.length + COLOURS.length + SIZES.length + 4 + nActions,
  position: NOUNS.length + COLOURS.length + SIZES.length + 4 + nActions + nAdjs,
  width: NOUNS.length + COLOURS.length + SIZES.length + 4 + nActions + nAdjs + POSITIONS.length,
};
const PLACE_BASE = MAX_OBJECTS * SLOT.width;
const TIME_BASE = PLACE_BASE + PLACES.length;
const WEATHER_BASE = TIME_BASE + TIMES.length;
/** The number of attribute columns. */
export const NUM_ATTRIBUTES: number = WEATHER_BASE + WEATHERS.length;

const SLOT_GAIN = [1, 0.8, 0.65];

/** How noisy the features are; the defaults keep colour, size and count only partly visible. */
export interface NoiseOptions {
  /** Standard deviation of the Gaussian noise added to each feature (default 0.35). */
  featureNoise?: number;
  /** Chance that a colour is swapped for a similar one (default 0.2). */
  colourConfusion?: number;
  /** Chance that a weak detail (size, adjective, position, time, weather) is dropped (default 0.3). */
  dropout?: number;
}

/**
 * A fixed random projection from scene attributes to features, derived from a seed.
 *
 * @example
 * ```ts
 * import { FeatureProjector, PCA_DIM } from "./features.ts";
 * import { sampleScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * const proj = new FeatureProjector(7, { full: false });
 * const pca = new Float32Array(PCA_DIM);
 * proj.project(sampleScene(new Rng(1)), new Rng(2), pca, 0, null, 0);
 * console.assert(pca.some((v) => v !== 0));
 * ```
 */
export class FeatureProjector {
  #pca: Float32Array;
  #full: Float32Array | null;
  #fullBias: Float32Array | null;
  #pcaScale: Float32Array;
  #noise: Required<NoiseOptions>;
  #gauss: Float32Array;
  #idx = new Int32Array(64);
  #w = new Float32Array(64);

  /**
   * Draws the projection matrices from a seed.
   * @param seed The seed of the projection (the same seed gives the same projection).
   * @param options `full`: also build the 4096-d projection; noise levels.
   */
  constructor(seed: number, options: { full?: boolean } & NoiseOptions = {}) {
    const rng = new Rng(seed ^ 0x5eed);
    this.#noise = {
      featureNoise: options.featureNoise ?? 0.35,
      colourConfusion: options.colourConfusion ?? 0.2,
      dropout: options.dropout ?? 0.3,
    };
    // Columns are unit-variance random directions; column j of the PCA projection is
    // stored contiguously (row j of #pca) so a sparse product adds whole rows.
    this.#pca = new Float32Array(NUM_ATTRIBUTES * PCA_DIM);
    for (let i = 0; i < this.#pca.length; i++) this.#pca[i] = rng.randn();
    this.#pcaScale = new Float32Array(PCA_DIM);
    for (let d = 0; d < PCA_DIM; d++) this.#pcaScale[d] = 2 / Math.sqrt(1 + d / 16);
    this.#full = null;
    this.#fullBias = null;
    if (options.full) {
      this.#full = new Float32Array(NUM_ATTRIBUTES * FULL_DIM);
      for (let i = 0; i < this.#full.length; i++) this.#full[i] = rng.randn() * 0.8;
      this.#fullBias = new Float32Array(FULL_DIM);
      for (let d = 0; d < FULL_DIM; d++) this.#fullBias[d] = rng.randn() * 0.5 - 0.2;
    }
    this.#gauss = new Float32Array(1 << 16);
    for (let i = 0; i < this.#gauss.length; i++) this.#gauss[i] = rng.randn();
  }

  /** The sparse, noisy attribute vector of a scene: `n` (column, weight) pairs. */
  #attributes(scene: Scene, rng: Rng): number {
    let n = 0;
    const add = (col: number, w: number) => {
      this.#idx[n] = col;
      this.#w[n] = w * (1 + 0.15 * rng.randn());
      n++;
    };
    const keep = () => rng.random() >= this.#noise.dropout;
    scene.objects.forEach((o, k) => {
      const base = k * SLOT.width, g = SLOT_GAIN[k];
      const kind = NOUNS[o.noun].kind;
      add(base + SLOT.noun + o.noun, 1.2 * g);
      let colour = o.colour;
      const similar = SIMILAR_COLOURS.filter((p) => p[0] === colour || p[1] === colour);
      if (similar.length && rng.random() < this.#noise.colourConfusion) {
        const p = similar[rng.randint(similar.length)];
        colour = p[0] === colour ? p[1] : p[0];
      }
      add(base + SLOT.colour + colour, 0.6 * g);
      if (keep()) add(base + SLOT.size + o.size, 0.4 * g);
      const bucket = o.count === 1 ? 0 : o.count === 2 ? 1 : o.count <= 5 ? 2 : 3;
      add(base + SLOT.count + bucket, 0.5 * g);
      add(base + SLOT.action + ACTION_BASE.get(kind)! + o.action, 0.7 * g);
      if (o.adj >= 0 && keep()) add(base + SLOT.adj + ADJ_BASE.get(kind)! + o.adj, 0.35 * g);
      if (keep()) add(base + SLOT.position + o.position, 0.35 * g);
    });
    add(PLACE_BASE + scene.place, 0.9);
    if (keep()) add(TIME_BASE + scene.time, 0.5);
    if (keep()) add(WEATHER_BASE + scene.weather, 0.45);
    // Clutter: a faint object that no caption mentions.
    add(rng.randint(MAX_OBJECTS) * SLOT.width + SLOT.noun + rng.randint(NOUNS.length), 0.25);
    return n;
  }

  /**
   * Computes the features of one image: 512-d PCA-like into `pca` and, when the projector
   * was built with `full`, 4096-d fc7-like into `full`.
   * @param scene The image's scene.
   * @param rng The noise generator (advanced).
   * @param pca Destination of the PCA-like features.
   * @param pcaOffset Element offset in `pca`.
   * @param full Destination of the full features, or null.
   * @param fullOffset Element offset in `full`.
   */
  project(
    scene: Scene,
    rng: Rng,
    pca: Float32Array,
    pcaOffset: number,
    full: Float32Array | null,
    fullOffset: number,
  ): void {
    const n = this.#attributes(scene, rng);
    const sigma = this.#noise.featureNoise, gauss = this.#gauss;
    let h = rng.nextUint32() | 1;
    for (let d = 0; d < PCA_DIM; d++) {
      h ^= h << 13, h ^= h >>> 17, h ^= h << 5;
      pca[pcaOffset + d] = sigma * gauss[h & 0xffff];
    }
    for (let a = 0; a < n; a++) {
      const row = this.#idx[a] * PCA_DIM, w = this.#w[a];
      for (let d = 0; d < PCA_DIM; d++) pca[pcaOffset + d] += w * this.#pca[row + d];
    }
    for (let d = 0; d < PCA_DIM; d++) pca[pcaOffset + d] *= this.#pcaScale[d];
    if (full && this.#full && this.#fullBias) {
      const W = this.#full, bias = this.#fullBias;
      for (let d = 0; d < FULL_DIM; d++) {
        h ^= h << 13, h ^= h >>> 17, h ^= h << 5;
        full[fullOffset + d] = bias[d] + sigma * gauss[h & 0xffff];
      }
      for (let a = 0; a < n; a++) {
        const row = this.#idx[a] * FULL_DIM, w = this.#w[a];
        for (let d = 0; d < FULL_DIM; d++) full[fullOffset + d] += w * W[row + d];
      }
      for (let d = 0; d < FULL_DIM; d++) {
        if (full[fullOffset + d] < 0) full[fullOffset + d] = 0;
      }
    }
  }
}
