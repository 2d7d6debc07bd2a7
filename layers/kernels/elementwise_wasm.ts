/**
 * WebAssembly SIMD128 elementwise kernels for float32: exp, sigmoid, tanh, the fused LSTM and
 * GRU cells forward and backward and softmax rows, emitted from TypeScript (with the project's assembler)
 * at load time. The RNN activation's backward (no transcendental function) delegates to the
 * plain loop.
 *
 * The transcendental functions are polynomial approximations (Cephes expf/tanhf coefficients)
 * accurate to about 2e-7 relative, i.e. to float32 rounding; they are used for float32 only —
 * float64 stays on `Math` (see {@linkcode tsElementwise}). The kernels work in place on arrays
 * that live in the module's own memory: an {@linkcode ElementwiseArena} hands out Float32Array
 * views of that memory, and the BLAS backend multiplies into them directly (no copies).
 * @module
 */
import { assemble, type Code, F32, Func, I32, op as asm, uleb, V128 } from "./wasm_asm.ts";
import type { ElementwiseKernels, FloatArena } from "./elementwise.ts";
import { tsElementwise, typedArena } from "./elementwise.ts";
import type { FloatArray, FloatDType } from "../tensor.ts";
import { registerWasmMemory } from "./wasm_arrays.ts";

const simd = (opcode: number, ...args: Code[]): Code => [...args.flat(), 0xfd, ...uleb(opcode)];
/**
 * The scalar, memory and control instructions used here (operands in stack order): the
 * assembler's shared set, plus lane extraction.
 */
const op = {
  ...asm,
  f32x4Lane: (x: Code, lane: number): Code => [...simd(0x1f, x), lane],
};
const f32c = (x: number): Code => [0x43, ...new Uint8Array(new Float32Array([x]).buffer)];
const v = {
  /** v128.const with x in all four lanes. */
  splat: (x: number): Code => [
    0xfd,
    ...uleb(0x0c),
    ...new Uint8Array(new Float32Array([x, x, x, x]).buffer),
  ],
  add: (a: Code, b: Code): Code => simd(0xe4, a, b),
  sub: (a: Code, b: Code): Code => simd(0xe5, a, b),
  mul: (a: Code, b: Code): Code => simd(0xe6, a, b),
  div: (a: Code, b: Code): Code => simd(0xe7, a, b),
  min: (a: Code, b: Code): Code => simd(0xe8, a, b),
  max: (a: Code, b: Code): Code => simd(0xe9, a, b),
  pmin: (a: Code, b: Code): Code => simd(0xea, a, b),
  pmax: (a: Code, b: Code): Code => simd(0xeb, a, b),
  abs: (a: Code): Code => simd(0xe0, a),
  lt: (a: Code, b: Code): Code => simd(0x43, a, b),
  and: (a: Code, b: Code): Code => simd(0x4e, a, b),
  andnot: (a: Code, b: Code): Code => simd(0x4f, a, b),
  or: (a: Code, b: Code): Code => simd(0x50, a, b),
  /** bitselect(a, b, mask): bits of a where mask is 1, of b where 0. */
  select: (a: Code, b: Code, mask: Code): Code => simd(0x52, a, b, mask),
  i32Add: (a: Code, b: Code): Code => simd(0xae, a, b),
  i32Shl: (a: Code, bits: Code): Code => simd(0xab, a, bits),
  i32Splat: (
    x: number,
  ): Code => [0xfd, ...uleb(0x0c), ...new Uint8Array(new Int32Array([x, x, x, x]).buffer)],
};
const f32 = {
  sub: (a: Code, b: Code): Code => [...a, ...b, 0x93],
  div: (a: Code, b: Code): Code => [...a, ...b, 0x95],
  max: (a: Code, b: Code): Code => [...a, ...b, 0x97],
  const: f32c,
};

/** A function's scratch v128 locals, allocated once per emitted function. */
class Scratch {
  readonly #f: Func;
  readonly #free: number[] = [];
  readonly #consts = new Map<string, [number, Code]>();
  constructor(f: Func) {
    this.#f = f;
  }
  take(): number {
    return this.#free.pop() ?? this.#f.local(V128);
  }
  give(...xs: number[]): void {
    this.#free.push(...xs);
  }
  /** A constant vector (f32 x in all lanes), set once in the prologue rather than per use. */
  k(x: number): Code {
    return this.#const(`f${x}`, v.splat(x));
  }
  /** A constant vector of i32 lanes. */
  ki(x: number): Code {
    return this.#const(`i${x}`, v.i32Splat(x));
  }
  #const(key: string, value: Code): Code {
    let c = this.#consts.get(key);
    if (!c) {
      c = [this.#f.local(V128), value];
      this.#consts.set(key, c);
    }
    return op.get(c[0]);
  }
  /** The code setting every constant used so far: put it before the body. */
  prologue(): Code {
    return [...this.#consts.values()].flatMap(([local, value]) => op.set(local, value));
  }
}

/** Code computing exp(x) lane-wise; x is a v128 local (read several times). */
function vexp(s: Scratch, x: number, out: number): Code {
  const n = s.take(), r = s.take(), t = s.take();
  const code = [
    // Clamp so 2^n stays a normal float: exp(-87.3) ≈ 1.2e-38, exp(88.7) ≈ 3.3e38.
    // (pmin/pmax: plain minps/maxps on x86.)
    ...op.set(r, v.pmin(v.pmax(op.get(x), s.k(-87.3)), s.k(88.7))),
    // n = round(x log2 e) by the 1.5·2^23 trick: the sum's low mantissa bits hold n.
    ...op.set(t, v.add(v.mul(op.get(r), s.k(Math.LOG2E)), s.k(12582912))),
    ...op.set(n, v.sub(op.get(t), s.k(12582912))),
    // Cody-Waite: r = x - n ln2 in two parts.
    ...op.set(r, v.sub(op.get(r), v.mul(op.get(n), s.k(0.693359375)))),
    ...op.set(r, v.sub(op.get(r), v.mul(op.get(n), s.k(-2.12194440e-4)))),
    // Cephes expf: p(r) = 1 + r + r² (c0 + r (c1 + …)).
    ...op.set(
      out,
      v.add(
        v.add(
          v.mul(
            v.mul(op.get(r), op.get(r)),
            [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 0.5000000120]
              .reduce(
                (acc: Code, c) => v.add(v.mul(acc, op.get(r)), s.k(c)),
                s.k(1.9875691500e-4),
              ),
          ),
          op.get(r),
        ),
        s.k(1),
      ),
    ),
    // × 2^n, built in the exponent bits: ((bits(t) + 127) << 23) keeps just n + 127.
    ...op.set(out, v.mul(op.get(out), v.i32Shl(v.i32Add(op.get(t), s.ki(127)), op.i32(23)))),
  ];
  s.give(n, r, t);
  return code;
}

/** Code computing sigmoid(x) = 1 / (1 + e^-x) lane-wise into `out`. */
function vsigmoid(s: Scratch, x: number, out: number): Code {
  const nx = s.take();
  const code = [
    ...op.set(nx, simd(0xe1, op.get(x))), // f32x4.neg
    ...vexp(s, nx, out),
    ...op.set(out, v.div(s.k(1), v.add(s.k(1), op.get(out)))),
  ];
  s.give(nx);
  return code;
}

/** Code computing tanh(x) lane-wise into `out` (Cephes tanhf: a polynomial below 0.625). */
function vtanh(s: Scratch, x: number, out: number): Code {
  const ax = s.take(), e = s.take(), z = s.take(), small = s.take();
  const code = [
    ...op.set(ax, v.abs(op.get(x))),
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign of x put back.
    ...op.set(e, v.add(op.get(ax), op.get(ax))),
    ...vexp(s, e, e),
    ...op.set(e, v.sub(s.k(1), v.div(s.k(2), v.add(op.get(e), s.k(1))))),
    ...op.set(e, v.or(op.get(e), v.and(op.get(x), s.ki(-0x80000000)))),
    // Small |x|: x + x z P(z), z = x².
    ...op.set(z, v.mul(op.get(x), op.get(x))),
    ...op.set(
      small,
      v.add(
        op.get(x),
        v.mul(
          v.mul(op.get(x), op.get(z)),
          [2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1].reduce(
            (acc: Code, c) => v.add(v.mul(acc, op.get(z)), s.k(c)),
            s.k(-5.70498872745e-3),
          ),
        ),
      ),
    ),
    ...op.set(out, v.select(op.get(small), op.get(e), v.lt(op.get(ax), s.k(0.625)))),
  ];
  s.give(ax, e, z, small);
  return code;
}

/** Loads and stores of either 4 lanes (v128) or 1 element (splat in, lane 0 out). */
interface Access {
  load(addr: Code): Code;
  store(addr: Code, value: Code): Code;
  width: number;
}
const VEC: Access = {
  load: (a) => op.v128Load(a),
  store: (a, x) => op.v128Store(a, x),
  width: 4,
};
const ONE: Access = {
  load: (a) => op.load32Splat(a),
  store: (a, x) => op.f32Store(a, op.f32x4Lane(x, 0)),
  width: 1,
};

/**
 * `for (j = 0; j < len; j += 4) body(VEC)` then `for (; j < len; j++) body(ONE)`:
 * whole vectors, then the tail one element at a time.
 */
function lanes(j: number, len: number, lim: number, body: (acc: Access) => Code): Code {
  return [
    ...op.set(lim, op.sub(op.get(len), op.i32(3))),
    ...op.forLoop(j, op.i32(0), op.get(lim), op.i32(4), body(VEC)),
    ...op.forLoop(j, op.get(j), op.get(len), op.i32(1), body(ONE)),
  ];
}

/** map(p, len): p[i] = f(p[i]) in place over len floats at byte address p. */
function mapFunc(f: (s: Scratch, x: number, out: number) => Code): Func {
  const fn = new Func([I32, I32]);
  const [p, len] = [0, 1];
  const j = fn.local(I32), lim = fn.local(I32), addr = fn.local(I32);
  const s = new Scratch(fn);
  const x = s.take(), y = s.take();
  const body = lanes(j, len, lim, (acc) => [
    ...op.set(addr, op.add(op.get(p), op.mul(op.get(j), op.i32(4)))),
    ...op.set(x, acc.load(op.get(addr))),
    ...f(s, x, y),
    ...acc.store(op.get(addr), op.get(y)),
  ]);
  fn.body = [...s.prologue(), ...body];
  return fn;
}

/**
 * lstmCell(gates, prevC, c, tanhC, h, rows, H, units): for each row and its first `units` units, the gates (i, f, o, g, each H
 * wide, row stride 4H) are activated in place and c = f prevC + i g, tanhC = tanh(c),
 * h = o tanhC (row stride H). prevC = 0 (address -1) means a zero initial cell.
 */
function lstmCellFunc(): Func {
  const fn = new Func([I32, I32, I32, I32, I32, I32, I32, I32]);
  const [g, pc, c, tc, h, rows, hd, units] = [0, 1, 2, 3, 4, 5, 6, 7];
  const row = fn.local(I32), j = fn.local(I32), lim = fn.local(I32);
  const ga = fn.local(I32), oa = fn.local(I32), hb = fn.local(I32);
  const s = new Scratch(fn);
  const xi = s.take(), xf = s.take(), xo = s.take(), xg = s.take(), cn = s.take(), t = s.take();
  const body = (acc: Access): Code => [
    // Byte addresses: gate row stride 4 hb (hb = H floats in bytes), state row stride hb.
    ...op.set(
      ga,
      op.add(
        op.get(g),
        op.add(op.mul(op.get(row), op.mul(op.get(hb), op.i32(4))), op.mul(op.get(j), op.i32(4))),
      ),
    ),
    ...op.set(oa, op.mul(op.add(op.mul(op.get(row), op.get(hd)), op.get(j)), op.i32(4))),
    ...op.set(t, acc.load(op.get(ga))),
    ...vsigmoid(s, t, xi),
    ...acc.store(op.get(ga), op.get(xi)),
    ...op.set(t, acc.load(op.add(op.get(ga), op.get(hb)))),
    ...vsigmoid(s, t, xf),
    ...acc.store(op.add(op.get(ga), op.get(hb)), op.get(xf)),
    ...op.set(t, acc.load(op.add(op.get(ga), op.mul(op.get(hb), op.i32(2))))),
    ...vsigmoid(s, t, xo),
    ...acc.store(op.add(op.get(ga), op.mul(op.get(hb), op.i32(2))), op.get(xo)),
    ...op.set(t, acc.load(op.add(op.get(ga), op.mul(op.get(hb), op.i32(3))))),
    ...vtanh(s, t, xg),
    ...acc.store(op.add(op.get(ga), op.mul(op.get(hb), op.i32(3))), op.get(xg)),
    ...op.set(cn, v.mul(op.get(xi), op.get(xg))),
    ...op.ifElse(
      op.ne(op.get(pc), op.i32(-1)),
      op.set(
        cn,
        v.add(op.get(cn), v.mul(op.get(xf), acc.load(op.add(op.get(pc), op.get(oa))))),
      ),
    ),
    ...acc.store(op.add(op.get(c), op.get(oa)), op.get(cn)),
    ...vtanh(s, cn, t),
    ...acc.store(op.add(op.get(tc), op.get(oa)), op.get(t)),
    ...acc.store(op.add(op.get(h), op.get(oa)), v.mul(op.get(xo), op.get(t))),
  ];
  const loop = op.forLoop(row, op.i32(0), op.get(rows), op.i32(1), lanes(j, units, lim, body));
  fn.body = [...s.prologue(), ...op.set(hb, op.mul(op.get(hd), op.i32(4))), ...loop];
  return fn;
}

/**
 * lstmCellBackward(gates, dh, dc, prevC, tanhC, dA, rows, H, units): for each row (its first
 * `units` units) (gates and dA row
 * stride 4H, the others H), with dc holding dnext_c on entry and dprev_c on exit:
 *   dc += dh o (1 - tanh_c²); da_i = dc g i(1-i), da_f = dc prev_c f(1-f),
 *   da_o = dh tanh_c o(1-o), da_g = dc i (1-g²); dc = dc f. prevC = -1 means c0 = 0.
 */
function lstmCellBackwardFunc(): Func {
  const fn = new Func([I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [g, dh, dc, pc, tc, da, rows, hd, units] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const row = fn.local(I32), j = fn.local(I32), lim = fn.local(I32);
  const go = fn.local(I32), oa = fn.local(I32), hb = fn.local(I32);
  const s = new Scratch(fn);
  const [i, f, o, gg, dcv, dhv, tcv, one, prev] = Array.from({ length: 9 }, () => s.take());
  const at = (base: number, k: number): Code =>
    op.add(op.add(op.get(base), op.get(go)), op.mul(op.get(hb), op.i32(k)));
  const body = (acc: Access): Code => [
    ...op.set(
      go,
      op.add(op.mul(op.get(row), op.mul(op.get(hb), op.i32(4))), op.mul(op.get(j), op.i32(4))),
    ),
    ...op.set(oa, op.mul(op.add(op.mul(op.get(row), op.get(hd)), op.get(j)), op.i32(4))),
    ...op.set(i, acc.load(at(g, 0))),
    ...op.set(f, acc.load(at(g, 1))),
    ...op.set(o, acc.load(at(g, 2))),
    ...op.set(gg, acc.load(at(g, 3))),
    ...op.set(tcv, acc.load(op.add(op.get(tc), op.get(oa)))),
    ...op.set(dhv, acc.load(op.add(op.get(dh), op.get(oa)))),
    ...op.set(one, s.k(1)),
    ...op.set(
      dcv,
      v.add(
        acc.load(op.add(op.get(dc), op.get(oa))),
        v.mul(
          v.mul(op.get(dhv), op.get(o)),
          v.sub(op.get(one), v.mul(op.get(tcv), op.get(tcv))),
        ),
      ),
    ),
    ...op.set(prev, s.k(0)),
    ...op.ifElse(
      op.ne(op.get(pc), op.i32(-1)),
      op.set(prev, acc.load(op.add(op.get(pc), op.get(oa)))),
    ),
    ...acc.store(
      at(da, 0),
      v.mul(v.mul(v.mul(op.get(dcv), op.get(gg)), op.get(i)), v.sub(op.get(one), op.get(i))),
    ),
    ...acc.store(
      at(da, 1),
      v.mul(v.mul(v.mul(op.get(dcv), op.get(prev)), op.get(f)), v.sub(op.get(one), op.get(f))),
    ),
    ...acc.store(
      at(da, 2),
      v.mul(v.mul(v.mul(op.get(dhv), op.get(tcv)), op.get(o)), v.sub(op.get(one), op.get(o))),
    ),
    ...acc.store(
      at(da, 3),
      v.mul(
        v.mul(op.get(dcv), op.get(i)),
        v.sub(op.get(one), v.mul(op.get(gg), op.get(gg))),
      ),
    ),
    ...acc.store(op.add(op.get(dc), op.get(oa)), v.mul(op.get(dcv), op.get(f))),
  ];
  const loop = op.forLoop(row, op.i32(0), op.get(rows), op.i32(1), lanes(j, units, lim, body));
  fn.body = [...s.prologue(), ...op.set(hb, op.mul(op.get(hd), op.i32(4))), ...loop];
  return fn;
}

/**
 * gruCell(gates, ah, prevH, h, rows, H, units): for each row (its first `units` units) (gates and ah row stride 3H, the states
 * H), with the gates r, z, n holding a_x and ah holding a_h on entry:
 *   r = σ(a_x[r] + a_h[r]), z = σ(a_x[z] + a_h[z]), n = tanh(a_x[n] + r a_h[n]) (stored in
 *   the gates), h = (1 - z) n + z prevH.
 */
function gruCellFunc(): Func {
  const fn = new Func([I32, I32, I32, I32, I32, I32, I32]);
  const [g, ah, ph, h, rows, hd, units] = [0, 1, 2, 3, 4, 5, 6];
  const row = fn.local(I32), j = fn.local(I32), lim = fn.local(I32);
  const go = fn.local(I32), oa = fn.local(I32), hb = fn.local(I32);
  const s = new Scratch(fn);
  const r = s.take(), z = s.take(), n = s.take(), t = s.take();
  // Byte address of gate k of this element in `base` (row stride 3 hb).
  const at = (base: number, k: number): Code =>
    op.add(op.add(op.get(base), op.get(go)), op.mul(op.get(hb), op.i32(k)));
  const body = (acc: Access): Code => [
    ...op.set(
      go,
      op.add(op.mul(op.get(row), op.mul(op.get(hb), op.i32(3))), op.mul(op.get(j), op.i32(4))),
    ),
    ...op.set(oa, op.mul(op.add(op.mul(op.get(row), op.get(hd)), op.get(j)), op.i32(4))),
    ...op.set(t, v.add(acc.load(at(g, 0)), acc.load(at(ah, 0)))),
    ...vsigmoid(s, t, r),
    ...acc.store(at(g, 0), op.get(r)),
    ...op.set(t, v.add(acc.load(at(g, 1)), acc.load(at(ah, 1)))),
    ...vsigmoid(s, t, z),
    ...acc.store(at(g, 1), op.get(z)),
    ...op.set(t, v.add(acc.load(at(g, 2)), v.mul(op.get(r), acc.load(at(ah, 2))))),
    ...vtanh(s, t, n),
    ...acc.store(at(g, 2), op.get(n)),
    ...acc.store(
      op.add(op.get(h), op.get(oa)),
      v.add(
        v.mul(v.sub(s.k(1), op.get(z)), op.get(n)),
        v.mul(op.get(z), acc.load(op.add(op.get(ph), op.get(oa)))),
      ),
    ),
  ];
  const loop = op.forLoop(row, op.i32(0), op.get(rows), op.i32(1), lanes(j, units, lim, body));
  fn.body = [...s.prologue(), ...op.set(hb, op.mul(op.get(hd), op.i32(4))), ...loop];
  return fn;
}

/**
 * gruCellBackward(gates, ah, dAx, dAh, dh, prevH, dPrev, rows, H, units): for each row (its
 * first `units` units) (gates, ah,
 * dAx, dAh row stride 3H, the others H):
 *   dn = dh (1-z) (1-n)(1+n), dz = dh (prevH - n) z (1-z), dr = dn a_h[n] r (1-r);
 *   dAx = [dr, dz, dn], dAh = [dr, dz, dn r]; dPrev += dh z.
 */
function gruCellBackwardFunc(): Func {
  const fn = new Func([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [g, ah, dax, dah, dh, ph, dp, rows, hd, units] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const row = fn.local(I32), j = fn.local(I32), lim = fn.local(I32);
  const go = fn.local(I32), oa = fn.local(I32), hb = fn.local(I32);
  const s = new Scratch(fn);
  const [r, z, n, d, dn, dz, dr, one] = Array.from({ length: 8 }, () => s.take());
  const at = (base: number, k: number): Code =>
    op.add(op.add(op.get(base), op.get(go)), op.mul(op.get(hb), op.i32(k)));
  const state = (base: number): Code => op.add(op.get(base), op.get(oa));
  const body = (acc: Access): Code => [
    ...op.set(
      go,
      op.add(op.mul(op.get(row), op.mul(op.get(hb), op.i32(3))), op.mul(op.get(j), op.i32(4))),
    ),
    ...op.set(oa, op.mul(op.add(op.mul(op.get(row), op.get(hd)), op.get(j)), op.i32(4))),
    ...op.set(one, s.k(1)),
    ...op.set(r, acc.load(at(g, 0))),
    ...op.set(z, acc.load(at(g, 1))),
    ...op.set(n, acc.load(at(g, 2))),
    ...op.set(d, acc.load(state(dh))),
    // 1 - n² as (1 - n)(1 + n): exact where n² would round before the cancellation.
    ...op.set(
      dn,
      v.mul(
        v.mul(op.get(d), v.sub(op.get(one), op.get(z))),
        v.mul(v.sub(op.get(one), op.get(n)), v.add(op.get(one), op.get(n))),
      ),
    ),
    ...op.set(
      dz,
      v.mul(
        v.mul(v.mul(op.get(d), v.sub(acc.load(state(ph)), op.get(n))), op.get(z)),
        v.sub(op.get(one), op.get(z)),
      ),
    ),
    ...op.set(
      dr,
      v.mul(
        v.mul(v.mul(op.get(dn), acc.load(at(ah, 2))), op.get(r)),
        v.sub(op.get(one), op.get(r)),
      ),
    ),
    ...acc.store(at(dax, 0), op.get(dr)),
    ...acc.store(at(dax, 1), op.get(dz)),
    ...acc.store(at(dax, 2), op.get(dn)),
    ...acc.store(at(dah, 0), op.get(dr)),
    ...acc.store(at(dah, 1), op.get(dz)),
    ...acc.store(at(dah, 2), v.mul(op.get(dn), op.get(r))),
    ...acc.store(state(dp), v.add(acc.load(state(dp)), v.mul(op.get(d), op.get(z)))),
  ];
  const loop = op.forLoop(row, op.i32(0), op.get(rows), op.i32(1), lanes(j, units, lim, body));
  fn.body = [...s.prologue(), ...op.set(hb, op.mul(op.get(hd), op.i32(4))), ...loop];
  return fn;
}

/**
 * softmaxRows(p, rows, V, stats, scale): each row of V floats becomes
 * scale · softmax(row); stats[2r] = the row's max, stats[2r+1] = Σ exp(x - max).
 * With `inPlace` false it is rowStats(p, rows, V, stats, _): the same stats, in the same order
 * of operations (so the same bits), and the rows are left as they are.
 */
function softmaxFunc(inPlace = true): Func {
  const fn = new Func([I32, I32, I32, I32, F32]);
  const [p, rows, vv, stats, scale] = [0, 1, 2, 3, 4];
  const row = fn.local(I32), j = fn.local(I32), lim = fn.local(I32), base = fn.local(I32);
  const addr = fn.local(I32), mx = fn.local(F32), sum = fn.local(F32);
  const s = new Scratch(fn);
  const vm = s.take(), x = s.take(), e = s.take(), acc4 = s.take();
  const at = op.add(op.get(base), op.mul(op.get(j), op.i32(4)));
  const hsum = (a: Code): Code => {
    const l = (k: number) => op.f32x4Lane(a, k);
    return op.f32Add(op.f32Add(l(0), l(1)), op.f32Add(l(2), l(3)));
  };
  const hmax = (a: Code): Code => {
    const l = (k: number) => op.f32x4Lane(a, k);
    return f32.max(f32.max(l(0), l(1)), f32.max(l(2), l(3)));
  };
  const perRow: Code = [
    ...op.set(base, op.add(op.get(p), op.mul(op.mul(op.get(row), op.get(vv)), op.i32(4)))),
    // Pass 1: the max (the tail's elements are splatted, so they join every lane).
    ...op.set(vm, s.k(-Infinity)),
    ...lanes(j, vv, lim, (a) => op.set(vm, v.pmax(op.get(vm), a.load(at)))),
    ...op.set(mx, hmax(op.get(vm))),
    ...op.set(vm, op.f32x4Splat(op.get(mx))),
    // Pass 2: e = exp(x - max), stored, summed (the tail's exp sits in lane 0).
    ...op.set(acc4, op.v128Zero()),
    ...op.set(sum, f32c(0)),
    ...op.set(lim, op.sub(op.get(vv), op.i32(3))),
    ...op.forLoop(j, op.i32(0), op.get(lim), op.i32(4), [
      ...op.set(x, v.sub(op.v128Load(at), op.get(vm))),
      ...vexp(s, x, e),
      ...(inPlace ? op.v128Store(at, op.get(e)) : []),
      ...op.set(acc4, v.add(op.get(acc4), op.get(e))),
    ]),
    ...op.forLoop(j, op.get(j), op.get(vv), op.i32(1), [
      ...op.set(x, v.sub(op.load32Splat(at), op.get(vm))),
      ...vexp(s, x, e),
      ...(inPlace ? op.f32Store(at, op.f32x4Lane(op.get(e), 0)) : []),
      ...op.set(sum, op.f32Add(op.get(sum), op.f32x4Lane(op.get(e), 0))),
    ]),
    ...op.set(sum, op.f32Add(op.get(sum), hsum(op.get(acc4)))),
    ...op.set(addr, op.add(op.get(stats), op.mul(op.get(row), op.i32(8)))),
    ...op.f32Store(op.get(addr), op.get(mx)),
    ...op.f32Store(op.get(addr), op.get(sum), 4),
    // Pass 3: × scale / sum.
    ...(inPlace
      ? [
        ...op.set(e, op.f32x4Splat(f32.div(op.get(scale), op.get(sum)))),
        ...lanes(j, vv, lim, (a) => a.store(at, v.mul(a.load(at), op.get(e)))),
      ]
      : []),
  ];
  fn.body = [...s.prologue(), ...op.forLoop(row, op.i32(0), op.get(rows), op.i32(1), perRow)];
  return fn;
}

/** The most an arena carves (32-bit addresses; leave room below 4 GiB). */
const MAX_BYTES = 2 ** 31;

/** The most pages a shared workspace memory may grow to ({@linkcode MAX_BYTES}). */
const MAX_PAGES = MAX_BYTES / 65536;

const compiled = new Map<boolean, WebAssembly.Module | null>();

/**
 * The compiled module, over its own memory or over an imported shared one, or null when this
 * runtime has no WebAssembly SIMD.
 */
function wasmModule(shared = false): WebAssembly.Module | null {
  const known = compiled.get(shared);
  if (known !== undefined) return known;
  const bytes = assemble(
    [
      mapFunc(vexp),
      mapFunc(vsigmoid),
      mapFunc(vtanh),
      lstmCellFunc(),
      softmaxFunc(),
      lstmCellBackwardFunc(),
      gruCellFunc(),
      gruCellBackwardFunc(),
      softmaxFunc(false),
    ],
    {
      exp: 0,
      sigmoid: 1,
      tanh: 2,
      lstmCell: 3,
      softmaxRows: 4,
      lstmCellBackward: 5,
      gruCell: 6,
      gruCellBackward: 7,
      rowStats: 8,
    },
    1,
    shared ? MAX_PAGES : undefined,
  );
  const module = typeof WebAssembly === "object" && WebAssembly.validate(bytes)
    ? new WebAssembly.Module(bytes)
    : null;
  compiled.set(shared, module);
  return module;
}

/**
 * A fresh shared memory for a team's workspaces ({@linkcode sharedElementwise}): one page to
 * start, growing to at most 2 GiB. Post it to the workers that will share it.
 * @returns The memory.
 *
 * @example
 * ```ts
 * import { sharedWorkspaceMemory } from "./elementwise_wasm.ts";
 * console.log(sharedWorkspaceMemory().buffer instanceof SharedArrayBuffer); // true
 * ```
 */
export function sharedWorkspaceMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
}

/** Grows a memory to hold `bytes`, or says why it cannot. */
function growTo(memory: WebAssembly.Memory, bytes: number): void {
  const need = Math.ceil(bytes / 65536) - memory.buffer.byteLength / 65536;
  if (need <= 0) return;
  if (bytes > MAX_BYTES) {
    throw new RangeError(
      `Cannot carve ${bytes} bytes: WebAssembly memory holds at most ${MAX_BYTES}`,
    );
  }
  memory.grow(need);
}

interface Exports {
  memory: WebAssembly.Memory;
  exp(p: number, len: number): void;
  sigmoid(p: number, len: number): void;
  tanh(p: number, len: number): void;
  lstmCell(
    g: number,
    pc: number,
    c: number,
    tc: number,
    h: number,
    rows: number,
    hd: number,
    units: number,
  ): void;
  softmaxRows(p: number, rows: number, v: number, stats: number, scale: number): void;
  rowStats(p: number, rows: number, v: number, stats: number, scale: number): void;
  lstmCellBackward(
    g: number,
    dh: number,
    dc: number,
    pc: number,
    tc: number,
    da: number,
    rows: number,
    hd: number,
    units: number,
  ): void;
  gruCell(
    g: number,
    ah: number,
    ph: number,
    h: number,
    rows: number,
    hd: number,
    units: number,
  ): void;
  gruCellBackward(
    g: number,
    ah: number,
    dax: number,
    dah: number,
    dh: number,
    ph: number,
    dp: number,
    rows: number,
    hd: number,
    units: number,
  ): void;
}

/** Elementwise kernels plus the arena whose arrays they work on. */
export interface ElementwiseArena extends ElementwiseKernels, FloatArena<Float32Array> {}

/**
 * A float32 arena in a fresh instance of the SIMD module, with kernels that run on its arrays.
 * Arrays not in the arena (or float64 ones) fall back to the plain `Math` kernels.
 * @param shared A shared memory ({@linkcode sharedWorkspaceMemory}) to carve from instead of
 * the instance's own: every worker's arena over it carves the same lengths at the same places,
 * so a team of workers runs its kernels on one set of work arrays. Growing it is not
 * synchronised: let one worker carve first while the others wait.
 * @returns The arena, or null when WebAssembly SIMD is unavailable.
 *
 * @example
 * ```ts
 * import { wasmElementwiseArena } from "./elementwise_wasm.ts";
 * const arena = wasmElementwiseArena()!;
 * const [x] = arena.carve([4]);
 * x.set([-1, 0, 1, 2]);
 * arena.tanh(x, 0, 4);
 * console.log(x[3].toFixed(4)); // 0.9640
 * ```
 */
export function wasmElementwiseArena(shared?: WebAssembly.Memory): ElementwiseArena | null {
  const module = wasmModule(shared !== undefined);
  if (!module) return null;
  const ex = new WebAssembly.Instance(module, shared ? { env: { memory: shared } } : {})
    .exports as unknown as Exports;
  const memory = shared ?? ex.memory;
  // Byte address of a[off] when a is a float32 view of this memory, else -1.
  const addr = (a: FloatArray, off: number): number =>
    a.buffer === memory.buffer && a instanceof Float32Array ? a.byteOffset + 4 * off : -1;
  const ts = tsElementwise;
  const sigmoid = (a: FloatArray, off: number, len: number): void => {
    const p = addr(a, off);
    if (p < 0) ts.sigmoid(a, off, len);
    else ex.sigmoid(p, len);
  };
  const tanh = (a: FloatArray, off: number, len: number): void => {
    const p = addr(a, off);
    if (p < 0) ts.tanh(a, off, len);
    else ex.tanh(p, len);
  };
  return {
    name: "wasm",
    carve(lengths: number[]): Float32Array[] {
      // 16-byte aligned slices of one region; grow the memory when it is too small.
      const sizes = lengths.map((n) => Math.ceil(n / 4) * 4);
      growTo(memory, sizes.reduce((a, b) => a + b, 0) * 4);
      registerWasmMemory(memory);
      const out: Float32Array[] = [];
      let at = 0;
      for (let i = 0; i < lengths.length; i++) {
        out.push(new Float32Array(memory.buffer, at * 4, lengths[i]));
        at += sizes[i];
      }
      return out;
    },
    exp(a, off, len) {
      const p = addr(a, off);
      if (p < 0) ts.exp(a, off, len);
      else ex.exp(p, len);
    },
    sigmoid,
    tanh,
    activate(a, off, len, activation) {
      if (activation === "tanh") tanh(a, off, len);
      else sigmoid(a, off, len);
    },
    // No transcendental function in it: the plain loop is as fast.
    activationBackward: ts.activationBackward,
    lstmCell(g, gOff, prevC, pOff, c, tc, h, outOff, rows, hd, units = hd) {
      const ga = addr(g, gOff), ca = addr(c, outOff), ta = addr(tc, outOff), ha = addr(h, outOff);
      const pa = prevC ? addr(prevC, pOff) : -1;
      if (ga < 0 || ca < 0 || ta < 0 || ha < 0 || (prevC && pa < 0)) {
        ts.lstmCell(g, gOff, prevC, pOff, c, tc, h, outOff, rows, hd, units);
      } else ex.lstmCell(ga, pa, ca, ta, ha, rows, hd, units);
    },
    lstmCellBackward(g, gOff, dh, dc, dcOff, prevC, pOff, tc, hOff, da, rows, hd, units = hd) {
      const ga = addr(g, gOff), dha = addr(dh, hOff), dca = addr(dc, dcOff);
      const ta = addr(tc, hOff), daa = addr(da, gOff), pa = prevC ? addr(prevC, pOff) : -1;
      if (ga < 0 || dha < 0 || dca < 0 || ta < 0 || daa < 0 || (prevC && pa < 0)) {
        ts.lstmCellBackward(g, gOff, dh, dc, dcOff, prevC, pOff, tc, hOff, da, rows, hd, units);
      } else ex.lstmCellBackward(ga, dha, dca, pa, ta, daa, rows, hd, units);
    },
    gruCell(g, ah, gOff, prevH, pOff, h, hOff, rows, hd, units = hd) {
      const ga = addr(g, gOff), aa = addr(ah, gOff), pa = addr(prevH, pOff), ha = addr(h, hOff);
      if (ga < 0 || aa < 0 || pa < 0 || ha < 0) {
        ts.gruCell(g, ah, gOff, prevH, pOff, h, hOff, rows, hd, units);
      } else ex.gruCell(ga, aa, pa, ha, rows, hd, units);
    },
    gruCellBackward(...args: Parameters<ElementwiseKernels["gruCellBackward"]>) {
      const [g, ah, dAx, dAh, gOff, dh, hOff, prevH, pOff, dPrev, dpOff, rows, hd] = args;
      const ga = addr(g, gOff), aa = addr(ah, gOff), xa = addr(dAx, gOff), ya = addr(dAh, gOff);
      const da = addr(dh, hOff), pa = addr(prevH, pOff), qa = addr(dPrev, dpOff);
      if (ga < 0 || aa < 0 || xa < 0 || ya < 0 || da < 0 || pa < 0 || qa < 0) {
        ts.gruCellBackward(...args);
      } else ex.gruCellBackward(ga, aa, xa, ya, da, pa, qa, rows, hd, args[13] ?? hd);
    },
    softmaxRows(a, off, rows, vv, stats, sOff, scale) {
      const p = addr(a, off), sp = addr(stats, sOff);
      if (p < 0 || sp < 0) ts.softmaxRows(a, off, rows, vv, stats, sOff, scale);
      else ex.softmaxRows(p, rows, vv, sp, scale);
    },
    rowStats(a, off, rows, vv, stats, sOff) {
      const p = addr(a, off), sp = addr(stats, sOff);
      if (p < 0 || sp < 0) ts.rowStats(a, off, rows, vv, stats, sOff);
      else ex.rowStats(p, rows, vv, sp, 0);
    },
  };
}

/** Elementwise kernels and the arena of work arrays they run fastest on. */
export interface ElementwiseChoice {
  /** The kernels. */
  kernels: ElementwiseKernels;
  /** Where to carve work arrays. */
  arena: FloatArena;
}

/**
 * Picks the elementwise kernels for a dtype: WebAssembly SIMD for float32 when available
 * (with its arena), else plain `Math` (always for float64, which gradient checks need exact).
 * @param dtype The element type of the work arrays.
 * @param choice "auto" (default) or "ts" to force the plain kernels.
 * @param shared A shared memory to carve the work arrays from (a team's workspace; see
 * {@linkcode wasmElementwiseArena}), for either kind of kernel.
 * @returns The kernels and a fresh arena.
 *
 * @example
 * ```ts
 * import { selectElementwise } from "./elementwise_wasm.ts";
 * console.log(selectElementwise("float64").kernels.name); // "ts"
 * ```
 */
export function selectElementwise(
  dtype: FloatDType,
  choice: "auto" | "ts" = "auto",
  shared?: WebAssembly.Memory,
): ElementwiseChoice {
  const wasm = dtype === "float32" && choice === "auto" ? wasmElementwiseArena(shared) : null;
  if (wasm) return { kernels: wasm, arena: wasm };
  return {
    kernels: tsElementwise,
    arena: shared ? sharedTypedArena(shared, dtype) : typedArena(dtype),
  };
}

/** Typed-array views of a shared memory, carved as {@linkcode wasmElementwiseArena} carves. */
function sharedTypedArena(memory: WebAssembly.Memory, dtype: FloatDType): FloatArena {
  const bytesPer = dtype === "float32" ? 4 : 8;
  return {
    carve(lengths: number[]): FloatArray[] {
      // Rounded to 16 bytes, as the SIMD arena's slices are.
      const sizes = lengths.map((n) => Math.ceil((n * bytesPer) / 16) * 16);
      growTo(memory, sizes.reduce((a, b) => a + b, 0));
      const out: FloatArray[] = [];
      let at = 0;
      for (let i = 0; i < lengths.length; i++) {
        const buffer = memory.buffer;
        out.push(
          dtype === "float32"
            ? new Float32Array(buffer, at, lengths[i])
            : new Float64Array(buffer, at, lengths[i]),
        );
        at += sizes[i];
      }
      return out;
    },
  };
}
