/**
 * Captioning benchmark: greedy decoding and beam search of many images (float32, COCO sizes,
 * the decoding that evaluation runs) on the worker pool with each worker count, side by side
 * with PyTorch decoding the same model (`bench/peers/torch_sample.py`, on as many threads) when
 * `.venv-torch` exists. Every measurement is one call; ALL configs are interleaved, round after
 * round in a rotating order, so a noisy machine slows each alike; each line reports medians.
 *
 *   deno run -A bench/sample_bench.ts [--images N] [--beam B] [--max-length L] [--rounds K]
 *     [--cell rnn|lstm|gru] [--backend blas|wasm|ts] [--workers 1,2] [--torch auto|off]
 *     [--end-bias X]
 *
 * The vocabulary weights are sharpened (×8) so that decisions are clear-cut, as with a trained
 * model. Such a model seldom writes `<END>` (its captions run to max-length); `--end-bias 0.2`
 * makes greedy captions end after 9.8 words on average, as a trained model's do (COCO's
 * captions have about 10). Each line has `mean_words`, the captions' mean length through their
 * first `<END>`. On Linux each line also has the CPU time of the process's threads during a call
 * (/proc/<pid>/task/<tid>/schedstat): `cpu_ms` (all threads), `busiest_thread_ms` (what the
 * call would take on otherwise idle cores) and `wait_ms` (time the threads were runnable but
 * another process held the cores: a shared machine's noise, measured). PyTorch's lines have
 * `same_captions`, the fraction of images whose caption (through its first `<END>`) equals
 * recap's with as many workers, and `recap_vs`, their time over recap's. Beam search runs
 * twice on recap's side: as recap decodes by default (greedy's caption among the candidates)
 * and with `plainBeam`, the plain beam search the peer runs too (`decoder: "beam B plain"`;
 * the peer's beam lines compare with both: `same_captions_plain`, `recap_plain_vs`).
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CellType } from "../model/captioning_rnn.ts";
import { SAMPLE_CHUNK } from "../model/sampling.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, num, oneOf, str } from "../pipeline/cli/command_spec.ts";
import { PoolEngine } from "../workers/pool.ts";
import { cocoModel, D, H, median, V, W } from "./coco_sizes.ts";
import { threadTimes, type ThreadUse, threadUse } from "./thread_stats.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/sample_bench.ts",
  args: [],
  summary: "Greedy and beam captioning of many images at the COCO sizes on the worker pool, " +
    "interleaved with PyTorch's (when .venv-torch exists), one JSON line per config.",
  options: {
    images: int(1000, 1, "Images to caption", "20"),
    beam: int(3, 2, "Beam width of the beam-search lines", "2"),
    "max-length": int(30, 1, "Longest caption, words (the PyTorch peer's 30)", "5"),
    rounds: int(5, 1, "Timed rounds (after one warm-up round)", "1"),
    cell: oneOf(["rnn", "lstm", "gru"], "lstm", "Recurrent cell (PyTorch: lstm only)", "rnn"),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend", "ts"),
    workers: str("1,2", "Worker counts (and PyTorch thread counts), comma-separated", "2"),
    torch: oneOf(["auto", "off"], "auto", "Run the PyTorch peer when .venv-torch exists", "off"),
    "end-bias": num(
      0,
      0,
      "Added to <END>'s vocabulary bias: 0.2 ends greedy captions after ~10 words, as COCO's",
      "0.2",
    ),
    help: HELP_OPTION,
  },
}, Deno.args);
const backend = selectKernels(values.backend as BackendName | "auto").name;
const n = values.images, maxLength = values["max-length"], cell = values.cell as CellType;
const workerCounts = values.workers.split(",").map(Number);
const decoders = [1, values.beam];
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < V; i++) wordToIdx[`w${i}`] = i;
const model = cocoModel(wordToIdx, cell);
for (let i = 0; i < model.params.W_vocab.size; i++) model.params.W_vocab.data[i] *= 8;
model.params.b_vocab.data[2] += values["end-bias"];
const features = Tensor.randn([n, D], 2, "float32");
const END = 2;

/** One configuration's measurements. */
interface Config {
  impl: "recap" | "torch";
  beamSize: number;
  /** recap's beam search with `plainBeam`. */
  plain?: boolean;
  /** Workers (recap) or threads (PyTorch). */
  threads: number;
  /** One call: its captions, and its time when the call reports its own. */
  call: () => Promise<{ captions: Int32Array; ms?: number }>;
  pid: number | "self";
  times: number[];
  use: ThreadUse[];
  captions?: Int32Array;
}

/** The PyTorch peer: a long-lived process that decodes the same model on request. */
class TorchPeer {
  readonly dir: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdout: ReadableStreamDefaultReader<Uint8Array>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #pending = "";

  constructor(python: string, dir: string) {
    this.dir = dir;
    this.#child = new Deno.Command(python, {
      args: [
        new URL("./peers/torch_sample.py", import.meta.url).pathname,
        "--serve",
        "--weights",
        dir,
        "--images",
        String(n),
        "--max-length",
        String(maxLength),
        "--beam",
        String(values.beam),
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    this.#stdout = this.#child.stdout.getReader();
    this.#stdin = this.#child.stdin.getWriter();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** One timed call on the peer: its captions (N, L) and the time it measured. */
  async decode(beamSize: number, threads: number): Promise<{ captions: Int32Array; ms: number }> {
    const request = `${beamSize === 1 ? "greedy" : "beam"} ${threads}\n`;
    await this.#stdin.write(new TextEncoder().encode(request));
    const { ms } = JSON.parse(await this.#line());
    const bytes = await Deno.readFile(`${this.dir}/torch_captions.bin`);
    return { captions: new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), ms };
  }

  /** The peer's next line of output. */
  async #line(): Promise<string> {
    const decoder = new TextDecoder();
    for (;;) {
      const end = this.#pending.indexOf("\n");
      if (end >= 0) {
        const line = this.#pending.slice(0, end);
        this.#pending = this.#pending.slice(end + 1);
        return line;
      }
      const { value, done } = await this.#stdout.read();
      if (done) throw new Error("The PyTorch peer exited");
      this.#pending += decoder.decode(value, { stream: true });
    }
  }

  async close(): Promise<void> {
    await this.#stdin.close();
    await this.#child.status;
  }
}

/** Writes the model's parameters and the features as raw float32 files for the peer. */
async function writeWeights(dir: string): Promise<void> {
  const raw = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (const name of ["W_proj", "b_proj", "W_embed", "Wx", "Wh", "b", "W_vocab", "b_vocab"]) {
    const t = model.params[name as keyof typeof model.params];
    await Deno.writeFile(`${dir}/${name}`, raw(t.data));
  }
  await Deno.writeFile(`${dir}/features`, raw(features.data));
}

/** The fraction of images whose captions agree through their first `<END>`. */
function sameCaptions(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < n; i++) {
    let equal = true;
    for (let t = 0; t < maxLength; t++) {
      const x = a[i * maxLength + t];
      if (x !== b[i * maxLength + t]) {
        equal = false;
        break;
      }
      if (x === END) break;
    }
    if (equal) same++;
  }
  return same / n;
}

/** The captions' mean length in words, through their first `<END>` (counted). */
function meanWords(captions: Int32Array): number {
  let words = 0;
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < maxLength; t++) {
      words++;
      if (captions[i * maxLength + t] === END) break;
    }
  }
  return words / n;
}

const configs: Config[] = [];
const pools: PoolEngine[] = [];
for (const workers of workerCounts) {
  const pool = new PoolEngine(model, { workers });
  await pool.ready;
  pools.push(pool);
  for (const [beamSize, plain] of [...decoders.map((b) => [b, false]), [values.beam, true]]) {
    const options = {
      maxLength,
      beamSize: beamSize as number,
      ...(plain ? { plainBeam: true } : {}),
    };
    configs.push({
      impl: "recap",
      beamSize: beamSize as number,
      plain: plain as boolean,
      threads: workers,
      call: async () => ({ captions: (await pool.sample(features, options)).captions.data }),
      pid: "self",
      times: [],
      use: [],
    });
  }
}
const python = new URL("../.venv-torch/bin/python", import.meta.url).pathname;
let peer: TorchPeer | null = null;
if (values.torch === "auto" && cell === "lstm" && (await exists(python))) {
  const dir = await Deno.makeTempDir({ prefix: "recap-sample-bench-" });
  await writeWeights(dir);
  const p = peer = new TorchPeer(python, dir);
  for (const threads of workerCounts) {
    for (const beamSize of decoders) {
      configs.push({
        impl: "torch",
        beamSize,
        threads,
        call: () => p.decode(beamSize, threads),
        pid: p.pid,
        times: [],
        use: [],
      });
    }
  }
}

for (let round = 0; round <= values.rounds; round++) {
  for (let k = 0; k < configs.length; k++) {
    const config = configs[(round + k) % configs.length]; // a rotating order
    const before = threadTimes(config.pid);
    const t0 = performance.now();
    const { captions, ms = performance.now() - t0 } = await config.call();
    const after = threadTimes(config.pid);
    if (round === 0) {
      config.captions = captions.slice(); // the warm-up round: the captions to compare
      continue;
    }
    config.times.push(ms);
    if (before && after) config.use.push(threadUse(before, after));
  }
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));
for (const config of configs) {
  const ms = median(config.times);
  const recapOf = (plain: boolean) =>
    configs.find((c) =>
      c.impl === "recap" && c.beamSize === config.beamSize && c.threads === config.threads &&
      !!c.plain === plain
    );
  const recap = recapOf(false), recapPlain = config.beamSize > 1 ? recapOf(true) : undefined;
  const use = config.use;
  console.log(JSON.stringify({
    impl: config.impl,
    ...(config.impl === "recap" ? { backend, workers: config.threads, chunk: SAMPLE_CHUNK } : {
      threads: config.threads,
    }),
    cell,
    W,
    H,
    V,
    decoder: config.beamSize === 1
      ? "greedy"
      : `beam ${config.beamSize}${config.plain ? " plain" : ""}`,
    images: n,
    max_length: maxLength,
    ...(config.captions ? { mean_words: round(meanWords(config.captions), 2) } : {}),
    ms: round(ms),
    captions_per_s: round(n / ms * 1000),
    ...(use.length
      ? {
        cpu_ms: round(median(use.map((u) => u.cpu))),
        busiest_thread_ms: round(median(use.map((u) => u.busiest))),
        wait_ms: round(median(use.map((u) => u.wait))),
      }
      : {}),
    ...(config.impl === "torch" && recap?.captions && config.captions
      ? {
        same_captions: round(sameCaptions(recap.captions, config.captions), 3),
        recap_vs: round(ms / median(recap.times), 2),
      }
      : {}),
    ...(config.impl === "torch" && recapPlain?.captions && config.captions
      ? {
        same_captions_plain: round(sameCaptions(recapPlain.captions, config.captions), 3),
        recap_plain_vs: round(ms / median(recapPlain.times), 2),
      }
      : {}),
  }));
}
for (const pool of pools) await pool.close();
if (peer) {
  await peer.close();
  await Deno.remove(peer.dir, { recursive: true });
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await Deno.stat(file)).isFile;
  } catch {
    return false;
  }
}
