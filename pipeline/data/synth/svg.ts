/**
 * SVG drawing of a scene: a backdrop for the place's setting, time and weather, and each
 * object group drawn as simple shapes of its kind, colour, size, count and position, with a
 * small label, so an HTML report can show what an image "is".
 * @module
 */
import { COLOURS, type Kind, NOUNS, PLACES, POSITIONS, SIZES, TIMES, WEATHERS } from "./lexicon.ts";
import type { Scene, SceneObject } from "./scene.ts";

const W = 160, H = 120;

const BACKDROPS: Record<string, [string, string]> = {
  street: ["#9fc5e8", "#777777"],
  city: ["#a9c8e0", "#a0a0a0"],
  nature: ["#9fd0f0", "#6aa84f"],
  water: ["#9fd0f0", "#3d85c6"],
  home: ["#e8dcc8", "#b08a60"],
  kitchen: ["#f0ead8", "#c8b89a"],
  sports: ["#a0d0f0", "#5a9e4a"],
};

function shape(kind: Kind, x: number, y: number, s: number, fill: string): string {
  const f = `fill="${fill}" stroke="#222" stroke-width="0.6"`;
  const r = (v: number) => Math.round(v * 10) / 10;
  switch (kind) {
    case "person":
      return `<circle cx="${r(x)}" cy="${r(y - 15 * s)}" r="${
        r(4 * s)
      }" fill="#f1c27d" stroke="#222" stroke-width="0.6"/>` +
        `<rect x="${r(x - 5 * s)}" y="${r(y - 11 * s)}" width="${r(10 * s)}" height="${
          r(14 * s)
        }" rx="2" ${f}/>`;
    case "animal":
      return `<ellipse cx="${r(x)}" cy="${r(y - 6 * s)}" rx="${r(10 * s)}" ry="${
        r(5 * s)
      }" ${f}/>` +
        `<circle cx="${r(x + 10 * s)}" cy="${r(y - 11 * s)}" r="${r(3.5 * s)}" ${f}/>`;
    case "bird":
      return `<ellipse cx="${r(x)}" cy="${r(y - 5 * s)}" rx="${r(5 * s)}" ry="${r(3 * s)}" ${f}/>` +
        `<path d="M${r(x - 4 * s)} ${r(y - 6 * s)} l${r(3 * s)} ${r(-5 * s)} l${r(3 * s)} ${
          r(5 * s)
        }" ${f}/>`;
    case "vehicle":
      return `<rect x="${r(x - 13 * s)}" y="${r(y - 12 * s)}" width="${r(26 * s)}" height="${
        r(9 * s)
      }" rx="2" ${f}/>` +
        `<circle cx="${r(x - 7 * s)}" cy="${r(y - 2 * s)}" r="${r(2.5 * s)}" fill="#222"/>` +
        `<circle cx="${r(x + 7 * s)}" cy="${r(y - 2 * s)}" r="${r(2.5 * s)}" fill="#222"/>`;
    case "food":
      return `<circle cx="${r(x)}" cy="${r(y - 5 * s)}" r="${r(5 * s)}" ${f}/>`;
    case "furniture":
      return `<rect x="${r(x - 10 * s)}" y="${r(y - 14 * s)}" width="${r(20 * s)}" height="${
        r(14 * s)
      }" ${f}/>`;
    case "plant":
      return `<rect x="${r(x - 1.5 * s)}" y="${r(y - 8 * s)}" width="${r(3 * s)}" height="${
        r(8 * s)
      }" fill="#6b4226"/>` +
        `<circle cx="${r(x)}" cy="${r(y - 13 * s)}" r="${r(7 * s)}" ${f}/>`;
    case "sport":
      return `<polygon points="${r(x)},${r(y - 14 * s)} ${r(x + 6 * s)},${r(y)} ${r(x - 6 * s)},${
        r(y)
      }" ${f}/>`;
    default:
      return `<rect x="${r(x - 6 * s)}" y="${r(y - 12 * s)}" width="${r(12 * s)}" height="${
        r(12 * s)
      }" rx="3" ${f}/>`;
  }
}

function group(o: SceneObject): string {
  const noun = NOUNS[o.noun];
  const pos = POSITIONS[o.position];
  const s = SIZES[o.size].scale * pos.scale;
  const n = Math.min(o.count, 5);
  const spread = 16 * s;
  let out = "";
  for (let i = 0; i < n; i++) {
    const x = pos.x * W + (i - (n - 1) / 2) * spread;
    const y = pos.y * H + (i % 2) * 4 * s;
    out += shape(noun.kind, x, y, s, COLOURS[o.colour].fill);
  }
  const label = (o.count > 1 ? `${o.count > 5 ? "many" : o.count} ` : "") +
    noun.names[0][o.count > 1 ? 1 : 0];
  out += `<text x="${Math.round(pos.x * W)}" y="${Math.round(Math.min(H - 2, pos.y * H + 10))}" ` +
    `font-size="7" text-anchor="middle" font-family="sans-serif">${label}</text>`;
  return out;
}

/**
 * Draws a scene as a small standalone SVG (160x120).
 * @param scene The scene.
 * @returns The SVG document text.
 *
 * @example
 * ```ts
 * import { drawScene } from "./svg.ts";
 * import { sampleScene } from "./scene.ts";
 * import { Rng } from "../../../layers/random.ts";
 * console.assert(drawScene(sampleScene(new Rng(1))).startsWith("<svg"));
 * ```
 */
export function drawScene(scene: Scene): string {
  const place = PLACES[scene.place];
  let [sky, ground] = BACKDROPS[place.group];
  if (scene.time === 1) sky = "#1c2340";
  if (scene.time === 2) sky = "#f4a261";
  if (scene.weather === 4 || scene.weather === 1) sky = "#b0b7bf";
  const horizon = place.group === "home" || place.group === "kitchen" ? 0.55 : 0.5;
  const title = [
    place.names[0],
    TIMES[scene.time][0] ?? "",
    WEATHERS[scene.weather][0] ?? "",
    ...scene.objects.map((o) =>
      `${o.count} ${COLOURS[o.colour].names[0]} ${NOUNS[o.noun].names[0][0]}`
    ),
  ].filter(Boolean).join(", ");
  let body = `<rect width="${W}" height="${H}" fill="${sky}"/>` +
    `<rect y="${H * horizon}" width="${W}" height="${H * (1 - horizon)}" fill="${ground}"/>`;
  if (scene.time === 1) body += `<circle cx="135" cy="18" r="8" fill="#f5f3ce"/>`;
  else if (
    place.group !== "home" && place.group !== "kitchen" &&
    (scene.weather === 0 || scene.weather === 3)
  ) {
    body += `<circle cx="135" cy="18" r="9" fill="#ffd966"/>`;
  }
  if (scene.weather === 1) {
    for (let i = 0; i < 12; i++) {
      body += `<line x1="${i * 13 + 4}" y1="${(i * 37) % 50}" x2="${i * 13}" y2="${
        ((i * 37) % 50) + 8
      }" stroke="#4060a0"/>`;
    }
  } else if (scene.weather === 2) {
    for (let i = 0; i < 16; i++) {
      body += `<circle cx="${(i * 29) % W}" cy="${(i * 17) % 60}" r="1.5" fill="#fff"/>`;
    }
  }
  const ordered = [...scene.objects].sort((a, b) =>
    POSITIONS[a.position].y - POSITIONS[b.position].y
  );
  for (const o of ordered) body += group(o);
  body += `<text x="3" y="9" font-size="7" font-family="sans-serif" fill="#000" opacity="0.7">${
    place.names[0]
  }</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">` +
    `<title>${title}</title>${body}</svg>\n`;
}
