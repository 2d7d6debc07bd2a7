import { assert } from "./assert.ts";

// Runs in a subprocess with --expose-gc, so the heap can be measured after a full collection.
const SCRIPT = `
import { CaptioningRNN, InMemoryBatches, Optimizer, createEngine, Tensor } from "${
  new URL("../mod.ts", import.meta.url).href
}";
const words = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat"];
const wordToIdx = Object.fromEntries(words.map((w, i) => [w, i]));
const n = 8;
const caps = Tensor.zeros([n, 5], "int32");
for (let i = 0; i < n; i++) caps.data.set([1, 4, 5, 2, 0], i * 5);
const data = {
  train_captions: caps,
  train_image_idxs: Tensor.fromValues(Array.from({ length: n }, (_, i) => i), [n], "int32"),
  train_features: Tensor.randn([n, 4], 1, "float32"),
  idx_to_word: words, word_to_idx: wordToIdx,
};
const model = new CaptioningRNN({ wordToIdx, inputDim: 4, wordvecDim: 4, hiddenDim: 4 });
const engine = createEngine(model, { workers: 2, backend: "ts" });
const batches = new InMemoryBatches(data, n, 0);
const opt = new Optimizer("sgd", { learningRate: 1e-3 }, model.layout.total, "float32");
const heap = () => { globalThis.gc(); return Deno.memoryUsage().heapUsed; };
const batch = batches.next();
let before = 0;
for (let i = 0; i < 6000; i++) {
  if (i === 1000) before = heap();
  await engine.step(batch, opt, 0);
}
const after = heap();
await engine.close();
console.log(JSON.stringify({ growth: after - before }));
`;

Deno.test("the worker pool's main-thread heap does not grow with the number of steps", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/pool_heap.ts`;
  await Deno.writeTextFile(script, SCRIPT);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  assert(out.success, new TextDecoder().decode(out.stderr));
  const { growth } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  // A leak of ~0.7 kB per step would add ~3.5 MB over these 5000 steps.
  assert(growth < 1_000_000, `heap grew by ${growth} bytes over 5000 steps`);
});
