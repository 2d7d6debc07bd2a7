/**
 * Training progress: a one-line progress bar redrawn in place on a terminal (throttled),
 * plain log lines every `printEvery` iterations otherwise. It takes an injected writer and
 * clock, so tests can drive it. The machine-readable log is metrics_log.ts.
 * @module
 */
import { writeAll } from "../io/files.ts";

/** Options of a {@linkcode ProgressReporter}. */
export interface ProgressOptions {
  /** Total iterations of the run. */
  total: number;
  /** Captions per iteration (the batch size), for captions/s. */
  batchSize: number;
  /** Iterations per epoch, to show the epoch; omit to hide it. */
  itersPerEpoch?: number;
  /** Without a terminal: print a line every this many iterations (and at the last). */
  printEvery?: number;
  /** Where text goes; default: standard error. */
  write?: (text: string) => void;
  /** Whether `write` goes to a terminal (bar) or not (log lines); default: stderr's. */
  isTTY?: boolean;
  /** A clock in milliseconds; default `performance.now`. */
  now?: () => number;
  /** Least time between two redraws of the bar, in ms; default 100. */
  minRedrawMs?: number;
  /** Width of the terminal; default: the console's, or 100. */
  columns?: number;
  /** Decay of the loss moving average; default 0.9. */
  emaDecay?: number;
}

/**
 * Formats a duration as `1h02m`, `3m07s` or `42s`.
 * @param seconds The duration; non-finite values print as `?`.
 * @returns The short text.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * console.log(formatDuration(187)); // 3m07s
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Reports training progress: a bar on a terminal, log lines elsewhere.
 *
 * @example
 * ```ts
 * import { ProgressReporter } from "./progress.ts";
 * const lines: string[] = [];
 * const p = new ProgressReporter({ total: 20, batchSize: 25, printEvery: 10, isTTY: false,
 *   write: (t) => lines.push(t) });
 * for (let i = 1; i <= 20; i++) p.update(i, 3 - i * 0.1);
 * p.finish();
 * console.log(lines.length); // 2: iterations 10 and 20
 * ```
 */
export class ProgressReporter {
  readonly #o: Required<Omit<ProgressOptions, "itersPerEpoch">> & { itersPerEpoch?: number };
  readonly #start: number;
  #lastDraw = -Infinity;
  #ema = 0;
  #steps = 0;
  #iteration = 0;
  #loss = NaN;
  #barShown = false;

  /**
   * Starts the clock of a run's progress.
   * @param options Totals, output and clock; see {@linkcode ProgressOptions}.
   */
  constructor(options: ProgressOptions) {
    const isTTY = options.isTTY ?? (options.write ? false : Deno.stderr.isTerminal());
    let columns = options.columns ?? 100;
    if (options.columns === undefined && isTTY) {
      try {
        columns = Deno.consoleSize().columns;
      } catch { /* not a console after all */ }
    }
    this.#o = {
      printEvery: 10,
      write: (t: string) => writeAll(Deno.stderr, t),
      now: () => performance.now(),
      minRedrawMs: 100,
      emaDecay: 0.9,
      ...options,
      isTTY,
      columns,
    };
    this.#start = this.#o.now();
  }

  /** The bias-corrected exponential moving average of the losses so far (NaN before any). */
  get smoothedLoss(): number {
    return this.#steps === 0 ? NaN : this.#ema / (1 - this.#o.emaDecay ** this.#steps);
  }

  /**
   * Records iteration `iteration` (1-based, just finished) and its loss; redraws the bar
   * (at most every `minRedrawMs`, and always at the last iteration) or prints a log line
   * every `printEvery` iterations.
   * @param iteration The iteration just finished, 1..total.
   * @param loss Its minibatch loss.
   * @returns Nothing.
   */
  update(iteration: number, loss: number): void {
    this.#iteration = iteration;
    this.#loss = loss;
    this.#steps++;
    this.#ema = this.#o.emaDecay * this.#ema + (1 - this.#o.emaDecay) * loss;
    const last = iteration >= this.#o.total;
    if (this.#o.isTTY) {
      const t = this.#o.now();
      if (last || t - this.#lastDraw >= this.#o.minRedrawMs) {
        this.#lastDraw = t;
        this.#drawBar();
      }
    } else if (iteration % this.#o.printEvery === 0 || last) {
      this.#o.write(this.line() + "\n");
    }
  }

  /**
   * Prints a message on its own line without garbling the bar (which is redrawn below it).
   * @param message One line of text.
   * @returns Nothing.
   */
  log(message: string): void {
    if (this.#o.isTTY && this.#barShown) {
      this.#o.write(`\r\x1b[K${message}\n`);
      this.#drawBar();
    } else {
      this.#o.write(message + "\n");
    }
  }

  /**
   * Ends the bar with a newline (on a terminal); call once when training stops.
   * @returns Nothing.
   */
  finish(): void {
    if (this.#o.isTTY && this.#barShown) {
      this.#drawBar();
      this.#o.write("\n");
      this.#barShown = false;
    }
  }

  #stats() {
    const elapsed = (this.#o.now() - this.#start) / 1000;
    const perIter = elapsed / Math.max(1, this.#steps);
    const rate = elapsed > 0 ? (this.#steps * this.#o.batchSize) / elapsed : NaN;
    const eta = perIter * Math.max(0, this.#o.total - this.#iteration);
    const e = this.#o.itersPerEpoch;
    const epoch = e
      ? `${Math.min(Math.ceil(this.#iteration / e), Math.ceil(this.#o.total / e))}/${
        Math.ceil(this.#o.total / e)
      }`
      : undefined;
    return {
      rate: Number.isFinite(rate) ? Math.round(rate) : "?",
      eta: formatDuration(eta),
      epoch,
    };
  }

  /**
   * The plain log line for the latest iteration, as printed when not on a terminal.
   * @returns E.g. `(Iteration 10 / 100) loss: 2.345600 | smoothed 2.4012 | epoch 1/10 | 850 captions/s | ETA 1m23s`.
   */
  line(): string {
    const s = this.#stats();
    return [
      `(Iteration ${this.#iteration} / ${this.#o.total}) loss: ${this.#loss.toFixed(6)}`,
      `smoothed ${this.smoothedLoss.toFixed(4)}`,
      ...(s.epoch ? [`epoch ${s.epoch}`] : []),
      `${s.rate} captions/s`,
      `ETA ${s.eta}`,
    ].join(" | ");
  }

  #drawBar(): void {
    const s = this.#stats();
    const total = this.#o.total;
    const info = ` ${this.#iteration}/${total}` + (s.epoch ? ` ep ${s.epoch}` : "") +
      ` loss ${this.smoothedLoss.toFixed(4)} ${s.rate} cap/s ETA ${s.eta}`;
    const width = Math.max(0, Math.min(30, this.#o.columns - 1 - info.length - 2));
    const filled = Math.round((width * Math.min(this.#iteration, total)) / Math.max(1, total));
    const bar = width > 0 ? `[${"#".repeat(filled)}${".".repeat(width - filled)}]` : "";
    this.#o.write(`\r${(bar + info).slice(0, this.#o.columns - 1)}\x1b[K`);
    this.#barShown = true;
  }
}
