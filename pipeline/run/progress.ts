/**
 * Training progress: a one-line progress bar redrawn in place on a terminal (throttled),
 * plain log lines every `printEvery` iterations otherwise; and `metrics.jsonl`, the run's
 * machine-readable log (one JSON object per line, appended, written line by line).
 * Both take an injected writer and clock, so tests can drive them.
 * @module
 */
import { InputError } from "../errors.ts";

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

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
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

/** One training-loss line of `metrics.jsonl`. */
export interface TrainRecord {
  /** Record kind. */
  kind: "train";
  /** Iteration just finished (1-based). */
  iteration: number;
  /** Epoch, counted from 1 (fractional allowed). */
  epoch: number;
  /** Minibatch loss. */
  loss: number;
  /** Smoothed loss, if known. */
  smoothedLoss?: number;
  /** Learning rate in force. */
  learningRate?: number;
  /** Throughput since the start. */
  captionsPerSec?: number;
}

/** One validation-loss line of `metrics.jsonl`. */
export interface ValRecord {
  /** Record kind. */
  kind: "val";
  /** Iteration at which it was measured. */
  iteration: number;
  /** Epoch. */
  epoch: number;
  /** Mean validation loss. */
  loss: number;
}

/** One evaluation (caption metrics) line of `metrics.jsonl`. */
export interface EvalRecord {
  /** Record kind. */
  kind: "eval";
  /** Iteration of the evaluated parameters. */
  iteration: number;
  /** Split evaluated ("train" or "val"). */
  split: string;
  /** Checkpoint evaluated (file name or label), if any. */
  checkpoint?: string;
  /** Decoder used. */
  decoder?: "greedy" | "beam";
  /** Images scored. */
  numImages?: number;
  /** Scores by metric name. */
  metrics: Record<string, number>;
}

/** A line of `metrics.jsonl`; `time` (ISO 8601) is added when written. */
export type MetricsRecord = (TrainRecord | ValRecord | EvalRecord) & { time?: string };

/**
 * Appends records to a run's `metrics.jsonl`: one JSON object per line, each line written
 * whole with unbuffered writes as soon as it is logged, so a crash loses nothing logged.
 *
 * @example
 * ```ts
 * import { MetricsLog } from "./progress.ts";
 * const lines: string[] = [];
 * const log = new MetricsLog((line) => lines.push(line), () => new Date(0));
 * log.write({ kind: "train", iteration: 1, epoch: 1, loss: 9.8 });
 * console.log(lines[0]); // {"kind":"train","iteration":1,"epoch":1,"loss":9.8,"time":"1970-01-01T00:00:00.000Z"}
 * ```
 */
export class MetricsLog {
  #sink: (line: string) => void;
  #clock: () => Date;
  #close: () => void;

  /**
   * Makes a log that hands each line to `sink` (see {@linkcode MetricsLog.open} for a file).
   * @param sink Receives each line, newline included.
   * @param clock Stamps each record; default the wall clock.
   * @param close Called by {@linkcode MetricsLog.close}.
   */
  constructor(
    sink: (line: string) => void,
    clock: () => Date = () => new Date(),
    close = () => {},
  ) {
    this.#sink = sink;
    this.#clock = clock;
    this.#close = close;
  }

  /**
   * Opens (creating it and the directory if needed) `metrics.jsonl` in a run directory, for appending.
   * @param runDir The run directory.
   * @param clock Stamps each record; default the wall clock.
   * @returns The log; close it when done.
   *
   * @example
   * ```ts ignore
   * import { MetricsLog } from "./progress.ts";
   * const log = MetricsLog.open("runs/demo");
   * log.write({ kind: "val", iteration: 100, epoch: 1, loss: 3.2 });
   * log.close();
   * ```
   */
  static open(runDir: string, clock?: () => Date): MetricsLog {
    Deno.mkdirSync(runDir, { recursive: true });
    const path = `${runDir}/metrics.jsonl`;
    const file = Deno.openSync(path, { create: true, append: true });
    const sink = (line: string) => {
      try {
        writeAll(file, line);
      } catch (e) {
        // Name the file: a bare "No space left on device" does not say what failed.
        throw new InputError(
          `${path}: cannot append the metrics log (${(e as Error).message}); free disk space or ` +
            `make the run directory writable, then resume the run`,
          { cause: e },
        );
      }
    };
    return new MetricsLog(sink, clock, () => file.close());
  }

  /**
   * Writes one record as a line, stamped with the time.
   * @param record The record.
   * @returns Nothing.
   */
  write(record: MetricsRecord): void {
    this.#sink(
      JSON.stringify({ ...record, time: record.time ?? this.#clock().toISOString() }) + "\n",
    );
  }

  /**
   * Closes the underlying file, if any.
   * @returns Nothing.
   */
  close(): void {
    this.#close();
  }
}

/**
 * Reads a `metrics.jsonl` back (e.g. for the report); blank lines and a torn last line
 * (from a crash mid-write) are skipped.
 * @param path The file.
 * @returns The records in order; empty when the file does not exist.
 * @throws {InputError} When a line other than the last is not JSON.
 *
 * @example
 * ```ts ignore
 * import { readMetricsLog } from "./progress.ts";
 * const train = (await readMetricsLog("runs/demo/metrics.jsonl")).filter((r) => r.kind === "train");
 * ```
 */
export async function readMetricsLog(path: string): Promise<MetricsRecord[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: MetricsRecord[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i !== lines.length - 1) {
        throw new InputError(`${path}: line ${i + 1}: invalid JSON: ${(e as Error).message}`);
      }
    }
  });
  return out;
}
