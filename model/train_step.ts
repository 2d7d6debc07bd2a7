/**
 * The fused training step of the captioning model: loss and all gradients in preallocated
 * workspaces, the same math as composing the layers (`CaptioningRNN.lossReference`).
 *
 * Dimension legend: N batch, T time, D image feature, W word vector, H hidden,
 * G gate width (H for the RNN, 4H for the LSTM, 3H for the GRU), V vocabulary, R packed rows.
 *
 * How it is laid out:
 * - Rows are packed time-major, like a packed sequence: captions are ordered by length (the
 *   step after their last unmasked target), and step s holds the n_s captions still running,
 *   rows stepOff[s] … stepOff[s] + n_s. Steps after a caption's last target contribute
 *   exactly zero to the loss and to every gradient, so they are not computed at all.
 * - The input projection b + x · Wx depends on the word alone, so it is one product over the
 *   batch's distinct words (U × W by W × G, U ≤ R: each word once, in order of first use), whose
 *   rows are then copied to the rows that use them; backward, each distinct word's rows of dA
 *   are summed (in row order) into S, and dWx = Xᵀ S, dx = S · Wxᵀ is each word's embedding
 *   gradient (no scatter). A batch of 100 random captions has about 680 distinct words in 1,150
 *   rows; real captions repeat words far more. One recurrent GEMM per
 *   step on a contiguous block (forward h_prev · Wh, backward dA · Whᵀ) — cut into fixed
 *   column blocks when the step has few rows (`columnBlockWidth`, a function of the shape
 *   alone: OpenBLAS multiplies such blocks without packing all of Wh on every call, 1.3–4.6×
 *   faster for the LSTM at 25 to 6 rows), one vocabulary product over all rows, the fused softmax +
 *   masked loss + gradient, and the weight gradients as one product over all steps each
 *   (dWx = Xᵀ S, dWh = H_prevᵀ dA, dW_vocab = Hᵀ dScores, biases as onesᵀ · d). The GRU's
 *   input and recurrent projections have gradients of their own (dAx in `dA`, and `dAh`):
 *   dWh = H_prevᵀ dAh, dbx = onesᵀ dA, dbh = onesᵀ dAh. Each product runs as fixed tiles of its
 *   result (`gemmTiles`), one GEMM call each.
 * - The forward pass is the language model's step (`lm_step.ts`, shared with the decoder) on
 *   these packed rows; the backward pass is written out here.
 * - A caption may carry a weight (self-critical training's reward minus baseline): its loss and
 *   its scores' gradient are multiplied by it, so the backward pass is unchanged past the scores.
 * - The elementwise parts run on the arena's kernels: WebAssembly SIMD for float32, `Math` for
 *   float64 (exact, for gradient checks). Nothing is allocated per step or per call except when
 *   a larger batch needs larger workspaces.
 * - Every phase is a fixed list of tasks for a team of workers (`step_team.ts`): column blocks
 *   of each GEMM, blocks of hidden units for each recurrent step (the block's slices of the
 *   recurrent GEMM, then the cell on those units), blocks of rows for the softmax and the
 *   copies, with a barrier between phases (one per recurrent step). The cuts depend on the
 *   shapes alone, so a team of any size, or one worker alone, computes the same bits; the work
 *   arrays then live in a memory the team shares (`TrainStepConfig.workspace`).
 * @module
 */
import {
  type ElementwiseKernels,
  type FloatArena,
  tsElementwise,
  typedArena,
} from "../layers/kernels/elementwise.ts";
import { selectElementwise } from "../layers/kernels/elementwise_wasm.ts";
import { addColumnBlock, copyColumnBlock } from "../layers/kernels/copy_wasm.ts";
import {
  columnBlockWidth,
  columnSlice,
  type Mat,
  mat,
  matmulAdd,
  matmulColumnBlocks,
  rowSlice,
  T,
} from "../layers/kernels/matmul.ts";
import type { FloatArray, FloatDType, Tensor } from "../layers/tensor.ts";
import { captionLengths } from "./captions.ts";
import { type PackedScores, packedSoftmaxRows, sumRowLosses } from "./scores_loss.ts";
import { gateWidth, type LmShape, type LmState } from "./lm_step.ts";
import type { ParamName } from "./params.ts";
import {
  blockOf,
  type GemmTiles,
  gemmTiles,
  SOLO_TEAM,
  type StepTeam,
  TEAM_TASKS,
  teamUnitWidth,
} from "./step_team.ts";

/** The sizes and cell of a model, as the step needs them. */
export interface TrainStepConfig extends LmShape {
  /** The element type. */
  dtype: FloatDType;
  /** The index of `<NULL>`, whose targets are masked out. */
  nullIdx: number;
  /** "auto" (default: WebAssembly SIMD for float32 when available) or "ts" (plain Math). */
  elementwise?: "auto" | "ts";
  /**
   * A memory every member of `team` was given (`sharedWorkspaceMemory`), to carve the work
   * arrays from; without it they live in this thread's own memory (a team of one).
   */
  workspace?: WebAssembly.Memory;
  /** The team that runs each step together (default: this thread alone, {@linkcode SOLO_TEAM}). */
  team?: StepTeam;
}

/**
 * The work arrays, views of the arena; re-carved only when a batch needs more room. Rows of
 * (R, ·) are packed rows, of (N, ·) captions in packed order; h, c, tanhC, ah are the step's
 * state (for the RNN, h is the activated gates; arrays a cell does not use are empty).
 */
interface Work extends LmState {
  x: FloatArray; // (U, W) the distinct words' vectors
  dx: FloatArray; // (U, W) their gradient
  wordGates: FloatArray; // (U, G) each distinct word's b + x · Wx, then its rows' summed dA
  gates: FloatArray; // (R, G)
  whBlocks: FloatArray; // (G / u) blocks of (H, u): Wh's columns by unit blocks, contiguous
  hPrev: FloatArray; // (R, H) the state each row starts from
  scores: FloatArray; // (R, V) scores, then their gradient
  dh: FloatArray; // (R, H)
  dA: FloatArray; // (R, G)
  dAh: FloatArray; // (R, G) the GRU's recurrent-projection gradient
  h0: FloatArray; // (N, H)
  dh0: FloatArray; // (N, H)
  dc: FloatArray; // (N, H) dnext_c → dprev_c, carried from step to step
  feats: FloatArray; // (N, D)
  ones: FloatArray; // (max(R, N),) for the bias gradients
  stats: FloatArray; // (R, 2) softmax max and sum
  rowLoss: Float64Array; // (R,) each row's loss term, summed in row order
}

/** Columns j0 … j0 + width − 1 of a, b and c, multiplied in blocks of `sub` columns. */
function columnsOf(
  c: Mat,
  a: Mat,
  b: Mat,
  j0: number,
  width: number,
  sub: number,
  beta: 0 | 1,
): void {
  const j1 = j0 + width;
  matmulColumnBlocks(columnSlice(c, j0, j1), a, columnSlice(b, j0, j1), sub, beta);
}

/** A product c = a · b (+ c when beta is 1), computed as fixed tiles of c (`gemmTiles`). */
interface Product {
  c: Mat;
  a: Mat;
  b: Mat;
  beta: 0 | 1;
  tiles: GemmTiles;
}

function product(c: Mat, a: Mat, b: Mat, beta: 0 | 1): Product {
  return { c, a, b, beta, tiles: gemmTiles(c.rows, c.cols, a.cols) };
}

/** Tile k of a product: its rows of a and c, its columns of b and c, one GEMM call. */
function runTile(p: Product, k: number): void {
  const { cols, width, rows } = p.tiles,
    jc = k % cols,
    [r0, r1] = blockOf(p.c.rows, rows, (k - jc) / cols);
  const j0 = jc * width, j1 = Math.min(p.c.cols, j0 + width);
  if (r1 === r0) return;
  const c = columnSlice(rowSlice(p.c, r0, r1), j0, j1);
  const b = columnSlice(p.b, j0, j1);
  matmulColumnBlocks(c, rowSlice(p.a, r0, r1), b, j1 - j0, p.beta);
}

/** The sub-block width inside a unit block: the GEMM's own block width when it divides it. */
function subWidth(gemmWidth: number, units: number): number {
  return units % gemmWidth === 0 ? gemmWidth : units;
}

/**
 * Loss and gradients of the captioning model with preallocated, reused workspaces.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, Tensor } from "../mod.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2, cat: 3 };
 * const model = new CaptioningRNN({ wordToIdx, inputDim: 4, wordvecDim: 3, hiddenDim: 5 });
 * // model.loss runs a TrainStep; lossReference composes the layers. They agree:
 * const feats = Tensor.randn([1, 4], 0, "float32");
 * const caps = Tensor.fromValues([1, 3, 2, 0], [1, 4], "int32");
 * console.log(Math.abs(model.loss(feats, caps).loss - model.lossReference(feats, caps).loss) < 1e-5);
 * ```
 */
export class TrainStep {
  readonly #cfg: TrainStepConfig;
  readonly #team: StepTeam;
  #arena: FloatArena;
  #ew: ElementwiseKernels;
  #capRows = -1;
  #capN = -1;
  #work!: Work;
  // Small integer bookkeeping, grown with the batch (each member of a team keeps its own).
  #len = new Int32Array(0);
  #perm = new Int32Array(0);
  #count = new Int32Array(0);
  #stepOff = new Int32Array(0);
  #words = new Int32Array(0);
  // The distinct words of a batch: row r's word is distinct[slot[r]]; distinct word i's rows
  // are wordRows[wordStart[i] … wordStart[i + 1]), in row order. slotOf[word] is −1 between
  // steps.
  #slot = new Int32Array(0);
  #distinct = new Int32Array(0);
  #wordStart = new Int32Array(0);
  #wordRows = new Int32Array(0);
  #slotOf: Int32Array;
  #targets = new Int32Array(0);
  #xt = new Float64Array(0);
  #rowWeights = new Float64Array(0);

  /**
   * Prepares a step for one model shape (workspaces are allocated at the first call).
   * @param config The model's sizes, cell, dtype and `<NULL>` index, and the team if any.
   */
  constructor(config: TrainStepConfig) {
    this.#cfg = config;
    this.#team = config.team ?? SOLO_TEAM;
    const { kernels, arena } = selectElementwise(
      config.dtype,
      config.elementwise,
      config.workspace,
    );
    this.#arena = arena;
    this.#ew = kernels;
    this.#slotOf = new Int32Array(config.vocabSize).fill(-1);
  }

  /** Which elementwise kernels the step uses: "wasm" or "ts". */
  get elementwise(): "ts" | "wasm" {
    return this.#ew.name;
  }

  /**
   * A phase of products, cut into tiles, then `extra` other tasks: the tasks are taken as in
   * {@linkcode TrainStep.#shared}.
   */
  #products(list: Product[], extra = 0, other?: (k: number) => void): void {
    let total = 0;
    for (const p of list) total += p.tiles.cols * p.tiles.rows;
    this.#shared(total + extra, (k) => {
      for (const p of list) {
        const n = p.tiles.cols * p.tiles.rows;
        if (k < n) return runTile(p, k);
        k -= n;
      }
      other!(k);
    });
  }

  /** Runs the tasks of a phase of `count` that this member takes first, then the barrier. */
  #shared(count: number, task: (k: number) => void): void {
    const team = this.#team;
    if (team.size === 1) {
      for (let k = 0; k < count; k++) task(k);
      return;
    }
    for (let k = team.take(count); k < count; k = team.take(count)) task(k);
    team.barrier();
  }

  /**
   * The distinct words of the step's rows (`#words`), in order of first use: fills `#slot`,
   * `#distinct` and each word's rows (`#wordStart`, `#wordRows`, in row order).
   * @returns How many there are (U).
   */
  #distinctWords(rows: number): number {
    const words = this.#words, slot = this.#slot, distinct = this.#distinct;
    const slotOf = this.#slotOf, start = this.#wordStart, rowsOf = this.#wordRows;
    let u = 0;
    for (let r = 0; r < rows; r++) {
      let q = slotOf[words[r]];
      if (q < 0) {
        q = slotOf[words[r]] = u;
        distinct[u] = words[r];
        start[u++] = 0;
      }
      slot[r] = q;
      start[q]++;
    }
    // Counts to starts, then each word's rows in row order.
    for (let q = 0, at = 0; q < u; q++) {
      const c = start[q];
      start[q] = at;
      at += c;
    }
    start[u] = rows;
    for (let r = 0; r < rows; r++) rowsOf[start[slot[r]]++] = r;
    for (let q = u; q > 0; q--) start[q] = start[q - 1];
    start[0] = 0;
    for (let q = 0; q < u; q++) slotOf[distinct[q]] = -1;
    return u;
  }

  /** Makes sure the workspaces hold R ≤ rows packed rows and N ≤ n captions. */
  #reserve(rows: number, n: number): void {
    if (rows <= this.#capRows && n <= this.#capN) return;
    const { inputDim: d, wordvecDim: w, hiddenDim: hd, vocabSize: v, cellType } = this.#cfg;
    rows = Math.max(rows, this.#capRows);
    n = Math.max(n, this.#capN);
    const g = gateWidth(this.#cfg), lstm = cellType === "lstm", gru = cellType === "gru";
    const names: (keyof Work)[] = [
      "x",
      "dx",
      "wordGates",
      "gates",
      "whBlocks",
      "h",
      "c",
      "tanhC",
      "ah",
      "hPrev",
      "scores",
      "dh",
      "dA",
      "dAh",
      "h0",
      "dh0",
      "dc",
      "feats",
      "ones",
      "stats",
      "rowLoss",
    ];
    const perLoss = this.#cfg.dtype === "float32" ? 2 : 1; // float32 slots per float64
    const sizes = [
      rows * w,
      rows * w,
      rows * g,
      rows * g,
      hd * g,
      lstm || gru ? rows * hd : 0, // the RNN's hidden states are its activated gates
      lstm ? rows * hd : 0,
      lstm ? rows * hd : 0,
      gru ? rows * g : 0,
      rows * hd,
      rows * v,
      rows * hd,
      rows * g,
      gru ? rows * g : 0,
      n * hd,
      n * hd,
      lstm ? n * hd : 0,
      n * d,
      Math.max(rows, n),
      2 * rows,
      perLoss * rows,
    ];
    const arrays = this.#carve(sizes);
    const work = {} as Work;
    names.forEach((name, i) => {
      if (name === "rowLoss") {
        const a = arrays[i];
        work.rowLoss = new Float64Array(a.buffer, a.byteOffset, rows);
      } else (work as unknown as Record<string, FloatArray>)[name] = arrays[i];
    });
    if (cellType === "rnn") work.h = work.gates;
    work.ones.fill(1);
    this.#work = work;
    this.#capRows = rows;
    this.#capN = n;
    this.#len = new Int32Array(n);
    this.#perm = new Int32Array(n);
    this.#words = new Int32Array(rows);
    this.#slot = new Int32Array(rows);
    this.#distinct = new Int32Array(rows);
    this.#wordStart = new Int32Array(rows + 1);
    this.#wordRows = new Int32Array(rows);
    this.#targets = new Int32Array(rows);
    this.#xt = new Float64Array(rows);
    this.#rowWeights = new Float64Array(rows);
  }

  /**
   * Carves the work arrays. In a team the first member carves (and grows the shared memory)
   * while the others wait, so the memory grows once; then the others carve the same views.
   */
  #carve(sizes: number[]): FloatArray[] {
    const team = this.#team;
    if (this.#cfg.workspace) {
      team.barrier();
      let arrays: FloatArray[] = [];
      let failure: unknown = null;
      if (team.index === 0) {
        try {
          arrays = this.#arena.carve(sizes);
        } catch (e) {
          failure = e;
        }
      }
      team.barrier();
      if (failure) throw failure;
      return team.index === 0 ? arrays : this.#arena.carve(sizes);
    }
    try {
      return this.#arena.carve(sizes);
    } catch (e) {
      if (this.#ew === tsElementwise) throw e;
      // WebAssembly memory could not grow this far (2 GiB): plain arrays and the Math kernels
      // instead, with other bits in their last places. A team's shared memory cannot fall back
      // like this: its first member throws (above), so past 2 GiB of work arrays only one worker
      // per shard trains (split "shards").
      this.#arena = typedArena(this.#cfg.dtype);
      this.#ew = tsElementwise;
      return this.#arena.carve(sizes);
    }
  }

  /**
   * The loss of a batch and the gradient of every parameter. In a team, every member calls it
   * with the same arguments; each computes its tasks, and each returns the loss.
   * @param params The parameter views.
   * @param features Image features, (N, D), of any float dtype.
   * @param captions Word indices, (N, T + 1), int32 (already checked for shape).
   * @param normalizer What the summed loss is divided by.
   * @param grads The gradient views to write (every element is overwritten), or null for
   * the loss alone (the forward pass only).
   * @param weights Each caption's weight, (N,), or null for 1 each: the loss is then
   * Σ_i weights[i] · (−Σ_t log p(target)) / normalizer, and each caption's score gradient is
   * scaled by its weight (self-critical training's −(r − b) · Σ_t log p(w_t)).
   * @returns The loss.
   */
  run(
    params: Record<ParamName, Tensor<FloatDType>>,
    features: Tensor<FloatDType>,
    captions: Tensor<"int32">,
    normalizer: number,
    grads: Record<ParamName, Tensor<FloatDType>> | null,
    weights: ArrayLike<number> | null = null,
  ): number {
    const cfg = this.#cfg, lstm = cfg.cellType === "lstm", gru = cfg.cellType === "gru";
    const g = gateWidth(cfg);
    const { inputDim: d, wordvecDim: w, hiddenDim: hd, vocabSize: v, nullIdx } = cfg;
    const [n, t1] = captions.shape, t = t1 - 1, cap = captions.data;
    this.#reserve(n * t, n);
    // Each caption's length: one past its last unmasked target (0 when all are masked).
    const len = this.#len;
    captionLengths(cap, n, t1, v, nullIdx, len);
    // Order captions by length, longest first (a stable counting sort), and count the
    // captions n_s still running at each step.
    if (this.#count.length < t + 2) {
      this.#count = new Int32Array(t + 2);
      this.#stepOff = new Int32Array(t + 2);
    }
    const count = this.#count.fill(0), perm = this.#perm, stepOff = this.#stepOff;
    for (let i = 0; i < n; i++) count[len[i]]++;
    let at = 0;
    for (let l = t; l >= 0; l--) {
      const c = count[l];
      count[l] = at;
      at += c;
    }
    for (let i = 0; i < n; i++) perm[count[len[i]]++] = i;
    const tEff = n > 0 ? len[perm[0]] : 0;
    let n0 = 0;
    while (n0 < n && len[perm[n0]] > 0) n0++;
    const running = (s: number) => stepOff[s + 1] - stepOff[s];
    stepOff[0] = 0;
    for (let s = 0, i = n0; s < tEff; s++) {
      while (i > 0 && len[perm[i - 1]] <= s) i--;
      stepOff[s + 1] = stepOff[s] + i;
    }
    const rows = stepOff[tEff];
    const p = params, gr = grads;
    if (rows === 0) {
      this.#shared(1, () => {
        if (gr) { for (const name in gr) gr[name as ParamName].data.fill(0); }
      });
      return 0;
    }
    const wk = this.#work, ew = this.#ew;
    const words = this.#words, targets = this.#targets, rowWeights = this.#rowWeights;
    for (let s = 0; s < tEff; s++) {
      for (let i = 0, ns = running(s); i < ns; i++) {
        const r = stepOff[s] + i, o = perm[i] * t1 + s;
        words[r] = cap[o];
        targets[r] = cap[o + 1];
        if (weights !== null) rowWeights[r] = weights[perm[i]];
      }
    }
    const distinct = this.#distinctWords(rows);
    const gatesPerUnit = g / hd, wu = teamUnitWidth(hd), units = hd / wu;

    // Forward. Rows first: each distinct word's vector and the bias its input projection adds
    // to (b + x · Wx), each row's biases (scores = b_vocab + h · W_vocab, the GRU's ah = bh +
    // h_prev · Wh), and, for the running captions in packed order, their features and h0's bias.
    const feats = features.data, emb = p.W_embed.data, bias = (gru ? p.bx : p.b).data;
    // And Wh's columns by blocks of u units, each block contiguous: the recurrent GEMMs read
    // (H, u) blocks of it; as column slices of Wh (rows G floats apart) they run up to 1.5×
    // slower, the slices' rows contending for the same cache sets.
    const whData = p.Wh.data, whBlocks = wk.whBlocks, blocks = g / wu;
    this.#shared(TEAM_TASKS + blocks, (k) => {
      if (k >= TEAM_TASKS) {
        const j0 = (k - TEAM_TASKS) * wu;
        copyColumnBlock(whData, g, hd, j0, wu, whBlocks, j0 * hd);
        return;
      }
      const [r0, r1] = blockOf(rows, TEAM_TASKS, k);
      for (let r = r0; r < r1; r++) {
        wk.scores.set(p.b_vocab.data, r * v);
        if (gru) wk.ah.set(p.bh.data, r * g);
      }
      const [q0, q1] = blockOf(distinct, TEAM_TASKS, k);
      for (let q = q0; q < q1; q++) {
        const word = this.#distinct[q];
        wk.x.set(emb.subarray(word * w, (word + 1) * w), q * w);
        wk.wordGates.set(bias, q * g);
      }
      const [i0, i1] = blockOf(n0, TEAM_TASKS, k);
      for (let i = i0; i < i1; i++) {
        wk.feats.set(feats.subarray(perm[i] * d, (perm[i] + 1) * d), i * d);
        wk.h0.set(p.b_proj.data, i * hd);
      }
      // The word vectors' gradient starts at 0, zeroed here by blocks of rows (one fill each,
      // not one per row and block of the scatter's columns: 16k calls at V = 1004).
      if (gr) {
        const [v0, v1] = blockOf(v, TEAM_TASKS, k);
        gr.W_embed.data.fill(0, v0 * w, v1 * w);
      }
    });
    // The input projection of every distinct word at once, and h0 = b_proj + features · W_proj;
    // then each row's gates start from its word's projection.
    const wordGates = mat(wk.wordGates, distinct, g), x = mat(wk.x, distinct, w);
    const wx = mat(p.Wx.data, w, g), h0 = mat(wk.h0, n0, hd), wProj = mat(p.W_proj.data, d, hd);
    this.#products([
      product(wordGates, x, wx, 1),
      product(h0, mat(wk.feats, n0, d), wProj, 1),
    ]);
    const slot = this.#slot;
    this.#shared(TEAM_TASKS, (k) => {
      const [r0, r1] = blockOf(rows, TEAM_TASKS, k);
      for (let r = r0; r < r1; r++) {
        wk.gates.set(wk.wordGates.subarray(slot[r] * g, (slot[r] + 1) * g), r * g);
      }
    });
    // The recurrence, one phase per step: a task is a block of u hidden units, the slices of
    // gates[s] += h_prev · Wh of its units in every gate (one GEMM on a block of whBlocks per
    // gate), then the cell on them. h_prev is h0 or the previous step's first n_s rows (the
    // captions still running are the longest ones).
    const wh = mat(p.Wh.data, hd, g);
    for (let s = 0; s < tEff; s++) {
      const hPrev = s === 0 ? wk.h0 : wk.h, cPrev = s === 0 ? null : wk.c;
      const prevOff = s === 0 ? 0 : stepOff[s - 1] * hd, off = stepOff[s], ns = running(s);
      const a = mat(hPrev, ns, hd, prevOff), into = gru ? wk.ah : wk.gates;
      this.#shared(units, (b) => {
        const u0 = b * wu;
        for (let k = 0; k < gatesPerUnit; k++) {
          const j0 = k * hd + u0;
          matmulAdd(mat(into, ns, wu, off * g + j0, g), a, mat(whBlocks, hd, wu, j0 * hd));
        }
        if (lstm) {
          ew.lstmCell(
            wk.gates,
            off * g + u0,
            cPrev,
            prevOff + u0,
            wk.c,
            wk.tanhC,
            wk.h,
            off * hd + u0,
            ns,
            hd,
            wu,
          );
        } else if (gru) {
          ew.gruCell(
            wk.gates,
            wk.ah,
            off * g + u0,
            hPrev,
            prevOff + u0,
            wk.h,
            off * hd + u0,
            ns,
            hd,
            wu,
          );
        } else {
          for (let r = 0; r < ns; r++) {
            ew.activate(wk.gates, (off + r) * g + u0, wu, cfg.activation);
          }
        }
      });
    }
    // Scores of every row at once, then softmax + masked loss + gradient in blocks of rows.
    const sc = wk.scores, h = mat(wk.h, rows, hd), wVocab = mat(p.W_vocab.data, hd, v);
    const scores = mat(sc, rows, v);
    this.#products([product(scores, h, wVocab, 1)]);
    const packed: PackedScores = {
      scores: sc,
      rows,
      vocabSize: v,
      targets,
      nullIdx,
      targetScores: this.#xt,
      stats: wk.stats,
      rowWeights: weights === null ? null : rowWeights,
    };
    this.#shared(TEAM_TASKS, (k) => {
      const [r0, r1] = blockOf(rows, TEAM_TASKS, k);
      if (r1 > r0) packedSoftmaxRows(ew, packed, normalizer, r0, r1, wk.rowLoss);
    });
    const loss = sumRowLosses(wk.rowLoss, rows, normalizer);

    if (gr === null) return loss;

    // Backward. dh = dScores · W_vocabᵀ; dW_vocab = hᵀ · dScores; db_vocab = onesᵀ · dScores;
    // and, by rows, dc = 0 (the LSTM's dnext_c), dh0 = 0 (the GRU adds into it) and each row's
    // h_prev (for dWh).
    const ones = mat(wk.ones, 1, rows), dWVocab = mat(gr.W_vocab.data, hd, v);
    const dbVocab = mat(gr.b_vocab.data, 1, v), dhAll = mat(wk.dh, rows, hd);
    this.#products(
      [
        product(dWVocab, T(h), scores, 0),
        product(dbVocab, ones, scores, 0),
        product(dhAll, scores, T(wVocab), 0),
      ],
      tEff,
      (s) => {
        const ns = running(s), to = stepOff[s] * hd;
        if (s === 0) {
          wk.hPrev.set(wk.h0.subarray(0, n0 * hd), 0);
          if (lstm) wk.dc.fill(0, 0, n0 * hd);
          if (gru) wk.dh0.fill(0, 0, n0 * hd);
        } else {
          const from = stepOff[s - 1] * hd;
          wk.hPrev.set(wk.h.subarray(from, from + ns * hd), to);
        }
      },
    );
    // The recurrence backward, one phase per step: a task is a block of hidden units, first
    // the recurrent gradient into its units, dh[s] += dA[s+1] · Whᵀ (dAh for the GRU), then
    // the cell's backward on them, writing dA[s] (dc carries dnext_c → dprev_c; the GRU also
    // writes dAh[s] and adds the direct part of dh[s-1], dh[s] ⊙ z).
    const whT = T(wh), dRec = gru ? wk.dAh : wk.dA;
    for (let s = tEff - 1; s >= 0; s--) {
      const ns = running(s), off = stepOff[s], prevOff = s === 0 ? 0 : stepOff[s - 1] * hd;
      const nNext = s + 1 < tEff ? running(s + 1) : 0;
      const dhS = mat(wk.dh, nNext, hd, off * hd);
      const dANext = mat(dRec, nNext, g, nNext > 0 ? stepOff[s + 1] * g : 0);
      const sub = nNext > 0 ? subWidth(columnBlockWidth(nNext, hd, g, true), wu) : wu;
      this.#shared(units, (b) => {
        const u0 = b * wu;
        if (nNext > 0) columnsOf(dhS, dANext, whT, u0, wu, sub, 1);
        if (lstm) {
          const cPrev = s === 0 ? null : wk.c;
          ew.lstmCellBackward(
            wk.gates,
            off * g + u0,
            wk.dh,
            wk.dc,
            u0,
            cPrev,
            prevOff + u0,
            wk.tanhC,
            off * hd + u0,
            wk.dA,
            ns,
            hd,
            wu,
          );
        } else if (gru) {
          const hPrev = s === 0 ? wk.h0 : wk.h, dPrev = s === 0 ? wk.dh0 : wk.dh;
          ew.gruCellBackward(
            wk.gates,
            wk.ah,
            wk.dA,
            wk.dAh,
            off * g + u0,
            wk.dh,
            off * hd + u0,
            hPrev,
            prevOff + u0,
            dPrev,
            prevOff + u0,
            ns,
            hd,
            wu,
          );
        } else {
          for (let r = 0; r < ns; r++) {
            const o = (off + r) * hd + u0;
            ew.activationBackward(wk.dh, o, wk.h, o, wk.dA, o, wu, cfg.activation);
          }
        }
      });
    }
    // Weight gradients over all steps at once: dWh = h_prevᵀ dA (dAh), the gate biases onesᵀ
    // dA (and onesᵀ dAh); beside them, by blocks of units, dh0 = dA[0] · Whᵀ (the GRU's adds
    // to its direct part), and by blocks of distinct words, S = each word's rows of dA summed
    // in row order (into wordGates, no longer needed).
    const sub0 = subWidth(columnBlockWidth(n0, hd, g, true), wu);
    const dA0 = mat(dRec, n0, g), dh0 = mat(wk.dh0, n0, hd);
    const dA = mat(wk.dA, rows, g), dAh = gru ? mat(wk.dAh, rows, g) : dA;
    const hPrevAll = mat(wk.hPrev, rows, hd), feats0 = mat(wk.feats, n0, d);
    const starts = this.#wordStart, rowsOf = this.#wordRows, dAData = wk.dA;
    this.#products(
      [
        product(mat(gr.Wh.data, hd, g), T(hPrevAll), dAh, 0),
        product(mat((gru ? gr.bx : gr.b).data, 1, g), ones, dA, 0),
        ...(gru ? [product(mat(gr.bh.data, 1, g), ones, dAh, 0)] : []),
      ],
      units + TEAM_TASKS,
      (k) => {
        if (k < units) return columnsOf(dh0, dA0, whT, k * wu, wu, sub0, gru ? 1 : 0);
        const [q0, q1] = blockOf(distinct, TEAM_TASKS, k - units);
        for (let q = q0; q < q1; q++) {
          const first = rowsOf[starts[q]];
          wk.wordGates.set(dAData.subarray(first * g, (first + 1) * g), q * g);
          for (let i = starts[q] + 1; i < starts[q + 1]; i++) {
            addColumnBlock(dAData, rowsOf[i] * g, 1, g, wk.wordGates, g, q * g);
          }
        }
      },
    );
    // dWx = xᵀ S and each distinct word's dx = S · Wxᵀ, and dW_proj = featuresᵀ dh0, db_proj =
    // onesᵀ dh0; then each distinct word's dx is its row of the word vectors' gradient (the
    // other rows were zeroed in the first phase).
    this.#products([
      product(mat(gr.Wx.data, w, g), T(x), wordGates, 0),
      product(mat(wk.dx, distinct, w), wordGates, T(wx), 0),
      product(mat(gr.W_proj.data, d, hd), T(feats0), dh0, 0),
      product(mat(gr.b_proj.data, 1, hd), mat(wk.ones, 1, n0), dh0, 0),
    ]);
    const dEmb = gr.W_embed.data, dx = wk.dx;
    this.#shared(TEAM_TASKS, (k) => {
      const [q0, q1] = blockOf(distinct, TEAM_TASKS, k);
      for (let q = q0; q < q1; q++) {
        dEmb.set(dx.subarray(q * w, (q + 1) * w), this.#distinct[q] * w);
      }
    });
    return loss;
  }
}
