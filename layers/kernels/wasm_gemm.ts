/**
 * The wasm gemm, generated: GotoBLAS-style blocking (KC x NC panels of B, MC x KC blocks of A,
 * both packed into contiguous micro-panels) around an MR x NR register-tile micro-kernel of
 * SIMD128 multiply-adds (`relaxed_madd` where the engine has relaxed SIMD, else mul + add).
 * One module holds a float32 and a float64 gemm over one memory.
 *
 * Exported functions (pointers are byte addresses in the module's memory; matrices row-major,
 * leading dimensions in elements): `sgemm`/`dgemm(transA, transB, m, n, k, alpha, a, lda, b,
 * ldb, c, ldc, packA, packB, tile, mc, kc, nc, overwrite, direct)` compute
 * C += alpha * op(A) @ op(B), or C = alpha * op(A) @ op(B) without reading C when `overwrite` is
 * non-zero; `packA` must hold mc * kc elements, `packB` kc * nc, `tile` MR * NR (mc a multiple
 * of MR, nc of NR). With `direct` non-zero (only for transB = 0) B is not packed: the kernel
 * reads its rows in place, which pays off when A has few rows; an edge tile may then read up to
 * NR - 1 elements past B's last row, so that memory must exist (its lanes are discarded).
 * @module
 */
import { assemble, type Code, F32, F64, Func, I32, op, V128 } from "./wasm_asm.ts";

const {
  add,
  and,
  call,
  eq,
  eqz,
  f32Add,
  f32Load,
  f32Mul,
  f32Store,
  f32x4Add,
  f32x4Mul,
  f32x4RelaxedMadd,
  f32x4Splat,
  f64Add,
  f64Load,
  f64Mul,
  f64Store,
  f64x2Add,
  f64x2Mul,
  f64x2RelaxedMadd,
  f64x2Splat,
  forLoop,
  geS,
  get,
  i32,
  ifElse,
  load32Splat,
  load64Splat,
  minS,
  mul,
  ne,
  select,
  set,
  shuffle,
  sub,
  v128Load,
  v128Store,
  v128Zero,
  zeroFill,
} = op;

/** Shape of the register tile and unrolling of one element type's micro-kernel. */
export interface TileConfig {
  /** Rows of the register tile (rows of C per micro-kernel call). */
  mr: number;
  /** Columns of the register tile, a multiple of the vector lanes. */
  nr: number;
  /** How many k steps one trip of the micro-kernel's loop does. */
  unroll: number;
}

/**
 * The register tiles the generated module uses by default, per element type: 6 x 8 f32 (12
 * f32x4 accumulators) and 6 x 4 f64 (12 f64x2 accumulators), k unrolled 8 times; chosen by
 * measurement among 3..8 x 8..16 tiles (V8 has 16 xmm registers on x64).
 * @example
 * ```ts
 * import { gemmModuleBytes, TILES } from "./wasm_gemm.ts";
 * const bytes = gemmModuleBytes(false, { ...TILES, f32: { mr: 4, nr: 8, unroll: 4 } });
 * ```
 */
export const TILES: { f32: TileConfig; f64: TileConfig } = {
  f32: { mr: 6, nr: 8, unroll: 8 },
  f64: { mr: 6, nr: 4, unroll: 8 },
};

interface Typed {
  es: number; // element size in bytes
  lanes: number;
  scalar: typeof F32 | typeof F64;
  load: (addr: Code, off?: number) => Code;
  store: (addr: Code, value: Code, off?: number) => Code;
  sadd: (a: Code, b: Code) => Code;
  smul: (a: Code, b: Code) => Code;
  splatLoad: (addr: Code, off?: number) => Code;
  splat: (x: Code) => Code;
  vadd: (a: Code, b: Code) => Code;
  madd: (a: Code, b: Code, c: Code) => Code; // a * b + c
}

function typed(kind: "f32" | "f64", relaxed: boolean): Typed {
  if (kind === "f32") {
    return {
      es: 4,
      lanes: 4,
      scalar: F32,
      load: f32Load,
      store: f32Store,
      sadd: f32Add,
      smul: f32Mul,
      splatLoad: load32Splat,
      splat: f32x4Splat,
      vadd: f32x4Add,
      madd: relaxed ? f32x4RelaxedMadd : (a, b, c) => f32x4Add(c, f32x4Mul(a, b)),
    };
  }
  return {
    es: 8,
    lanes: 2,
    scalar: F64,
    load: f64Load,
    store: f64Store,
    sadd: f64Add,
    smul: f64Mul,
    splatLoad: load64Splat,
    splat: f64x2Splat,
    vadd: f64x2Add,
    madd: relaxed ? f64x2RelaxedMadd : (a, b, c) => f64x2Add(c, f64x2Mul(a, b)),
  };
}

/**
 * packA(transA, a, lda, ic, pc, mc, kc, alpha, dst): alpha * op(A)[ic.., pc..] (mc x kc) into
 * MR-row micro-panels, each kc columns of MR consecutive elements; short panels zero-padded.
 */
function packA(t: Typed, tile: TileConfig): Func {
  const f = new Func([I32, I32, I32, I32, I32, I32, I32, t.scalar, I32]);
  const [tA, A, lda, ic, pc, mc, kc, alpha, dst] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [rs, cs, ir, valid, r, p, src, d] = Array.from({ length: 8 }, () => f.local(I32));
  const alphaV = f.local(V128);
  const { es, mr } = { es: t.es, mr: tile.mr };
  const panelBytes = mul(get(kc), i32(mr * es));
  // Fast path: op(A) = Aᵀ, full panel: the MR elements of each k step are contiguous in A.
  const vectors = mr / t.lanes;
  const transposedFull = forLoop(p, i32(0), get(kc), i32(1), [
    ...set(
      src,
      add(get(A), mul(add(mul(add(get(pc), get(p)), get(lda)), add(get(ic), get(ir))), i32(es))),
    ),
    ...Array.from(
      { length: vectors },
      (_, v) => v128Store(get(dst), vmul(t, v128Load(get(src), v * 16), get(alphaV)), v * 16),
    ).flat(),
    ...set(dst, add(get(dst), i32(mr * es))),
  ]);
  const generic = [
    ...ifElse(ne(get(valid), i32(mr)), zeroFill(get(dst), panelBytes)),
    ...forLoop(r, i32(0), get(valid), i32(1), [
      ...set(
        src,
        add(
          get(A),
          mul(
            add(mul(add(get(ic), add(get(ir), get(r))), get(rs)), mul(get(pc), get(cs))),
            i32(es),
          ),
        ),
      ),
      ...set(d, add(get(dst), mul(get(r), i32(es)))),
      ...forLoop(p, i32(0), get(kc), i32(1), [
        ...t.store(get(d), t.smul(get(alpha), t.load(get(src)))),
        ...set(src, add(get(src), mul(get(cs), i32(es)))),
        ...set(d, add(get(d), i32(mr * es))),
      ]),
    ]),
    ...set(dst, add(get(dst), panelBytes)),
  ];
  f.body = [
    ...set(rs, select(get(tA), i32(1), get(lda))),
    ...set(cs, select(get(tA), get(lda), i32(1))),
    ...set(alphaV, t.splat(get(alpha))),
    ...forLoop(ir, i32(0), get(mc), i32(mr), [
      ...set(valid, minS(i32(mr), sub(get(mc), get(ir)))),
      ...(mr % t.lanes === 0
        ? ifElse(and(get(tA), eq(get(valid), i32(mr))), transposedFull, generic)
        : generic),
    ]),
  ];
  return f;
}

/**
 * packB(transB, b, ldb, pc, jc, kc, nc, dst): op(B)[pc.., jc..] (kc x nc) into NR-column
 * micro-panels, each kc rows of NR consecutive elements; short panels zero-padded.
 */
function packB(t: Typed, tile: TileConfig): Func {
  const f = new Func([I32, I32, I32, I32, I32, I32, I32, I32]);
  const [tB, B, ldb, pc, jc, kc, nc, dst] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [rs, cs, jr, valid, j, p, src, d] = Array.from({ length: 8 }, () => f.local(I32));
  const { es, nr } = { es: t.es, nr: tile.nr };
  const panelBytes = mul(get(kc), i32(nr * es));
  // Fast path: op(B) = B, full panel: each k step is NR contiguous elements of a row of B.
  const plainFull = [
    ...set(src, add(get(B), mul(add(mul(get(pc), get(ldb)), add(get(jc), get(jr))), i32(es)))),
    ...forLoop(p, i32(0), get(kc), i32(1), [
      ...Array.from(
        { length: (nr * es) / 16 },
        (_, v) => v128Store(get(dst), v128Load(get(src), v * 16), v * 16),
      ).flat(),
      ...set(src, add(get(src), mul(get(ldb), i32(es)))),
      ...set(dst, add(get(dst), i32(nr * es))),
    ]),
  ];
  // Fast path: op(B) = Bᵀ, full panel: NR rows of B, each contiguous in k. Blocks of L x L
  // (L = lanes) are loaded as L vectors along k, transposed in registers, stored along j.
  const L = t.lanes;
  const rowsIn = Array.from({ length: L }, () => f.local(V128));
  const rowsOut = Array.from({ length: L }, () => f.local(V128));
  const [ldbb, pEnd] = [f.local(I32), f.local(I32)];
  const rowAddr = (jj: number): Code => add(get(src), mul(i32(jj), get(ldbb)));
  const transposedFull = [
    ...set(ldbb, mul(get(ldb), i32(es))),
    ...set(src, add(get(B), mul(add(mul(add(get(jc), get(jr)), get(ldb)), get(pc)), i32(es)))),
    ...set(pEnd, sub(get(kc), i32(L - 1))),
    ...forLoop(p, i32(0), get(pEnd), i32(L), [
      ...Array.from({ length: nr / L }, (_, g) => [
        ...rowsIn.flatMap((x, q) => set(x, v128Load(rowAddr(g * L + q)))),
        ...transpose(t, rowsIn, rowsOut, f),
        ...rowsOut.flatMap((x, q) => v128Store(get(dst), get(x), (q * nr + g * L) * es)),
      ]).flat(),
      ...set(src, add(get(src), i32(L * es))),
      ...set(dst, add(get(dst), i32(L * nr * es))),
    ]),
    ...forLoop(p, get(p), get(kc), i32(1), [
      ...Array.from({ length: nr }, (_, jj) => t.store(get(dst), t.load(rowAddr(jj)), jj * es))
        .flat(),
      ...set(src, add(get(src), i32(es))),
      ...set(dst, add(get(dst), i32(nr * es))),
    ]),
  ];
  const generic = [
    ...ifElse(ne(get(valid), i32(nr)), zeroFill(get(dst), panelBytes)),
    ...forLoop(j, i32(0), get(valid), i32(1), [
      ...set(
        src,
        add(
          get(B),
          mul(
            add(mul(get(pc), get(rs)), mul(add(get(jc), add(get(jr), get(j))), get(cs))),
            i32(es),
          ),
        ),
      ),
      ...set(d, add(get(dst), mul(get(j), i32(es)))),
      ...forLoop(p, i32(0), get(kc), i32(1), [
        ...t.store(get(d), t.load(get(src))),
        ...set(src, add(get(src), mul(get(rs), i32(es)))),
        ...set(d, add(get(d), i32(nr * es))),
      ]),
    ]),
    ...set(dst, add(get(dst), panelBytes)),
  ];
  f.body = [
    ...set(rs, select(get(tB), i32(1), get(ldb))),
    ...set(cs, select(get(tB), get(ldb), i32(1))),
    ...forLoop(jr, i32(0), get(nc), i32(nr), [
      ...set(valid, minS(i32(nr), sub(get(nc), get(jr)))),
      ...ifElse(
        eq(get(valid), i32(nr)),
        ifElse(get(tB), transposedFull, plainFull),
        generic,
      ),
    ]),
  ];
  return f;
}

/**
 * The micro-kernel: acc (MR x NR) = sum over kc of packed A column times packed B row, then
 * either C += acc (full tile) or, for an edge tile, acc stored to `tile` and its valid mr x nr
 * corner added to C.
 * Params: (kc, pa, pb, c, ldcBytes, store, pbStride) for a full kernel; (kc, pa, pb, c,
 * ldcBytes, tile, mr, nr, store, pbStride) for the edge one. `store` non-zero writes C without
 * reading it; `pbStride` is the byte distance between k rows of the B panel (NR * element size
 * when packed, ldb * element size when B is read in place).
 * A full kernel for `rows` < MR serves the last rows of a block (full columns) without wasted
 * work on padding rows.
 */
function micro(t: Typed, tile: TileConfig, edge: boolean, rows = tile.mr): Func {
  const f = new Func(
    edge ? [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32] : [I32, I32, I32, I32, I32, I32, I32],
  );
  const [kc, pa, pb, c, ldcb, tileP, mrP, nrP] = [0, 1, 2, 3, 4, 5, 6, 7];
  const store = edge ? 8 : 5; // non-zero: C = acc (C's old contents never read), else C += acc
  const pbStride = edge ? 9 : 6; // bytes from one k row of the B panel to the next
  // `mr` rows are computed; the packed A panel is always tile.mr wide.
  const { nr, unroll } = tile, mr = rows, panel = tile.mr;
  const es = t.es, nv = nr / t.lanes;
  const acc = Array.from({ length: mr * nv }, () => f.local(V128));
  const bv = Array.from({ length: nv }, () => f.local(V128));
  const av = f.local(V128);
  const [p, kEnd, cr, i, j, cij] = Array.from({ length: 6 }, () => f.local(I32));
  const step = (u: number): Code => [
    ...bv.flatMap((b, v) => set(b, v128Load(get(pb), v * t.lanes * es))),
    ...set(pb, add(get(pb), get(pbStride))),
    ...Array.from({ length: mr }, (_, r) => [
      ...set(av, t.splatLoad(get(pa), (u * panel + r) * es)),
      ...bv.flatMap((b, v) => set(acc[r * nv + v], t.madd(get(av), get(b), get(acc[r * nv + v])))),
    ]).flat(),
  ];
  const advance = (steps: number): Code => set(pa, add(get(pa), i32(steps * panel * es)));
  const body: Code = [
    ...acc.flatMap((x) => set(x, v128Zero())),
    // Unrolled main loop, then the remaining k steps one at a time.
    ...set(kEnd, sub(get(kc), i32(unroll - 1))),
    ...forLoop(p, i32(0), get(kEnd), i32(unroll), [
      ...Array.from({ length: unroll }, (_, u) => step(u)).flat(),
      ...advance(unroll),
    ]),
    ...forLoop(p, get(p), get(kc), i32(1), [...step(0), ...advance(1)]),
  ];
  if (!edge) {
    const update = (overwrite: boolean): Code => {
      const out: Code = [...set(cr, get(c))];
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nv; v++) {
          const x = get(acc[r * nv + v]);
          out.push(
            ...v128Store(get(cr), overwrite ? x : t.vadd(v128Load(get(cr), v * 16), x), v * 16),
          );
        }
        out.push(...set(cr, add(get(cr), get(ldcb))));
      }
      return out;
    };
    body.push(...ifElse(get(store), update(true), update(false)));
  } else {
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        body.push(...v128Store(get(tileP), get(acc[r * nv + v]), (r * nr + v * t.lanes) * es));
      }
    }
    const tileAt = t.load(add(get(tileP), mul(add(mul(get(i), i32(nr)), get(j)), i32(es))));
    const update = (overwrite: boolean): Code =>
      forLoop(i, i32(0), get(mrP), i32(1), [
        ...forLoop(j, i32(0), get(nrP), i32(1), [
          ...set(cij, add(add(get(c), mul(get(i), get(ldcb))), mul(get(j), i32(es)))),
          ...t.store(get(cij), overwrite ? tileAt : t.sadd(t.load(get(cij)), tileAt)),
        ]),
      ]);
    body.push(...ifElse(get(store), update(true), update(false)));
  }
  f.body = body;
  return f;
}

/**
 * The driver: (transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc, packA, packB, tile,
 * mcBlock, kcBlock, ncBlock, overwrite, direct); C += alpha * op(A) @ op(B), or C = … when
 * overwrite; B read in place when direct.
 */
function driver(t: Typed, tile: TileConfig, base: number): Func {
  const f = new Func([
    I32,
    I32,
    I32,
    I32,
    I32,
    t.scalar,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
  ]);
  const [tA, tB, m, n, k, alpha, A, lda, B, ldb, C, ldc, pA, pB, tileP, MC, KC, NC, overwrite] =
    Array.from({ length: 19 }, (_, x) => x);
  const direct = 19; // non-zero (only with transB = 0): read B in place instead of packing it
  const [jc, nc, pc, kc, ic, mc, jr, ir, cp, ldcb] = Array.from({ length: 10 }, () => f.local(I32));
  const es = t.es;
  // Function layout from `base`: packA, packB, micro for 1..MR rows, the edge kernel.
  const [fPackA, fPackB, fEdge] = [base, base + 1, base + 2 + tile.mr];
  const fRows = (r: number) => base + 1 + r;
  const mrv = f.local(I32), store = f.local(I32), pbPanel = f.local(I32), pbStride = f.local(I32);
  f.body = [
    ...set(ldcb, mul(get(ldc), i32(es))),
    ...set(pbStride, select(get(direct), mul(get(ldb), i32(es)), i32(tile.nr * es))),
    ...forLoop(jc, i32(0), get(n), get(NC), [
      ...set(nc, minS(get(NC), sub(get(n), get(jc)))),
      ...forLoop(pc, i32(0), get(k), get(KC), [
        ...set(kc, minS(get(KC), sub(get(k), get(pc)))),
        // The first k block overwrites C when the caller asked (beta = 0); later ones add.
        ...set(store, and(get(overwrite), eqz(get(pc)))),
        ...ifElse(
          eqz(get(direct)),
          call(fPackB, get(tB), get(B), get(ldb), get(pc), get(jc), get(kc), get(nc), get(pB)),
        ),
        ...forLoop(ic, i32(0), get(m), get(MC), [
          ...set(mc, minS(get(MC), sub(get(m), get(ic)))),
          ...call(
            fPackA,
            get(tA),
            get(A),
            get(lda),
            get(ic),
            get(pc),
            get(mc),
            get(kc),
            get(alpha),
            get(pA),
          ),
          ...forLoop(jr, i32(0), get(nc), i32(tile.nr), [
            ...set(
              pbPanel,
              select(
                get(direct),
                add(get(B), mul(add(mul(get(pc), get(ldb)), add(get(jc), get(jr))), i32(es))),
                add(get(pB), mul(mul(get(jr), get(kc)), i32(es))),
              ),
            ),
            ...forLoop(ir, i32(0), get(mc), i32(tile.mr), [
              ...set(
                cp,
                add(
                  get(C),
                  mul(add(mul(add(get(ic), get(ir)), get(ldc)), add(get(jc), get(jr))), i32(es)),
                ),
              ),
              ...set(mrv, minS(i32(tile.mr), sub(get(mc), get(ir)))),
              ...ifElse(
                geS(sub(get(nc), get(jr)), i32(tile.nr)),
                // Full columns: the kernel for exactly the valid rows (MR first, the common case).
                [tile.mr, ...Array.from({ length: tile.mr - 1 }, (_, r) => r + 1)].reduceRight(
                  (otherwise: Code, r: number) =>
                    ifElse(
                      eq(get(mrv), i32(r)),
                      call(
                        fRows(r),
                        get(kc),
                        add(get(pA), mul(mul(get(ir), get(kc)), i32(es))),
                        get(pbPanel),
                        get(cp),
                        get(ldcb),
                        get(store),
                        get(pbStride),
                      ),
                      otherwise,
                    ),
                  [] as Code,
                ),
                call(
                  fEdge,
                  get(kc),
                  add(get(pA), mul(mul(get(ir), get(kc)), i32(es))),
                  get(pbPanel),
                  get(cp),
                  get(ldcb),
                  get(tileP),
                  get(mrv),
                  minS(i32(tile.nr), sub(get(nc), get(jr))),
                  get(store),
                  get(pbStride),
                ),
              ),
            ]),
          ]),
        ]),
      ]),
    ]),
  ];
  return f;
}

/**
 * Transposes an L x L block held in L vectors (L = lanes): out[q] lane r = in[r] lane q.
 * Uses `tmp` locals from `f` for the two-stage 4 x 4 case.
 */
function transpose(t: Typed, vin: number[], vout: number[], f: Func): Code {
  if (t.lanes === 2) {
    return [
      ...set(vout[0], shuffle(get(vin[0]), get(vin[1]), [0, 2], 8)),
      ...set(vout[1], shuffle(get(vin[0]), get(vin[1]), [1, 3], 8)),
    ];
  }
  const tmp = transposeTemps.get(f) ?? Array.from({ length: 4 }, () => f.local(V128));
  transposeTemps.set(f, tmp);
  return [
    ...set(tmp[0], shuffle(get(vin[0]), get(vin[1]), [0, 4, 1, 5], 4)), // a0 b0 a1 b1
    ...set(tmp[1], shuffle(get(vin[0]), get(vin[1]), [2, 6, 3, 7], 4)), // a2 b2 a3 b3
    ...set(tmp[2], shuffle(get(vin[2]), get(vin[3]), [0, 4, 1, 5], 4)), // c0 d0 c1 d1
    ...set(tmp[3], shuffle(get(vin[2]), get(vin[3]), [2, 6, 3, 7], 4)), // c2 d2 c3 d3
    ...set(vout[0], shuffle(get(tmp[0]), get(tmp[2]), [0, 1, 4, 5], 4)), // a0 b0 c0 d0
    ...set(vout[1], shuffle(get(tmp[0]), get(tmp[2]), [2, 3, 6, 7], 4)), // a1 b1 c1 d1
    ...set(vout[2], shuffle(get(tmp[1]), get(tmp[3]), [0, 1, 4, 5], 4)), // a2 b2 c2 d2
    ...set(vout[3], shuffle(get(tmp[1]), get(tmp[3]), [2, 3, 6, 7], 4)), // a3 b3 c3 d3
  ];
}
const transposeTemps = new WeakMap<Func, number[]>();

// Small helpers on top of the assembler.
const vmul = (t: Typed, a: Code, b: Code): Code => t.es === 4 ? f32x4Mul(a, b) : f64x2Mul(a, b);

/**
 * Generates the gemm module's bytes.
 * @param relaxed Use relaxed SIMD's fused multiply-add (check support first).
 * @param tiles Register tiles per element type (defaults to {@linkcode TILES}).
 * @returns The module bytes: exports `memory`, `sgemm`, `dgemm`.
 *
 * @example
 * ```ts
 * import { gemmModuleBytes } from "./wasm_gemm.ts";
 * console.log(WebAssembly.validate(gemmModuleBytes(false)));
 * ```
 */
export function gemmModuleBytes(
  relaxed: boolean,
  tiles: { f32: TileConfig; f64: TileConfig } = TILES,
): Uint8Array<ArrayBuffer> {
  const funcs: Func[] = [];
  const exports: Record<string, number> = {};
  for (const kind of ["f32", "f64"] as const) {
    const t = typed(kind, relaxed), tile = tiles[kind];
    if (tile.nr % t.lanes !== 0) {
      throw new RangeError(`Cannot build gemm: nr must be a multiple of ${t.lanes}`);
    }
    const base = funcs.length;
    funcs.push(packA(t, tile), packB(t, tile));
    for (let rows = 1; rows <= tile.mr; rows++) funcs.push(micro(t, tile, false, rows));
    funcs.push(micro(t, tile, true));
    exports[kind === "f32" ? "sgemm" : "dgemm"] = funcs.length;
    funcs.push(driver(t, tile, base));
  }
  return assemble(funcs, exports, 1);
}
