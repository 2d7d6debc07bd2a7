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
import { parseArgs } from "node:util";
import { selectKernels } from "../layers/kernels/mod.ts";
import type { BackendName } from "../layers/kernels/types.ts";
import { Tensor } from "../layers/tensor.ts";
import type { CellType } from "../model/captioning_rnn.ts";
import { SAMPLE_CHUNK } from "../model/sampling.ts";
import { cocoModel, D, median, V } from "./coco_sizes.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    images: { type: "string", default: "1000" },
    beam: { type: "string", default: "3" },
    "max-length": { type: "string", default: "16" },
    iters: { type: "string", default: "3" },
    cell: { type: "string", default: "lstm" },
    backend: { type: "string" },
  },
});
const backend = selectKernels((values.backend ?? "auto") as BackendName | "auto").name;
const n = Number(values.images), maxLength = Number(values["max-length"]);
const wordToIdx: Record<string, number> = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
for (let i = 3; i < V; i++) wordToIdx[`w${i}`] = i;
const model = cocoModel(wordToIdx, values.cell as CellType);
for (let i = 0; i < model.params.W_vocab.size; i++) model.params.W_vocab.data[i] *= 8;
const features = Tensor.randn([n, D], 2, "float32");
for (const beamSize of [1, Number(values.beam)]) {
  const times: number[] = [];
  for (let it = 0; it < Number(values.iters) + 1; it++) {
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
