/**
 * The steps a single restore and the batch pipeline share: located items are written through a `RestoreWriter` to
 * verified temp files held at their outputs, recorded, then renamed into place (`commit`) or removed (`discard`); and
 * the outcome, timings and evidence line of each.
 */
import { Chunk, Effect, Stream } from "effect"
import { type ArchiveStore, type Located, PayloadPurged, StoreError } from "../ArchiveStore.js"
import * as Codec from "../Codec.js"
import * as Evidence from "../Evidence.js"
import * as FileOps from "../FileOps.js"
import { IntegrityError } from "../Hash.js"
import * as RestorePlan from "../RestorePlan.js"
import type { ItemResult, Outcome, Request, RestoreError, Timings } from "../Restorer.js"
import * as RestoreWriter from "../RestoreWriter.js"
import { elapsedMs } from "../Timestamp.js"

/** Chunks (1 MiB each) handed to the writer at once when streaming a large file. */
const chunkBatch = 4

/** What the restore steps work with. */
export interface Env {
  readonly store: ArchiveStore["Type"]
  readonly evidence: Evidence.Evidence["Type"]
  /** Timings in RESTORE evidence lines (`performance.enabled`). */
  readonly perf: boolean
}

interface Phase {
  /** Reading the payload, when the writer read it itself (`copy`). */
  readonly fetch: number
  readonly decompress: number
  readonly verify: number
  readonly write: number
}

/** A file the writer put in place (or found already there): its size and where its time went. */
export interface Written {
  readonly bytes: number
  readonly phase: Phase
  /** The writer's job holding the verified temp file until `commit`; none when nothing was written (unchanged). */
  readonly job?: number | undefined
}

export type Indexed = { readonly index: number; readonly request: Request }
export type Work = Indexed & {
  readonly located: Located
  readonly action: RestorePlan.Action
  payload: Uint8Array | undefined
  fetchMs: number
  /** The writer's job for it, once one is made: what a caller interrupted before the job's answer removes. */
  job?: number | undefined
}

export const outcomeOf = (w: Work, written: Written, timings: Timings): Outcome => ({
  tombstone: w.request.tombstone,
  output: w.request.output,
  status: w.action === "write" ? "restored" : "unchanged",
  bytes: written.bytes,
  sha256: w.located.sha256,
  timings
})

/** An item's own time: the round trips it waited for and its own file work, not time queued behind others. */
export const finishTimings = (m: Written, fetchMs: number, recordMs: number): Timings => ({
  duration_ms: fetchMs + m.phase.fetch + m.phase.decompress + m.phase.verify + m.phase.write + recordMs,
  fetch_ms: fetchMs + m.phase.fetch,
  decompression_ms: m.phase.decompress,
  verify_ms: m.phase.verify,
  write_ms: m.phase.write,
  record_ms: recordMs
})

export const failure = (
  index: number,
  request: Request,
  error: RestoreError,
  duration_ms: number
): [number, ItemResult] => [index, { _tag: "Failure", request, error, duration_ms }]

export const make = ({ perf, store }: Env) => {
  // Single restores and small batches write in this thread; created on first use.
  let local: RestoreWriter.RestoreWriter | undefined
  const localWriter = () => (local ??= RestoreWriter.inThread())

  // Job ids are unique per Restorer: units on one lane interleave their ops.
  let jobs = 0
  // Read once, here in the main thread; the masked mode travels with each target to the writer, in any thread.
  const umask = FileOps.currentUmask()
  const modeOf = (located: Located) => FileOps.restoredMode(located.mode ?? 0o644, umask)
  // Every write is held at its verified temp file: renamed only once recorded (`commit`), or removed (`discard`).
  // The job's id is noted on the work, for a caller interrupted before the job's answer (`Work.job`).
  const target = (w: Work, codec: Codec.Codec): RestoreWriter.Target => {
    const { located, request } = w
    const made: RestoreWriter.Target = {
      id: jobs++,
      output: request.output,
      temp: FileOps.tempFor(request.output),
      mode: modeOf(located),
      codec: codec.name,
      sha256: located.sha256,
      size: located.sizeBytes,
      hold: true,
      ...(request.contained === undefined ? {} : RestorePlan.containedTarget(request.contained))
    }
    w.job = made.id
    return made
  }

  const fromReply = (
    located: Located,
    request: Request,
    codec: Codec.Codec,
    reply: RestoreWriter.Reply
  ): Written | RestoreError | "skipped" => {
    if (reply.ok) {
      return {
        bytes: reply.bytes,
        phase: { fetch: reply.fetch, decompress: reply.decompress, verify: reply.verify, write: reply.write },
        job: reply.id
      }
    }
    switch (reply.problem) {
      case "corrupt":
        return new Codec.CorruptPayload({ codec: codec.name, detail: reply.detail, tombstone: located.tombstone })
      case "integrity":
        return new IntegrityError({
          tombstone: located.tombstone,
          expected: located.sha256,
          actual: reply.actual ?? ""
        })
      case "unwritable":
      case "escapes":
        return RestorePlan.placeFailure(request, reply.problem, reply)
      case "missing":
        return new PayloadPurged({ tombstone: located.tombstone, sha256: located.sha256 })
      case "unreadable":
        return new StoreError({ operation: "fetch", backend: store.backend, detail: reply.detail, transient: false })
      case "skipped":
        return "skipped"
    }
  }

  /**
   * Renames held files into place (record then rename): what fails here is reported with the cause, and its later
   * RESTORE_FAIL line supersedes the RESTORE line already written.
   */
  const commit = (
    writer: RestoreWriter.RestoreWriter,
    lane: number,
    held: ReadonlyArray<{ w: Work; job: number }>,
    unrecorded: ReadonlyArray<number> = []
  ) =>
    Effect.gen(function*() {
      const failures = new Map<Work, RestoreError>()
      if (held.length === 0 && unrecorded.length === 0) return failures
      // One message: what was not recorded is removed, what was is renamed.
      const ops: Array<RestoreWriter.Op> = [{ op: "discard", ids: unrecorded }, {
        op: "commit",
        ids: held.map((h) => h.job)
      }]
      const sent = yield* Effect.either(writer.run(lane, ops))
      if (sent._tag === "Left") {
        for (const { w } of held) failures.set(w, sent.left)
        return failures
      }
      for (const [k, reply] of sent.right.entries()) {
        if (reply.ok) continue
        const { w } = held[k]!
        failures.set(w, RestorePlan.placeFailure(w.request, reply.problem, reply))
      }
      return failures
    })
  const discard = (writer: RestoreWriter.RestoreWriter, lane: number, jobs: ReadonlyArray<number>) =>
    jobs.length === 0 ? Effect.void : Effect.asVoid(writer.run(lane, [{ op: "discard", ids: jobs }])).pipe(
      // Only reached after another failure, which is the one reported; the temp files stay beside their outputs.
      Effect.catchAll((e) => Effect.logWarning(`temporary files not removed: ${e.message}`))
    )

  /** Streams a chunked payload to the writer, a few MiB per batch (bounded memory); the writer renames only verified content. */
  const writeChunked = (
    writer: RestoreWriter.RestoreWriter,
    lane: number,
    job: RestoreWriter.Target,
    located: Located
  ) =>
    Effect.gen(function*() {
      let first = true
      const send = (data: ReadonlyArray<Uint8Array>) => {
        const appends = data.map((d): RestoreWriter.Op => ({ op: "append", id: job.id, data: d }))
        const ops: Array<RestoreWriter.Op> = first ? [{ op: "open", ...job }, ...appends] : appends
        first = false
        return writer.run(lane, ops)
      }
      yield* store.chunks(located.artifactId).pipe(
        Stream.grouped(chunkBatch),
        Stream.runForEach((group) => send(Chunk.toReadonlyArray(group))),
        // Failed or interrupted (a single restore's timeout): the open temp file is removed, its folder let go.
        Effect.onError(() => Effect.ignore(writer.run(lane, [{ op: "abort", id: job.id }])))
      )
      if (first) yield* send([])
      const [reply] = yield* writer.run(lane, [{ op: "close", id: job.id }])
      return reply!
    })

  /**
   * Writes located items, in order, on one lane of a writer: consecutive inline payloads go in one batch, a chunked
   * payload streams on its own; a writer that reads the archive itself gets every item in one batch.
   * With `stopAfterFailure`, nothing after the first failure is attempted ("skipped").
   */
  const materialize = (
    writer: RestoreWriter.RestoreWriter,
    lane: number,
    items: ReadonlyArray<Work>,
    stopAfterFailure: boolean
  ): Effect.Effect<Array<Written | RestoreError | "skipped">> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const out = new Array<Written | RestoreError | "skipped">(items.length)
      let failed = false
      let pending: Array<{ i: number; op: RestoreWriter.Op; codec: Codec.Codec }> = []
      const flush = Effect.gen(function*() {
        if (pending.length === 0) return
        const batch = pending
        pending = []
        const sent = yield* Effect.either(writer.run(lane, batch.map((p) => p.op), stopAfterFailure))
        if (sent._tag === "Left") {
          for (const { i } of batch) out[i] = sent.left
          failed = true
          return
        }
        const replies = sent.right
        for (const [k, reply] of replies.entries()) {
          const { codec, i } = batch[k]!
          out[i] = fromReply(items[i]!.located, items[i]!.request, codec, reply)
          if (!reply.ok) failed = true
        }
      })
      for (const [i, w] of items.entries()) {
        if (w.action === "unchanged") {
          out[i] = { bytes: w.located.sizeBytes, phase: { fetch: 0, decompress: 0, verify: 0, write: 0 } }
          continue
        }
        const codec = Codec.forName(w.located.codec)
        if (codec._tag === "Left") {
          out[i] = codec.left
          failed = true
        } else if (writer.readsArchive) {
          const op: RestoreWriter.Op = {
            op: "copy",
            ...target(w, codec.right),
            artifactId: w.located.artifactId,
            chunked: w.located.layout === "chunked"
          }
          pending.push({ i, codec: codec.right, op })
        } else if (w.located.layout === "inline") {
          if (w.payload === undefined) {
            out[i] = new PayloadPurged({ tombstone: w.located.tombstone, sha256: w.located.sha256 })
            failed = true
          } else {
            pending.push({
              i,
              codec: codec.right,
              op: { op: "write", ...target(w, codec.right), data: w.payload }
            })
            w.payload = undefined
          }
        } else {
          yield* flush
          if (failed && stopAfterFailure) {
            out[i] = "skipped"
            continue
          }
          const started = clock.unsafeCurrentTimeNanos()
          const reply = yield* Effect.either(
            writeChunked(writer, lane, target(w, codec.right), w.located)
          )
          const result = reply._tag === "Left" ? reply.left : fromReply(w.located, w.request, codec.right, reply.right)
          // Chunk fetches interleave with writing; what is not decode, verify or write is fetch time.
          if (typeof result === "object" && "phase" in result) {
            w.fetchMs += elapsedMs(clock, started) - result.phase.decompress - result.phase.verify - result.phase.write
          }
          out[i] = result
          if (reply._tag === "Left" || !reply.right.ok) failed = true
        }
        if (failed && stopAfterFailure) {
          yield* flush
          for (let j = i + 1; j < items.length; j++) out[j] = "skipped"
          return out
        }
      }
      yield* flush
      return out
    })

  /** The RESTORE line of a restored (or unchanged) item. */
  const restoreLine = (request: Request, located: Located, outcome: Outcome): Evidence.Restore =>
    Evidence.restore({
      actor: request.actor,
      tombstone: request.tombstone,
      path: request.output,
      repo: located.repo,
      sha256: located.sha256,
      size: outcome.bytes,
      unchanged: outcome.status === "unchanged",
      timings: perf ? outcome.timings : undefined
    })

  /** The RESTORE_FAIL line of a failed item. */
  const failureLine = (request: Request, error: RestoreError): Evidence.RestoreFail =>
    Evidence.restoreFail({
      actor: request.actor,
      tombstone: request.tombstone,
      path: request.output,
      error,
      backend: store.backend,
      url: store.location
    })

  return { localWriter, materialize, commit, discard, restoreLine, failureLine }
}

export type WriteStage = ReturnType<typeof make>
