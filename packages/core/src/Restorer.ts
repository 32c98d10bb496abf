/**
 * Restore: tombstone → locate → fetch (retried inside the store) → decompress → verify SHA-256 → atomic write →
 * record (retried) → evidence RESTORE with timings → metrics. `restoreAll` does the same for many items, grouping
 * database round trips and overlapping fetches with the synchronous file work; results keep the input order.
 */
import { Chunk, Context, Data, Effect, Layer, Metric, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArchiveStore, type Located, PayloadPurged, type StoreError, TombstoneNotFound } from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import { ArchiveConfigTag } from "./Config.js"
import * as Evidence from "./Evidence.js"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"
import * as Metrics from "./Metrics.js"
import * as Redact from "./Redact.js"
import * as Timestamp from "./Timestamp.js"
import * as Tombstone from "./Tombstone.js"

export interface Request {
  readonly tombstone: string
  readonly output: string
  readonly actor: string
  /** Replace an existing file with different content. */
  readonly force?: boolean | undefined
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

export class InvalidTombstone extends Data.TaggedError("InvalidTombstone")<{ readonly tombstone: string }> {
  override get message() {
    return `'${this.tombstone}' is not a tombstone id (expected a UUID like 3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f)`
  }
}

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

/** The outcome of one item in `restoreAll`: failures are values, so one bad item never stops the others. */
export type ItemResult =
  | { readonly _tag: "Success"; readonly request: Request; readonly outcome: Outcome }
  | { readonly _tag: "Failure"; readonly request: Request; readonly error: RestoreError; readonly duration_ms: number }

export interface RunOptions {
  /** Database round trips in flight at once (`batch.concurrent`). */
  readonly concurrency: number
  /** Called once per item, in completion order, as soon as its result is known (progress, results file). */
  readonly onResult?: (index: number, result: ItemResult) => Effect.Effect<void>
  /** Stop launching new groups after the first failure. */
  readonly failFast?: boolean
}

/** Items located per round trip; payloads are then fetched in groups bounded by bytes. */
const locateGroup = 256
const payloadGroupBytes = 8 * 1024 * 1024
const payloadGroupItems = 128


export class Restorer extends Context.Tag("@codex-archive/core/Restorer")<Restorer, {
  readonly restore: (request: Request) => Effect.Effect<Outcome, RestoreError>
  readonly restoreAll: (requests: ReadonlyArray<Request>, options: RunOptions) => Effect.Effect<ReadonlyArray<ItemResult>>
}>() {}

interface Phase {
  decompress: number
  verify: number
  write: number
}

export const make = Effect.gen(function*() {
  const store = yield* ArchiveStore
  const evidence = yield* Evidence.Evidence
  const config = yield* ArchiveConfigTag
  const perf = config.performance.enabled

  /** Decides what to do with the output before any byte is fetched. */
  const precheck = (located: Located, request: Request): Effect.Effect<"write" | "unchanged", FileOps.OutputError> =>
    Effect.suspend(() => {
      const existing = FileOps.inspect(request.output)
      switch (existing._tag) {
        case "Absent":
          return Effect.succeed("write" as const)
        case "Directory":
          return Effect.fail(new FileOps.OutputError({ output: request.output, problem: "is-directory", detail: "output is a directory" }))
        case "Other":
          return Effect.fail(new FileOps.OutputError({ output: request.output, problem: "exists", detail: "output exists and is not a regular file" }))
        case "File": {
          if (existing.size === located.sizeBytes && hashFile(request.output) === located.sha256) return Effect.succeed("unchanged" as const)
          if (request.force) return Effect.succeed("write" as const)
          // A stub standing where the file was is what `restore STUB` replaces in place.
          if (existing.size <= Tombstone.maxStubBytes && isStubFor(request.output, located.tombstone)) return Effect.succeed("write" as const)
          return Effect.fail(new FileOps.OutputError({
            output: request.output,
            problem: "exists",
            detail: "output exists with different content (use --force to replace it)"
          }))
        }
      }
    })

  /** Decompress, verify and write an inline payload in one synchronous section. */
  const writeInline = (located: Located, request: Request, compressed: Uint8Array, phase: Phase) =>
    Effect.gen(function*() {
      const codec = yield* Codec.forName(located.codec)
      let t = performance.now()
      const raw = yield* Codec.decompress(codec, compressed)
      phase.decompress += performance.now() - t
      t = performance.now()
      const actual = Hash.sha256(raw)
      phase.verify += performance.now() - t
      if (actual !== located.sha256) return yield* new IntegrityError({ tombstone: located.tombstone, expected: located.sha256, actual })
      t = performance.now()
      yield* writeFile(request.output, located, (fd) => FileOps.writeAll(fd, raw))
      phase.write += performance.now() - t
      return raw.length
    })

  /** Streams a chunked payload into the temporary file, hashing as it goes; the rename happens only if it verifies. */
  const writeChunked = (located: Located, request: Request, phase: Phase) =>
    Effect.gen(function*() {
      const codec = yield* Codec.forName(located.codec)
      const hasher = Hash.incremental()
      const temp = FileOps.tempFor(request.output)
      const fd = yield* openTemp(request.output, temp)
      let bytes = 0
      const body = Stream.runForEach(store.chunks(located.artifactId), (compressed) =>
        Effect.gen(function*() {
          let t = performance.now()
          const raw = yield* Codec.decompress(codec, compressed)
          phase.decompress += performance.now() - t
          t = performance.now()
          hasher.update(raw)
          phase.verify += performance.now() - t
          t = performance.now()
          yield* Effect.try({ try: () => FileOps.writeAll(fd, raw), catch: (e) => unwritable(request.output, e) })
          phase.write += performance.now() - t
          bytes += raw.length
        }))
      const finish = Effect.gen(function*() {
        const actual = hasher.digest()
        if (actual !== located.sha256 || bytes !== located.sizeBytes) {
          return yield* new IntegrityError({ tombstone: located.tombstone, expected: located.sha256, actual })
        }
        yield* Effect.try({
          try: () => {
            fs.fchmodSync(fd, located.mode ?? 0o644)
            fs.closeSync(fd)
            fs.renameSync(temp, request.output)
          },
          catch: (e) => unwritable(request.output, e)
        })
      })
      yield* Effect.onError(Effect.zipRight(body, finish), () =>
        Effect.sync(() => {
          try {
            fs.closeSync(fd)
          } catch {
            // already closed
          }
          fs.rmSync(temp, { force: true })
        }))
      return bytes
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

  const failureEvidence = (request: Request, error: RestoreError): Evidence.Record => ({
    action: "RESTORE_FAIL",
    actor: request.actor,
    tombstone: request.tombstone,
    path: request.output,
    reason: Redact.text(error.message),
    error: error._tag,
    backend: store.backend,
    url: store.location
  })

  const recordMetrics = (outcome: Outcome) =>
    Effect.all([
      Metric.update(Metrics.restoreDuration, outcome.timings.duration_ms),
      Metric.update(Metrics.fetchDuration, outcome.timings.fetch_ms),
      Metric.update(Metrics.decompressDuration, outcome.timings.decompression_ms),
      Metric.update(Metrics.verifyDuration, outcome.timings.verify_ms),
      Metric.update(Metrics.writeDuration, outcome.timings.write_ms),
      Metric.update(Metrics.recordDuration, outcome.timings.record_ms),
      Metric.increment(Metrics.restores),
      Metric.incrementBy(Metrics.restoredBytes, outcome.bytes)
    ], { discard: true })

  /** Restores located items whose inline payloads (if any) are at hand; file work only, no evidence. */
  const materialize = (
    located: Located,
    request: Request,
    payload: Uint8Array | undefined,
    fetchMs: number,
    started: number
  ): Effect.Effect<Omit<Outcome, "timings"> & { phase: Phase; fetchMs: number; started: number }, RestoreError> =>
    Effect.gen(function*() {
      const phase: Phase = { decompress: 0, verify: 0, write: 0 }
      if (located.layout === "purged") return yield* new PayloadPurged({ tombstone: located.tombstone, sha256: located.sha256 })
      const action = yield* precheck(located, request)
      let bytes = located.sizeBytes
      let fetch = fetchMs
      if (action === "write") {
        if (located.layout === "inline") {
          if (payload === undefined) return yield* new PayloadPurged({ tombstone: located.tombstone, sha256: located.sha256 })
          bytes = yield* writeInline(located, request, payload, phase)
        } else {
          const t = performance.now()
          bytes = yield* writeChunked(located, request, phase)
          // Chunk fetches interleave with writing; count what is not decompress/verify/write as fetch time.
          fetch += performance.now() - t - phase.decompress - phase.verify - phase.write
        }
      }
      return { tombstone: request.tombstone, output: request.output, status: action === "write" ? "restored" as const : "unchanged" as const, bytes, sha256: located.sha256, phase, fetchMs: fetch, started }
    })

  const finishTimings = (m: { phase: Phase; fetchMs: number; started: number }, recordMs: number, end: number): Timings => ({
    duration_ms: end - m.started,
    fetch_ms: m.fetchMs,
    decompression_ms: m.phase.decompress,
    verify_ms: m.phase.verify,
    write_ms: m.phase.write,
    record_ms: recordMs
  })

  const validate = (request: Request): Effect.Effect<Request, InvalidTombstone> => {
    const tombstone = Tombstone.normalize(request.tombstone)
    return Tombstone.isTombstoneId(tombstone) ? Effect.succeed({ ...request, tombstone }) : Effect.fail(new InvalidTombstone({ tombstone: request.tombstone }))
  }

  const restore = (input: Request): Effect.Effect<Outcome, RestoreError> =>
    Effect.gen(function*() {
      const started = performance.now()
      const request = yield* validate(input)
      const found = yield* store.locate([request.tombstone])
      const located = found.get(request.tombstone)
      if (located === undefined) return yield* new TombstoneNotFound({ tombstone: request.tombstone })
      const payloads = located.layout === "inline" ? yield* store.inlinePayloads([located.artifactId]) : new Map<string, Uint8Array>()
      const fetchMs = performance.now() - started
      const done = yield* materialize(located, request, payloads.get(located.artifactId), fetchMs, started)
      const t = performance.now()
      yield* store.recordRestores([{ itemId: located.itemId, actor: request.actor, at: yield* Timestamp.now }])
      const end = performance.now()
      const outcome: Outcome = { ...done, timings: finishTimings(done, end - t, end) }
      yield* evidence.append(evidenceFor(request, located, outcome)).pipe(Effect.orDie)
      yield* recordMetrics(outcome)
      return outcome
    }).pipe(
      Effect.tapError((error) =>
        Effect.zipRight(
          evidence.append(failureEvidence(input, error)).pipe(Effect.orDie),
          Metric.increment(Metrics.restoreFailures)
        )
      ),
      Effect.annotateLogs("tombstone", input.tombstone),
      Effect.withSpan("Restorer.restore")
    )

  const restoreAll = (requests: ReadonlyArray<Request>, options: RunOptions): Effect.Effect<ReadonlyArray<ItemResult>> =>
    Effect.gen(function*() {
      const results = new Array<ItemResult>(requests.length)
      let failed = false
      const report = (index: number, result: ItemResult) => {
        results[index] = result
        if (result._tag === "Failure") failed = true
        return options.onResult ? options.onResult(index, result) : Effect.void
      }
      const indexed = requests.map((request, index) => ({ request, index }))
      const groups = Chunk.toReadonlyArray(Chunk.chunksOf(Chunk.fromIterable(indexed), locateGroup)).map(Chunk.toReadonlyArray)

      type Work = { index: number; request: Request; located: Located; payload: Uint8Array | undefined; fetchMs: number; started: number }

      /** Locates a group and fetches its inline payloads in byte-bounded round trips; failures become results. */
      const fetchGroup = (group: ReadonlyArray<{ request: Request; index: number }>) =>
        Effect.gen(function*() {
          const started = performance.now()
          const valid: Array<{ request: Request; index: number }> = []
          const early: Array<[number, ItemResult]> = []
          for (const { index, request } of group) {
            const checked = Tombstone.normalize(request.tombstone)
            if (Tombstone.isTombstoneId(checked)) valid.push({ index, request: { ...request, tombstone: checked } })
            else early.push([index, { _tag: "Failure", request, error: new InvalidTombstone({ tombstone: request.tombstone }), duration_ms: 0 }])
          }
          const located = yield* Effect.either(store.locate(valid.map((v) => v.request.tombstone)))
          if (located._tag === "Left") {
            for (const { index, request } of valid) early.push([index, { _tag: "Failure", request, error: located.left, duration_ms: performance.now() - started }])
            return { work: [] as Array<Work>, early }
          }
          const work: Array<Work> = []
          for (const { index, request } of valid) {
            const found = located.right.get(request.tombstone)
            if (found === undefined) early.push([index, { _tag: "Failure", request, error: new TombstoneNotFound({ tombstone: request.tombstone }), duration_ms: performance.now() - started }])
            else work.push({ index, request, located: found, payload: undefined, fetchMs: 0, started })
          }
          // Inline payloads in groups bounded by bytes, so memory stays bounded whatever the file sizes.
          const inline = work.filter((w) => w.located.layout === "inline" && FileOps.inspect(w.request.output)._tag !== "File")
          let batch: Array<Work> = []
          let bytes = 0
          const flush = Effect.suspend(() => {
            const current = batch
            batch = []
            bytes = 0
            return current.length === 0 ? Effect.void : Effect.either(store.inlinePayloads(current.map((w) => w.located.artifactId))).pipe(
              Effect.map((fetched) => {
                for (const w of current) {
                  if (fetched._tag === "Right") w.payload = fetched.right.get(w.located.artifactId)
                  else early.push([w.index, { _tag: "Failure", request: w.request, error: fetched.left, duration_ms: performance.now() - started }])
                }
              })
            )
          })
          for (const w of inline) {
            if (batch.length >= payloadGroupItems || bytes + w.located.compressedSize > payloadGroupBytes) yield* flush
            batch.push(w)
            bytes += w.located.compressedSize
          }
          yield* flush
          const fetchMs = performance.now() - started
          const failedIdx = new Set(early.map(([i]) => i))
          return { work: work.filter((w) => !failedIdx.has(w.index)).map((w) => ({ ...w, fetchMs })), early }
        })

      /** Writes a fetched group (synchronous file work), then records it in one transaction and one evidence write. */
      const writeGroup = ({ early, work }: { work: ReadonlyArray<Work>; early: ReadonlyArray<[number, ItemResult]> }) =>
        Effect.gen(function*() {
          const done: Array<{ w: Work; m: Effect.Effect.Success<ReturnType<typeof materialize>> }> = []
          const failures: Array<[number, ItemResult]> = [...early]
          for (const w of work) {
            // Inline items whose output existed were not prefetched (they may be unchanged): fetch them now.
            let payload = w.payload
            if (payload === undefined && w.located.layout === "inline") {
              const fetched = yield* Effect.either(store.inlinePayloads([w.located.artifactId]))
              payload = fetched._tag === "Right" ? fetched.right.get(w.located.artifactId) : undefined
            }
            const result = yield* Effect.either(materialize(w.located, w.request, payload, w.fetchMs, w.started))
            if (result._tag === "Right") done.push({ w, m: result.right })
            else failures.push([w.index, { _tag: "Failure", request: w.request, error: result.left, duration_ms: performance.now() - w.started }])
          }
          const t = performance.now()
          const at = yield* Timestamp.now
          const recorded = yield* Effect.either(store.recordRestores(done.map(({ w }) => ({ itemId: w.located.itemId, actor: w.request.actor, at }))))
          const end = performance.now()
          const records: Array<Evidence.Record> = []
          const successes: Array<[number, ItemResult]> = []
          for (const { m, w } of done) {
            if (recorded._tag === "Left") {
              // The file is in place and verified, but the archive could not record it: report, do not hide.
              failures.push([w.index, { _tag: "Failure", request: w.request, error: recorded.left, duration_ms: end - w.started }])
              continue
            }
            const outcome: Outcome = { tombstone: m.tombstone, output: m.output, status: m.status, bytes: m.bytes, sha256: m.sha256, timings: finishTimings(m, end - t, end) }
            records.push(evidenceFor(w.request, w.located, outcome))
            successes.push([w.index, { _tag: "Success", request: w.request, outcome }])
            yield* recordMetrics(outcome)
          }
          for (const [, r] of failures) {
            if (r._tag === "Failure") records.push(failureEvidence(r.request, r.error))
          }
          yield* Metric.incrementBy(Metrics.restoreFailures, failures.length)
          // Evidence before results: an item reported done always has its evidence line.
          yield* evidence.append(...records).pipe(Effect.orDie)
          for (const [index, result] of [...successes, ...failures].sort(([a], [b]) => a - b)) yield* report(index, result)
        })

      yield* Stream.fromIterable(groups).pipe(
        Stream.takeWhile(() => !(options.failFast && failed)),
        Stream.mapEffect(fetchGroup, { concurrency: Math.max(1, options.concurrency) }),
        Stream.takeWhile(() => !(options.failFast && failed)),
        Stream.runForEach(writeGroup)
      )
      return results.filter((r) => r !== undefined)
    }).pipe(Effect.withSpan("Restorer.restoreAll"))

  return Restorer.of({ restore, restoreAll })
})

export const layer = Layer.effect(Restorer, make)

const hashFile = (file: string): string => {
  const hasher = Hash.incremental()
  const fd = fs.openSync(file, "r")
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024)
    let n: number
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hasher.update(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
  return hasher.digest()
}

const isStubFor = (file: string, tombstone: string): boolean => {
  try {
    const text = fs.readFileSync(file, "utf8")
    return Tombstone.isStubText(text) && text.includes(tombstone)
  } catch {
    return false
  }
}

const unwritable = (output: string, e: unknown) =>
  new FileOps.OutputError({ output, problem: "unwritable", detail: `cannot write output: ${FileOps.describeErrno(e)}` })

const writeFile = (output: string, located: Located, write: (fd: number) => void) =>
  Effect.try({ try: () => FileOps.writeAtomic(output, write, located.mode ?? 0o644), catch: (e) => unwritable(output, e) })

const openTemp = (output: string, temp: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(path.dirname(output), { recursive: true })
      return fs.openSync(temp, "w", 0o600)
    },
    catch: (e) => unwritable(output, e)
  })

