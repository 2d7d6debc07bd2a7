import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { H5File, withH5File } from "../pipeline/io/h5.ts";
import { InputError } from "../pipeline/errors.ts";
import { Tensor } from "../layers/tensor.ts";

async function tempH5(): Promise<string> {
  return await Deno.makeTempFile({ suffix: ".h5" });
}

Deno.test("H5File reads chunked and gzip-compressed datasets exactly as contiguous ones", async () => {
  const path = await tempH5();
  try {
    const x = Tensor.randn([301, 37], 3, "float32");
    const y = Tensor.fromValues(Array.from({ length: 500 * 17 }, (_, i) => (i * 7919) % 1004), [
      500,
      17,
    ], "int32");
    const z = Tensor.randn([4, 3, 5], 4, "float64");
    await withH5File(path, "w", (f) => {
      f.write("x_contig", x);
      f.write("x_gzip", x, { chunks: [16, 37], gzip: 6 });
      f.write("y_contig", y);
      f.write("y_chunk", y, { chunks: [64, 17] });
      f.write("g/z", z, { gzip: 1 });
    });
    await withH5File(path, "r", (f) => {
      assertEquals(f.info("x_gzip").filters, ["deflate"]);
      assertEquals(f.info("x_gzip").chunks, [16, 37]);
      assertEquals(f.info("x_contig").chunks, null);
      assertEquals(f.read("x_contig", "float32").data, x.data);
      assertEquals(f.read("x_gzip", "float32").data, x.data);
      assertEquals(f.read("y_chunk", "int32").data, y.data);
      const zz = f.read("g/z", "float64");
      assertEquals(zz.shape, [4, 3, 5]);
      assertEquals(zz.data, z.data);
      // Row ranges across chunk boundaries, straight into an offset destination.
      for (const name of ["x_contig", "x_gzip"]) {
        const out = new Float32Array(10 + 40 * 37);
        f.readRowsInto(name, 13, 53, out, 10);
        assertEquals(out.subarray(10), x.data.subarray(13 * 37, 53 * 37));
        assertEquals(out[0], 0);
      }
      assertEquals(f.readRows("y_chunk", 499, 500), y.data.subarray(499 * 17));
      assertThrows(() => f.readRows("y_chunk", 490, 501), RangeError);
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("H5File writes row blocks into a pre-sized chunked dataset", async () => {
  const path = await tempH5();
  try {
    const x = Tensor.randn([1000, 64], 9, "float32");
    await withH5File(path, "w", (f) => {
      f.createDataset("features", "float32", [1000, 64], { chunks: [32, 64] });
      for (let r = 0; r < 1000; r += 300) {
        f.writeRows("features", r, x.data.subarray(r * 64, Math.min(1000, r + 300) * 64));
      }
    });
    await withH5File(path, "r", (f) => {
      assertEquals(f.info("features").shape, [1000, 64]);
      assertEquals(f.read("features", "float32").data, x.data);
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("H5File stores string, number and JSON attributes on the root and on datasets", async () => {
  const path = await tempH5();
  try {
    await withH5File(path, "w", (f) => {
      f.write("w", Tensor.zeros([2, 2], "float64"));
      f.setAttr("/", "model", "lstm");
      f.setAttr("/", "iteration", 1200);
      f.setAttr("w", "shape_hint", [2, 2]);
      f.setJsonAttr("/", "config", { lr: 5e-3, hidden: 512, cell: "lstm" });
      f.setAttr("/", "model", "rnn"); // replaces
    });
    await withH5File(path, "r", (f) => {
      assertEquals(f.getAttr("/", "model"), "rnn");
      assertEquals(f.getAttr("/", "iteration"), 1200);
      assertEquals(f.getAttr("w", "shape_hint"), [2, 2]);
      assertEquals(f.getJsonAttr("/", "config"), { lr: 5e-3, hidden: 512, cell: "lstm" });
      assertEquals(f.getAttr("/", "absent"), undefined);
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("H5File turns missing, non-HDF5 and truncated files into one-line InputErrors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(() => H5File.open(`${dir}/nope.h5`), InputError, "does not exist");
    await Deno.writeTextFile(`${dir}/text.h5`, "not an hdf5 file at all\n".repeat(100));
    const e = await assertRejects(
      () => H5File.open(`${dir}/text.h5`),
      InputError,
      "not an HDF5 file",
    );
    assert(!e.message.includes("\n"), "one line");
    assert(e.message.includes(`${dir}/text.h5`), "names the file");
    await withH5File(
      `${dir}/full.h5`,
      "w",
      (f) => f.write("x", Tensor.randn([2000, 32], 1, "float32")),
    );
    const bytes = await Deno.readFile(`${dir}/full.h5`);
    await Deno.writeFile(`${dir}/cut.h5`, bytes.subarray(0, bytes.length >> 1));
    const t = await assertRejects(() => H5File.open(`${dir}/cut.h5`), InputError, "truncated");
    assert(!t.message.includes("\n"), "one line");
    await withH5File(`${dir}/full.h5`, "r", (f) => {
      assertThrows(() => f.info("features"), InputError, 'dataset "features" is missing');
      assertThrows(
        () => f.expect("x", "int32", [-1, 32]),
        InputError,
        "has dtype float32, expected int32",
      );
      assertThrows(
        () => f.expect("x", "float32", [-1, 512]),
        InputError,
        "has shape [2000, 32], expected [*, 512]",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("H5File reports damaged chunk data as an InputError instead of crashing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/c.h5`;
    const y = Tensor.fromValues(
      Array.from({ length: 4000 * 17 }, (_, i) => i % 900),
      [4000, 17],
      "int32",
    );
    await withH5File(path, "w", (f) => f.write("captions", y, { chunks: [256, 17], gzip: 4 }));
    const bytes = await Deno.readFile(path);
    // Overwrite the middle of the file (compressed chunk data) with garbage.
    const mid = bytes.length >> 1;
    for (let i = mid; i < mid + 2000; i++) bytes[i] = (i * 131) & 0xff;
    await Deno.writeFile(path, bytes);
    const f = await H5File.open(path);
    try {
      const e = assertThrows(() => f.read("captions", "int32"), InputError, path);
      assert(!e.message.includes("\n"), "one line");
    } finally {
      f.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
