/**
 * Captioning benchmark: greedy decoding and beam search of many images on one thread
 * (`model.sampleWithScores`, float32, COCO sizes), the decoding that evaluation runs. The
 * vocabulary weights are sharpened so that, as with a trained model, some beams end early.
 * Prints one JSON line per cell and decoder.
 *
 *   deno run -A bench/sample_bench.ts [--images N] [--beam B] [--max-length L] [--iters K]
 *     [--cell rnn|lstm] [--backend blas|wasm|ts]
 * @module
 */
import { selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CellType } from "../model/captioning_rnn.ts";
import { SAMPLE_CHUNK } from "../model/sampling.ts";
import { scriptCommandLine } from "../pipeline/cli/args.ts";
import { HELP_OPTION, int, oneOf } from "../pipeline/cli/command_spec.ts";
import { cocoModel, D, median, V } from "./coco_sizes.ts";

const { values } = scriptCommandLine({
  command: "deno run -A bench/sample_bench.ts",
  args: [],
  summary: "Greedy and beam captioning of many images on one thread at the COCO sizes, " +
    "one JSON line per decoder.",
  options: {
    images: int(1000, 1, "Images to caption", "20"),
    beam: int(3, 2, "Beam width of the beam-search line", "2"),
    "max-length": int(16, 1, "Longest caption, words", "5"),
    iters: int(3, 1, "Timed calls (after one warm-up)", "1"),
    cell: oneOf(["rnn", "lstm"], "lstm", "Recurrent cell", "rnn"),
    backend: oneOf(["auto", "blas", "wasm", "ts"], "auto", "Kernel backend", "ts"),
    help: HELP_OPTION,
  },
}, Deno.args);
const backend = selectKernels(values.backend as BackendName | "auto").name;
const n = values.images, maxLength = values["max-length"];
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < V; i++) wordToIdx[`w${i}`] = i;
const model = cocoModel(wordToIdx, values.cell as CellType);
for (let i = 0; i < model.params.W_vocab.size; i++) model.params.W_vocab.data[i] *= 8;
const features = Tensor.randn([n, D], 2, "float32");
for (const beamSize of [1, values.beam]) {
  const times: number[] = [];
  for (let it = 0; it < values.iters + 1; it++) {
    const t0 = performance.now();
    model.sampleWithScores(features, { maxLength, beamSize });
    times.push(performance.now() - t0);
  }
  const ms = median(times.slice(1)); // the first call also grows the decoder's work arrays
  console.log(JSON.stringify({
    impl: "recap",
    backend,
    cell: values.cell,
    decoder: beamSize === 1 ? "greedy" : `beam ${beamSize}`,
    images: n,
    max_length: maxLength,
    chunk: SAMPLE_CHUNK,
    ms: Number(ms.toFixed(1)),
    images_per_s: Number((n / ms * 1000).toFixed(1)),
  }));
}
