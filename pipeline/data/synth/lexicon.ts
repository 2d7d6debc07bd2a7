/**
 * The word inventory of the synthetic scene grammar: object nouns (with plurals and
 * synonyms), colours, sizes, descriptive adjectives, actions, places, times, weathers and
 * positions. Large enough that the full-size dataset has a vocabulary of about 1000 words.
 * @module
 */

/** Broad kinds of objects: they decide the actions, places and drawing of an object. */
export type Kind =
  | "person"
  | "animal"
  | "bird"
  | "vehicle"
  | "food"
  | "furniture"
  | "item"
  | "sport"
  | "plant";

/** One object concept: its kind, and its names (first is the usual one) as [singular, plural]. */
export interface Noun {
  /** The concept's kind. */
  kind: Kind;
  /** Names as [singular, plural]; the first is the usual name, the rest are synonyms. */
  names: [string, string][];
}

/** Where a scene takes place: a group (indoor/outdoor kind), a preposition and names. */
export interface Place {
  /** The setting group, which decides which objects are likely there and the drawing. */
  group: PlaceGroup;
  /** The preposition used with it ("on the beach", "in a kitchen"). */
  prep: string;
  /** Names (first is the usual one; a name can be several words). */
  names: string[];
}

/** Setting groups of places. */
export type PlaceGroup = "street" | "nature" | "water" | "home" | "kitchen" | "sports" | "city";

const IRREGULAR: Record<string, string> = {
  man: "men",
  woman: "women",
  child: "children",
  person: "people",
  mouse: "mice",
  goose: "geese",
  sheep: "sheep",
  deer: "deer",
  fish: "fish",
  moose: "moose",
  bison: "bison",
  tooth: "teeth",
  foot: "feet",
  knife: "knives",
  leaf: "leaves",
  shelf: "shelves",
  wolf: "wolves",
  calf: "calves",
  loaf: "loaves",
  scarf: "scarves",
  bus: "buses",
  gas: "gases",
  cactus: "cacti",
  policeman: "policemen",
  fireman: "firemen",
  fisherman: "fishermen",
  businessman: "businessmen",
  gentleman: "gentlemen",
  salmon: "salmon",
  octopus: "octopuses",
  hippopotamus: "hippos",
};

/**
 * The plural of an English noun (irregulars, -es, -ies).
 * @param word A singular noun.
 * @returns Its plural.
 *
 * @example
 * ```ts
 * import { plural } from "./lexicon.ts";
 * console.assert(plural("bus") === "buses" && plural("puppy") === "puppies");
 * ```
 */
export function plural(word: string): string {
  if (IRREGULAR[word]) return IRREGULAR[word];
  if (/(s|x|z|ch|sh)$/.test(word)) return word + "es";
  if (/[^aeiou]y$/.test(word)) return word.slice(0, -1) + "ies";
  if (/[^aeiou]o$/.test(word) && !/(photo|piano|radio|video|kayak|zoo)$/.test(word)) {
    return word + "es";
  }
  return word + "s";
}

function nouns(kind: Kind, spec: string): Noun[] {
  // "dog/puppy/pup, cat/kitten" -> concepts, each with synonyms.
  return spec.trim().split(/\s*,\s*/).map((group) => ({
    kind,
    names: group.split("/").map((w): [string, string] => [w, plural(w)]),
  }));
}

/** The object concepts, by kind. Order inside a kind sets popularity (first = most common). */
export const NOUNS: readonly Noun[] = [
  ...nouns(
    "person",
    `man/guy/gentleman, woman/lady, person/individual, boy/kid, girl/youngster, child/toddler,
     player/athlete, skier, surfer/boarder, skateboarder/skater, baby/infant, chef/cook,
     policeman/officer, soldier, tourist/traveler, student/pupil, worker/laborer,
     farmer, fisherman, businessman, teenager/teen, clown, doctor/nurse, vendor/seller,
     musician/guitarist, dancer, runner/jogger, biker/cyclist, fireman/firefighter,
     bride/groom, pilot/captain, painter/artist`,
  ),
  ...nouns(
    "animal",
    `dog/puppy/pup, cat/kitten, horse/pony, cow/bull, sheep/lamb, elephant, giraffe, zebra,
     bear/cub, goat, pig/hog, deer/fawn, rabbit/bunny, squirrel, fox, wolf, lion, tiger,
     monkey/ape, donkey, camel, kangaroo, bison/buffalo, mouse, turtle/tortoise, frog, moose,
     raccoon, hippopotamus/hippo, calf, hamster`,
  ),
  ...nouns(
    "bird",
    `bird, duck, seagull/gull, pigeon/dove, goose, swan, parrot, owl, eagle/hawk, chicken/hen,
     penguin, flamingo, sparrow`,
  ),
  ...nouns(
    "vehicle",
    `car/automobile, truck/lorry, bus/coach, train/locomotive, motorcycle/motorbike, bicycle/bike,
     airplane/plane/jet, boat/ship, van, taxi/cab, tractor, scooter, trolley/tram, helicopter,
     ambulance, jeep, canoe/kayak, sailboat/yacht, skateboard, tank`,
  ),
  ...nouns(
    "food",
    `pizza, sandwich/sub, cake, donut/doughnut, banana, apple, orange, hot dog, broccoli, carrot,
     bowl, plate/dish, cup/mug, bottle, burger/hamburger, salad, muffin/cupcake, cookie/biscuit,
     pie, steak, egg, bagel, pancake, strawberry, lemon, tomato, potato, grape,
     pineapple, watermelon/melon, cheese, bread/loaf, pretzel`,
  ),
  ...nouns(
    "furniture",
    `table/desk, chair/seat, couch/sofa, bed, bench, toilet, sink, refrigerator/fridge, oven/stove,
     microwave, shelf, cabinet/cupboard, lamp, television/tv, laptop/computer, clock, vase,
     mirror, bathtub/tub, counter, piano, window, door, rug/carpet,
     pillow/cushion, hammock`,
  ),
  ...nouns(
    "item",
    `umbrella, suitcase/luggage, backpack/bag, handbag/purse, book, phone/cellphone, keyboard,
     remote, teddy bear, kite, frisbee, toothbrush, hat/cap, box/crate, basket, bucket, candle,
     sign, flag, balloon, camera, guitar, trophy, statue/sculpture, fountain, hydrant, mailbox,
     lantern, tent, barrel, ladder, toy, doll, shoe/sneaker, knife, fork, towel, painting/picture,
     newspaper/magazine, stone/rock, tire, cone, pot/pan, kettle/teapot, jar, glass, tray,
     traffic light, parking meter, stop sign, fence, gate, tower, windmill, cabin/hut, barn`,
  ),
  ...nouns(
    "sport",
    `surfboard, snowboard, ski, ball, baseball bat/bat, tennis racket/racket, soccer ball,
     football, basketball, net, goal, sled`,
  ),
  ...nouns(
    "plant",
    `tree, flower/blossom, bush/shrub, plant, cactus, palm tree, rose, sunflower, tulip, log pile`,
  ),
];

/** Colours, each with synonyms and an SVG fill. */
export const COLOURS: readonly { names: string[]; fill: string }[] = [
  { names: ["white"], fill: "#f4f4f4" },
  { names: ["black"], fill: "#222222" },
  { names: ["red"], fill: "#d03030" },
  { names: ["blue"], fill: "#3050d0" },
  { names: ["green"], fill: "#30a040" },
  { names: ["yellow"], fill: "#f0d020" },
  { names: ["brown"], fill: "#8b5a2b" },
  { names: ["gray", "grey"], fill: "#888888" },
  { names: ["orange"], fill: "#f08020" },
  { names: ["pink"], fill: "#f090b0" },
  { names: ["purple", "violet"], fill: "#8040a0" },
  { names: ["silver"], fill: "#b8b8c8" },
  { names: ["gold", "golden"], fill: "#d4a017" },
  { names: ["tan", "beige"], fill: "#d2b48c" },
  { names: ["dark"], fill: "#404050" },
  { names: ["colorful", "multicolored"], fill: "#c040c0" },
  { names: ["striped"], fill: "#a0a060" },
  { names: ["spotted"], fill: "#b09070" },
  { names: ["cream"], fill: "#f5eecc" },
  { names: ["navy"], fill: "#202a60" },
  { names: ["maroon"], fill: "#702030" },
  { names: ["teal", "turquoise"], fill: "#209090" },
];

/** Pairs of colours that look alike in the features (the noise can confuse them). */
export const SIMILAR_COLOURS: readonly [number, number][] = [
  [0, 18], // white, cream
  [1, 14], // black, dark
  [2, 20], // red, maroon
  [2, 8], // red, orange
  [3, 19], // blue, navy
  [3, 21], // blue, teal
  [7, 11], // gray, silver
  [6, 13], // brown, tan
  [5, 12], // yellow, gold
  [9, 10], // pink, purple
  [4, 21], // green, teal
];

/** Sizes, smallest first, each with synonyms; index 2 (medium) is never said. */
export const SIZES: readonly { names: string[]; scale: number }[] = [
  { names: ["tiny", "miniature"], scale: 0.45 },
  { names: ["small", "little"], scale: 0.7 },
  { names: [], scale: 1 },
  { names: ["large", "big"], scale: 1.3 },
  { names: ["huge", "giant", "enormous"], scale: 1.6 },
];

/** Descriptive adjectives, by kind of object they fit. */
export const ADJECTIVES: Readonly<Record<Kind, string[]>> = {
  person: ["young", "old", "happy", "smiling", "tall", "elderly", "adult", "busy", "tired"],
  animal: ["fluffy", "furry", "young", "old", "wild", "cute", "hungry", "sleepy", "adult"],
  bird: ["wild", "young", "fluffy", "cute", "hungry", "lone"],
  vehicle: ["old", "new", "shiny", "dirty", "rusty", "vintage", "parked", "empty", "modern"],
  food: ["fresh", "delicious", "sliced", "half", "ripe", "homemade", "tasty", "cooked"],
  furniture: ["wooden", "old", "modern", "empty", "clean", "antique", "metal", "leather"],
  item: ["old", "new", "wooden", "plastic", "metal", "broken", "shiny", "open", "empty"],
  sport: ["new", "old", "wet", "plastic", "wooden"],
  plant: ["tall", "green", "leafy", "dry", "blooming", "potted", "wild"],
};

/** Actions (participles), by kind, each with synonyms. */
export const ACTIONS: Readonly<Record<Kind, string[][]>> = {
  person: [
    ["standing"],
    ["sitting", "seated"],
    ["walking", "strolling"],
    ["running", "jogging", "sprinting"],
    ["smiling", "grinning"],
    ["talking", "chatting"],
    ["eating"],
    ["playing"],
    ["waiting"],
    ["looking", "staring", "gazing"],
    ["posing"],
    ["jumping", "leaping"],
    ["laughing"],
    ["waving"],
    ["reading"],
    ["dancing"],
    ["sleeping", "napping"],
    ["riding"],
    ["working"],
    ["resting", "relaxing"],
    ["skiing"],
    ["surfing"],
    ["skateboarding"],
    ["swimming"],
    ["cooking"],
    ["shopping"],
    ["climbing"],
    ["kneeling", "crouching"],
  ],
  animal: [
    ["standing"],
    ["sitting"],
    ["lying", "laying"],
    ["walking", "wandering"],
    ["running", "racing"],
    ["sleeping", "napping", "dozing"],
    ["eating", "feeding"],
    ["drinking"],
    ["grazing"],
    ["playing"],
    ["resting", "relaxing"],
    ["looking", "staring"],
    ["swimming"],
    ["hiding"],
    ["jumping"],
    ["chasing"],
    ["sniffing"],
    ["rolling"],
  ],
  bird: [
    ["standing"],
    ["perched", "sitting"],
    ["flying", "soaring"],
    ["swimming", "floating"],
    ["walking"],
    ["eating", "feeding"],
    ["resting"],
    ["nesting"],
    ["landing"],
  ],
  vehicle: [
    ["parked"],
    ["driving", "traveling"],
    ["moving"],
    ["stopped", "halted"],
    ["waiting"],
    ["passing"],
    ["turning"],
    ["crossing"],
    ["speeding"],
    ["abandoned"],
  ],
  food: [
    ["sitting"],
    ["served"],
    ["displayed", "arranged"],
    ["stacked", "piled"],
    ["sliced", "cut"],
    ["cooking"],
    ["wrapped"],
    ["covered", "topped"],
  ],
  furniture: [
    ["sitting"],
    ["standing"],
    ["placed", "set"],
    ["pushed"],
    ["covered"],
    ["arranged"],
  ],
  item: [
    ["sitting"],
    ["lying"],
    ["hanging"],
    ["leaning"],
    ["placed"],
    ["displayed"],
    ["floating"],
    ["stacked"],
    ["left", "abandoned"],
  ],
  sport: [["lying"], ["leaning"], ["flying"], ["sitting"], ["propped"]],
  plant: [["growing"], ["blooming"], ["standing"], ["swaying"], ["hanging"]],
};

/** Places, by setting group. */
export const PLACES: readonly Place[] = [
  ...places("street", "on", "street/road, sidewalk/pavement, highway, crosswalk, bridge"),
  ...places("street", "in", "parking lot, intersection, alley/alleyway, traffic, tunnel"),
  ...places("street", "at", "bus stop, train station, gas station, airport/runway, corner"),
  ...places("city", "in", "city/town, market/marketplace, plaza/square, downtown, village"),
  ...places("city", "in front of", "building, store/shop, restaurant/cafe, church, museum"),
  ...places("city", "at", "station, harbor/port, zoo, fair/carnival, circus"),
  ...places("nature", "in", "park, field/meadow, forest/woods, garden, yard/backyard"),
  ...places("nature", "on", "hill/hillside, mountain, grass/lawn, trail/path, farm/ranch"),
  ...places("nature", "in", "jungle, desert, snow, savanna/grassland, valley, orchard, pasture"),
  ...places("water", "on", "beach/shore/seashore, dock/pier, lake, river, ocean/sea"),
  ...places("water", "near", "waterfall, pond, fountain, marina, canal"),
  ...places("home", "in", "living room/lounge, bedroom, bathroom, hallway, office, garage"),
  ...places("home", "on", "porch, balcony, patio, sofa, carpet, rooftop/roof"),
  ...places("kitchen", "in", "kitchen, dining room, bakery, diner, cafeteria, pantry"),
  ...places("kitchen", "on", "counter/countertop, table, tray, plate, stovetop"),
  ...places("sports", "on", "tennis court/court, field, slope/ski slope, track, skate park"),
  ...places("sports", "at", "stadium/arena, gym, pool, ballpark, rink, golf course"),
];

function places(group: PlaceGroup, prep: string, spec: string): Place[] {
  return spec.trim().split(/\s*,\s*/).map((g) => ({ group, prep, names: g.split("/") }));
}

/** Which setting groups each kind of object is found in (first is the most likely). */
export const KIND_PLACES: Readonly<Record<Kind, PlaceGroup[]>> = {
  person: ["street", "city", "nature", "water", "home", "kitchen", "sports"],
  animal: ["nature", "water", "home", "street", "city"],
  bird: ["water", "nature", "city", "street"],
  vehicle: ["street", "city", "water", "nature"],
  food: ["kitchen", "home", "city"],
  furniture: ["home", "kitchen", "city"],
  item: ["home", "city", "street", "kitchen", "nature", "water"],
  sport: ["sports", "water", "nature"],
  plant: ["nature", "home", "city", "street"],
};

/** Times of day: index 0 (plain daytime) is never said. */
export const TIMES: readonly string[][] = [
  [],
  ["at night", "at nighttime", "in the dark"],
  ["at sunset", "at dusk", "in the evening"],
  ["in the morning", "at dawn", "at sunrise"],
];

/** Weathers: index 0 (clear) is never said. */
export const WEATHERS: readonly string[][] = [
  [],
  ["in the rain", "on a rainy day", "during a storm"],
  ["in the snow", "on a snowy day", "during winter"],
  ["on a sunny day", "in the sunshine", "under a blue sky"],
  ["on a cloudy day", "under a cloudy sky", "in the fog"],
];

/** Positions in the picture: index 0 (centre, foreground) is never said. */
export const POSITIONS: readonly { names: string[]; x: number; y: number; scale: number }[] = [
  { names: [], x: 0.5, y: 0.7, scale: 1 },
  { names: ["on the left", "to the left"], x: 0.22, y: 0.7, scale: 1 },
  { names: ["on the right", "to the right"], x: 0.78, y: 0.7, scale: 1 },
  { names: ["in the background", "in the distance", "far away"], x: 0.5, y: 0.45, scale: 0.6 },
  { names: ["in the foreground", "up close", "in the front"], x: 0.45, y: 0.82, scale: 1.25 },
];

/** Number words for counts 1..9. */
export const NUMBER_WORDS: readonly string[] = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
];

/** Collective nouns for many of a kind ("a herd of cows"). */
export const COLLECTIVES: Readonly<Partial<Record<Kind, string[]>>> = {
  person: ["group", "crowd", "team", "bunch"],
  animal: ["herd", "group", "pack", "family"],
  bird: ["flock", "group", "bunch"],
  vehicle: ["row", "line", "fleet", "bunch"],
  food: ["pile", "plate", "bunch", "stack"],
  furniture: ["set", "row", "collection"],
  item: ["pile", "collection", "set", "bunch"],
  sport: ["pile", "set", "row"],
  plant: ["row", "cluster", "patch", "grove"],
};

/** Openers that make a caption describe the picture itself ("a photo of ..."). */
export const PICTURE_OPENERS: readonly string[] = [
  "a photo of",
  "a picture of",
  "an image of",
  "a view of",
  "a close up of",
  "a shot of",
  "a snapshot of",
  "a photograph of",
];

/** Clothes that describe a person's colour ("a man in a red shirt"). */
export const GARMENTS: readonly string[] = [
  "shirt",
  "jacket",
  "dress",
  "coat",
  "sweater",
  "uniform",
  "suit",
  "hoodie",
  "vest",
  "skirt",
  "outfit",
  "costume",
  "wetsuit",
];

/** Phrases that connect a second object to the first. */
export const RELATIONS: readonly string[] = [
  "next to",
  "near",
  "beside",
  "behind",
  "in front of",
  "with",
  "by",
  "along with",
  "close to",
  "across from",
  "facing",
];
