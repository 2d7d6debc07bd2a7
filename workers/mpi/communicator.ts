/**
 * The job's communicator over MPICH (`MPI_COMM_WORLD`): this process's rank, the job's size,
 * and the nonblocking transfers the distributed engine is built of, each waited for by
 * polling `MPI_Test` from the event loop. MPICH's blocking calls busy-poll (a waiting rank
 * would hold a whole core while the pool's workers compute) and would stop signals and
 * timers; a wait here spins only briefly, then tests once a millisecond, and gives up with a
 * message after `timeoutS` (a rank that is stuck or gone never hangs the job).
 *
 * Every call is made from the main thread (`MPI_THREAD_SINGLE`).
 * @module
 */
import { readEnv } from "../../layers/kernels/env.ts";
import { checkMpi, loadMpich, MPI, type MpiSymbols } from "./binding.ts";

/** A typed array MPI sends and receives: float32, float64, or bytes. */
export type MpiBuffer = Float32Array | Float64Array | Uint8Array;

/** A transfer under way. */
export interface MpiRequest {
  /**
   * Waits until the transfer is complete.
   * @param what What is waited for, for the timeout's message.
   * @param timeoutS How long it may take (seconds; default the communicator's timeout).
   */
  wait(what: string, timeoutS?: number): Promise<void>;
}

/** What a distributed engine needs of a job: its ranks and in-order transfers between them. */
export interface Communicator {
  /** This process's rank, 0 … size − 1. */
  readonly rank: number;
  /** The number of processes in the job. */
  readonly size: number;
  /**
   * Starts sending `view` to rank `dest` (the view must not change until the wait ends).
   * @param view The data.
   * @param dest The receiving rank.
   * @param tag The message's tag (messages of one tag arrive in the order sent).
   * @returns The transfer.
   */
  send(view: MpiBuffer, dest: number, tag: number): MpiRequest;
  /**
   * Starts receiving into `view` from rank `source`.
   * @param view Where the data lands.
   * @param source The sending rank.
   * @param tag The message's tag.
   * @returns The transfer.
   */
  recv(view: MpiBuffer, source: number, tag: number): MpiRequest;
  /**
   * Starts broadcasting `view` from rank `root` to every rank, in place.
   * @param view The data (root) or where it lands (the others).
   * @param root The rank whose data it is.
   * @returns The transfer.
   */
  bcast(view: MpiBuffer, root: number): MpiRequest;
  /**
   * Starts an element-wise maximum of `view` over every rank, in place.
   * @param view float64 values, the same length on every rank.
   * @returns The transfer.
   */
  max(view: Float64Array): MpiRequest;
  /**
   * Ends every process of the job (`MPI_Abort`) with the exit code.
   * @param code The exit code.
   */
  abort(code: number): never;
}

/** How long a rank waits for another by default before it ends the job (seconds). */
export const DEFAULT_MPI_TIMEOUT_S = 900;

/**
 * How long a wait tests without pause before it sleeps 1 ms between tests (ms): MPICH moves a
 * large message only while both sides call into it, so a transfer under way is tested
 * continuously; a rank that waits longer is waiting for another rank's compute.
 */
const DEFAULT_SPIN_MS = 20;

/** `RECAP_MPI_SPIN_MS` checked: a non-number would make every wait spin without pause. */
function spinMs(value: string | undefined): number {
  if (value === undefined) return DEFAULT_SPIN_MS;
  const ms = Number(value);
  if (value.trim() === "" || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(
      `Invalid RECAP_MPI_SPIN_MS: expected milliseconds >= 0, got "${value}"; unset it for ${DEFAULT_SPIN_MS}`,
    );
  }
  return ms;
}

/** The MPI datatype and element count of a buffer. */
function typeOf(view: MpiBuffer): { type: number; count: number } {
  if (view instanceof Float32Array) return { type: MPI.FLOAT, count: view.length };
  if (view instanceof Float64Array) return { type: MPI.DOUBLE, count: view.length };
  return { type: MPI.BYTE, count: view.byteLength };
}

/** The job's MPI_COMM_WORLD: see the module's documentation. */
export class MpiCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  /** This host's name as MPI reports it. */
  readonly host: string;
  readonly #mpi: MpiSymbols;
  readonly #timeoutMs: number;
  readonly #spinMs = spinMs(readEnv("RECAP_MPI_SPIN_MS"));
  // MPI_STATUS_IGNORE and MPI_IN_PLACE are the pointer values 1 and -1 (made only with FFI).
  readonly #statusIgnore: Deno.PointerValue;
  readonly #inPlace: Deno.PointerValue;
  #finalized = false;

  /**
   * Initialises MPI (once per process) and reads the rank and size.
   * @param timeoutS How long a wait may take before it throws (seconds).
   */
  constructor(timeoutS = DEFAULT_MPI_TIMEOUT_S) {
    this.#mpi = loadMpich();
    this.#timeoutMs = timeoutS * 1000;
    this.#statusIgnore = Deno.UnsafePointer.create(1n);
    this.#inPlace = Deno.UnsafePointer.create(0xffffffffffffffffn);
    const flag = new Int32Array(1);
    checkMpi(this.#mpi.MPI_Initialized(flag), "MPI_Initialized");
    if (!flag[0]) {
      const provided = new Int32Array(1);
      checkMpi(
        this.#mpi.MPI_Init_thread(null, null, MPI.THREAD_SINGLE, provided),
        "MPI_Init_thread",
      );
    }
    const out = new Int32Array(1);
    checkMpi(this.#mpi.MPI_Comm_rank(MPI.COMM_WORLD, out), "MPI_Comm_rank");
    this.rank = out[0];
    checkMpi(this.#mpi.MPI_Comm_size(MPI.COMM_WORLD, out), "MPI_Comm_size");
    this.size = out[0];
    const name = new Uint8Array(MPI.MAX_PROCESSOR_NAME), len = new Int32Array(1);
    checkMpi(this.#mpi.MPI_Get_processor_name(name, len), "MPI_Get_processor_name");
    this.host = new TextDecoder().decode(name.subarray(0, len[0]));
  }

  send(view: MpiBuffer, dest: number, tag: number): MpiRequest {
    const { type, count } = typeOf(view), req = new Int32Array(1);
    const ptr = Deno.UnsafePointer.of(view);
    checkMpi(this.#mpi.MPI_Isend(ptr, count, type, dest, tag, MPI.COMM_WORLD, req), "MPI_Isend");
    return this.#request(req, view, `rank ${dest}`);
  }

  recv(view: MpiBuffer, source: number, tag: number): MpiRequest {
    const { type, count } = typeOf(view), req = new Int32Array(1);
    const ptr = Deno.UnsafePointer.of(view);
    checkMpi(
      this.#mpi.MPI_Irecv(ptr, count, type, source, tag, MPI.COMM_WORLD, req),
      "MPI_Irecv",
    );
    return this.#request(req, view, `rank ${source}`);
  }

  bcast(view: MpiBuffer, root: number): MpiRequest {
    const { type, count } = typeOf(view), req = new Int32Array(1);
    const ptr = Deno.UnsafePointer.of(view);
    checkMpi(this.#mpi.MPI_Ibcast(ptr, count, type, root, MPI.COMM_WORLD, req), "MPI_Ibcast");
    return this.#request(req, view, "every rank");
  }

  max(view: Float64Array): MpiRequest {
    const req = new Int32Array(1), ptr = Deno.UnsafePointer.of(view);
    checkMpi(
      this.#mpi.MPI_Iallreduce(
        this.#inPlace,
        ptr,
        view.length,
        MPI.DOUBLE,
        MPI.MAX,
        MPI.COMM_WORLD,
        req,
      ),
      "MPI_Iallreduce",
    );
    return this.#request(req, view, "every rank");
  }

  abort(code: number): never {
    this.#mpi.MPI_Abort(MPI.COMM_WORLD, code);
    Deno.exit(code); // MPI_Abort does not return; this is for the type checker
  }

  /** Ends MPI in this process (once; later calls do nothing). */
  finalize(): void {
    if (this.#finalized) return;
    this.#finalized = true;
    checkMpi(this.#mpi.MPI_Finalize(), "MPI_Finalize");
  }

  /** A request that polls `MPI_Test` (keeping `view` reachable until it completes). */
  #request(req: Int32Array, view: MpiBuffer, peer: string): MpiRequest {
    const mpi = this.#mpi, defaultMs = this.#timeoutMs, rank = this.rank, spinMs = this.#spinMs;
    const statusIgnore = this.#statusIgnore;
    let done = false;
    return {
      async wait(what: string, timeoutS?: number): Promise<void> {
        const timeoutMs = timeoutS === undefined ? defaultMs : timeoutS * 1000;
        const flag = new Int32Array(1), start = performance.now();
        for (let tests = 1; !done; tests++) {
          checkMpi(mpi.MPI_Test(req, flag, statusIgnore), "MPI_Test");
          if (flag[0]) {
            done = true;
            break;
          }
          if (performance.now() - start > timeoutMs) {
            throw new Error(
              `MPI: rank ${rank} waited ${Math.round(timeoutMs / 1000)} s for ${what} from ` +
                `${peer}; a rank is stuck or gone (train.workerTimeout sets the limit)`,
            );
          }
          const waited = performance.now() - start;
          // A macrotask now and then even while spinning, so signals and timers get through.
          if (waited > spinMs || tests % 1000 === 0) {
            await new Promise((resolve) => setTimeout(resolve, waited > spinMs ? 1 : 0));
          }
        }
        void view.length;
      },
    };
  }
}
