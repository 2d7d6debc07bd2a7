/**
 * `metrics.jsonl`, the run's machine-readable log: one JSON object per line (training loss,
 * validation loss, caption metrics), appended and written line by line, and read back for the
 * report. It takes an injected writer and clock, so tests can drive it.
 * @module
 */
import { InputError } from "../errors.ts";
import { writeAll } from "../io/files.ts";

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

/** One self-critical training line of `metrics.jsonl`: the step's loss and rewards. */
export interface ScstRecord {
  /** Record kind. */
  kind: "scst";
  /** The run's iteration just finished (cross-entropy iterations included). */
  iteration: number;
  /** Self-critical epochs (passes over the training images), fractional. */
  epoch: number;
  /** The step's loss, −mean((r − b) · Σ log p). */
  loss: number;
  /** The mean CIDEr-D reward of the sampled captions. */
  reward: number;
  /** The mean baseline. */
  baseline: number;
  /** The fraction of samples whose reward beat their baseline. */
  beatBaseline: number;
  /** The greedy captions' mean reward (with the greedy baseline). */
  greedyReward?: number;
  /** The sampled captions' mean length, in words. */
  meanLength: number;
  /** Learning rate in force. */
  learningRate?: number;
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
  decoder?: "greedy" | "beam" | "sample";
  /** "scst" when scored during self-critical training. */
  phase?: "scst";
  /** Images scored. */
  numImages?: number;
  /** Scores by metric name. */
  metrics: Record<string, number>;
}

/** A line of `metrics.jsonl`; `time` (ISO 8601) is added when written. */
export type MetricsRecord = (TrainRecord | ScstRecord | ValRecord | EvalRecord) & {
  time?: string;
};

/**
 * Appends records to a run's `metrics.jsonl`: one JSON object per line, each line written
 * whole with unbuffered writes as soon as it is logged, so a crash loses nothing logged.
 *
 * @example
 * ```ts
 * import { MetricsLog } from "./metrics_log.ts";
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
   * import { MetricsLog } from "./metrics_log.ts";
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
            `make the run directory writable`,
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
 * import { readMetricsLog } from "./metrics_log.ts";
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
