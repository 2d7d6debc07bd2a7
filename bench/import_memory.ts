/**
 * The memory of `dataset import` at COCO size: writes a Karpathy split file of 123,287 images
 * with five captions each (the size of dataset_coco.json) and their 4096-d float32 features
 * (2 GB) as a `.npy` file and as an HDF5 dataset, then imports each in a fresh process and
 * prints one JSON line per import with its peak resident set size (VmHWM from
 * /proc/self/status, Linux) and its time. The import must stay under 1 GB whatever the size
 * of the features: they are streamed in blocks of rows, never held whole.
 *
 *   deno run -A bench/import_memory.ts [--images 123287] [--dim 4096] [--features npy,h5]
 *
 * Needs about 3 × images × dim × 4 bytes of free disk in the temporary directory (6 GB at
 * COCO size); everything is removed at the end.
 * @module
 */
import { join } from "node:path";
import { Rng } from "../layers/random.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { flag, HELP_OPTION, int, path, str } from "../pipeline/cli/command_spec.ts";
import { importDataset } from "../pipeline/data/import/import_dataset.ts";
import { H5File } from "../pipeline/io/h5.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/import_memory.ts",
  args: [],
  summary: "Writes a COCO-size Karpathy split file and its features (.npy and HDF5), imports " +
    "each in a fresh process and prints its peak RSS and time as JSON lines.",
  options: {
    images: int(123287, 10, "Images (COCO: 123287)", "2000"),
    dim: int(4096, 1, "Feature dimension", "512"),
    features: str("npy,h5", "Feature files to import, comma-separated: npy, h5", "npy"),
    child: path(
      undefined,
      "(internal) run the import an options file describes, print its peak",
      "x.json",
    ),
    keep: flag("Keep the generated files (their directory is printed)"),
    help: HELP_OPTION,
  },
}, Deno.args);

const MB = 1 << 20;

/** The peak and current resident set size of this process, in MB (Linux). */
function rss(): { peak: number; now: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { peak: kb("VmHWM") / 1024, now: kb("VmRSS") / 1024 };
}

if (values.child !== undefined) {
  // One import, alone in this process, so VmHWM is its own peak.
  const options = JSON.parse(await Deno.readTextFile(values.child));
  const t0 = performance.now();
  const summary = await importDataset(options);
  console.log(JSON.stringify({
    peak_rss_mb: +rss().peak.toFixed(1),
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
    vocab: summary.vocabSize,
    captions: summary.splits.train!.captions,
  }));
  Deno.exit(0);
}

/** A Karpathy split file of `n` images (COCO's split sizes, scaled), written in pieces. */
async function writeAnnotations(file: string, n: number): Promise<void> {
  const rng = new Rng(1);
  const lexicon = Array.from({ length: 12000 }, (_, i) => `w${i.toString(36)}`);
  // Zipf-like word choice: common words often, most words rarely.
  const word = () => lexicon[Math.floor(lexicon.length * rng.random() ** 3)];
  const val = Math.round(n * 5000 / 123287), restval = Math.round(n * 30504 / 123287);
  const out = await Deno.open(file, { write: true, create: true, truncate: true });
  const writer = out.writable.getWriter();
  const enc = new TextEncoder();
  await writer.write(enc.encode('{"dataset": "coco", "images": ['));
  let piece: string[] = [];
  for (let i = 0; i < n; i++) {
    const split = i < val
      ? "val"
      : i < 2 * val
      ? "test"
      : i < 2 * val + restval
      ? "restval"
      : "train";
    const sentences = Array.from({ length: 5 }, (_, j) => {
      const tokens = Array.from({ length: 8 + Math.floor(rng.random() * 7) }, word);
      return { tokens, raw: `${tokens.join(" ")}.`, imgid: i, sentid: i * 5 + j };
    });
    piece.push(JSON.stringify({
      filepath: "val2014",
      sentids: sentences.map((s) => s.sentid),
      filename: `COCO_val2014_${String(i).padStart(12, "0")}.jpg`,
      imgid: i,
      split,
      sentences,
      cocoid: i + 1,
    }));
    if (piece.length === 2000 || i === n - 1) {
      await writer.write(enc.encode((i >= 2000 ? "," : "") + piece.join(",")));
      piece = [];
    }
  }
  await writer.write(enc.encode("]}"));
  await writer.close();
}

/** Fills a block of rows with cheap, finite, varied values. */
function fillRows(block: Float32Array, firstRow: number, dim: number, rows: number): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < dim; c++) block[r * dim + c] = ((firstRow + r) * 31 + c * 7) % 97 / 97;
  }
}

/** A `.npy` file (format 1.0, little-endian float32, C order) written a block at a time. */
async function writeNpy(file: string, n: number, dim: number): Promise<void> {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${dim}), }`;
  const length = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const header = new Uint8Array(10 + length);
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, length & 0xff, length >> 8]);
  header.set(new TextEncoder().encode(dict.padEnd(length - 1, " ") + "\n"), 10);
  const out = await Deno.open(file, { write: true, create: true, truncate: true });
  const writer = out.writable.getWriter();
  await writer.write(header);
  const rows = Math.max(1, Math.floor(16 * MB / (dim * 4)));
  for (let r = 0; r < n; r += rows) {
    const m = Math.min(rows, n - r), block = new Float32Array(m * dim);
    fillRows(block, r, dim, m);
    await writer.write(new Uint8Array(block.buffer));
  }
  await writer.close();
}

/** The same matrix as an HDF5 dataset, written by recap's writer in row blocks. */
async function writeH5(file: string, n: number, dim: number): Promise<void> {
  const f = await H5File.open(file, "w");
  try {
    f.createDataset("fc7", "float32", [n, dim], {
      chunks: [Math.max(1, Math.floor(65536 / (dim * 4))), dim],
    });
    const rows = Math.max(1, Math.floor(16 * MB / (dim * 4)));
    const block = new Float32Array(rows * dim);
    for (let r = 0; r < n; r += rows) {
      const m = Math.min(rows, n - r);
      fillRows(block, r, dim, m);
      f.writeRows("fc7", r, block.subarray(0, m * dim));
    }
  } finally {
    f.close();
  }
}

const root = await Deno.makeTempDir({ prefix: "recap_import_bench_" });
try {
  const { images: n, dim } = values;
  const annotations = join(root, "dataset_coco.json");
  let t0 = performance.now();
  await writeAnnotations(annotations, n);
  const annotationBytes = (await Deno.stat(annotations)).size;
  console.error(
    `bench: wrote ${annotations} (${(annotationBytes / MB).toFixed(0)} MB) in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  for (const kind of values.features.split(",")) {
    const features = join(root, kind === "npy" ? "features.npy" : "features.h5");
    t0 = performance.now();
    if (kind === "npy") await writeNpy(features, n, dim);
    else if (kind === "h5") await writeH5(features, n, dim);
    else throw new Error(`--features: unknown kind ${kind} (npy or h5)`);
    console.error(`bench: wrote ${features} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const dir = join(root, `imported_${kind}`);
    const optionsFile = join(root, `${kind}.json`);
    await Deno.writeTextFile(
      optionsFile,
      JSON.stringify({ annotations: [annotations], features, dir }),
    );
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--child", optionsFile],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!child.success) throw new Error(`the ${kind} import failed`);
    const result = JSON.parse(new TextDecoder().decode(child.stdout));
    console.log(JSON.stringify({
      bench: "import_memory",
      features: kind,
      images: n,
      dim,
      annotations_mb: +(annotationBytes / MB).toFixed(0),
      features_mb: +((await Deno.stat(features)).size / MB).toFixed(0),
      ...result,
    }));
    if (!values.keep) {
      await Deno.remove(features);
      await Deno.remove(dir, { recursive: true });
    }
  }
} finally {
  if (values.keep) console.error(`bench: kept ${root}`);
  else await Deno.remove(root, { recursive: true });
}
