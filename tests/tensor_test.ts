import { Rng } from "../layers/random.ts";
import { shapeSize, Tensor } from "../layers/tensor.ts";
import { assert, assertEquals, assertNotEquals, assertThrows } from "./assert.ts";

Deno.test("Tensor.linspace() follows numpy: endpoints included, row-major reshape", () => {
  const t = Tensor.linspace(-0.4, 0.7, [3, 10]);
  assertEquals(t.shape, [3, 10]);
  assertEquals(t.data[0], -0.4);
  assertEquals(t.data[29], 0.7);
  assert(Math.abs(t.data[10] - (-0.4 + 10 * 1.1 / 29)) < 1e-15);
  assertEquals(Array.from(Tensor.linspace(0, 1, [3]).data), [0, 0.5, 1]);
  assertEquals(Array.from(Tensor.linspace(2, 5, [1]).data), [2]);
  assertEquals(Tensor.linspace(0, 1, [2, 2], "float32").dtype, "float32");
});

Deno.test("Tensor constructors check sizes and keep dtypes", () => {
  assertThrows(() => new Tensor(new Float64Array(5), [2, 3]), RangeError, "shape [2,3] holds 6");
  assertEquals(Tensor.zeros([2, 3], "int32").data, new Int32Array(6));
  const v = Tensor.fromValues([1.7, -2.2], [2], "int32");
  assertEquals(Array.from(v.data), [1, -2]);
  assertEquals(Tensor.zeros([4]).reshape([2, 2]).shape, [2, 2]);
  assertThrows(() => Tensor.zeros([4]).reshape([3]), RangeError);
  assertEquals(shapeSize([]), 1);
  assertThrows(() => shapeSize([2, -1]), RangeError);
  const c = Tensor.fromValues([1, 2]).clone();
  c.data[0] = 9;
  assertEquals(c.astype("float32").data[0], 9);
});

Deno.test("Rng is reproducible for a seed and resumes exactly from a saved state", () => {
  const a = new Rng(231), b = new Rng(231), c = new Rng(232);
  const xs = Array.from({ length: 5 }, () => a.randn());
  assertEquals(Array.from({ length: 5 }, () => b.randn()), xs);
  assertNotEquals(Array.from({ length: 5 }, () => c.randn()), xs);
  const state = a.getState();
  const next = [a.random(), a.randint(10), a.randn()];
  const d = new Rng(0);
  d.setState(state);
  assertEquals([d.random(), d.randint(10), d.randn()], next);
  assertThrows(() => d.setState([0, 0, 0, 0]), RangeError);
});

Deno.test("Rng.randn() has mean ~0 and variance ~1; random() stays in [0, 1)", () => {
  const r = new Rng(5);
  const n = 20000;
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.randn();
    s += x;
    s2 += x * x;
  }
  assert(Math.abs(s / n) < 0.03, `mean ${s / n}`);
  assert(Math.abs(s2 / n - 1) < 0.05, `variance ${s2 / n}`);
  for (let i = 0; i < 1000; i++) {
    const u = r.random();
    assert(u >= 0 && u < 1);
  }
  const t = Tensor.randn([3, 3], 1);
  assertEquals(t.data, Tensor.randn([3, 3], 1).data);
});
