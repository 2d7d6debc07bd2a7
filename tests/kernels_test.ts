/**
 * Every available backend's gemm against the plain TypeScript reference: odd shapes, all four
 * transposes, alpha/beta variants, offsets and padded leading dimensions, float32 and float64,
 * SharedArrayBuffer-backed arrays, and two workers multiplying at once. Backends that do not
 * load on this machine (no BLAS, no --allow-ffi, no wasm SIMD) are ignored, not failed.
 * @module
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { Rng } from "../layers/random.ts";
import type { FloatArray } from "../layers/tensor.ts";
import { type BlasKernels, loadBlasKernels } from "../layers/kernels/blas.ts";
import {
  availableBackends,
  backendNames,
  describeKernels,
  kernels,
  loadKernels,
  selectKernels,
  setKernels,
} from "../layers/kernels/mod.ts";
import { tsKernels } from "../layers/kernels/ts.ts";
import { loadWasmKernels } from "../layers/kernels/wasm.ts";
import { op, sleb, uleb } from "../layers/kernels/wasm_asm.ts";
import type { BackendName, Kernels } from "../layers/kernels/types.ts";

const AVAILABLE = availableBackends();
const granted = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
/** Env-writing tests and worker tests (a blob worker reads the module files) need these. */
const CAN_ENV = granted({ name: "env" });
const CAN_READ = granted({ name: "read" });
const FAST: BackendName[] = ["blas", "wasm"];

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

/** A matrix stored with an offset and a padded leading dimension, garbage around it. */
interface Stored {
  data: FloatArray;
  offset: number;
  ld: number;
}

function store(
  rng: Rng,
  ctor: Ctor,
  rows: number,
  cols: number,
  shared: boolean,
  fill: "random" | "nan",
): Stored {
  const offset = Math.floor(rng.random() * 5);
  const ld = Math.max(1, cols) + Math.floor(rng.random() * 4);
  const length = offset + rows * ld + Math.floor(rng.random() * 3);
  const buffer = shared
    ? new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT)
    : new ArrayBuffer(length * ctor.BYTES_PER_ELEMENT);
  const data = ctor === Float32Array ? new Float32Array(buffer) : new Float64Array(buffer);
  // Outside the matrix: a sentinel that must survive untouched.
  data.fill(fill === "nan" ? NaN : 7.25);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      data[offset + i * ld + j] = fill === "nan" ? NaN : rng.random() * 2 - 1;
    }
  }
  return { data, offset, ld };
}

function abs64(x: FloatArray): Float64Array {
  return Float64Array.from(x, Math.abs);
}

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/**
 * Runs one case on a backend and on ts, and compares every element of C's whole array (the gaps
 * between rows too) within a rounding bound scaled by k and by the size of the terms.
 */
function checkCase(backend: Kernels, ctor: Ctor, c: Case, shared: boolean, rng: Rng): void {
  const { m, n, k, transA, transB, alpha, beta } = c;
  const a = store(rng, ctor, transA ? k : m, transA ? m : k, shared, "random");
  const b = store(rng, ctor, transB ? n : k, transB ? k : n, shared, "random");
  const cc = store(rng, ctor, m, n, shared, beta === 0 ? "nan" : "random");
  const expected = cc.data.slice();
  const args = (x: Stored) => [x.data, x.offset, x.ld] as const;
  const run = (kern: Kernels, alpha: number, a: Stored, b: Stored, beta: number, out: FloatArray) =>
    kern.gemm(transA, transB, m, n, k, alpha, ...args(a), ...args(b), beta, out, cc.offset, cc.ld);
  run(tsKernels, alpha, a, b, beta, expected);
  // |alpha| |op(A)| |op(B)| + |beta| |C|: the scale of each element's rounding error.
  const scale = beta === 0 ? new Float64Array(cc.data.length) : abs64(cc.data);
  const absA = { ...a, data: abs64(a.data) }, absB = { ...b, data: abs64(b.data) };
  run(tsKernels, Math.abs(alpha), absA, absB, Math.abs(beta), scale);
  const actual = cc.data;
  run(backend, alpha, a, b, beta, actual);
  const eps = ctor === Float32Array ? 2 ** -24 : 2 ** -53;
  const tol = 2 * (k + 2) * eps;
  const label =
    `${backend.name} ${ctor.name} m=${m} n=${n} k=${k} transA=${transA} transB=${transB} ` +
    `alpha=${alpha} beta=${beta} shared=${shared}`;
  for (let i = 0; i < actual.length; i++) {
    const x = actual[i], y = expected[i];
    if (Number.isNaN(y)) {
      assert(Number.isNaN(x), `${label}: element ${i} outside C was overwritten with ${x}`);
      continue;
    }
    const bound = tol * scale[i] + 1e-30;
    assert(
      Math.abs(x - y) <= bound,
      `${label}: element ${i} is ${x}, expected ${y} (difference ${Math.abs(x - y)} > ${bound})`,
    );
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 1],
  [17, 3, 1003],
  [1003, 17, 3],
  [17, 1003, 17],
  [1, 1003, 3],
  [64, 65, 66],
  [33, 130, 257],
  [129, 19, 520],
  [7, 1100, 40],
];
const SCALARS: [number, number][] = [[1, 0], [1, 1], [-0.5, 0.25], [2, 0]];
const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [
  true,
  true,
]];

for (const name of FAST) {
  for (const ctor of [Float32Array, Float64Array]) {
    Deno.test({
      name: `${name} gemm() matches ts on ${ctor.name} for odd shapes, transposes, alpha/beta, ` +
        `offsets and padded leading dimensions`,
      ignore: !AVAILABLE.includes(name),
      fn() {
        const backend = loadKernels(name);
        const rng = new Rng(ctor === Float32Array ? 1 : 2);
        let i = 0;
        for (const [m, n, k] of SHAPES) {
          for (const [transA, transB] of TRANSPOSES) {
            for (const [alpha, beta] of SCALARS) {
              checkCase(
                backend,
                ctor,
                { m, n, k, transA, transB, alpha, beta },
                i++ % 2 === 1,
                rng,
              );
            }
          }
        }
      },
    });
  }

  Deno.test({
    name: `${name} gemm() reads and writes SharedArrayBuffer-backed views at offsets`,
    ignore: !AVAILABLE.includes(name),
    fn() {
      const backend = loadKernels(name);
      const rng = new Rng(3);
      for (const [m, n, k] of [[5, 6, 7], [40, 33, 70], [100, 200, 64]] as const) {
        for (const [transA, transB] of TRANSPOSES) {
          checkCase(
            backend,
            Float32Array,
            { m, n, k, transA, transB, alpha: 1, beta: 1 },
            true,
            rng,
          );
        }
      }
      // One shared buffer holding A, B and C back to back, as the model's parameter buffer does.
      const flat = new Float32Array(new SharedArrayBuffer(4 * (3 + 6 + 6 + 4)));
      flat.set([1, 2, 3, 4, 5, 6], 3); // A (2 x 3) at offset 3
      flat.set([1, 0, 0, 1, 1, 1], 9); // B (3 x 2) at offset 9
      backend.gemm(false, false, 2, 2, 3, 1, flat, 3, 3, flat, 9, 2, 0, flat, 15, 2);
      assertEquals(Array.from(flat.subarray(15)), [4, 5, 10, 11]);
      assertEquals(Array.from(flat.subarray(0, 3)), [0, 0, 0]);
    },
  });

  Deno.test({
    name: `${name} gemm() with k = 0 or alpha = 0 only scales C, and beta = 0 clears NaN`,
    ignore: !AVAILABLE.includes(name),
    fn() {
      const backend = loadKernels(name);
      const c = new Float32Array([NaN, NaN, 9, NaN]);
      backend.gemm(
        false,
        false,
        1,
        2,
        0,
        1,
        new Float32Array(0),
        0,
        1,
        new Float32Array(0),
        0,
        2,
        0,
        c,
        1,
        2,
      );
      assertEquals(Array.from(c), [NaN, 0, 0, NaN]);
      const d = new Float64Array([2, 4]);
      backend.gemm(
        false,
        false,
        1,
        2,
        1,
        0,
        new Float64Array([1]),
        0,
        1,
        new Float64Array([1, 1]),
        0,
        2,
        0.5,
        d,
        0,
        2,
      );
      assertEquals(Array.from(d), [1, 2]);
    },
  });

  Deno.test({
    name: `${name} gemm() rejects operands that do not fit their arrays and mixed element types`,
    ignore: !AVAILABLE.includes(name),
    fn() {
      const backend = loadKernels(name);
      const x = new Float32Array(6), y = new Float64Array(6);
      backend.gemm(false, false, 2, 2, 3, 1, x, 0, 3, x, 0, 2, 0, new Float32Array(4), 0, 2);
      assertThrows(
        () =>
          backend.gemm(false, false, 2, 2, 3, 1, x, 1, 3, x, 0, 2, 0, new Float32Array(4), 0, 2),
        RangeError,
        "A (2 x 3, offset 1, ld 3) needs 7 elements",
      );
      assertThrows(
        () => backend.gemm(false, true, 2, 2, 3, 1, x, 0, 3, x, 0, 2, 0, new Float32Array(4), 0, 2),
        RangeError,
        "leading dimension of B",
      );
      assertThrows(
        () =>
          backend.gemm(false, false, 2, 2, 3, 1, x, 0, 3, x, 0, 2, 0, new Float32Array(4), 0, 3),
        RangeError,
        "C (2 x 2, offset 0, ld 3) needs 5 elements",
      );
      assertThrows(
        () =>
          backend.gemm(false, false, 2, 2, 3, 1, x, 0, 3, y, 0, 2, 0, new Float32Array(4), 0, 2),
        TypeError,
        "same element type",
      );
      assertThrows(
        () =>
          backend.gemm(false, false, -1, 2, 3, 1, x, 0, 3, x, 0, 2, 0, new Float32Array(4), 0, 2),
        RangeError,
        "m must be an integer",
      );
    },
  });
}

Deno.test({
  name: "wasm gemm() matches ts across many cache blocks in every dimension, fused or not, " +
    "with B packed or read in place",
  ignore: !AVAILABLE.includes("wasm"),
  fn() {
    // Tiny blocks so that m, n and k each span several blocks and end in a partial one.
    const blocks = { mc: 8, kc: 12, nc: 32 };
    const rng = new Rng(5);
    // directRows 0: B always packed; 1e9: an untransposed B always read in place.
    for (
      const [relaxed, directRows] of [[true, 0], [false, 0], [true, 1e9], [false, 1e9]] as const
    ) {
      const backend = loadWasmKernels({
        relaxed,
        directRows,
        blocks: { f32: blocks, f64: blocks },
      });
      for (const ctor of [Float32Array, Float64Array]) {
        for (const [m, n, k] of [[37, 101, 53], [8, 32, 12], [9, 33, 13], [3, 70, 25]] as const) {
          for (const [transA, transB] of TRANSPOSES) {
            checkCase(backend, ctor, { m, n, k, transA, transB, alpha: 0.75, beta: 1 }, false, rng);
            checkCase(backend, ctor, { m, n, k, transA, transB, alpha: 1, beta: 0 }, true, rng);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "wasm gemm() gives each row of C the same bits however the rows are split into calls",
  ignore: !AVAILABLE.includes("wasm"),
  fn() {
    // What data-parallel sharding relies on: a row's result depends only on k, not on m or n.
    const backend = loadKernels("wasm");
    const rng = new Rng(7);
    const m = 100, n = 77, k = 300;
    for (const ctor of [Float32Array, Float64Array]) {
      for (const [transA, transB] of TRANSPOSES) {
        const a = new ctor(m * k).map(() => rng.random() - 0.5);
        const b = new ctor(k * n).map(() => rng.random() - 0.5);
        const lda = transA ? m : k, ldb = transB ? k : n;
        const whole = new ctor(m * n).fill(1);
        backend.gemm(transA, transB, m, n, k, 1, a, 0, lda, b, 0, ldb, 1, whole, 0, n);
        const parts = new ctor(m * n).fill(1);
        for (const [start, rows] of [[0, 25], [25, 7], [32, 1], [33, 50], [83, 17]]) {
          // Rows start.. of op(A): row offset in A, or column offset when A is stored transposed.
          const aOffset = transA ? start : start * k;
          backend.gemm(
            transA,
            transB,
            rows,
            n,
            k,
            1,
            a,
            aOffset,
            lda,
            b,
            0,
            ldb,
            1,
            parts,
            start * n,
            n,
          );
        }
        assertEquals(parts, whole, `${ctor.name} transA=${transA} transB=${transB}`);
      }
    }
  },
});

Deno.test({
  name: "wasm gemm() grows its memory for large operands and keeps it for later calls",
  ignore: !AVAILABLE.includes("wasm"),
  fn() {
    const backend = loadWasmKernels();
    const before = backend.memoryBytes();
    const rng = new Rng(6);
    checkCase(
      backend,
      Float64Array,
      {
        m: 300,
        n: 400,
        k: 200,
        transA: false,
        transB: true,
        alpha: 1,
        beta: 0,
      },
      false,
      rng,
    );
    const grown = backend.memoryBytes();
    assert(grown >= 8 * (300 * 200 + 200 * 400 + 300 * 400), `memory is only ${grown} bytes`);
    assert(grown > before);
    checkCase(
      backend,
      Float32Array,
      {
        m: 30,
        n: 40,
        k: 20,
        transA: false,
        transB: false,
        alpha: 1,
        beta: 1,
      },
      false,
      rng,
    );
    assertEquals(backend.memoryBytes(), grown);
  },
});

Deno.test({
  name: "Two module workers running gemm at once on shared arrays get the right results",
  ignore: !AVAILABLE.some((name) => FAST.includes(name)) || !CAN_READ,
  async fn() {
    const names = AVAILABLE.filter((name) => FAST.includes(name));
    const m = 128, n = 96, k = 160, rounds = 150;
    const rng = new Rng(4);
    const shared = (length: number) => new Float32Array(new SharedArrayBuffer(4 * length));
    const a = shared(m * k), b = shared(k * n);
    for (let i = 0; i < a.length; i++) a[i] = rng.random() - 0.5;
    for (let i = 0; i < b.length; i++) b[i] = rng.random() - 0.5;
    const expected = new Float32Array(m * n);
    tsKernels.gemm(false, false, m, n, k, 1, a, 0, k, b, 0, n, 0, expected, 0, n);
    const modUrl = new URL("../layers/kernels/mod.ts", import.meta.url).href;
    // Both workers wait at a barrier, then each rewrites its own half of C (beta = 0 over NaN)
    // many times, checking every round, while the other does the same.
    const source = `import { loadKernels } from ${JSON.stringify(modUrl)};
self.onmessage = (e) => {
  const { name, a, b, c, expected, barrier, m, n, k, rounds, slot } = e.data;
  const kern = loadKernels(name);
  const off = slot * m * n;
  let worst = 0;
  Atomics.add(barrier, 0, 1);
  while (Atomics.load(barrier, 0) < 2);
  for (let r = 0; r < rounds; r++) {
    c.fill(NaN, off, off + m * n);
    kern.gemm(false, false, m, n, k, 1, a, 0, k, b, 0, n, 0, c, off, n);
    for (let i = 0; i < m * n; i++) {
      const d = Math.abs(c[off + i] - expected[i]);
      worst = d > worst || Number.isNaN(d) ? d : worst;
    }
  }
  self.postMessage(worst);
};`;
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    try {
      for (const name of names) {
        const c = shared(2 * m * n);
        const barrier = new Int32Array(new SharedArrayBuffer(4));
        const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
        let worst: number[];
        try {
          worst = await Promise.all(
            workers.map((w, slot) =>
              new Promise<number>((resolve, reject) => {
                w.onmessage = (e) => resolve(e.data);
                w.onerror = (e) => {
                  e.preventDefault();
                  reject(new Error(`Worker ${slot} (${name}) failed: ${e.message}`));
                };
                w.postMessage({ name, a, b, c, expected, barrier, m, n, k, rounds, slot });
              })
            ),
          );
        } finally {
          for (const w of workers) w.terminate();
        }
        for (const w of worst) assert(w <= 1e-4, `${name}: a worker's result was off by ${w}`);
      }
    } finally {
      URL.revokeObjectURL(url);
    }
  },
});

Deno.test("selectKernels() picks the first available backend and honours an explicit choice", () => {
  const previous = kernels();
  try {
    assertEquals(AVAILABLE[AVAILABLE.length - 1], "ts");
    assertEquals(backendNames().filter((name) => AVAILABLE.includes(name)), AVAILABLE);
    assertEquals(selectKernels("auto").name, AVAILABLE[0]);
    assertEquals(kernels().name, AVAILABLE[0]);
    assertEquals(selectKernels("ts"), tsKernels);
    assertEquals(kernels(), tsKernels);
    for (const name of AVAILABLE) assertEquals(selectKernels(name).name, name);
    assertThrows(() => selectKernels("cuda" as BackendName), RangeError, 'unknown backend "cuda"');
  } finally {
    setKernels(previous);
  }
});

Deno.test({
  name: "loadBlasKernels() fails with a clear error without FFI permission or library",
  permissions: { ffi: false, env: "inherit", read: "inherit" },
  fn() {
    assertThrows(() => loadBlasKernels(), Error, "FFI is not allowed (run with --allow-ffi)");
  },
});

Deno.test({
  name: "The BLAS backend sets its library to one thread",
  ignore: !AVAILABLE.includes("blas"),
  fn() {
    const blas = loadKernels("blas") as BlasKernels;
    if (blas.threads !== "openblas_set_num_threads") {
      assert(["MKL_Set_Num_Threads", "bli_thread_set_num_threads", "none"].includes(blas.threads));
      return;
    }
    // A second handle to the same library sees the same, process-wide thread setting.
    const lib = Deno.dlopen(blas.library, {
      openblas_get_num_threads: { parameters: [], result: "i32" },
    });
    try {
      assertEquals(lib.symbols.openblas_get_num_threads(), 1);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "loadBlasKernels() names the library it could not open",
  ignore: !AVAILABLE.includes("blas"),
  fn() {
    assertThrows(
      () => loadBlasKernels("/nonexistent/libnoblas.so"),
      Error,
      "Cannot load the BLAS backend: /nonexistent/libnoblas.so:",
    );
  },
});

Deno.test({
  name: "An unavailable backend chosen explicitly throws the reason it did not load",
  ignore: AVAILABLE.length === backendNames().length,
  fn() {
    const missing = backendNames().find((name) => !AVAILABLE.includes(name))!;
    assertThrows(() => selectKernels(missing), Error, "Cannot load the");
  },
});

Deno.test({
  name: "selectKernels() reads RECAP_BACKEND when no choice is given and rejects bad values",
  ignore: !CAN_ENV,
}, () => {
  const previous = kernels();
  const saved = Deno.env.get("RECAP_BACKEND");
  try {
    Deno.env.set("RECAP_BACKEND", "ts");
    assertEquals(selectKernels().name, "ts");
    Deno.env.set("RECAP_BACKEND", "gpu");
    assertThrows(() => selectKernels(), RangeError, 'unknown backend "gpu"');
    Deno.env.delete("RECAP_BACKEND");
    assertEquals(selectKernels().name, AVAILABLE[0]);
  } finally {
    if (saved === undefined) Deno.env.delete("RECAP_BACKEND");
    else Deno.env.set("RECAP_BACKEND", saved);
    setKernels(previous);
  }
});

Deno.test({
  name: "selectKernels() works without env permission, as auto",
  permissions: { env: false, ffi: "inherit", read: "inherit" },
  fn() {
    const previous = kernels();
    try {
      assertEquals(selectKernels().name, AVAILABLE[0]);
    } finally {
      setKernels(previous);
    }
  },
});

Deno.test({
  name: "loadBlasKernels() tries only RECAP_BLAS when it is set",
  ignore: !AVAILABLE.includes("blas") || !CAN_ENV,
  fn() {
    const saved = Deno.env.get("RECAP_BLAS");
    try {
      Deno.env.set("RECAP_BLAS", "/nonexistent/librecap_blas.so");
      assertThrows(() => loadBlasKernels(), Error, "/nonexistent/librecap_blas.so:");
    } finally {
      if (saved === undefined) Deno.env.delete("RECAP_BLAS");
      else Deno.env.set("RECAP_BLAS", saved);
    }
  },
});

Deno.test("The wasm assembler encodes LEB128 integers and nests instructions in stack order", () => {
  assertEquals(uleb(0), [0]);
  assertEquals(uleb(624485), [0xe5, 0x8e, 0x26]);
  assertEquals(uleb(2 ** 32 - 1), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assertEquals(sleb(-1), [0x7f]);
  assertEquals(sleb(63), [0x3f]);
  assertEquals(sleb(64), [0xc0, 0x00]);
  assertEquals(sleb(-123456), [0xc0, 0xbb, 0x78]);
  assertEquals(op.set(1, op.add(op.get(0), op.i32(1))), [0x20, 0, 0x41, 1, 0x6a, 0x21, 1]);
  assertEquals(op.f32x4RelaxedMadd([], [], []), [0xfd, 0x85, 0x02]);
});

Deno.test("describeKernels() names the backend and what it runs on", () => {
  assertEquals(describeKernels(tsKernels), "ts (plain TypeScript)");
  if (AVAILABLE.includes("wasm")) {
    assert(/^wasm \(SIMD128(, relaxed FMA)?\)$/.test(describeKernels(loadKernels("wasm"))));
  }
  if (AVAILABLE.includes("blas")) {
    const blas = loadKernels("blas") as BlasKernels;
    assert(describeKernels(blas).startsWith(`blas (${blas.library}, `));
  }
});
