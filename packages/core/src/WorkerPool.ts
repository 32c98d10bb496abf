/**
 * A pool of worker threads running one synchronous program, for the CPU-bound file work of store (hash, compress)
 * and restore (decompress, verify, write) on every core. A program is a self-contained function shipped as source
 * text: it gets Node's `require` and `data`, and returns the handler for one message.
 */
import { Data, Effect, type Scope } from "effect"
import { createRequire } from "node:module"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"

/** A handler's result: the reply, and the buffers in it that the worker hands over instead of copying. */
export interface Handled<O> {
  readonly value: O
  readonly transfer?: ReadonlyArray<ArrayBuffer>
}

/**
 * A file worker failed outside its program's own error handling: its thread died or was stopped, or the program threw
 * (a bug). Every message on that lane fails with it; nothing it was writing is put in place.
 */
export class WorkerFailed extends Data.TaggedError("WorkerFailed")<{ readonly detail: string }> {
  override get message() {
    return `a file worker failed: ${this.detail}`
  }
}

const failed = (e: unknown): WorkerFailed =>
  e instanceof WorkerFailed ? e : new WorkerFailed({ detail: e instanceof Error ? e.message : String(e) })

/** How a lane answers one message: its value, or the failure of the lane. */
type Reply<O> = (value: O | undefined, error: WorkerFailed | undefined) => void

export type Program<D, I, O> = (req: NodeRequire, data: D) => (input: I) => Handled<O>

export interface WorkerPool<I, O> {
  /** Independent lanes: messages to one lane are handled in order; lanes run in parallel. */
  readonly lanes: number
  /** Runs one message on a lane. A buffer in `transfer` is taken over by the worker: the caller must not reuse it. */
  readonly run: (lane: number, input: I, transfer?: ReadonlyArray<ArrayBuffer>) => Effect.Effect<O, WorkerFailed>
  /**
   * Runs many messages, spread over the lanes in turn, as one effect whose result is in their order: no fiber or
   * callback per message, which a store of small files paid on the main thread for every file.
   */
  readonly runAll: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, WorkerFailed>
}

/** Worker threads worth starting here: one per core, at most four (beyond that the disk, not the CPU, is the limit). */
const defaultSize = (): number => Math.min(4, availableParallelism())

/** Jobs of this many files start worker threads; below it, start-up (~30 ms) costs more than it saves. */
const threshold = 256

/** Worker threads for a job of `files` files: `defaultSize()` for a large one, 0 (run in this thread) otherwise. */
export const sizeFor = (files: number): number => (files >= threshold ? defaultSize() : 0)

/**
 * How many worker threads an operation may start: a count (`0`: all in the calling thread), or `"auto"` for
 * `sizeFor` (what the CLI asks for). A library caller that says nothing gets `0`: threads are the host's to start.
 */
export type Count = number | "auto"

/** The threads to start for a job of `items` items. */
export const countFor = (count: Count | undefined, items: number): number =>
  count === "auto" ? sizeFor(items) : Math.max(0, Math.floor(count ?? 0))

// A CommonJS bundle of this module has an empty `import.meta`; `__filename` (the bundle) is its base there.
const require = createRequire(import.meta.url ?? __filename)

/** Runs the program in this thread: no start-up cost, for single files and small jobs. */
export const inThread = <D, I, O>(program: Program<D, I, O>, data: D): WorkerPool<I, O> => {
  const handle = program(require, data)
  return {
    lanes: 1,
    run: (_lane, input) => Effect.try({ try: () => handle(input).value, catch: failed }),
    runAll: (inputs) => Effect.try({ try: () => inputs.map((input) => handle(input).value), catch: failed })
  }
}

/**
 * `size` worker threads running `program`, each one lane; terminated when the scope closes. Each worker sets
 * `v8Flags` as it starts: flags the host set at run time no longer held once workers had started.
 */
export const make = <D, I, O>(
  program: Program<D, I, O>,
  data: D,
  size: number,
  v8Flags: ReadonlyArray<string> = []
): Effect.Effect<WorkerPool<I, O>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // The program arrives as text: a host bundled with esbuild's --keep-names wraps its functions in `__name(...)`,
      // a helper of the bundle the worker lacks, so the worker defines it as esbuild does (globally: programs may
      // compile more shipped text with vm.runInThisContext).
      const source =
        `globalThis.__name ??= (target, value) => Object.defineProperty(target, "name", { value, configurable: true });
const { parentPort, workerData } = require("node:worker_threads");
${v8Flags.map((flag) => `require("node:v8").setFlagsFromString(${JSON.stringify(flag)});`).join("\n")}
const handle = (${program.toString()})(require, workerData);
parentPort.on("message", (batch) => {
  const replies = [];
  const transfer = [];
  for (const m of batch) {
    const r = handle(m.input);
    replies.push({ id: m.id, value: r.value });
    if (r.transfer) transfer.push(...r.transfer);
  }
  parentPort.postMessage(replies, transfer);
});`
      return Array.from({ length: Math.max(1, size) }, () => {
        // A small young generation: the garbage here is mostly buffers, and collecting it early keeps memory flat.
        const worker = new Worker(source, {
          eval: true,
          workerData: data,
          resourceLimits: { maxYoungGenerationSizeMb: 2 }
        })
        const pending = new Map<number, Reply<O>>()
        worker.on("message", (replies: ReadonlyArray<{ id: number; value: O }>) => {
          for (const m of replies) {
            pending.get(m.id)?.(m.value, undefined)
            pending.delete(m.id)
          }
        })
        const lane = {
          worker,
          pending,
          broken: undefined as WorkerFailed | undefined,
          outbox: [] as Array<{ id: number; input: I }>,
          transfer: new Set<ArrayBuffer>()
        }
        // A program turns the errors it expects into replies; anything else fails the lane's messages, never hangs them.
        const broke = (e: unknown) => {
          lane.broken ??= failed(e)
          for (const reply of pending.values()) reply(undefined, lane.broken)
          pending.clear()
        }
        worker.on("error", broke)
        worker.on("exit", (code) => broke(new WorkerFailed({ detail: `worker thread exited (code ${code})` })))
        return lane
      })
    }),
    (lanes) => Effect.promise(() => Promise.all(lanes.map(({ worker }) => worker.terminate())))
  ).pipe(Effect.map((lanes): WorkerPool<I, O> => {
    let ids = 0
    const flush = (lane: (typeof lanes)[number]) => {
      const batch = lane.outbox
      const transfer = [...lane.transfer]
      lane.outbox = []
      lane.transfer.clear()
      try {
        lane.worker.postMessage(batch, transfer)
      } catch (e) {
        for (const { id } of batch) {
          lane.pending.get(id)?.(undefined, failed(e))
          lane.pending.delete(id)
        }
      }
    }
    /** Queues one message; `reply` gets its value or the lane's failure. */
    const send = (index: number, input: I, transfer: ReadonlyArray<ArrayBuffer>, reply: Reply<O>) => {
      const lane = lanes[index % lanes.length]!
      if (lane.broken !== undefined) return reply(undefined, lane.broken)
      const id = ids++
      lane.pending.set(id, reply)
      // Messages cost ~0.1 ms each on the main thread: what is asked in one turn goes as one message per lane.
      if (lane.outbox.length === 0) queueMicrotask(() => flush(lane))
      lane.outbox.push({ id, input })
      for (const t of transfer) lane.transfer.add(t)
    }
    let turn = 0
    return {
      lanes: lanes.length,
      run: (index, input, transfer = []) =>
        Effect.async<O, WorkerFailed>((resume) =>
          send(index, input, transfer, (value, error) =>
            resume(error === undefined ? Effect.succeed(value as O) : Effect.fail(error)))
        ),
      runAll: (inputs) =>
        Effect.async<ReadonlyArray<O>, WorkerFailed>((resume) => {
          const values = new Array<O>(inputs.length)
          let left = inputs.length
          let done = false
          if (left === 0) {
            return resume(Effect.succeed(values))
          }
          inputs.forEach((input, i) =>
            send(turn++, input, [], (value, error) => {
              if (done) {
                return
              }
              if (error !== undefined) {
                done = true
                return resume(Effect.fail(error))
              }
              values[i] = value as O
              if (--left === 0) {
                done = true
                resume(Effect.succeed(values))
              }
            })
          )
        })
    }
  }))

const isWhole = (v: Uint8Array): v is Uint8Array & { readonly buffer: ArrayBuffer } =>
  v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength

/** The buffers of `views` that can be handed over whole (a view into a shared buffer, such as a pool slice, cannot). */
export const transferable = (views: Iterable<Uint8Array>): Array<ArrayBuffer> => {
  const out: Array<ArrayBuffer> = []
  for (const v of views) if (isWhole(v)) out.push(v.buffer)
  return out
}

/**
 * `view`, on a buffer of its own: copied when it shares one (a pool slice; a base64 decode of text of an unexpected
 * shape). A shared buffer cannot be handed over, so a message clones it whole, and the worker's copy waited there for
 * a collection: a PostgreSQL batch restore's workers held ~65 MiB of them each.
 */
export const owned = (view: Uint8Array): Uint8Array => (isWhole(view) ? view : new Uint8Array(view))
