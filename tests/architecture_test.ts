/**
 * The layer order of docs/architecture.md, enforced: imports run one way, layers ← model ←
 * workers ← pipeline, and inside pipeline io ← config ← data ← eval ← train ← run ← cli; no
 * module imports from a folder above its own, and no import cycles anywhere. Every kind of
 * module reference counts: static imports and re-exports (also type-only ones), dynamic
 * `import()`, and worker modules (`new URL("…", import.meta.url)`).
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./assert.ts";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/** The rank of each top-level folder: a module may import its own rank or lower. */
const TOP = ["layers", "model", "workers", "pipeline"];
/** The rank of each pipeline folder (and root file): the same rule, inside pipeline/. */
const PIPELINE = [["io", "errors.ts"], ["config"], ["data"], ["eval"], ["train"], ["run"], [
  "cli",
]];

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await sources(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The source without comments (JSDoc examples import from anywhere) and string contents. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** The repository-relative paths of the modules a file refers to. */
function references(file: string, text: string): string[] {
  const src = code(text);
  const specs = [
    ...src.matchAll(/\bfrom\s+"(\.[^"]+)"/g),
    ...src.matchAll(/\bimport\s*\(\s*"(\.[^"]+)"\s*\)/g),
    ...src.matchAll(/\bimport\s+"(\.[^"]+)"/g),
    ...src.matchAll(/new URL\(\s*"(\.[^"]+\.ts)"\s*,\s*import\.meta\.url\s*\)/g),
  ].map((m) => m[1]);
  return specs.map((s) => normalize(join(dirname(file), s)));
}

function rank(path: string): [number, number] {
  const parts = path.split("/");
  const top = TOP.indexOf(parts[0]);
  if (parts[0] !== "pipeline") return [top, 0];
  const inner = PIPELINE.findIndex((names) => names.includes(parts[1]));
  return [top, inner];
}

const files = (await Promise.all(TOP.map(sources))).flat().sort();
const graph = new Map<string, string[]>();
for (const f of files) graph.set(f, references(f, await Deno.readTextFile(join(ROOT, f))));

Deno.test("every module sits in a known folder of the layer order", () => {
  for (const f of files) {
    const [top, inner] = rank(f);
    assert(top >= 0 && inner >= 0, `${f} is not in a folder of docs/architecture.md`);
  }
});

Deno.test("no module imports from a folder above its own (layers ← model ← workers ← pipeline)", () => {
  const upward: string[] = [];
  for (const [f, refs] of graph) {
    const [top, inner] = rank(f);
    for (const r of refs) {
      if (!r.endsWith(".ts")) continue;
      const [rTop, rInner] = rank(r);
      if (rTop > top || (rTop === top && rInner > inner)) upward.push(`${f} → ${r}`);
    }
  }
  assertEquals(upward, [], "imports that run up the layers");
});

Deno.test("every module reference resolves to a file", async () => {
  const missing: string[] = [];
  for (const [f, refs] of graph) {
    for (const r of refs) {
      try {
        await Deno.stat(join(ROOT, r));
      } catch {
        missing.push(`${f} → ${r}`);
      }
    }
  }
  assertEquals(missing, []);
});

Deno.test("there are no import cycles", () => {
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    stack.push(f);
    for (const r of graph.get(f) ?? []) {
      if (state.get(r) === "open") {
        cycles.push([...stack.slice(stack.indexOf(r)), r].map((p) => relative(".", p)).join(" → "));
      } else if (!state.has(r) && graph.has(r)) visit(r);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assertEquals(cycles, []);
});
