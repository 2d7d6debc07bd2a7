/**
 * Checkpoints in HDF5, readable by h5py: every parameter as a dataset under its name in the
 * model's layout (the exercise's `f["W_embed"]`; the GRU's `f["bx"]`, `f["bh"]`; the
 * Transformer's paths such as `f["layer0/self_attn/Wq"]`), the optimizer's moments under
 * `optimizer/`, the loss histories under `history/`, and JSON attributes on the root for the
 * model's arguments (whose `cellType` names the model), the vocabulary, the optimizer and
 * solver state, and the experiment config. Written atomically: a temporary file is completed,
 * synced and renamed over the old one, so a crash never leaves a broken checkpoint in place.
 *
 * Version 1 holds every model: the rnn and lstm checkpoints written before the GRU and the
 * Transformer existed have the same datasets and attributes, and load unchanged.
 * @module
 */
import type { FloatArray, FloatDType } from "../../layers/tensor.ts";
import { replaceAtomically } from "../io/atomic.ts";
import { H5File } from "../io/h5.ts";
import { InputError } from "../errors.ts";
import {
  MOMENT_NAMES,
  OPTIM_HYPERPARAMS,
  type OptimizerState,
  UPDATE_RULES,
  type UpdateRule,
} from "../../layers/optim.ts";
import { checkRegularFile, UnreadableFile } from "../io/files.ts";
import type { SolverState } from "./solver.ts";
import type { CaptioningModel, CaptioningModelConfig } from "../../model/captioning_model.ts";
import { type CaptioningModelOptions, createCaptioningModel } from "../../model/models.ts";

/** The format name and version written in every checkpoint. */
export const CHECKPOINT_FORMAT = "recap-checkpoint";
/** The version of the layout described in this module. */
export const CHECKPOINT_VERSION = 1;

/** What a checkpoint holds besides the model. */
export interface CheckpointExtras {
  /** The solver's state (with the optimizer's), to resume exactly. */
  solver?: SolverState;
  /** The experiment config of the run. */
  experiment?: unknown;
  /** Any other JSON (e.g. the evaluation scores that made it the best checkpoint). */
  info?: Record<string, unknown>;
  /** Set when the solver state is self-critical training's (see {@linkcode ScstPhase}). */
  scst?: ScstPhase;
}

/**
 * Where a self-critical training phase started: its solver counts its own iterations from 0,
 * and the run's iteration is `startIteration` + the solver's.
 */
export interface ScstPhase {
  /** The iteration of the cross-entropy checkpoint it started from. */
  startIteration: number;
  /** That checkpoint's path. */
  from: string;
}

/** A loaded checkpoint. */
export interface LoadedCheckpoint<D extends FloatDType = FloatDType> extends CheckpointExtras {
  /** The model, with the saved parameters. */
  model: CaptioningModel<D>;
  /** The file it came from. */
  path: string;
}

/** What a checkpoint must match when loaded for a given dataset or model. */
export interface CheckpointExpectation {
  /** The vocabulary of the data it will be used with (index → word). */
  idxToWord?: readonly string[];
  /**
   * Model options it must have (e.g. an experiment's model section); options its kind of model
   * does not take (a recurrent model's `numHeads`, the Transformer's `hiddenDim`) are ignored.
   */
  model?: Partial<Omit<CaptioningModelOptions, "wordToIdx" | "paramBuffer">>;
}

/**
 * Writes a checkpoint atomically (temporary file, sync, rename).
 * @param path Where to write it, e.g. `runs/x/checkpoint.h5`.
 * @param model The model whose parameters are saved.
 * @param extras Solver state, experiment config and info to save with it.
 * @returns The path written.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, loadCheckpoint, saveCheckpoint } from "../../mod.ts";
 * const model = new CaptioningRNN({ wordToIdx: { "<NULL>": 0, "<START>": 1, "<END>": 2 }, inputDim: 4 });
 * const path = await Deno.makeTempFile({ suffix: ".h5" });
 * await saveCheckpoint(path, model);
 * const { model: again } = await loadCheckpoint(path);
 * console.log(again.flat[0] === model.flat[0]); // true
 * ```
 */
export async function saveCheckpoint(
  path: string,
  model: CaptioningModel<FloatDType>,
  extras: CheckpointExtras = {},
): Promise<string> {
  let tmp = "";
  try {
    return await replaceAtomically(path, async (t) => {
      tmp = t;
      const f = await H5File.open(t, "w");
      try {
        writeCheckpoint(f, model, extras);
        f.flush();
      } finally {
        f.close();
      }
    });
  } catch (e) {
    // The reason may name the temporary file (already removed) and HDF5's diagnostic noise.
    const reason = (e instanceof Error ? e.message : String(e))
      .replaceAll(` in ${tmp}`, " to the temporary file")
      .replaceAll(tmp, "the temporary file")
      .replace(/: time = \w+ \w+ +\d+ [\d:]+ \d+/g, "")
      .replace(/; the file may be damaged$/, "");
    throw new InputError(
      `Cannot write checkpoint ${path}: ${reason}; the previous checkpoint (if any) is intact — ` +
        `check that the directory is writable and the disk has space`,
      { cause: e },
    );
  }
}

/** Writes the model, its vocabulary and the extras into an open, empty HDF5 file. */
function writeCheckpoint(
  f: H5File,
  model: CaptioningModel<FloatDType>,
  extras: CheckpointExtras,
): void {
  for (const { name } of model.layout.slots) f.write(name, model.params[name].clone());
  f.setAttr("/", "format", CHECKPOINT_FORMAT);
  f.setAttr("/", "version", CHECKPOINT_VERSION);
  f.setJsonAttr("/", "model_config", model.config);
  f.setJsonAttr("/", "idx_to_word", model.idxToWord);
  f.setJsonAttr("/", "word_to_idx", model.wordToIdx);
  const s = extras.solver;
  if (s) {
    const { moments, ...optim } = s.optimizer;
    f.setJsonAttr("/", "optimizer", optim);
    MOMENT_NAMES[optim.rule].forEach((name, i) => {
      f.write(`optimizer/${name}`, { data: moments[i].slice(), shape: [moments[i].length] });
    });
    const { optimizer: _o, lossHistory, valLossHistory, ...solver } = s;
    f.setJsonAttr("/", "solver", solver);
    f.write("history/loss", { data: Float64Array.from(lossHistory), shape: [lossHistory.length] });
    const val = new Float64Array(valLossHistory.length * 3);
    valLossHistory.forEach((p, i) => val.set([p.epoch, p.iteration, p.loss], i * 3));
    f.write("history/val_loss", { data: val, shape: [valLossHistory.length, 3] });
  }
  if (extras.experiment !== undefined) f.setJsonAttr("/", "experiment", extras.experiment);
  if (extras.info !== undefined) f.setJsonAttr("/", "info", extras.info);
  if (extras.scst !== undefined) f.setJsonAttr("/", "scst", extras.scst);
}

/**
 * The run's iteration a checkpoint holds the parameters of: its solver's (after the
 * iterations a self-critical phase started from), or the one its info records.
 * @param checkpoint A loaded checkpoint.
 * @returns The iteration (0 when it records none).
 *
 * @example
 * ```ts
 * import { runIteration } from "./checkpoint.ts";
 * console.log(runIteration({ info: { iteration: 40 } })); // 40
 * ```
 */
export function runIteration(checkpoint: CheckpointExtras): number {
  if (checkpoint.solver) {
    return (checkpoint.scst?.startIteration ?? 0) + checkpoint.solver.iteration;
  }
  const saved = checkpoint.info?.iteration;
  return typeof saved === "number" ? saved : 0;
}

/** The 8 bytes every HDF5 file written by recap starts with: `\x89HDF\r\n\x1a\n`. */
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Whether the file starts with the HDF5 signature (false when it cannot be read). */
async function hasHdf5Signature(path: string): Promise<boolean> {
  try {
    using file = await Deno.open(path);
    const head = new Uint8Array(HDF5_SIGNATURE.length);
    let n = 0;
    while (n < head.length) {
      const read = await file.read(head.subarray(n));
      if (read === null) break;
      n += read;
    }
    return n === head.length && HDF5_SIGNATURE.every((b, i) => head[i] === b);
  } catch {
    return false;
  }
}

/**
 * Loads a checkpoint, checking its layout, shapes and — when given — that it matches the
 * vocabulary and model sizes it will be used with. Every problem is an {@linkcode InputError}
 * whose one-line message names the file and what mismatches.
 * @param path The checkpoint file.
 * @param expect What it must match.
 * @returns The model and the saved solver state, experiment config and info.
 *
 * @example
 * ```ts
 * import { CaptioningRNN, loadCheckpoint, saveCheckpoint } from "../../mod.ts";
 * const wordToIdx = { "<NULL>": 0, "<START>": 1, "<END>": 2 };
 * const path = await saveCheckpoint(await Deno.makeTempFile({ suffix: ".h5" }), new CaptioningRNN({ wordToIdx, inputDim: 4 }));
 * const { model } = await loadCheckpoint(path, { idxToWord: ["<NULL>", "<START>", "<END>"] });
 * console.log(model.config.cellType); // "rnn"
 * ```
 */
export async function loadCheckpoint(
  path: string,
  expect: CheckpointExpectation = {},
): Promise<LoadedCheckpoint> {
  const bad = (what: string) => new InputError(`Cannot load checkpoint ${path}: ${what}`);
  let f: H5File;
  try {
    await checkRegularFile(path);
  } catch (e) {
    if (!(e instanceof UnreadableFile)) throw e;
    throw bad(
      e.problem === "missing"
        ? "the file does not exist; pass the path of a checkpoint.h5 written by recap"
        : `${e.detail}; pass the path of a checkpoint.h5 written by recap`,
    );
  }
  try {
    f = await H5File.open(path, "r");
  } catch (e) {
    if (!(await hasHdf5Signature(path))) {
      throw bad("it is not an HDF5 file (pass a checkpoint.h5 written by recap)");
    }
    throw bad(
      `it is not a readable HDF5 file (${(e as Error).message}); it may be truncated — ` +
        `use an earlier checkpoint`,
    );
  }
  try {
    if (f.getAttr("/", "format") !== CHECKPOINT_FORMAT) {
      throw bad(
        `attribute "format" is not "${CHECKPOINT_FORMAT}"; this HDF5 file is not a recap checkpoint`,
      );
    }
    const version = f.getAttr("/", "version");
    if (version !== CHECKPOINT_VERSION) {
      throw bad(
        `version ${version} is not supported (this recap reads version ${CHECKPOINT_VERSION})`,
      );
    }
    const config = f.getJsonAttr("/", "model_config") as CaptioningModelConfig | undefined;
    const idxToWord = f.getJsonAttr("/", "idx_to_word") as string[] | undefined;
    const wordToIdx = f.getJsonAttr("/", "word_to_idx") as Record<string, number> | undefined;
    if (!config || !idxToWord || !wordToIdx) {
      throw bad(`attributes "model_config", "idx_to_word" and "word_to_idx" are required`);
    }
    checkVocabulary(path, idxToWord, expect.idxToWord);
    let model: CaptioningModel;
    try {
      model = createCaptioningModel({ ...config, wordToIdx });
    } catch (e) {
      throw bad(`attribute "model_config" is invalid: ${(e as Error).message}`);
    }
    // The resolved config has exactly the options of the checkpoint's kind of model.
    const resolved = model.config as unknown as Record<string, unknown>;
    const wanted = expect.model ?? {};
    if (wanted.cellType !== undefined && wanted.cellType !== resolved.cellType) {
      throw bad(
        `model.cellType is ${JSON.stringify(resolved.cellType)} but the experiment asks for ${
          JSON.stringify(wanted.cellType)
        }`,
      );
    }
    for (const [key, want] of Object.entries(wanted)) {
      const have = resolved[key];
      if (want !== undefined && key in resolved && have !== want) {
        throw bad(
          `model.${key} is ${JSON.stringify(have)} but the experiment asks for ${
            JSON.stringify(want)
          }`,
        );
      }
    }
    for (const slot of model.layout.slots) {
      if (!f.hasDataset(slot.name)) throw bad(`dataset "${slot.name}" is missing`);
      const info = f.info(slot.name);
      if (info.dtype !== config.dtype || info.shape.join() !== slot.shape.join()) {
        throw bad(
          `dataset "${slot.name}" is ${info.dtype} [${info.shape}], expected ${config.dtype} [${slot.shape}]`,
        );
      }
      try {
        f.readRowsInto(slot.name, 0, slot.shape[0], model.flat, slot.offset);
      } catch (e) {
        throw bad(
          `dataset "${slot.name}" cannot be read (${
            (e as Error).message
          }); the file may be truncated`,
        );
      }
      const nonFinite = firstNonFinite(model.flat, slot.offset, slot.offset + slot.size);
      if (nonFinite >= 0) {
        throw bad(
          `dataset "${slot.name}" holds ${model.flat[nonFinite]} at element ${
            nonFinite - slot.offset
          }; this checkpoint's parameters are broken — use an earlier checkpoint`,
        );
      }
    }
    const out: LoadedCheckpoint = { model, path };
    const optim = f.getJsonAttr("/", "optimizer") as Omit<OptimizerState, "moments"> | undefined;
    const solver = f.getJsonAttr("/", "solver") as
      | Omit<SolverState, "optimizer" | "lossHistory" | "valLossHistory">
      | undefined;
    if (optim && solver) {
      checkSolverState(path, optim, solver);
      const moments: FloatArray[] = (MOMENT_NAMES[optim.rule] ?? []).map((name) => {
        const ds = `optimizer/${name}`;
        if (!f.hasDataset(ds)) throw bad(`dataset "${ds}" is missing`);
        const m = f.readRows(ds) as FloatArray;
        if (m.length !== model.layout.total) {
          throw bad(`dataset "${ds}" has ${m.length} elements, expected ${model.layout.total}`);
        }
        return m;
      });
      const loss = Array.from(f.readRows("history/loss"));
      const val = f.readRows("history/val_loss");
      const valLossHistory = [];
      for (let i = 0; i < val.length; i += 3) {
        valLossHistory.push({ epoch: val[i], iteration: val[i + 1], loss: val[i + 2] });
      }
      out.solver = {
        ...solver,
        lossHistory: loss,
        valLossHistory,
        optimizer: { ...optim, moments },
      };
    }
    const experiment = f.getJsonAttr("/", "experiment");
    if (experiment !== undefined) out.experiment = experiment;
    const info = f.getJsonAttr("/", "info");
    if (info !== undefined) out.info = info as Record<string, unknown>;
    const scst = f.getJsonAttr("/", "scst") as ScstPhase | undefined;
    if (scst !== undefined) {
      if (typeof scst?.startIteration !== "number" || typeof scst.from !== "string") {
        throw bad(`attribute "scst" is invalid: expected { startIteration, from }`);
      }
      out.scst = scst;
    }
    return out;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw bad(
      `${(e as Error).message}; the file may be truncated or corrupt — use an earlier checkpoint`,
    );
  } finally {
    f.close();
  }
}

/** The index of the first NaN or infinite element of a[start … end), or -1. */
function firstNonFinite(a: FloatArray, start: number, end: number): number {
  for (let i = start; i < end; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/** Checks the saved optimizer and solver attributes' types, naming the first that is wrong. */
function checkSolverState(path: string, optim: unknown, solver: unknown): void {
  const bad = (field: string, expected: string, got: unknown) =>
    new InputError(
      `Cannot load checkpoint ${path}: ${field}: expected ${expected}, got ${
        JSON.stringify(got)
      }; the file was not written by this recap — use an earlier checkpoint`,
    );
  const o = optim as Record<string, unknown>, s = solver as Record<string, unknown>;
  if (!UPDATE_RULES.includes(o.rule as UpdateRule)) {
    throw bad("optimizer.rule", `one of ${UPDATE_RULES.join(", ")}`, o.rule);
  }
  if (!Number.isInteger(o.t) || (o.t as number) < 0) {
    throw bad("optimizer.t", "a non-negative integer", o.t);
  }
  const config = o.config as Record<string, unknown> | undefined;
  for (const key of OPTIM_HYPERPARAMS) {
    if (typeof config?.[key] !== "number" || !Number.isFinite(config[key])) {
      throw bad(`optimizer.config.${key}`, "a finite number", config?.[key]);
    }
  }
  for (const key of ["iteration", "epoch"]) {
    if (!Number.isInteger(s[key]) || (s[key] as number) < 0) {
      throw bad(`solver.${key}`, "a non-negative integer", s[key]);
    }
  }
  const state = s.batchState;
  if (!Array.isArray(state) || state.length !== 4 || !state.every(Number.isInteger)) {
    throw bad("solver.batchState", "four integers", state);
  }
  if (s.initialLoss !== null && typeof s.initialLoss !== "number") {
    throw bad("solver.initialLoss", "a number or null", s.initialLoss);
  }
}

/** Checks that a checkpoint's vocabulary equals the data's, naming the first difference. */
function checkVocabulary(path: string, saved: readonly string[], wanted?: readonly string[]): void {
  if (!wanted) return;
  const n = Math.max(saved.length, wanted.length);
  for (let i = 0; i < n; i++) {
    if (saved[i] !== wanted[i]) {
      throw new InputError(
        `Cannot load checkpoint ${path}: its vocabulary (${saved.length} words) differs from the ` +
          `data's (${wanted.length} words) at index ${i} (${JSON.stringify(saved[i])} vs ` +
          `${JSON.stringify(wanted[i])}); use the dataset the checkpoint was trained on`,
      );
    }
  }
}
