import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Serves the repository read-only over HTTP on 127.0.0.1, as a user's web host would. */
function serveRepository(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("forbidden", { status: 403 });
    try {
      const body = await Deno.readFile(join(ROOT, path));
      const type = path.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

const SCRIPT = (base: string) => `
import { CaptioningRNN, CaptioningSolver, createEngine, Tensor } from "${base}/mod.ts";
const words = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "dog"];
const wordToIdx = Object.fromEntries(words.map((w, i) => [w, i]));
const n = 40;
const caps = Tensor.zeros([n, 6], "int32");
for (let i = 0; i < n; i++) caps.data.set([1, 4, 5 + (i % 2), 2, 0, 0], i * 6);
const data = {
  train_captions: caps,
  train_image_idxs: Tensor.fromValues(Array.from({ length: n }, (_, i) => i), [n], "int32"),
  train_features: Tensor.randn([n, 8], 1, "float32"),
  idx_to_word: words,
  word_to_idx: wordToIdx,
};
const model = new CaptioningRNN({ wordToIdx, inputDim: 8, wordvecDim: 8, hiddenDim: 16, cellType: "lstm" });
const engine = createEngine(model, { workers: 2 });
const solver = new CaptioningSolver(model, data, { updateRule: "adam", batchSize: 20, numEpochs: 3, verbose: false, engine });
await solver.train();
await solver.close();
console.log(JSON.stringify({ losses: solver.lossHistory, workers: engine.constructor.name }));
`;

Deno.test("recap imported from an http URL trains with 2 workers resolved from import.meta.url", async () => {
  const server = serveRepository();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "use_recap.ts");
    await Deno.writeTextFile(script, SCRIPT(base));
    // Only the import permission: a URL user needs no other flag to train in memory.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--reload=${base}`, `--allow-import=127.0.0.1:${server.addr.port}`, script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, stderr);
    const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assertEquals(result.workers, "PoolEngine");
    assertEquals(result.losses.length, 6);
    assert(result.losses.every((l: number) => Number.isFinite(l) && l > 0), JSON.stringify(result));
    assert(
      stderr.includes(`${base}/workers/compute_worker.ts`),
      "the workers were loaded from the URL",
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the inline h5wasm specifier pins the same version as deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const source = await Deno.readTextFile(join(ROOT, "pipeline/io/h5.ts"));
  const pinned = config.imports.h5wasm as string; // "npm:h5wasm@x.y.z"
  const inline = [...source.matchAll(/"(npm:h5wasm@[^/"]+)\/node"/g)].map((m) => m[1]);
  assert(inline.length >= 2, "h5.ts imports h5wasm by its full specifier");
  for (const spec of inline) assertEquals(spec, pinned);
});
