/**
 * The run's job: one process, or the processes of an MPI job (`mpiexec.mpich -n P deno task
 * train exp.json`, or Slurm's `srun`), noticed from the launcher's environment (or asked for
 * by `train.distributed.mpi`). MPICH is loaded only then. In a job, rank 0 alone writes
 * (checkpoints, metrics.jsonl, the report) and prints; every rank trains its shards of each
 * batch (workers/distributed_engine.ts).
 * @module
 */
import type { Communicator } from "../../workers/mpi/communicator.ts";
import { MpiCommunicator } from "../../workers/mpi/communicator.ts";
import { MPICH_LIBRARY } from "../../workers/mpi/binding.ts";
import { readEnv } from "../../layers/kernels/env.ts";
import { InputError } from "../errors.ts";

/** How a process was launched into an MPI job, as its environment says. */
export interface Launch {
  /** Which launcher. */
  launcher: string;
  /** The job's size it announced. */
  size: number;
  /** This process's rank it announced. */
  rank: number;
}

/** Each launcher's variables of the job's size and of this process's rank. */
const LAUNCH_VARIABLES: [string, string, string][] = [
  ["mpiexec", "PMI_SIZE", "PMI_RANK"],
  ["srun", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"],
  ["Open MPI's mpirun", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"],
];

/** The launchers' variables of this process (none without env access: then no launch). */
function launchEnv(): Record<string, string | undefined> {
  return Object.fromEntries(
    LAUNCH_VARIABLES.flatMap(([, s, r]) => [s, r].map((v) => [v, readEnv(v)])),
  );
}

/**
 * The MPI launch this process's environment shows, if any: MPICH's Hydra (`PMI_SIZE`,
 * `PMI_RANK`), Slurm's `srun` (`SLURM_STEP_NUM_TASKS`, `SLURM_PROCID`), Open MPI's `mpirun`
 * (`OMPI_COMM_WORLD_SIZE`, which MPICH cannot join).
 * @param env The environment (default this process's).
 * @returns The launch, or null outside a launcher.
 *
 * @example
 * ```ts
 * import { detectLaunch } from "./job.ts";
 * console.log(detectLaunch({ PMI_SIZE: "2", PMI_RANK: "1" })); // { launcher: "mpiexec", size: 2, rank: 1 }
 * console.log(detectLaunch({})); // null
 * ```
 */
export function detectLaunch(
  env: Record<string, string | undefined> = launchEnv(),
): Launch | null {
  for (const [launcher, size, rank] of LAUNCH_VARIABLES) {
    if (env[size] !== undefined) {
      return { launcher, size: Number(env[size]), rank: Number(env[rank] ?? 0) };
    }
  }
  return null;
}

/** This process's place in the run. */
export interface Job {
  /** The communicator (null for a one-process run). */
  comm: (Communicator & { host: string }) | null;
  /** This process's rank (0 alone). */
  rank: number;
  /** The processes (1 alone). */
  size: number;
  /** Whether this process writes the run's files and prints: rank 0. */
  writes: boolean;
}

/** A one-process run. */
export const SINGLE_PROCESS: Job = { comm: null, rank: 0, size: 1, writes: true };

let open: Job | null = null;

/**
 * Joins the MPI job this process was launched into (once; later calls return it), or runs
 * alone. Checks that MPI sees the job the launcher announced: a launcher of another MPI
 * starts each process as a job of its own, which would train P separate models into one
 * directory.
 * @param mode `train.distributed.mpi`: "auto" (join when launched), "on" (always), "off".
 * @param timeoutS How long a rank waits for another (`train.workerTimeout`).
 * @param env The environment (default this process's).
 * @returns The job.
 * @throws {InputError} When MPICH does not load, or the job is not the one announced.
 *
 * @example
 * ```ts
 * import { openJob } from "./job.ts";
 * console.log(openJob("off", 900).size); // 1
 * ```
 */
export function openJob(
  mode: "auto" | "on" | "off",
  timeoutS: number,
  env: Record<string, string | undefined> = launchEnv(),
): Job {
  if (open) return open;
  const launch = detectLaunch(env);
  if (mode === "off" || (mode === "auto" && launch === null)) return SINGLE_PROCESS;
  let comm: MpiCommunicator;
  try {
    comm = new MpiCommunicator(timeoutS);
  } catch (e) {
    throw new InputError(
      `train.distributed.mpi: ${(e as Error).message}; or set train.distributed.mpi to "off"`,
      { cause: e },
    );
  }
  if (launch !== null && comm.size !== launch.size) {
    throw new InputError(
      `train.distributed.mpi: ${launch.launcher} started ${launch.size} processes but ` +
        `${MPICH_LIBRARY} sees a job of ${comm.size}: the launcher is not MPICH's; launch ` +
        `with mpiexec.mpich (or srun --mpi=pmi2), or set train.distributed.mpi to "off"`,
    );
  }
  open = { comm, rank: comm.rank, size: comm.size, writes: comm.rank === 0 };
  return open;
}

/**
 * The job {@linkcode openJob} joined, if any.
 * @returns The job, or null when this process has not joined one.
 *
 * @example
 * ```ts
 * import { currentJob } from "./job.ts";
 * console.log(currentJob()); // null
 * ```
 */
export function currentJob(): Job | null {
  return open;
}

const NAME_BYTES = 128;

/**
 * Every rank's host, in rank order (a collective: every rank calls it).
 * @param job The job.
 * @returns One host name per rank.
 */
export async function rankHosts(job: Job): Promise<string[]> {
  const comm = job.comm;
  if (!comm) return [Deno.hostname()];
  const names: string[] = [];
  for (let r = 0; r < job.size; r++) {
    const bytes = new Uint8Array(new SharedArrayBuffer(NAME_BYTES));
    if (r === job.rank) bytes.set(new TextEncoder().encode(comm.host).subarray(0, NAME_BYTES));
    await comm.bcast(bytes, r).wait("the ranks' host names");
    names.push(new TextDecoder().decode(bytes).replace(/\0+$/, ""));
  }
  return names;
}

/**
 * The job's layout in one line: its size and which ranks run on which host.
 * @param hosts Each rank's host, in rank order.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { describeLayout } from "./job.ts";
 * console.log(describeLayout(["a", "a", "b"])); // MPI job of 3 processes: ranks 0-1 on a, rank 2 on b
 * ```
 */
export function describeLayout(hosts: readonly string[]): string {
  const runs: { host: string; from: number; to: number }[] = [];
  hosts.forEach((host, r) => {
    const last = runs.at(-1);
    if (last && last.host === host) last.to = r;
    else runs.push({ host, from: r, to: r });
  });
  const parts = runs.map((g) =>
    g.from === g.to ? `rank ${g.from} on ${g.host}` : `ranks ${g.from}-${g.to} on ${g.host}`
  );
  return `MPI job of ${hosts.length} processes: ${parts.join(", ")}`;
}

/**
 * Runs `task` on rank 0 first, then on the other ranks (a collective): for work that
 * creates shared files, such as generating the synthetic dataset, which the others then read.
 * @param job The job.
 * @param task The work.
 * @returns The task's result on this rank.
 */
export async function rankZeroFirst<T>(job: Job, task: () => Promise<T>): Promise<T> {
  if (!job.comm || job.size === 1) return await task();
  const signal = new Uint8Array(new SharedArrayBuffer(1));
  if (job.rank === 0) {
    const result = await task();
    await job.comm.bcast(signal, 0).wait("rank 0");
    return result;
  }
  await job.comm.bcast(signal, 0).wait("rank 0 to prepare the data");
  return await task();
}

/**
 * Ends the job's part of this process: the other ranks wait (without spinning) until rank 0
 * has finished its work — evaluation and the report, which rank 0 does alone — then MPI is
 * finalised everywhere.
 * @param job The job.
 */
export async function finishJob(job: Job): Promise<void> {
  const comm = job.comm as MpiCommunicator | null;
  if (!comm) return;
  const signal = new Uint8Array(new SharedArrayBuffer(1));
  // Rank 0's evaluation may take longer than any one step: no time limit (a rank that dies
  // ends the job through the launcher).
  if (job.size > 1) await comm.bcast(signal, 0).wait("rank 0 to finish", Infinity);
  comm.finalize();
  open = null;
}

/** How long a failing rank waits for its message to reach the launcher before it aborts. */
const ABORT_DELAY_MS = 200;

/**
 * Ends every process of the job after an error on this rank, with the rank and the message
 * on stderr: never a job whose other ranks wait for this one forever.
 * @param job The job.
 * @param message The error's one-line message.
 * @param code The exit code.
 */
export function abortJob(job: Job, message: string, code: number): never {
  console.error(`recap: rank ${job.rank} of ${job.size} (${job.comm?.host}): ${message}`);
  // The launcher forwards the line through a pipe; MPI_Abort would kill it before it does.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ABORT_DELAY_MS);
  return job.comm!.abort(code);
}
