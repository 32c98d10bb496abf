/**
 * Restore: tombstone → locate → fetch (retried inside the store) → decompress → verify SHA-256 → atomic write →
 * record (retried) → evidence RESTORE with timings → metrics. `restoreAll` does the same for many items, grouping
 * database round trips and handing the file work to a `RestoreWriter` (worker threads for large batches) while the
 * next groups are located; workers read the payloads themselves when the store allows it (`DirectReads`: SQLite),
 * otherwise this thread fetches them. Results keep the input order.
 */
import { Chunk, Context, Data, Effect, Either, Layer, Metric, Queue, Redacted, type Scope, Stream } from "effect"
import * as path from "node:path"
import {
  ArchiveStore,
  type Located,
  type NotAnArchive,
  PayloadPurged,
  StoreError,
  TombstoneNotFound
} from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import type { ArchiveConfig } from "./Config.js"
import * as Evidence from "./Evidence.js"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"
import * as Ids from "./Ids.js"
import { InvalidTombstone } from "./Ids.js"
import * as Metrics from "./Metrics.js"
import * as Redact from "./Redact.js"
import * as RestoreWriter from "./RestoreWriter.js"
import * as Timestamp from "./Timestamp.js"
import * as Tombstone from "./Tombstone.js"
import * as WorkerPool from "./WorkerPool.js"

export interface Request {
  readonly tombstone: string
  readonly output: string
  readonly actor: string
  /** Replace an existing file with different content. */
  readonly force?: boolean | undefined
  /** Where the file really goes, kept inside a folder (a batch's manifest folder): `FileOps.Contained`. */
  readonly contained?: FileOps.Contained | undefined
}

export interface Timings {
  readonly duration_ms: number
  readonly fetch_ms: number
  readonly decompression_ms: number
  readonly verify_ms: number
  readonly write_ms: number
  readonly record_ms: number
}

export interface Outcome {
  readonly tombstone: string
  readonly output: string
  readonly status: "restored" | "unchanged"
  readonly bytes: number
  readonly sha256: string
  readonly timings: Timings
}

/** Kept here too: callers have always named it `Restorer.InvalidTombstone`; `Ids` owns it. */
export { InvalidTombstone }

export class IntegrityError extends Data.TaggedError("IntegrityError")<{
  readonly tombstone: string
  readonly expected: string
  readonly actual: string
}> {
  override get message() {
    return `payload of tombstone ${this.tombstone} is corrupt: sha256 ${this.actual} does not match the recorded ${this.expected}`
  }
}

export type RestoreError =
  | InvalidTombstone
  | TombstoneNotFound
  | PayloadPurged
  | StoreError
  | Codec.UnknownCodec
  | Codec.CorruptPayload
  | IntegrityError
  | FileOps.OutputError
  | Evidence.EvidenceError
  | WorkerPool.WorkerFailed

/** The outcome of one item in `restoreAll`: failures are values, so one bad item never stops the others. */
export type ItemResult =
  | { readonly _tag: "Success"; readonly request: Request; readonly outcome: Outcome }
  | { readonly _tag: "Failure"; readonly request: Request; readonly error: RestoreError; readonly duration_ms: number }

export interface RunOptions {
  /** Database round trips in flight at once (`batch.concurrent`). */
  readonly concurrency: number
  /**
   * Called as results become known (progress, results file): once per group of items written together, groups in
   * completion order, each group's results in index order.
   */
  readonly onResults?: (results: ReadonlyArray<readonly [index: number, result: ItemResult]>) => Effect.Effect<void>
  /** Stop launching new groups after the first failure. */
  readonly failFast?: boolean
  /** Completes when the run should stop launching items (Ctrl-C); items already being written finish. */
  readonly stop?: Effect.Effect<void>
  /** Worker threads writing files (`WorkerPool.Count`): default 0, all in the calling thread; `"auto"` as the CLI. */
  readonly workers?: WorkerPool.Count | undefined
  /** V8 flags each worker thread sets as it starts (`RestoreWriter.heapFlags`); none by default: they are the whole process's. */
  readonly workerV8Flags?: ReadonlyArray<string> | undefined
  /**
   * The host owns its process: workers reading the archive may set `--expose-gc` (a flag of the whole process) to
   * free read buffers early (~25 MB less peak memory on a large batch). Default: no, V8 collects them in its time.
   */
  readonly tuneV8?: boolean | undefined
  /** Worker threads the caller keeps across runs (`writers`: a batch's windows start them once); by default, per run. */
  readonly writer?: RestoreWriter.RestoreWriter | undefined
}

/** What restores read of the configuration, and nothing else of it. */
export interface Settings {
  /** Timings in RESTORE evidence lines and batch summaries (`performance.enabled`). */
  readonly timings: boolean
  /** A RESTORE_BATCH line closes every batch (`performance.emit_to_evidence`). */
  readonly batchEvidence: boolean
  /** Database round trips in flight in a batch, unless the call says (`batch.concurrent`). */
  readonly concurrency: number
}

export class RestoreSettings extends Context.Tag("@codex-archive/core/RestoreSettings")<RestoreSettings, Settings>() {}

/** The configuration's defaults. */
export const defaultSettings: Settings = { timings: true, batchEvidence: true, concurrency: 4 }

/** The settings of a loaded configuration. */
export const settingsOf = (config: ArchiveConfig): Settings => ({
  timings: config.performance.enabled,
  batchEvidence: config.performance.emit_to_evidence,
  concurrency: config.batch.concurrent
})

/** The defaults, with what is given. */
export const settingsLayer = (settings: Partial<Settings> = {}): Layer.Layer<RestoreSettings> =>
  Layer.succeed(RestoreSettings, { ...defaultSettings, ...settings })

/**
 * Items located per round trip (one `IN` list, at most 500): a sixteenth of the batch, so that the pipeline stays full
 * and a stop waits for few items. Workers that read payloads themselves write and record the group as one unit:
 * per-unit costs (a transaction, an evidence write, a message) were a fifth of the main thread's time at 128 items.
 */
const locateGroupSize = (items: number) => Math.min(500, Math.max(128, Math.ceil(items / 16)))
/** Payloads fetched through this thread come in units bounded by bytes and count (bounded memory). */
const payloadGroupBytes = 4 * 1024 * 1024
const payloadGroupItems = 128
/** Chunks (1 MiB each) handed to the writer at once when streaming a large file. */
const chunkBatch = 4

export class Restorer extends Context.Tag("@codex-archive/core/Restorer")<Restorer, {
  readonly restore: (request: Request) => Effect.Effect<Outcome, RestoreError>
  readonly restoreAll: (
    requests: ReadonlyArray<Request>,
    options: RunOptions
  ) => Effect.Effect<ReadonlyArray<ItemResult>>
  /** `size` worker threads for `RunOptions.writer`, reading payloads themselves where the store allows; ended with the scope. */
  readonly writers: (
    size: number,
    v8Flags?: ReadonlyArray<string>,
    tuneV8?: boolean
  ) => Effect.Effect<RestoreWriter.RestoreWriter, never, Scope.Scope>
}>() {}

interface Phase {
  /** Reading the payload, when the writer read it itself (`copy`). */
  readonly fetch: number
  readonly decompress: number
  readonly verify: number
  readonly write: number
}

/** A file the writer put in place (or found already there): its size and where its time went. */
interface Written {
  readonly bytes: number
  readonly phase: Phase
  /** The writer's job holding the verified temp file until `commit`; none when nothing was written (unchanged). */
  readonly job?: number | undefined
}

type Indexed = { readonly index: number; readonly request: Request }
type Work = Indexed & {
  readonly located: Located
  readonly action: "write" | "unchanged"
  payload: Uint8Array | undefined
  fetchMs: number
}
/** What flows from the fetch stage to the write stage: items ready to write, and items that already failed. */
type Unit = { readonly work: Array<Work>; readonly early: Array<[number, ItemResult]> }

const outcomeOf = (w: Work, written: Written, timings: Timings): Outcome => ({
  tombstone: w.request.tombstone,
  output: w.request.output,
  status: w.action === "write" ? "restored" : "unchanged",
  bytes: written.bytes,
  sha256: w.located.sha256,
  timings
})

/** The RESTORE_FAIL evidence line, for a restore that failed here or before the archive could even be opened. */
export const failureRecord = (options: {
  readonly request: { readonly actor: string; readonly tombstone: string; readonly output: string | null }
  readonly error: { readonly _tag: string; readonly message: string }
  readonly reason?: string
  readonly backend: string
  readonly url: string
}): Evidence.Record => ({
  action: "RESTORE_FAIL",
  actor: options.request.actor,
  tombstone: options.request.tombstone,
  path: options.request.output,
  reason: Redact.text(options.reason ?? options.error.message),
  error: options.error._tag,
  backend: options.backend,
  url: options.url
})

/**
 * A single restore whose archive could not be opened is a failed restore too, and leaves its RESTORE_FAIL line (best
 * effort: the open failure is what the user is told about).
 */
export const recordOpenFailure = (
  config: ArchiveConfig,
  request: { readonly actor: string; readonly tombstone: string; readonly output: string | undefined },
  error: NotAnArchive | StoreError
): Effect.Effect<void> =>
  Effect.flatMap(Evidence.make(config.evidence.dir, config.evidence), (evidence) =>
    evidence.append(failureRecord({
      request: { ...request, output: request.output === undefined ? null : path.resolve(request.output) },
      error,
      reason: `Archive backend validation failed: ${error.message}`,
      backend: config.backend.backend,
      url: Redact.url(Redacted.value(config.backend.url))
    }))).pipe(Effect.ignore)

export const make = Effect.gen(function*() {
  const store = yield* ArchiveStore
  const evidence = yield* Evidence.Evidence
  const perf = (yield* RestoreSettings).timings

  // Single restores and small batches write in this thread; created on first use.
  let local: RestoreWriter.RestoreWriter | undefined
  const localWriter = () => (local ??= RestoreWriter.inThread())

  // Job ids are unique per Restorer: units on one lane interleave their ops.
  let jobs = 0
  // Read once, here in the main thread; the masked mode travels with each target to the writer, in any thread.
  const umask = FileOps.currentUmask()
  const modeOf = (located: Located) => FileOps.restoredMode(located.mode ?? 0o644, umask)
  // Every write is held at its verified temp file: renamed only once recorded (`commit`), or removed (`discard`).
  const target = (located: Located, request: Request, codec: Codec.Codec): RestoreWriter.Target => ({
    id: jobs++,
    output: request.output,
    temp: FileOps.tempFor(request.output),
    mode: modeOf(located),
    codec: codec.name,
    sha256: located.sha256,
    size: located.sizeBytes,
    hold: true,
    ...(request.contained === undefined ? {} : containedTarget(request.contained))
  })

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
        return placeFailure(request, reply.problem, reply)
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
        failures.set(w, placeFailure(w.request, reply.problem, reply))
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
        Effect.tapError(() => Effect.ignore(writer.run(lane, [{ op: "abort", id: job.id }])))
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
            ...target(w.located, w.request, codec.right),
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
              op: { op: "write", ...target(w.located, w.request, codec.right), data: w.payload }
            })
            w.payload = undefined
          }
        } else {
          yield* flush
          if (failed && stopAfterFailure) {
            out[i] = "skipped"
            continue
          }
          const t = performance.now()
          const reply = yield* Effect.either(
            writeChunked(writer, lane, target(w.located, w.request, codec.right), w.located)
          )
          const result = reply._tag === "Left" ? reply.left : fromReply(w.located, w.request, codec.right, reply.right)
          // Chunk fetches interleave with writing; what is not decode, verify or write is fetch time.
          if (typeof result === "object" && "phase" in result) {
            w.fetchMs += performance.now() - t - result.phase.decompress - result.phase.verify - result.phase.write
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

  const evidenceFor = (request: Request, located: Located, outcome: Outcome): Evidence.Record => ({
    action: "RESTORE",
    actor: request.actor,
    tombstone: request.tombstone,
    path: request.output,
    repo: located.repo,
    sha256: located.sha256,
    size: outcome.bytes,
    ...(outcome.status === "unchanged" ? { status: "unchanged" } : {}),
    ...(perf
      ? {
        duration_ms: outcome.timings.duration_ms,
        fetch_ms: outcome.timings.fetch_ms,
        decompression_ms: outcome.timings.decompression_ms,
        verify_ms: outcome.timings.verify_ms,
        write_ms: outcome.timings.write_ms,
        record_ms: outcome.timings.record_ms
      }
      : {})
  })

  const failureEvidence = (request: Request, error: RestoreError): Evidence.Record =>
    failureRecord({ request, error, backend: store.backend, url: store.location })

  /** An item's own time: the round trips it waited for and its own file work, not time queued behind others. */
  const finishTimings = (m: Written, fetchMs: number, recordMs: number): Timings => ({
    duration_ms: fetchMs + m.phase.fetch + m.phase.decompress + m.phase.verify + m.phase.write + recordMs,
    fetch_ms: fetchMs + m.phase.fetch,
    decompression_ms: m.phase.decompress,
    verify_ms: m.phase.verify,
    write_ms: m.phase.write,
    record_ms: recordMs
  })

  const validate = (request: Request): Effect.Effect<Request, InvalidTombstone> => {
    return Either.match(Ids.decodeTombstoneId(request.tombstone), {
      onLeft: Effect.fail,
      onRight: (tombstone) => Effect.succeed({ ...request, tombstone })
    })
  }

  /** Purged content fails before the output is looked at; otherwise the output decides. */
  const plan = (located: Located, request: Request): Either.Either<"write" | "unchanged", RestoreError> => {
    if (located.layout === "purged") {
      return Either.left(new PayloadPurged({ tombstone: located.tombstone, sha256: located.sha256 }))
    }
    const action = outputAction(located, request)
    return typeof action === "string" ? Either.right(action) : Either.left(action)
  }

  const restore = (input: Request): Effect.Effect<Outcome, RestoreError> =>
    Effect.gen(function*() {
      const started = performance.now()
      const request = yield* validate(input)
      const found = yield* store.locate([request.tombstone])
      const located = found.get(request.tombstone)
      if (located === undefined) return yield* new TombstoneNotFound({ tombstone: request.tombstone })
      const action = yield* plan(located, request)
      const payloads = action === "write" && located.layout === "inline"
        ? yield* store.inlinePayloads([located.artifactId])
        : new Map<string, Uint8Array>()
      const work: Work = {
        index: 0,
        request,
        located,
        action,
        payload: payloads.get(located.artifactId),
        fetchMs: performance.now() - started
      }
      const writer = localWriter()
      const [written] = yield* materialize(writer, 0, [work], false)
      // Unreachable: without stopAfterFailure, materialize answers every item it is given, and this is its only one.
      if (written === undefined || written === "skipped") {
        return yield* Effect.dieMessage("restore: the writer skipped its only item")
      }
      if (!("phase" in written)) return yield* Effect.fail(written)
      const held = written.job === undefined ? [] : [{ w: work, job: written.job }]
      // Record, then rename: a restore that cannot be recorded leaves no visible file.
      const recorded = Effect.gen(function*() {
        const t = performance.now()
        yield* store.recordRestores([{ itemId: located.itemId, actor: request.actor, at: yield* Timestamp.now }])
        const outcome = outcomeOf(work, written, finishTimings(written, work.fetchMs, performance.now() - t))
        yield* evidence.append(evidenceFor(request, located, outcome))
        return outcome
      }).pipe(Effect.tapError(() => discard(writer, 0, held.map((h) => h.job))))
      const outcome = yield* recorded
      const failed = yield* commit(writer, 0, held)
      const error = failed.get(work)
      if (error !== undefined) return yield* Effect.fail(error)
      yield* Metrics.recordRestores([outcome])
      return outcome
    }).pipe(
      Effect.tapError((error) =>
        Effect.zipRight(
          // A log that cannot take the RESTORE line cannot take this one either: the error already says so.
          evidence.append(failureEvidence(input, error)).pipe(
            Effect.catchAll((e) => error._tag === "EvidenceError" ? Effect.void : Effect.logWarning(e.message))
          ),
          Metric.increment(Metrics.restoreFailures)
        )
      ),
      Effect.annotateLogs("tombstone", input.tombstone),
      Effect.withSpan("Restorer.restore")
    )

  const failure = (
    index: number,
    request: Request,
    error: RestoreError,
    duration_ms: number
  ): [number, ItemResult] => [index, { _tag: "Failure", request, error, duration_ms }]

  /** Locates a group in one round trip and decides each item's action; failures become results, not errors. */
  const locateGroup = (group: ReadonlyArray<Indexed>): Effect.Effect<Unit> =>
    Effect.gen(function*() {
      const started = performance.now()
      const valid: Array<Indexed> = []
      const early: Array<[number, ItemResult]> = []
      for (const { index, request } of group) {
        const checked = Ids.decodeTombstoneId(request.tombstone)
        if (Either.isRight(checked)) valid.push({ index, request: { ...request, tombstone: checked.right } })
        else early.push(failure(index, request, checked.left, 0))
      }
      const located = yield* Effect.either(store.locate(valid.map((v) => v.request.tombstone)))
      const locateMs = performance.now() - started
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
        const t = performance.now()
        const action = plan(found, request)
        if (action._tag === "Left") early.push(failure(index, request, action.left, locateMs + performance.now() - t))
        else work.push({ index, request, located: found, action: action.right, payload: undefined, fetchMs: locateMs })
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
      const t = performance.now()
      const fetched = yield* Effect.either(store.inlinePayloads(wanted.map((w) => w.located.artifactId)))
      const ms = performance.now() - t
      if (fetched._tag === "Left") {
        const failed = new Set(wanted)
        return {
          work: unit.work.filter((w) => !failed.has(w)),
          early: [...unit.early, ...wanted.map((w) => failure(w.index, w.request, fetched.left, w.fetchMs + ms))]
        }
      }
      // Items with the same content share one fetched buffer; a worker takes its buffer over, so each gets its own.
      const given = new Set<Uint8Array>()
      for (const w of wanted) {
        const payload = fetched.right.get(w.located.artifactId)
        w.payload = payload !== undefined && given.has(payload) ? Buffer.from(payload) : payload
        if (payload !== undefined) given.add(payload)
        w.fetchMs += ms
      }
      return unit
    })

  const restoreAll = (
    requests: ReadonlyArray<Request>,
    options: RunOptions
  ): Effect.Effect<ReadonlyArray<ItemResult>> =>
    Effect.gen(function*() {
      const results = new Array<ItemResult>(requests.length)
      let failed = false
      let stopped = false
      const halted = () => stopped || (options.failFast === true && failed)
      if (options.stop) {
        yield* Effect.forkScoped(Effect.andThen(options.stop, () => Effect.sync(() => void (stopped = true))))
      }

      const workers = WorkerPool.countFor(options.workers, requests.length)
      // Workers that can open the archive themselves read the payloads too: content never crosses this thread.
      const writer = options.writer ?? (workers > 0
        ? yield* RestoreWriter.workers(workers, {
          v8Flags: options.workerV8Flags,
          direct: store.directReads,
          exposeGc: options.tuneV8
        })
        : localWriter())
      // Three units per lane: a worker writes one while the main thread records another and fetches the next; a
      // recorded unit's rename (`commit`) queues behind the unit being written, so it holds its slot that long.
      // Fail-fast writes one unit at a time, so nothing after the first failure is started.
      const slots = options.failFast ? 1 : workers > 0 ? writer.lanes * 3 : 1
      const free = yield* Queue.unbounded<number>()
      yield* Queue.offerAll(free, Array.from({ length: slots }, (_, i) => i % writer.lanes))

      /**
       * Writes a unit on a free lane, records it in one transaction and one evidence write, then reports.
       * Uninterruptible: a stop or interrupt lets a started unit finish, so no verified file lacks its evidence line.
       */
      const writeUnit = ({ early, work }: Unit) =>
        Effect.gen(function*() {
          const failures: Array<[number, ItemResult]> = [...early]
          // Fail-fast stops at the first failure in manifest order, even inside a unit.
          const cut = options.failFast ? (failed ? -1 : Math.min(Infinity, ...early.map(([i]) => i))) : Infinity
          const todo = work.filter((w) => w.index <= cut)
          const lane = yield* Queue.take(free)
          const written = yield* Effect.ensuring(
            materialize(writer, lane, todo, options.failFast === true),
            Queue.offer(free, lane)
          )
          const done: Array<{ w: Work; m: Written }> = []
          for (const [k, w] of todo.entries()) {
            const m = written[k]!
            if (m === "skipped") continue
            if ("phase" in m) done.push({ w, m })
            else failures.push(failure(w.index, w.request, m, w.fetchMs))
          }
          const t = performance.now()
          const at = yield* Timestamp.now
          const recorded = yield* Effect.either(
            store.recordRestores(done.map(({ w }) => ({ itemId: w.located.itemId, actor: w.request.actor, at })))
          )
          const recordMs = performance.now() - t
          const records: Array<Evidence.Record> = []
          let successes: Array<{ w: Work; outcome: Outcome; job: number | undefined }> = []
          for (const { m, w } of done) {
            const timings = finishTimings(m, w.fetchMs, recordMs)
            if (recorded._tag === "Left") {
              // Verified but not recorded: reported failed, and its held file is discarded below.
              failures.push(failure(w.index, w.request, recorded.left, timings.duration_ms))
              continue
            }
            const outcome = outcomeOf(w, m, timings)
            records.push(evidenceFor(w.request, w.located, outcome))
            successes.push({ w, outcome, job: m.job })
          }
          for (const [, r] of failures) {
            if (r._tag === "Failure") records.push(failureEvidence(r.request, r.error))
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
          const renameFailed = yield* commit(writer, lane, held, unrecorded)
          const late: Array<Evidence.Record> = []
          const outcomes: Array<Outcome> = []
          for (const { outcome, w } of successes) {
            const error = renameFailed.get(w)
            if (error === undefined) outcomes.push(outcome)
            else {
              failures.push(failure(w.index, w.request, error, outcome.timings.duration_ms))
              late.push(failureEvidence(w.request, error))
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
          for (const [index, result] of finished) {
            results[index] = result
            if (result._tag === "Failure") failed = true
          }
          if (options.onResults) yield* options.onResults(finished)
        }).pipe(Effect.uninterruptible)

      const concurrency = Math.max(1, options.concurrency)
      // Payloads this thread fetches come in byte-bounded units; a writer that reads them takes the located groups.
      const fetched = (units: Stream.Stream<Unit>): Stream.Stream<Unit> =>
        writer.readsArchive
          ? units
          : units.pipe(Stream.mapConcat(splitByBytes), Stream.mapEffect(fetchPayloads, { concurrency }))
      const groups = Chunk.toReadonlyArray(
        Chunk.chunksOf(
          Chunk.fromIterable(requests.map((request, index) => ({ request, index }))),
          locateGroupSize(requests.length)
        )
      )
      yield* Stream.fromIterable(groups).pipe(
        Stream.takeWhile(() => !halted()),
        Stream.mapEffect((group) => locateGroup(Chunk.toReadonlyArray(group)), { concurrency }),
        fetched,
        Stream.interruptWhen(options.stop ?? Effect.never),
        Stream.takeWhile(() => !halted()),
        Stream.mapEffect((unit) => Effect.zipRight(writeUnit(unit), yieldToEventLoop), { concurrency: slots }),
        Stream.runDrain
      )
      return results.filter((r) => r !== undefined)
    }).pipe(Effect.scoped, Effect.withSpan("Restorer.restoreAll"))

  const writers = (size: number, v8Flags?: ReadonlyArray<string>, tuneV8?: boolean) =>
    RestoreWriter.workers(size, { v8Flags, direct: store.directReads, exposeGc: tuneV8 })

  return Restorer.of({ restore, restoreAll, writers })
})

export const layer = Layer.effect(Restorer, make)

/**
 * Decides what to do with the output before any byte is fetched: write it, leave it (same content already there),
 * or refuse. Synchronous, so batch dry runs and prefetch planning use the same rule as the restore itself.
 */
export const outputAction = (located: Located, request: Request): "write" | "unchanged" | FileOps.OutputError => {
  const existing = FileOps.inspect(request.output)
  switch (existing._tag) {
    case "Absent":
      return "write"
    case "Directory":
      return new FileOps.OutputError({
        output: request.output,
        problem: "is-directory",
        detail: "output is a directory"
      })
    case "Other":
      return new FileOps.OutputError({
        output: request.output,
        problem: "exists",
        detail: "output exists and is not a regular file"
      })
    case "File": {
      // An output that cannot be read (permissions) is compared as different: a failure naming it, not a defect.
      let unreadable: unknown
      const digest = existing.size !== located.sizeBytes ? undefined : (() => {
        try {
          return Hash.file(request.output)
        } catch (e) {
          unreadable = e
          return undefined
        }
      })()
      if (digest === located.sha256) return "unchanged"
      if (request.force) return "write"
      // A stub standing where the file was is what `restore STUB` replaces in place.
      if (Tombstone.isStubOf(request.output, located.tombstone, existing.size)) return "write"
      if (unreadable !== undefined) {
        const detail = `output exists and cannot be read to compare: ${
          FileOps.describeErrno(unreadable)
        } (use --force to replace it)`
        return new FileOps.OutputError({ output: request.output, problem: "exists", detail })
      }
      return new FileOps.OutputError({
        output: request.output,
        problem: "exists",
        detail: "output exists with different content (use --force to replace it)"
      })
    }
  }
}

/**
 * A macrotask turn between units: SQLite calls and file work are synchronous, so without it signal handlers (Ctrl-C)
 * and other I/O callbacks would wait for the whole batch.
 */
const yieldToEventLoop = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Why a file could not be put in place: the file system said no, or its way left its folder. */
const placeFailure = (
  request: Request,
  problem: string,
  reply: { readonly detail: string; readonly code?: string | undefined }
) =>
  problem === "escapes"
    ? new FileOps.OutputError({
      output: request.output,
      problem: "escapes",
      detail: `output escapes its folder: ${reply.detail}`
    })
    : unwritable(request.output, { message: reply.detail, code: reply.code })

/** A contained request's target: the real output path below the real root, and its temp file beside it. */
const containedTarget = (contained: FileOps.Contained) => ({
  root: contained.root,
  output: contained.path,
  temp: FileOps.tempFor(contained.path)
})

const unwritable = (output: string, e: unknown) =>
  new FileOps.OutputError({ output, problem: "unwritable", detail: `cannot write output: ${FileOps.describeErrno(e)}` })
