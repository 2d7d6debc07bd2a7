/**
 * The run report: one self-contained `report.html` (inline CSS and SVG, no scripts, no
 * external assets but the sample images' own URLs) with the config, the loss curves,
 * the caption metrics per split and checkpoint against the trivial baseline, and a grid of
 * sample images with generated and reference captions.
 * @module
 */
import type { MetricsRecord } from "./metrics_log.ts";

/** One point of a loss curve. */
export interface LossPoint {
  /** Training iteration. */
  iteration: number;
  /** Loss at that iteration. */
  loss: number;
}

/** One row of the metrics table: a checkpoint (and decoder) scored on a split. */
export interface MetricsRow {
  /** Split scored, e.g. "val". One table is drawn per split. */
  split: string;
  /** Checkpoint label, e.g. "best (iter 3000)" or a file name. */
  checkpoint: string;
  /** Decoder that produced the captions. */
  decoder?: "greedy" | "beam" | "sample";
  /** Scores by metric name (bleu1..bleu4, cider, rougeL, unigram_bleu, or others). */
  scores: Record<string, number>;
  /**
   * Caption diagnostics, when measured: vocabulary (words used), novel (fraction not in the
   * training captions), meanLength, repeatedTrigrams (fraction).
   */
  diagnostics?: Record<string, number>;
}

/** One self-critical training step's rewards, for the reward chart. */
export interface RewardPoint {
  /** The run's iteration. */
  iteration: number;
  /** The sampled captions' mean CIDEr-D. */
  reward: number;
  /** The greedy captions' mean CIDEr-D (recorded with the greedy baseline). */
  greedyReward?: number;
  /** The fraction of samples that beat their baseline. */
  beatBaseline: number;
}

/** The trivial captioner: one caption for every image, and its scores per split. */
export interface BaselineInfo {
  /** The caption it writes for every image (e.g. from `mostFrequentCaptionBaseline`). */
  caption: string;
  /** Scores by split, then by metric name. */
  scores: Record<string, Record<string, number>>;
}

/** One image of the sample grid. */
export interface SampleItem {
  /** Split the image comes from. */
  split: string;
  /** Image id or file name, shown under the image. */
  imageId: string | number;
  /** Image URL: a path relative to the report (e.g. an SVG file) or an http(s) URL. */
  imageUrl?: string;
  /** Greedy caption. */
  greedy?: string;
  /** Beam-search caption. */
  beam?: string;
  /** Sampled caption. */
  sample?: string;
  /** Reference captions. */
  references: string[];
}

/** Everything `report.html` shows. Every field but `config` may be empty. */
export interface ReportData {
  /** Page title; default: the config's `name`, else "recap run". */
  title?: string;
  /** The resolved experiment config, shown as pretty JSON. */
  config: unknown;
  /** When the report was made (ISO 8601); default: now. */
  createdAt?: string;
  /** Training loss per logged iteration. */
  trainLoss: LossPoint[];
  /** Validation loss per evaluation. */
  valLoss?: LossPoint[];
  /** Self-critical training's rewards per logged step (none: no self-critical training). */
  rewards?: RewardPoint[];
  /** Metric rows, grouped into one table per split in first-seen order. */
  metrics: MetricsRow[];
  /** The trivial captioner, shown as the first row of each split's table. */
  baseline?: BaselineInfo;
  /** The sample grid. */
  samples: SampleItem[];
}

/**
 * Escapes text for HTML element content and quoted attribute values.
 * @param text Any text.
 * @returns The text with `& < > " '` escaped.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./report.ts";
 * console.log(escapeHtml(`<b>"a" & 'b'</b>`)); // &lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/**
 * Splits `metrics.jsonl` records into the train and validation loss curves.
 * @param records The records, in order.
 * @returns The curves.
 *
 * @example
 * ```ts
 * import { lossCurvesFromRecords } from "./report.ts";
 * const c = lossCurvesFromRecords([{ kind: "train", iteration: 1, epoch: 1, loss: 9 }]);
 * console.log(c.trainLoss); // [{ iteration: 1, loss: 9 }]
 * ```
 */
export function lossCurvesFromRecords(
  records: readonly MetricsRecord[],
): { trainLoss: LossPoint[]; valLoss: LossPoint[] } {
  const trainLoss: LossPoint[] = [], valLoss: LossPoint[] = [];
  for (const r of records) {
    if (r.kind === "train") trainLoss.push({ iteration: r.iteration, loss: r.loss });
    if (r.kind === "val") valLoss.push({ iteration: r.iteration, loss: r.loss });
  }
  return { trainLoss, valLoss };
}

/**
 * "Nice" axis ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi].
 * @param lo Smallest value.
 * @param hi Largest value.
 * @param target About how many ticks.
 * @returns The tick values, ascending, from at most `lo` to at least `hi`.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./report.ts";
 * console.log(niceTicks(0.3, 9.7)); // [0, 2, 4, 6, 8, 10]
 * ```
 */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) [lo, hi] = [lo - 1, lo + 1];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const start = Math.floor(lo / step + 1e-9) * step, end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** One line of a {@linkcode lineChartSvg}. */
export interface ChartSeries {
  /** Legend label. */
  name: string;
  /** CSS colour. */
  color: string;
  /** Points (x, y). */
  points: { x: number; y: number }[];
  /** Also draw a dot at each point (for sparse series). */
  markers?: boolean;
}

/** Most points a series keeps in the SVG; longer series are thinned evenly (ends kept). */
export const MAX_CHART_POINTS = 1500;

function thin<T>(points: T[]): T[] {
  if (points.length <= MAX_CHART_POINTS) return points;
  const out: T[] = [];
  for (let i = 0; i < MAX_CHART_POINTS; i++) {
    out.push(points[Math.round((i * (points.length - 1)) / (MAX_CHART_POINTS - 1))]);
  }
  return out;
}

const fmtTick = (v: number) =>
  Math.abs(v) >= 1e4 ? `${v / 1000}k` : String(Number(v.toPrecision(6)));

/**
 * Draws a line chart as an inline SVG: axes with ticks, tick labels, axis labels, legend.
 * @param series The lines; non-finite points are skipped.
 * @param options Size and axis labels.
 * @returns The `<svg>` element as text.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./report.ts";
 * const svg = lineChartSvg([{ name: "train", color: "#1f77b4", points: [{ x: 1, y: 3 }, { x: 2, y: 2 }] }],
 *   { xLabel: "iteration", yLabel: "loss" });
 * console.log(svg.startsWith("<svg"));
 * ```
 */
export function lineChartSvg(
  series: ChartSeries[],
  options: { width?: number; height?: number; xLabel: string; yLabel: string; title?: string },
): string {
  const W = options.width ?? 720, H = options.height ?? 360;
  const m = { left: 64, right: 16, top: options.title ? 36 : 16, bottom: 52 };
  const clean = series.map((s) => ({
    ...s,
    points: thin(s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))),
  }));
  const all = clean.flatMap((s) => s.points);
  const xs = niceTicks(Math.min(...all.map((p) => p.x), 0), Math.max(...all.map((p) => p.x), 1));
  const ys = all.length
    ? niceTicks(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y)))
    : [0, 1];
  const [x0, x1, y0, y1] = [xs[0], xs[xs.length - 1], ys[0], ys[ys.length - 1]];
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${
      escapeHtml(options.title ?? `${options.yLabel} by ${options.xLabel}`)
    }">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`,
  ];
  if (options.title) {
    parts.push(
      `<text x="${W / 2}" y="20" text-anchor="middle" class="title">${
        escapeHtml(options.title)
      }</text>`,
    );
  }
  for (const t of ys) {
    parts.push(
      `<line class="grid" x1="${m.left}" x2="${m.left + pw}" y1="${r(sy(t))}" y2="${r(sy(t))}"/>`,
      `<text class="tick" x="${m.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${
        fmtTick(t)
      }</text>`,
    );
  }
  for (const t of xs) {
    parts.push(
      `<line class="tickmark" x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${m.top + ph}" y2="${
        m.top + ph + 5
      }"/>`,
      `<text class="tick" x="${r(sx(t))}" y="${m.top + ph + 18}" text-anchor="middle">${
        fmtTick(t)
      }</text>`,
    );
  }
  parts.push(
    `<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}"/>`,
    `<line class="axis" x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}"/>`,
    `<text class="label" x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">${
      escapeHtml(options.xLabel)
    }</text>`,
    `<text class="label" transform="translate(16 ${
      m.top + ph / 2
    }) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
  );
  clean.forEach((s, i) => {
    if (s.points.length === 0) return;
    const pts = s.points.map((p) => `${r(sx(p.x))},${r(sy(p.y))}`).join(" ");
    parts.push(
      `<polyline class="series" data-series="${
        escapeHtml(s.name)
      }" fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts}"/>`,
    );
    if (s.markers) {
      for (const p of s.points) {
        parts.push(`<circle cx="${r(sx(p.x))}" cy="${r(sy(p.y))}" r="3" fill="${s.color}"/>`);
      }
    }
    const ly = m.top + 8 + i * 18;
    parts.push(
      `<line x1="${m.left + pw - 110}" x2="${
        m.left + pw - 90
      }" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`,
      `<text class="legend" x="${m.left + pw - 84}" y="${ly + 4}">${escapeHtml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

const METRIC_ORDER = ["bleu1", "bleu2", "bleu3", "bleu4", "cider", "rougeL", "unigram_bleu"];
const METRIC_LABELS: Record<string, string> = {
  bleu1: "BLEU-1",
  bleu2: "BLEU-2",
  bleu3: "BLEU-3",
  bleu4: "BLEU-4",
  cider: "CIDEr-D",
  rougeL: "ROUGE-L",
  unigram_bleu: "Unigram BLEU",
};

/** The diagnostics' columns: label and format. */
const DIAGNOSTICS: [string, string, (v: number) => string][] = [
  ["vocabulary", "words used", (v) => String(v)],
  ["novel", "% novel", (v) => (100 * v).toFixed(1)],
  ["meanLength", "mean length", (v) => v.toFixed(2)],
  ["repeatedTrigrams", "% repeated trigram", (v) => (100 * v).toFixed(1)],
];

function diagnosticsTable(rows: MetricsRow[]): string {
  const measured = rows.filter((r) => r.diagnostics);
  if (measured.length === 0) return "";
  const head = `<tr><th>checkpoint</th><th>decoder</th>${
    DIAGNOSTICS.map(([, label]) => `<th>${escapeHtml(label)}</th>`).join("")
  }</tr>`;
  const body = measured.map((r) =>
    `<tr><td>${escapeHtml(r.checkpoint)}</td><td>${escapeHtml(r.decoder ?? "")}</td>${
      DIAGNOSTICS.map(([key, , fmt]) => {
        const v = r.diagnostics![key];
        return v === undefined ? "<td>–</td>" : `<td>${fmt(v)}</td>`;
      }).join("")
    }</tr>`
  );
  return `<table class="metrics diagnostics">\n<thead>${head}</thead>\n<tbody>\n${
    body.join("\n")
  }\n</tbody>\n</table>`;
}

function metricsTables(rows: MetricsRow[], baseline?: BaselineInfo): string {
  const splits = [
    ...new Set([...rows.map((r) => r.split), ...Object.keys(baseline?.scores ?? {})]),
  ];
  if (splits.length === 0) return `<p class="empty">No metrics were computed.</p>`;
  return splits.map((split) => {
    const model = rows.filter((r) => r.split === split);
    const base = baseline?.scores[split];
    const names = new Set([
      ...model.flatMap((r) => Object.keys(r.scores)),
      ...Object.keys(base ?? {}),
    ]);
    const cols = [
      ...METRIC_ORDER.filter((n) => names.has(n)),
      ...[...names].filter((n) => !METRIC_ORDER.includes(n)).sort(),
    ];
    const best = cols.map((c) => Math.max(...model.map((r) => r.scores[c] ?? -Infinity)));
    const cell = (v: number | undefined, isBest = false) =>
      v === undefined || !Number.isFinite(v)
        ? "<td>–</td>"
        : `<td${isBest ? ' class="best"' : ""}>${v.toFixed(4)}</td>`;
    const head = `<tr><th>checkpoint</th><th>decoder</th>${
      cols.map((c) => `<th>${escapeHtml(METRIC_LABELS[c] ?? c)}</th>`).join("")
    }</tr>`;
    const body = model.map((r) =>
      `<tr><td>${escapeHtml(r.checkpoint)}</td><td>${escapeHtml(r.decoder ?? "")}</td>${
        cols.map((c, i) => cell(r.scores[c], r.scores[c] === best[i] && model.length > 1)).join("")
      }</tr>`
    );
    if (base && baseline) {
      body.unshift(
        `<tr class="baseline"><td>baseline: most frequent caption</td><td>“${
          escapeHtml(baseline.caption)
        }”</td>${cols.map((c) => cell(base[c])).join("")}</tr>`,
      );
    }
    return `<h3>Split: ${escapeHtml(split)}</h3>\n<table class="metrics" data-split="${
      escapeHtml(split)
    }">\n<thead>${head}</thead>\n<tbody>\n${body.join("\n")}\n</tbody>\n</table>` +
      diagnosticsTable(model);
  }).join("\n");
}

/** Keeps relative URLs and http(s)/data:image URLs; drops other schemes (javascript: …). */
function safeUrl(url: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim());
  if (!scheme) return url;
  const s = scheme[1].toLowerCase();
  return s === "http" || s === "https" || (s === "data" && /^data:image\//i.test(url.trim()))
    ? url
    : undefined;
}

function sampleGrid(samples: SampleItem[]): string {
  if (samples.length === 0) return `<p class="empty">No samples.</p>`;
  const cards = samples.map((s) => {
    const url = s.imageUrl === undefined ? undefined : safeUrl(s.imageUrl);
    const img = url === undefined
      ? `<div class="noimg">no image</div>`
      : `<img src="${escapeHtml(url)}" alt="image ${
        escapeHtml(String(s.imageId))
      }" loading="lazy">`;
    const gen = [
      s.greedy !== undefined
        ? `<p class="gen"><span class="tag">greedy</span> ${escapeHtml(s.greedy)}</p>`
        : "",
      s.beam !== undefined
        ? `<p class="gen"><span class="tag beam">beam</span> ${escapeHtml(s.beam)}</p>`
        : "",
      s.sample !== undefined
        ? `<p class="gen"><span class="tag sampled">sampled</span> ${escapeHtml(s.sample)}</p>`
        : "",
    ].join("");
    const refs = s.references.map((r) => `<li>${escapeHtml(r)}</li>`).join("");
    return `<figure class="sample" data-split="${escapeHtml(s.split)}">${img}<figcaption>` +
      `<p class="id">${escapeHtml(s.split)} · ${escapeHtml(String(s.imageId))}</p>${gen}` +
      `<ul class="refs">${refs}</ul></figcaption></figure>`;
  });
  return `<div class="grid">\n${cards.join("\n")}\n</div>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f7f9}
main{max-width:1140px;margin:0 auto;padding:20px 28px 40px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #dde;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#667;margin:0 0 8px}
section{background:#fff;border:1px solid #e3e5ea;border-radius:8px;padding:4px 18px 16px;margin:16px 0}
pre{background:#f3f4f7;border-radius:6px;padding:10px 12px;overflow:auto;max-height:420px;font-size:12px}
table.metrics{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
.metrics th,.metrics td{border-bottom:1px solid #e6e8ee;padding:5px 8px;text-align:right}
.metrics th:first-child,.metrics td:first-child,.metrics th:nth-child(2),.metrics td:nth-child(2){text-align:left}
.metrics th{background:#f3f4f7}.metrics td.best{font-weight:700;color:#0a5}.metrics tr.baseline td{color:#777;font-style:italic}
svg.chart{max-width:100%;height:auto}svg .grid{stroke:#e8e8ee}svg .axis{stroke:#555}svg .tickmark{stroke:#555}
svg text{font:12px system-ui,sans-serif;fill:#444}svg .label{font-size:13px;fill:#222}svg .title{font-size:14px;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}
figure.sample{margin:0;background:#fff;border:1px solid #e3e5ea;border-radius:8px;overflow:hidden}
figure.sample img,.noimg{display:block;width:100%;aspect-ratio:4/3;object-fit:contain;background:#eef0f4}
.noimg{display:flex;align-items:center;justify-content:center;color:#99a}
figcaption{padding:8px 10px}.id{color:#889;font-size:12px;margin:0 0 4px}.gen{margin:3px 0;font-weight:600}
.tag{display:inline-block;font-size:11px;font-weight:600;color:#fff;background:#1f77b4;border-radius:3px;padding:0 5px;margin-right:4px}
.tag.beam{background:#d62728}.tag.sampled{background:#2ca02c}.diagnostics{margin-top:10px}.refs{margin:6px 0 0;padding-left:18px;color:#555;font-size:13px}.empty{color:#889}
`;

/** Self-critical training's section: the mean rewards, and how often samples beat the baseline. */
function rewardSection(points: RewardPoint[]): string {
  const series: ChartSeries[] = [{
    name: "sampled",
    color: "#2ca02c",
    points: points.map((p) => ({ x: p.iteration, y: p.reward })),
  }];
  if (points.some((p) => p.greedyReward !== undefined)) {
    series.push({
      name: "greedy",
      color: "#1f77b4",
      points: points.flatMap((p) =>
        p.greedyReward === undefined ? [] : [{ x: p.iteration, y: p.greedyReward }]
      ),
    });
  }
  const beat = [{
    name: "beat baseline",
    color: "#9467bd",
    points: points.map((p) => ({ x: p.iteration, y: p.beatBaseline })),
  }];
  return `<section id="scst">
<h2>Self-critical training</h2>
${
    lineChartSvg(series, {
      xLabel: "iteration",
      yLabel: "mean CIDEr-D reward (train)",
      width: 1040,
      height: 300,
    })
  }
${
    lineChartSvg(beat, {
      xLabel: "iteration",
      yLabel: "beating the baseline",
      width: 1040,
      height: 220,
    })
  }
</section>
`;
}

/**
 * Renders the report page.
 * @param data What to show; see {@linkcode ReportData}.
 * @returns The complete HTML document.
 *
 * @example
 * ```ts
 * import { renderReport } from "./report.ts";
 * const html = renderReport({ config: { name: "demo" }, trainLoss: [], metrics: [], samples: [] });
 * console.log(html.includes("<title>demo</title>")); // true
 * ```
 */
export function renderReport(data: ReportData): string {
  const cfgName = (data.config as { name?: unknown } | null)?.name;
  const title = data.title ?? (typeof cfgName === "string" ? cfgName : "recap run");
  const created = data.createdAt ?? new Date().toISOString();
  const lastTrain = data.trainLoss.at(-1), lastVal = data.valLoss?.at(-1);
  const summary = [
    lastTrain
      ? `final train loss ${lastTrain.loss.toFixed(4)} at iteration ${lastTrain.iteration}`
      : "",
    lastVal ? `val loss ${lastVal.loss.toFixed(4)}` : "",
  ].filter(Boolean).join(", ");
  const series: ChartSeries[] = [
    {
      name: "train loss",
      color: "#1f77b4",
      points: data.trainLoss.map((p) => ({ x: p.iteration, y: p.loss })),
    },
  ];
  if (data.valLoss?.length) {
    series.push({
      name: "val loss",
      color: "#d62728",
      points: data.valLoss.map((p) => ({ x: p.iteration, y: p.loss })),
      markers: true,
    });
  }
  const chart = data.trainLoss.length || data.valLoss?.length
    ? lineChartSvg(series, { xLabel: "iteration", yLabel: "loss", width: 1040, height: 380 })
    : `<p class="empty">No losses were logged.</p>`;
  const rewards = data.rewards?.length ? rewardSection(data.rewards) : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p class="meta">recap report · ${escapeHtml(created)}${
    summary ? ` · ${escapeHtml(summary)}` : ""
  }</p>
<section id="loss">
<h2>Loss</h2>
${chart}
</section>
${rewards}<section id="metrics">
<h2>Caption metrics</h2>
${metricsTables(data.metrics, data.baseline)}
</section>
<section id="samples">
<h2>Samples</h2>
${sampleGrid(data.samples)}
</section>
<section id="config">
<h2>Config</h2>
<pre>${escapeHtml(JSON.stringify(data.config, null, 2) ?? "null")}</pre>
</section>
</main>
</body>
</html>
`;
}

/**
 * Writes `report.html` into a run directory (creating it if needed).
 * Image URLs in `data.samples` are used as given, so make relative ones relative to `runDir`.
 * @param runDir The run directory.
 * @param data What to show.
 * @returns The path of the written file.
 *
 * @example
 * ```ts ignore
 * import { writeReport } from "./report.ts";
 * const path = await writeReport("runs/demo", { config: {}, trainLoss: [], metrics: [], samples: [] });
 * console.log(path); // runs/demo/report.html
 * ```
 */
export async function writeReport(runDir: string, data: ReportData): Promise<string> {
  await Deno.mkdir(runDir, { recursive: true });
  const path = `${runDir.replace(/\/+$/, "")}/report.html`;
  await Deno.writeTextFile(path, renderReport(data));
  return path;
}
