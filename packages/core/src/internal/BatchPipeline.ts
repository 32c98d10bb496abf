/**
 * `Restorer.restoreStream` and `restoreAll`: many items as one pipeline. Groups of items are located in one round trip
 * each, their payloads fetched in byte-bounded units (unless the writer's workers read the archive themselves:
 * `DirectReads`), and each unit is written on a free lane of a `RestoreWriter`, recorded in one transaction and one
 * evidence write, renamed into place, then reported, while the next groups are located. Failures are results; each
 * carries its item's index in the input.
 */
import { Chunk, Effect, Either, Metric, Queue, Stream } from "effect"
import { StoreError, TombstoneNotFound } from "../ArchiveStore.js"
import type * as Evidence from "../Evidence.js"
import * as Guarded from "../Guarded.js"
import * as Ids from "../Ids.js"
import * as Metrics from "../Metrics.js"
import * as RestorePlan from "../RestorePlan.js"
import type { ItemResult, Outcome, Request, RunOptions } from "../Restorer.js"
import * as RestoreWriter from "../RestoreWriter.js"
import * as Timestamp from "../Timestamp.js"
import * as WorkerPool from "../WorkerPool.js"
import * as EventLoop from "./EventLoop.js"
import {
  type Env,
  failure,
  finishTimings,
  type Indexed,
  outcomeOf,
  type Work,
  type WriteStage,
  type Written
} from "./WriteStage.js"

/**
 * Items located per round trip (one `IN` list, at most 500): a sixteenth of the batch, so that the pipeline stays full
 * and a stop waits for few items. A stream's chunks are split to this size, never joined: a group that waited for
 * more items could wait for ever on a caller that reads ahead only as far as its results let it (`Batch.run`).
 * Workers that read payloads themselves write and record the group as one unit: per-unit costs (a transaction, an
 * evidence write, a message) were a fifth of the main thread's time at 128 items.
 */
export const locateGroupSize = (items: number) => Math.min(500, Math.max(128, Math.ceil(items / 16)))
/**
 * Payloads fetched through this thread come in units bounded by bytes and count (bounded memory): up to ~14 units are
 * in flight (fetched, queued, written). 2 MiB, not 4: the large corpus's batch from PostgreSQL peaked 8-13 MiB lower
 * (188-202 MiB), in the same time.
 */
const payloadGroupBytes = 2 * 1024 * 1024
const payloadGroupItems = 128

/** What flows from the fetch stage to the write stage: items ready to write, and items that already failed. */
type Unit = { readonly work: Array<Work>; readonly early: Array<[number, ItemResult]> }

export const make = ({ evidence, store }: Env, stage: WriteStage) => {
  const guarded = Guarded.ofArchive(store.files, evidence.file)
  /** Locates a group in one round trip and decides each item's action; failures become results, not errors. */
  const locateGroup = (group: ReadonlyArray<Indexed>, kept: ReadonlyArray<Guarded.Guarded>): Effect.Effect<Unit> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const started = clock.unsafeCurrentTimeNanos()
      const valid: Array<Indexed> = []
      const early: Array<[number, ItemResult]> = []
      for (const { index, request } of group) {
        const checked = Ids.decodeTombstoneId(request.tombstone)
        if (Either.isRight(checked)) valid.push({ index, request: { ...request, tombstone: checked.right } })
        else early.push(failure(index, request, checked.left, 0))
      }
      const located = yield* Effect.either(RestorePlan.locate(store, valid.map((v) => v.request.tombstone)))
      const locateMs = Timestamp.elapsedMs(clock, started)
      if (located._tag === "Left") {
        for (const { index, request } of valid) early.push(failure(index, request, located.left, locateMs))
        return { work: [], early }
      }
      const work: Array<Work> = []
      for (const { index, request } of valid) {
        const found = located.right.get(request.tombstone)
        if (found === undefined) {
          early.push(failure(index, request, new TombstoneNotFound({ tombstone: request.tombstone }), locateMs))
          continue
        }
        // A row the store refused fails its own items only.
        if (found instanceof StoreError) {
          early.push(failure(index, request, found, locateMs))
          continue
        }
        const planned = clock.unsafeCurrentTimeNanos()
        // Before a resumed item is taken as done: its output holding the artifact's content is no proof of the item's.
        const wrong = RestorePlan.mismatch(found, request.expected)
        if (wrong !== undefined) {
          early.push(failure(index, request, wrong, locateMs + Timestamp.elapsedMs(clock, planned)))
          continue
        }
        const resumed = request.resumed
        if (
          resumed !== undefined && resumed.sha256 === found.sha256 && resumed.bytes === found.sizeBytes &&
          RestorePlan.stillHolds(request.output, resumed)
        ) {
          const duration_ms = locateMs + Timestamp.elapsedMs(clock, planned)
          early.push([index, {
            _tag: "Success",
            request,
            outcome: {
              tombstone: request.tombstone,
              output: request.output,
              status: "skipped",
              bytes: resumed.bytes,
              sha256: resumed.sha256,
              timings: {
                duration_ms,
                fetch_ms: locateMs,
                decompression_ms: 0,
                verify_ms: duration_ms - locateMs,
                write_ms: 0,
                record_ms: 0
              }
            }
          }])
          continue
        }
        const action = RestorePlan.plan(found, request, kept)
        if (action._tag === "Left") {
          early.push(failure(index, request, action.left, locateMs + Timestamp.elapsedMs(clock, planned)))
        } else {work.push({
            index,
            request,
            located: found,
            action: action.right,
            payload: undefined,
            fetchMs: locateMs
          })}
      }
      return { work, early }
    })

  /** Splits a located group into units whose inline payloads fit one byte-bounded round trip (bounded memory). */
  const splitByBytes = (unit: Unit): ReadonlyArray<Unit> => {
    const units: Array<Unit> = [{ work: [], early: unit.early }]
    let bytes = 0
    for (const w of unit.work) {
      const size = w.action === "write" && w.located.layout === "inline" ? w.located.compressedSize : 0
      const current = units[units.length - 1]!
      if (current.work.length > 0 && (current.work.length >= payloadGroupItems || bytes + size > payloadGroupBytes)) {
        units.push({ work: [w], early: [] })
        bytes = size
      } else {
        current.work.push(w)
        bytes += size
      }
    }
    return units
  }

  const fetchPayloads = (unit: Unit): Effect.Effect<Unit> =>
    Effect.gen(function*() {
      const wanted = unit.work.filter((w) => w.action === "write" && w.located.layout === "inline")
      if (wanted.length === 0) return unit
      const clock = yield* Effect.clock
      const started = clock.unsafeCurrentTimeNanos()
      const fetched = yield* Effect.either(RestorePlan.payloads(store, wanted.map((w) => w.located.artifactId)))
      const ms = Timestamp.elapsedMs(clock, started)
      const failed = new Map<Work, StoreError>()
      // Items with the same content share one fetched buffer; a worker takes its buffer over, so each gets its own.
      const given = new Set<Uint8Array>()
      for (const w of wanted) {
        w.fetchMs += ms
        const payload = fetched._tag === "Left" ? fetched.left : fetched.right.get(w.located.artifactId)
        if (payload instanceof StoreError) {
          failed.set(w, payload)
          continue
        }
        w.payload = payload !== undefined && given.has(payload) ? Buffer.from(payload) : payload
        if (payload !== undefined) given.add(payload)
      }
      if (failed.size === 0) return unit
      return {
        work: unit.work.filter((w) => !failed.has(w)),
        early: [...unit.early, ...Array.from(failed, ([w, e]) => failure(w.index, w.request, e, w.fetchMs))]
      }
    })

  const restoreStream = <E>(
    requests: Stream.Stream<Request, E>,
    total: number,
    options: RunOptions
  ): Effect.Effect<void, E> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const kept = [...guarded, ...(options.guarded ?? [])]
      let failed = false
      let stopped = false
      const halted = () => stopped || (options.failFast === true && failed)

      const workers = WorkerPool.countFor(options.workers, total)
      // Workers that can open the archive themselves read the payloads too: content never crosses this thread.
      const writer = options.writer ?? (workers > 0
        ? yield* RestoreWriter.workers(workers, {
          v8Flags: options.workerV8Flags,
          direct: store.directReads,
          exposeGc: options.tuneV8
        })
        : stage.localWriter())
      if (options.stop) {
        // Worker threads skip the files of units sent to them but not begun. This thread's writer, shared by every
        // restore, is not halted: it writes a unit without yielding, and a unit not started is not sent. A pool kept
        // across runs is resumed when this one ends, its units all answered.
        const halts = options.writer !== undefined || workers > 0
        if (halts) yield* Effect.addFinalizer(() => writer.resume)
        yield* Effect.forkScoped(Effect.andThen(options.stop, () =>
          Effect.zipRight(
            Effect.sync(() => void (stopped = true)),
            halts ? writer.halt : Effect.void
          )))
      }
      // Three units per lane: a worker writes one while the main thread records another and fetches the next; a
      // recorded unit's rename (`commit`) queues behind the unit being written, so it holds its slot that long.
      // Fail-fast writes one unit at a time, so nothing after the first failure is started.
      const slots = options.failFast ? 1 : workers > 0 ? writer.lanes * 3 : 1
      const free = yield* Queue.unbounded<number>()
      yield* Queue.offerAll(
        free,
        Array.from({ length: slots }, (_, i) => i % writer.lanes)
      )

      /**
       * Writes a unit on a free lane, records it in one transaction and one evidence write, then reports.
       * Uninterruptible: a stop or interrupt lets a started unit finish, so no verified file lacks its evidence line;
       * one that had no lane yet is not started.
       */
      const writeUnit = ({ early, work }: Unit) =>
        Effect.gen(function*() {
          const failures: Array<[number, ItemResult]> = [...early]
          // Fail-fast stops at the first failure in manifest order, even inside a unit.
          const cut = options.failFast ? (failed ? -1 : Math.min(Infinity, ...early.map(([i]) => i))) : Infinity
          const todo = work.filter((w) => w.index <= cut)
          const lane = yield* Queue.take(free)
          // Sent from a turn of its own: the replies of fast workers otherwise keep the event loop in one poll phase
          // (Node drains a port's messages, and the microtasks they start, together), where a Ctrl-C waited ~0.5 s.
          yield* EventLoop.turn
          // A unit still waiting for a lane when the stop came is not started: its items are left not run.
          if (stopped) return yield* Queue.offer(free, lane)
          const written = yield* Effect.ensuring(
            stage.materialize(writer, lane, todo, options.failFast === true),
            Queue.offer(free, lane)
          )
          const done: Array<{ w: Work; m: Written }> = []
          for (const [k, w] of todo.entries()) {
            const m = written[k]!
            if (m === "skipped") continue
            if ("phase" in m) done.push({ w, m })
            else failures.push(failure(w.index, w.request, m, w.fetchMs))
          }
          const started = clock.unsafeCurrentTimeNanos()
          const at = yield* Timestamp.now
          const recorded = yield* Effect.either(
            store.recordRestores(done.map(({ w }) => ({ itemId: w.located.itemId, actor: w.request.actor, at })))
          )
          const recordMs = Timestamp.elapsedMs(clock, started)
          const records: Array<Evidence.Entry> = []
          let successes: Array<{ w: Work; outcome: Outcome; job: number | undefined }> = []
          for (const { m, w } of done) {
            const timings = finishTimings(m, w.fetchMs, recordMs)
            if (recorded._tag === "Left") {
              // Verified but not recorded: reported failed, and its held file is discarded below.
              failures.push(failure(w.index, w.request, recorded.left, timings.duration_ms))
              continue
            }
            const outcome = outcomeOf(w, m, timings)
            records.push(stage.restoreLine(w.request, w.located, outcome))
            successes.push({ w, outcome, job: m.job })
          }
          for (const [, r] of failures) {
            if (r._tag === "Failure") records.push(stage.failureLine(r.request, r.error))
          }
          // Evidence before rename and results: a visible file, or an item reported done, always has its line.
          const appended = yield* Effect.either(evidence.append(...records))
          if (appended._tag === "Left") {
            for (const s of successes) {
              failures.push(failure(s.w.index, s.w.request, appended.left, s.outcome.timings.duration_ms))
            }
            successes = []
          }
          const held = successes.flatMap((s) => (s.job === undefined ? [] : [{ w: s.w, job: s.job }]))
          const committing = new Set(held.map((h) => h.job))
          const unrecorded = done.flatMap(({ m }) => (m.job === undefined || committing.has(m.job) ? [] : [m.job]))
          const renameFailed = yield* stage.commit(writer, lane, held, unrecorded)
          const late: Array<Evidence.Entry> = []
          const outcomes: Array<Outcome> = []
          for (const { outcome, w } of successes) {
            const error = renameFailed.get(w)
            if (error === undefined) outcomes.push(outcome)
            else {
              failures.push(failure(w.index, w.request, error, outcome.timings.duration_ms))
              late.push(stage.failureLine(w.request, error))
            }
          }
          // The later line wins: a RESTORE whose rename failed is followed by its RESTORE_FAIL.
          yield* evidence.append(...late).pipe(Effect.catchAll((e) => Effect.logWarning(e.message)))
          yield* Metrics.recordRestores(outcomes)
          yield* Metric.incrementBy(Metrics.restoreFailures, failures.length)
          const finished = [
            ...successes.filter(({ w }) => !renameFailed.has(w)).map((
              { outcome, w }
            ): [number, ItemResult] => [w.index, { _tag: "Success", request: w.request, outcome }]),
            ...failures
          ].sort(([a], [b]) => a - b)
          for (const [, result] of finished) if (result._tag === "Failure") failed = true
          if (options.onResults) yield* options.onResults(finished)
        }).pipe(Effect.uninterruptible)

      const concurrency = Math.max(1, options.concurrency)
      // Payloads this thread fetches come in byte-bounded units; a writer that reads them takes the located groups.
      const fetched = (units: Stream.Stream<Unit, E>): Stream.Stream<Unit, E> =>
        writer.readsArchive
          ? units
          : units.pipe(Stream.mapConcat(splitByBytes), Stream.mapEffect(fetchPayloads, { concurrency }))
      yield* requests.pipe(
        Stream.takeWhile(() => !halted()),
        Stream.zipWithIndex,
        Stream.map(([request, index]): Indexed => ({ request, index })),
        Stream.chunks,
        Stream.mapConcat((chunk: Chunk.Chunk<Indexed>) => Chunk.chunksOf(chunk, locateGroupSize(total))),
        Stream.mapEffect((group) => locateGroup(Chunk.toReadonlyArray(group), kept), { concurrency }),
        fetched,
        Stream.interruptWhen(options.stop ?? Effect.never),
        Stream.takeWhile(() => !halted()),
        Stream.mapEffect((unit) => Effect.zipRight(writeUnit(unit), EventLoop.turn), { concurrency: slots }),
        Stream.runDrain
      )
    }).pipe(Effect.scoped, Effect.withSpan("Restorer.restoreStream"))

  const restoreAll = (
    requests: ReadonlyArray<Request>,
    options: RunOptions
  ): Effect.Effect<ReadonlyArray<ItemResult>> =>
    Effect.gen(function*() {
      const results = new Array<ItemResult>(requests.length)
      const stream = Stream.rechunk(Stream.fromIterable(requests), locateGroupSize(requests.length))
      yield* restoreStream(stream, requests.length, {
        ...options,
        onResults: (finished) => {
          for (const [index, result] of finished) results[index] = result
          return options.onResults ? options.onResults(finished) : Effect.void
        }
      })
      return results.filter((r) => r !== undefined)
    })

  return { restoreStream, restoreAll }
}
