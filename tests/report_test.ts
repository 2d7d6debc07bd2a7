import { inflateSync } from "node:zlib";
import { assert, assertEquals } from "./assert.ts";
import {
  escapeHtml,
  lineChartSvg,
  lossCurvesFromRecords,
  MAX_CHART_POINTS,
  niceTicks,
  renderReport,
  type ReportData,
  writeReport,
} from "../pipeline/run/report.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

function sampleData(): ReportData {
  return {
    title: "lstm <small> & fast",
    config: {
      name: "demo",
      train: { learningRate: 0.005 },
      description: "</pre><script>x</script>",
    },
    createdAt: "2026-11-23T00:00:00Z",
    trainLoss: Array.from({ length: 120 }, (_, i) => ({
      iteration: i + 1,
      loss: 2 + 7 * Math.exp(-i / 30),
    })),
    valLoss: [40, 80, 120].map((iteration) => ({
      iteration,
      loss: 2.5 + 5 * Math.exp(-iteration / 30),
    })),
    metrics: [
      {
        split: "val",
        checkpoint: "iter 60",
        decoder: "greedy",
        scores: { bleu1: 0.5, bleu4: 0.1, cider: 0.4 },
      },
      {
        split: "val",
        checkpoint: "iter 120",
        decoder: "beam",
        scores: { bleu1: 0.6, bleu4: 0.2, cider: 0.7 },
      },
      {
        split: "train",
        checkpoint: "iter 120",
        decoder: "greedy",
        scores: { bleu1: 0.7, bleu4: 0.3, cider: 1.1 },
      },
    ],
    baseline: {
      caption: 'a man <UNK> a "frisbee"',
      scores: {
        val: { bleu1: 0.3, bleu4: 0.02, cider: 0.05 },
        train: { bleu1: 0.31, bleu4: 0.02, cider: 0.06 },
      },
    },
    samples: [0, 1, 2, 3, 4].map((i) => ({
      split: "val",
      imageId: i,
      imageUrl: i === 4 ? "javascript:alert(1)" : `img/${i}.svg`,
      greedy: `a <b>red</b> shape ${i}`,
      beam: `a red shape number ${i}`,
      references: [`a red circle & a "square" ${i}`, "two shapes"],
    })),
  };
}

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

Deno.test("escapeHtml() escapes the five special characters", () => {
  assertEquals(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

Deno.test("niceTicks() picks steps of 1, 2 or 5 times a power of ten covering the range", () => {
  assertEquals(niceTicks(0.3, 9.7), [0, 2, 4, 6, 8, 10]);
  assertEquals(niceTicks(0, 1200), [0, 200, 400, 600, 800, 1000, 1200]);
  assertEquals(niceTicks(2.13, 2.61), [2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7]);
  assertEquals(niceTicks(3, 3), [2, 2.5, 3, 3.5, 4]); // a flat series still gets an axis
});

Deno.test("lineChartSvg() draws one polyline point per data point, with axes and labels", () => {
  const svg = lineChartSvg(
    [
      { name: "train", color: "#00f", points: [1, 2, 3, 4].map((x) => ({ x, y: 10 - x })) },
      {
        name: "val",
        color: "#f00",
        points: [{ x: 2, y: 8 }, { x: 4, y: NaN }, { x: 4, y: 7 }],
        markers: true,
      },
    ],
    { xLabel: "iteration", yLabel: "loss <nats>" },
  );
  const polylines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) =>
    m[1].split(" ")
  );
  assertEquals(polylines.map((p) => p.length), [4, 2]); // the NaN point is skipped
  assertEquals(count(svg, /<circle /g), 2);
  assert(svg.includes(">iteration</text>") && svg.includes(">loss &lt;nats&gt;</text>"));
  assert(count(svg, /class="tick"/g) >= 6);
  // Points lie inside the plot area and decrease in loss -> increase in SVG y.
  const ys = polylines[0].map((p) => Number(p.split(",")[1]));
  assert(ys.every((y, i) => i === 0 || y > ys[i - 1]));
  const long = lineChartSvg(
    [{ name: "t", color: "#000", points: Array.from({ length: 5000 }, (_, x) => ({ x, y: x })) }],
    { xLabel: "x", yLabel: "y" },
  );
  assertEquals(/points="([^"]*)"/.exec(long)![1].split(" ").length, MAX_CHART_POINTS);
});

Deno.test("renderReport() escapes everything and lays out curves, tables and samples", () => {
  const data = sampleData();
  const html = renderReport(data);
  assert(html.startsWith("<!DOCTYPE html>"));
  assert(html.includes("<title>lstm &lt;small&gt; &amp; fast</title>"));
  // No markup from the data survives unescaped, and the page loads nothing external but images.
  assert(!html.includes("<script") && !html.includes("<b>red</b>") && !html.includes("<UNK>"));
  assert(html.includes("a &lt;b&gt;red&lt;/b&gt; shape 0"));
  assert(html.includes("&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;"));
  assertEquals(count(html, /<link |<script|@import/g), 0);
  assert(!html.includes("javascript:"));
  // Loss curves: train (120 points) and val (3 points, with markers).
  const polylines = [
    ...html.matchAll(/<polyline [^>]*data-series="([^"]*)"[^>]*points="([^"]*)"/g),
  ];
  assertEquals(polylines.map((m) => [m[1], m[2].split(" ").length]), [["train loss", 120], [
    "val loss",
    3,
  ]]);
  assertEquals(count(html, /<circle /g), 3);
  // One table per split, in first-seen order; each has the baseline row first.
  const tables = [
    ...html.matchAll(/<table class="metrics" data-split="(\w+)">([\s\S]*?)<\/table>/g),
  ];
  assertEquals(tables.map((t) => t[1]), ["val", "train"]);
  const valRows = tables[0][2].match(/<tr[ >]/g)!.length;
  assertEquals(valRows, 1 + 1 + 2); // header, baseline, two checkpoints
  assert(/<tbody>\n<tr class="baseline">/.test(tables[0][2]));
  assert(tables[0][2].includes("“a man &lt;UNK&gt; a &quot;frisbee&quot;”"));
  assert(tables[0][2].includes("<th>BLEU-1</th><th>BLEU-4</th><th>CIDEr-D</th>"));
  assertEquals(count(tables[0][2], /class="best"/g), 3); // the beam row wins every column
  assertEquals(tables[1][2].match(/<tr[ >]/g)!.length, 3);
  // Samples: five cards, four images (the javascript: URL is dropped), refs escaped.
  assertEquals(count(html, /<figure class="sample"/g), 5);
  assertEquals(
    [...html.matchAll(/<img src="([^"]*)"/g)].map((m) => m[1]),
    [0, 1, 2, 3].map((i) => `img/${i}.svg`),
  );
  assert(html.includes("<li>a red circle &amp; a &quot;square&quot; 0</li>"));
});

Deno.test("renderReport() copes with an empty run", () => {
  const html = renderReport({ config: null, trainLoss: [], metrics: [], samples: [] });
  assert(html.includes("<title>recap run</title>"));
  assert(html.includes("No losses were logged.") && html.includes("No metrics were computed."));
  assert(html.includes("No samples.") && !html.includes("<svg"));
});

Deno.test("renderReport() draws self-critical training's rewards and the caption diagnostics", () => {
  const rewards = [1, 2, 3].map((i) => ({
    iteration: 100 + i,
    reward: 0.5 + i / 10,
    beatBaseline: 0.4,
  }));
  const diagnostics = { vocabulary: 254, novel: 0.998, meanLength: 9.59, repeatedTrigrams: 0.01 };
  const metrics = [{
    split: "val",
    checkpoint: "self-critical best",
    decoder: "greedy" as const,
    scores: { rougeL: 0.5 },
    diagnostics,
  }];
  const html = renderReport({ config: null, trainLoss: [], metrics, samples: [], rewards });
  assert(html.includes('<section id="scst">'));
  assertEquals(count(html, /data-series="sampled"/g), 1);
  assertEquals(count(html, /data-series="greedy"/g), 0); // the mean baseline records none
  const greedy = renderReport({
    config: null,
    trainLoss: [],
    metrics: [],
    samples: [],
    rewards: rewards.map((r) => ({ ...r, greedyReward: 0.9 })),
  });
  assertEquals(count(greedy, /data-series="greedy"/g), 1);
  assert(
    !renderReport({ config: null, trainLoss: [], metrics: [], samples: [] }).includes('id="scst"'),
  );
  // The diagnostics table beside the metrics: words used, % novel, mean length, % repeated.
  assert(
    html.includes("ROUGE-L") && html.includes("<td>254</td><td>99.8</td><td>9.59</td><td>1.0</td>"),
    html,
  );
});

Deno.test("lossCurvesFromRecords() splits metrics.jsonl records into train and val curves", () => {
  const c = lossCurvesFromRecords([
    { kind: "train", iteration: 1, epoch: 1, loss: 9 },
    { kind: "val", iteration: 1, epoch: 1, loss: 8 },
    { kind: "eval", iteration: 1, split: "val", metrics: { bleu1: 0.1 } },
    { kind: "train", iteration: 2, epoch: 1, loss: 7 },
  ]);
  assertEquals(c, {
    trainLoss: [{ iteration: 1, loss: 9 }, { iteration: 2, loss: 7 }],
    valLoss: [{ iteration: 1, loss: 8 }],
  });
});

/** Reads a PNG's size and inflated scanlines (enough to tell a blank page from a real one). */
function readPng(bytes: Uint8Array): { width: number; height: number; pixels: Uint8Array } {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  assert(sig.every((b, i) => bytes[i] === b), "not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0;
  const idat: Uint8Array[] = [];
  for (let p = 8; p < bytes.length;) {
    const len = view.getUint32(p);
    const type = new TextDecoder().decode(bytes.subarray(p + 4, p + 8));
    if (type === "IHDR") [width, height] = [view.getUint32(p + 8), view.getUint32(p + 12)];
    if (type === "IDAT") idat.push(bytes.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const all = new Uint8Array(idat.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of idat) all.set(c, (o += c.length) - c.length);
  return { width, height, pixels: new Uint8Array(inflateSync(all)) };
}

Deno.test({
  name: "writeReport() output renders in headless Chromium to a non-trivial screenshot",
  ignore: !hasChromium,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "recap_report_" });
    try {
      await Deno.mkdir(`${dir}/run/img`, { recursive: true });
      for (let i = 0; i < 4; i++) {
        await Deno.writeTextFile(
          `${dir}/run/img/${i}.svg`,
          `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120"><rect width="160" height="120" fill="#eef"/><circle cx="80" cy="60" r="${
            20 + 5 * i
          }" fill="#c33"/></svg>`,
        );
      }
      const path = await writeReport(`${dir}/run`, sampleData());
      assertEquals(path, `${dir}/run/report.html`);
      const png = `${dir}/shot.png`;
      const out = await new Deno.Command(CHROMIUM, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          `--user-data-dir=${dir}/profile`,
          `--screenshot=${png}`,
          "--window-size=1200,1600",
          `file://${path}`,
        ],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const bytes = await Deno.readFile(png);
      assert(bytes.length > 20_000, `screenshot is only ${bytes.length} bytes`);
      const { width, height, pixels } = readPng(bytes);
      assertEquals([width, height], [1200, 1600]);
      // A rendered page has many distinct (filtered) byte values; a blank one has a handful.
      assert(new Set(pixels).size > 100, `only ${new Set(pixels).size} distinct byte values`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (!hasChromium) {
  console.warn(`report_test: ${CHROMIUM} not found, the Chromium screenshot test is ignored`);
}
