/**
 * A team of workers that runs one training step together (the fused step of the recurrent
 * models, `train_step.ts`). Every member runs the same code on the same shard: each phase of
 * the step is a fixed list of tasks (tiles of a product, blocks of hidden units of a recurrent
 * step, blocks of rows). Each member takes the next task left ({@linkcode StepTeam.take}), so a
 * member the machine slows takes fewer; the members wait at a barrier between phases. A task
 * is the same computation on the same data whoever runs it, and no two tasks of a phase write
 * the same element, so the step's bits do not depend on the team's size: one worker alone
 * ({@linkcode SOLO_TEAM}) gets them too.
 *
 * How a task list is cut depends on the shapes alone ({@linkcode gemmTiles},
 * {@linkcode teamUnitWidth}), never on the team's size.
 * @module
 */

/** The members of a team as one of them sees it. */
export interface StepTeam {
  /** This member's place, 0 … size − 1. */
  readonly index: number;
  /** How many members run the step. */
  readonly size: number;
  /** Waits until every member has arrived (a no-op for a team of one). */
  barrier(): void;
  /**
   * The next task of the current phase of `count` tasks that no member has taken yet, or a
   * number ≥ count when none is left (each member then stops taking, and waits at the
   * barrier): a member that the machine slows takes fewer. Every member must call it until
   * it gets one ≥ count, and only then go on to the barrier. (A team of one runs its tasks
   * in order and need not ask.)
   */
  take(count: number): number;
}

/**
 * A team of one: the step runs every task itself, in task order.
 *
 * @example
 * ```ts
 * import { SOLO_TEAM } from "./step_team.ts";
 * SOLO_TEAM.barrier(); // returns at once
 * console.log(SOLO_TEAM.size); // 1
 * ```
 */
export const SOLO_TEAM: StepTeam = Object.freeze({
  index: 0,
  size: 1,
  barrier(): void {},
  // A step run alone takes its tasks in order without asking (see TrainStep).
  take(count: number): number {
    return count;
  },
});

/**
 * About how many tasks a phase is cut into: enough for 16 workers. A product's result into
 * about this many tiles, rows into this many blocks, a recurrent step's hidden units into at
 * most this many blocks (of at least 64 units).
 */
export const TEAM_TASKS = 16;

/**
 * The fewest hidden units a recurrent task holds: narrower slices of Wh's columns multiply
 * slower (a 64-unit task's forward GEMMs ran 1.5× faster than a 32-unit one's, lstm H = 512
 * at 25 rows), so H = 512 makes 8 tasks.
 */
const MIN_UNITS = 64;

/** How a product's result is cut into tiles: `cols` blocks of `width` columns × `rows` blocks. */
export interface GemmTiles {
  /** Column blocks (the last may be narrower). */
  cols: number;
  /** Columns per block, a multiple of 16. */
  width: number;
  /** Row blocks (nearly equal, {@linkcode blockOf}). */
  rows: number;
}

/** The narrowest column block and the fewest rows a tile holds: narrower ones multiply slower. */
const MIN_TILE = { cols: 128, rows: 64 } as const;

/**
 * The fewest FLOPs (2·m·n·k) each tile holds when a product is cut into more than four. Each
 * tile is one GEMM call, which packs its operands again: on one thread, the products of an
 * lstm step at batch 25 (288 packed rows, 0.3–0.6 GFLOP each) took 30.3 ms in 16 tiles each,
 * 27.4 in 4 and 26.5 in one call; at batch 100 (1,150 rows), 120.6 in 16 tiles against 104.8
 * in one call. So a product gets no more tiles than give each this much work: at batch 25
 * four or eight, at batch 100 the full {@linkcode TEAM_TASKS}.
 */
export const TILE_FLOPS = 64e6;

/** The fewest tiles a product is cut into, whatever its FLOPs: a team of four shares each. */
const MIN_TILES = 4;

/**
 * The tiles of an (m × n) product's result over an inner dimension k: four, or the most tiles
 * up to {@linkcode TEAM_TASKS} (a power of two) that hold {@linkcode TILE_FLOPS} each; as many
 * column blocks of at least 128 columns, then as many row blocks of at least 64 rows, as make
 * that many tiles. A tile is one GEMM call on its rows of a and its columns of b; thinner
 * slices would re-pack the other operand for too few multiply-adds (16-column blocks of
 * dx = dA · Wxᵀ ran at half speed). A function of the shape alone, never of the team.
 * @param m Rows of the result.
 * @param n Columns of the result.
 * @param k The inner dimension.
 * @returns The cut.
 *
 * @example
 * ```ts
 * import { gemmTiles } from "./step_team.ts";
 * console.log(gemmTiles(1200, 2048, 512), gemmTiles(288, 256, 2048), gemmTiles(20, 30, 8));
 * // { cols: 16, width: 128, rows: 1 } { cols: 2, width: 128, rows: 2 } { cols: 1, width: 32, rows: 1 }
 * ```
 */
export function gemmTiles(m: number, n: number, k: number): GemmTiles {
  const flops = 2 * m * n * k;
  let tiles = MIN_TILES;
  while (tiles * 2 <= TEAM_TASKS && flops / (tiles * 2) >= TILE_FLOPS) tiles *= 2;
  const wanted = Math.max(1, Math.min(tiles, Math.floor(n / MIN_TILE.cols)));
  const width = Math.ceil(n / wanted / 16) * 16, cols = Math.ceil(n / width);
  const rows = Math.max(1, Math.min(Math.ceil(tiles / cols), Math.floor(m / MIN_TILE.rows)));
  return { cols, width, rows };
}

/**
 * The hidden units of one recurrent task: H / b for the most blocks b ≤ {@linkcode TEAM_TASKS}
 * (a power of two) that divide H into blocks of at least 64 units, else H (one task).
 * @param hd H, the hidden size.
 * @returns The units per task, a divisor of H.
 *
 * @example
 * ```ts
 * import { teamUnitWidth } from "./step_team.ts";
 * console.log(teamUnitWidth(512), teamUnitWidth(256), teamUnitWidth(100)); // 64 64 100
 * ```
 */
export function teamUnitWidth(hd: number): number {
  for (let b = TEAM_TASKS; b > 1; b /= 2) {
    if (hd % b === 0 && hd / b >= MIN_UNITS) return hd / b;
  }
  return hd;
}

/**
 * Block k of n items cut into `count` nearly equal blocks (the first n mod count one longer).
 * @param n The items.
 * @param count The blocks.
 * @param k The block.
 * @returns Its first item and one past its last.
 *
 * @example
 * ```ts
 * import { blockOf } from "./step_team.ts";
 * console.log(blockOf(10, 4, 0), blockOf(10, 4, 3)); // [0, 3] [8, 10]
 * ```
 */
export function blockOf(n: number, count: number, k: number): [number, number] {
  const base = Math.floor(n / count), extra = n % count;
  const start = k * base + Math.min(k, extra);
  return [start, start + base + (k < extra ? 1 : 0)];
}
