/**
 * Feature files as users bring them: `.npy` written by real NumPy (float32 and float64, format
 * versions 1, 2 and 3), HDF5 datasets written by h5py and by recap, and directories of
 * per-image `.npy` files; read back exactly, and every kind of bad file refused by name.
 * The NumPy and h5py cases are skipped (with a note) on a machine without them.
 */
import { join } from "node:path";
import { Tensor } from "../layers/tensor.ts";
import { featureFileNames, openFeatures } from "../pipeline/data/features/feature_source.ts";
import { NpyFile, parseNpyHeader } from "../pipeline/data/features/npy.ts";
import { InputError } from "../pipeline/errors.ts";
import { H5File } from "../pipeline/io/h5.ts";
import { assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { pythonWith, runPython } from "./python.ts";

const numpy = pythonWith(["numpy"]);
const h5py = pythonWith(["numpy", "h5py"]);

/** Reads every row of a source, in blocks of `block` rows. */
async function readAll(path: string, block = 3, options = {}): Promise<Float32Array> {
  const f = await openFeatures(path, options);
  try {
    const out = new Float32Array(f.rows * f.dim);
    for (let r = 0; r < f.rows; r += block) {
      const end = Math.min(f.rows, r + block);
      await f.readRows(r, end, out.subarray(r * f.dim));
    }
    return out;
  } finally {
    f.close();
  }
}

/** The float32 bytes NumPy gives for `a.astype("<f4")`, written next to the array. */
function float32File(path: string): Float32Array {
  const bytes = Deno.readFileSync(path);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

for (const [dtype, version] of [["<f4", 1], ["<f8", 1], ["<f4", 2], ["<f8", 2], ["<f4", 3]]) {
  Deno.test({
    name: `a ${dtype} .npy in format version ${version}, written by NumPy, reads back exactly`,
    ignore: numpy === null,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      const npy = join(dir, "f.npy"), raw = join(dir, "f32.bin");
      runPython(
        numpy!,
        `
import sys, numpy as np
from numpy.lib import format as fmt
rng = np.random.default_rng(7)
a = (rng.standard_normal((11, 37)) * 1e3).astype("${dtype}")
a[0, 0] = 1e-40  # a float32 subnormal
with open(sys.argv[1], "wb") as f:
    fmt.write_array(f, a, version=(${version}, 0))
a.astype("<f4").tofile(sys.argv[2])`,
        [npy, raw],
      );
      const header = parseNpyHeader((await Deno.readFile(npy)).subarray(0, 4096), npy);
      assertEquals(header.version, [version, 0]);
      assertEquals(header.shape, [11, 37]);
      const want = float32File(raw);
      assertEquals(await readAll(npy), want);
      assertEquals(await readAll(npy, 11), want);
      await Deno.remove(dir, { recursive: true });
    },
  });
}

/** Bad `.npy` files NumPy writes (or a broken one), and the message each gets. */
const BAD_NPY: [string, string, RegExp][] = [
  [
    "fortran order",
    `np.save(p, np.asfortranarray(np.ones((4, 3), "<f4")))`,
    /fortran_order is True: expected a C-ordered array; save it with np\.save\(path, np\.ascontiguousarray\(a\)\)/,
  ],
  [
    "int64",
    `np.save(p, np.ones((4, 3), "<i8"))`,
    /dtype <i8 \(int64\): expected float32 \(<f4\) or float64 \(<f8\)/,
  ],
  ["float16", `np.save(p, np.ones((4, 3), "<f2"))`, /dtype <f2 \(float16\)/],
  ["big-endian float32", `np.save(p, np.ones((4, 3), ">f4"))`, /dtype >f4 \(big-endian float32\)/],
  [
    "a 3-D array",
    `np.save(p, np.ones((4, 3, 2), "<f4"))`,
    /shape \(4, 3, 2\): expected a 2-D \(images, D\) array/,
  ],
  ["a 1-D array", `np.save(p, np.ones((4,), "<f4"))`, /shape \(4\): expected a 2-D/],
  ["a structured dtype", `np.save(p, np.zeros(3, dtype=[("x", "<f4")]))`, /not a plain array's/],
  [
    "a truncated file",
    `np.save(p, np.ones((40, 30), "<f4")); open(p, "r+b").truncate(1000)`,
    /the file is truncated: its header says shape \(40, 30\), 4928 bytes, but it has 1000/,
  ],
  [
    "a NaN",
    `a = np.ones((6, 3), "<f4"); a[4, 1] = np.nan; np.save(p, a)`,
    /f\.npy: row 4 holds NaN at column 1; features must be finite/,
  ],
  [
    "an Inf",
    `a = np.ones((6, 3), "<f8"); a[5, 2] = -np.inf; np.save(p, a)`,
    /row 5 holds -Infinity at column 2/,
  ],
];

for (const [what, code, message] of BAD_NPY) {
  Deno.test({
    name: `a .npy file with ${what} is refused with a one-line message naming it`,
    ignore: numpy === null,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      const p = join(dir, "f.npy");
      runPython(numpy!, `import sys, numpy as np\np = sys.argv[1]\n${code}`, [p]);
      const e = await assertRejects(() => readAll(p), InputError, message);
      assertEquals(e.message.includes("\n"), false);
      assertEquals(e.message.startsWith(p), true, e.message);
      await Deno.remove(dir, { recursive: true });
    },
  });
}

Deno.test("a file that is neither .npy nor HDF5 is refused by its content, not its name", async () => {
  const dir = await Deno.makeTempDir();
  const p = join(dir, "features.npy");
  await Deno.writeTextFile(p, "image,f0,f1\n1,0.5,0.25\n");
  await assertRejects(() => openFeatures(p), InputError, /features\.npy: not a \.npy or HDF5 file/);
  await assertRejects(() => openFeatures(join(dir, "nope.npy")), InputError, /does not exist/);
  await assertRejects(() => NpyFile.open(p), InputError, /not a NumPy \.npy file/);
  assertThrows(
    () => parseNpyHeader(new Uint8Array([0x93, 78, 85, 77, 80, 89, 9, 0, 0, 0]), "x.npy"),
    InputError,
    "format version 9.0",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "an HDF5 dataset written by h5py reads back exactly, the dataset found or named",
  ignore: h5py === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const one = join(dir, "one.h5"), two = join(dir, "two.h5"), raw = join(dir, "f32.bin");
    runPython(
      h5py!,
      `
import sys, numpy as np, h5py
a = np.random.default_rng(3).standard_normal((9, 5))
with h5py.File(sys.argv[1], "w") as f:
    f["fc7"] = a
    f["ids"] = np.arange(9)
with h5py.File(sys.argv[2], "w") as f:
    f["fc7"] = a
    f["pool"] = a.astype("<f4")
    f["ints"] = np.ones((9, 5), "<i4")
    f["cube"] = np.ones((9, 5, 2), "<f4")
a.astype("<f4").tofile(sys.argv[3])`,
      [one, two, raw],
    );
    const want = float32File(raw);
    assertEquals(await readAll(one), want, "the only 2-D dataset is the features");
    assertEquals(await readAll(two, 4, { dataset: "fc7" }), want);
    assertEquals(await readAll(two, 4, { dataset: "pool" }), want);
    await assertRejects(
      () => openFeatures(two, { datasetOption: "--featuresDataset" }),
      InputError,
      /two\.h5: which dataset holds the features\? pass --featuresDataset NAME \(2-D datasets: fc7, ints, pool\)/,
    );
    await assertRejects(
      () => openFeatures(two, { dataset: "fc6", datasetOption: "--featuresDataset" }),
      InputError,
      /--featuresDataset: no dataset "fc6" \(found: cube, fc7, ints, pool\)/,
    );
    await assertRejects(
      () => openFeatures(two, { dataset: "ints" }),
      InputError,
      /dataset "ints" has dtype int32: expected float32 or float64/,
    );
    await assertRejects(
      () => openFeatures(two, { dataset: "cube" }),
      InputError,
      /shape \(9, 5, 2\): expected a 2-D/,
    );
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("an HDF5 file recap wrote reads as features; `features` is the default dataset", async () => {
  const dir = await Deno.makeTempDir();
  const p = join(dir, "f.h5");
  const t = Tensor.fromValues(Array.from({ length: 12 }, (_, i) => i / 3), [4, 3], "float32");
  const f = await H5File.open(p, "w");
  f.write("features", t);
  f.write("other", t);
  f.close();
  assertEquals(await readAll(p, 3), t.data);
  const g = await H5File.open(p, "a");
  const bad = Tensor.fromValues([...t.data], [4, 3], "float32");
  bad.data[7] = NaN;
  g.write("nan", bad);
  g.close();
  await assertRejects(() => readAll(p, 2, { dataset: "nan" }), InputError, /row 2 holds NaN/);
  await assertRejects(
    () => openFeatures(p, { dataset: "x" }).then((s) => s.close()),
    InputError,
    'no dataset "x"',
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "a directory of per-image .npy files reads one row per image, by id or by file stem",
  ignore: numpy === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    runPython(
      numpy!,
      `
import sys, os, numpy as np
d = sys.argv[1]
np.save(os.path.join(d, "42.npy"), np.full(4, 1.5, "<f4"))
np.save(os.path.join(d, "COCO_val2014_000000000007.npy"), np.full((1, 4), 2.5, "<f8"))
np.save(os.path.join(d, "9.npy"), np.full(4, 3.5, "<f4"))
np.save(os.path.join(d, "wide.npy"), np.ones(5, "<f4"))
np.save(os.path.join(d, "two.npy"), np.ones((2, 4), "<f4"))`,
      [dir],
    );
    const rowNames = [
      featureFileNames(42, "COCO_val2014_000000000042.jpg"),
      featureFileNames(7, "COCO_val2014_000000000007.jpg"),
      featureFileNames("9"),
    ];
    const f = await openFeatures(dir, { rowNames });
    assertEquals([f.rows, f.dim], [3, 4]);
    const out = new Float32Array(12);
    await f.readRows(0, 3, out);
    assertEquals([...out], [1.5, 1.5, 1.5, 1.5, 2.5, 2.5, 2.5, 2.5, 3.5, 3.5, 3.5, 3.5]);
    f.close();
    await assertRejects(
      () => openFeatures(dir, { rowNames: [["42"], ["1234", "COCO_1234"]] }),
      InputError,
      /no features for row 1: none of 1234\.npy, COCO_1234\.npy exists/,
    );
    const wide = await openFeatures(dir, { rowNames: [["42"], ["wide"]] });
    await assertRejects(
      () => wide.readRows(0, 2, new Float32Array(8)),
      InputError,
      /wide\.npy: shape \(5\): expected one image's features, \(4,\) or \(1, 4\)/,
    );
    await assertRejects(
      () => openFeatures(dir, { rowNames: [["two"]] }),
      InputError,
      /two\.npy: shape \(2, 4\): expected one image's features/,
    );
    // Without names, every .npy is a row, in name order, named by its stem.
    await Deno.remove(join(dir, "wide.npy"));
    await Deno.remove(join(dir, "two.npy"));
    const all = await openFeatures(dir);
    assertEquals(all.rowNames, ["42", "9", "COCO_val2014_000000000007"]);
    all.close();
    await Deno.remove(dir, { recursive: true });
  },
});
