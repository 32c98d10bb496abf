/**
 * Restore: tombstone → locate → fetch (retried inside the store) → decompress → verify SHA-256 → atomic write →
 * record (retried) → evidence RESTORE with timings → metrics. This module holds the service, its types and the single
 * restore; `restoreAll` runs many items through the batch pipeline (internal/BatchPipeline.ts), and both share the
 * write stage (internal/WriteStage.ts). What happens at the output (write, unchanged, refuse) is `RestorePlan`.
 */
import { Context, Data, Effect, Either, Layer, Metric, Redacted, type Scope, type Stream } from "effect"
import * as path from "node:path"
import { ArchiveStore, type NotAnArchive, PayloadPurged, StoreError, TombstoneNotFound } from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import type { ArchiveConfig } from "./Config.js"
import * as Evidence from "./Evidence.js"
import * as FileOps from "./FileOps.js"
import * as Guarded from "./Guarded.js"
import { IntegrityError } from "./Hash.js"
import * as Ids from "./Ids.js"
import { InvalidTombstone } from "./Ids.js"
import * as BatchPipeline from "./internal/BatchPipeline.js"
import * as WriteStage from "./internal/WriteStage.js"
import * as Metrics from "./Metrics.js"
import * as Redact from "./Redact.js"
import * as RestorePlan from "./RestorePlan.js"
import * as RestoreWriter from "./RestoreWriter.js"
import * as Timestamp from "./Timestamp.js"
import * as Verifier from "./Verifier.js"
import * as WorkerPool from "./WorkerPool.js"

export interface Request {
  readonly tombstone: string
  readonly output: string
  readonly actor: string
  /** Replace an existing file with different content. */
  readonly force?: boolean | undefined
  /** Where the file really goes, kept inside a folder (a batch's manifest folder): `FileOps.Contained`. */
  readonly contained?: FileOps.Contained | undefined
  /**
   * What an earlier run of the batch restored here (`--resume`): the item is `skipped`, not written, when the archive's
   * content is that very content and the output still holds it. The results file saying so is not enough: it is
   * checked against the archive.
   */
  readonly resumed?: { readonly bytes: number; readonly sha256: string } | undefined
  /** Files of the host the output may not be, besides the archive's and the log (a configuration file, a key file). */
  readonly guarded?: ReadonlyArray<Guarded.Guarded> | undefined
  /**
   * The content's SHA-256 as the stub or manifest entry gives it: the item fails, nothing fetched or written, unless
   * its artifact holds that content (`RestorePlan.mismatch`).
   */
  readonly expected?: RestorePlan.Expected | undefined
}

/** Where a restore's time went, in milliseconds: its RESTORE evidence line carries the same fields. */
export type Timings = Evidence.RestoreTimings

export interface Outcome {
  readonly tombstone: string
  readonly output: string
  /** `skipped`: restored by an earlier run (`Request.resumed`), nothing written or recorded. */
  readonly status: "restored" | "unchanged" | "skipped"
  readonly bytes: number
  readonly sha256: string
  readonly timings: Timings
}

/** Items `restoreStream` locates in one round trip, for a batch of `total`: a caller's chunks are split to this size. */
export const locateGroupSize: (total: number) => number = BatchPipeline.locateGroupSize

/** Kept here too: callers have always named them `Restorer.InvalidTombstone`, `Restorer.IntegrityError`. */
export { IntegrityError, InvalidTombstone }

export type RestoreError =
  | InvalidTombstone
  | TombstoneNotFound
  | PayloadPurged
  | StoreError
  | Codec.UnknownCodec
  | Codec.CorruptPayload
  | IntegrityError
  | RestorePlan.ContentMismatch
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
  /** Worker threads the caller keeps across runs (`writers`); by default, per run. */
  readonly writer?: RestoreWriter.RestoreWriter | undefined
  /** Files of this run no output may replace, besides the archive's and the log's: its manifest, its results files. */
  readonly guarded?: ReadonlyArray<Guarded.Guarded> | undefined
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

export class Restorer extends Context.Tag("@codex-archive/core/Restorer")<Restorer, {
  readonly restore: (request: Request) => Effect.Effect<Outcome, RestoreError>
  readonly restoreAll: (
    requests: ReadonlyArray<Request>,
    options: RunOptions
  ) => Effect.Effect<ReadonlyArray<ItemResult>>
  /**
   * `restoreAll` over a stream of `total` items, pulled as the pipeline has room: results only through `onResults`,
   * each with its item's position in the stream. Each chunk is located in one round trip (split when large, never
   * joined: a caller that reads ahead only as far as its results let it is never waited for). A failing stream fails
   * the run once the units in hand are done.
   */
  readonly restoreStream: <E>(
    requests: Stream.Stream<Request, E>,
    total: number,
    options: RunOptions
  ) => Effect.Effect<void, E>
  /** `size` worker threads for `RunOptions.writer`, reading payloads themselves where the store allows; ended with the scope. */
  readonly writers: (
    size: number,
    v8Flags?: ReadonlyArray<string>,
    tuneV8?: boolean
  ) => Effect.Effect<RestoreWriter.RestoreWriter, never, Scope.Scope>
}>() {}

/**
 * A single restore whose archive could not be opened is a failed restore too, and leaves its RESTORE_FAIL line (best
 * effort: the open failure is what the user is told about).
 */
export const recordOpenFailure = (
  config: ArchiveConfig,
  request: { readonly actor: string; readonly tombstone: string; readonly output: string | undefined },
  error: NotAnArchive | StoreError
): Effect.Effect<void> =>
  Effect.flatMap(
    Evidence.make(config.evidence.dir, config.evidence),
    (evidence) =>
      evidence.append(Evidence.restoreFail({
        actor: request.actor,
        tombstone: request.tombstone,
        path: request.output === undefined ? null : path.resolve(request.output),
        error,
        reason: `Archive backend validation failed: ${error.message}`,
        backend: config.backend.backend,
        url: Redact.url(Redacted.value(config.backend.url))
      }))
  ).pipe(Effect.ignore)

/** Stored content that does not decode to its recorded SHA-256 and size (`describe`). */
export class ContentCheckFailed extends Data.TaggedError("ContentCheckFailed")<{
  readonly tombstone: string
  readonly problem: string
}> {
  override get message() {
    return `tombstone ${this.tombstone}: stored content fails its check: ${this.problem}`
  }
}

/** What a restore of a tombstone would write, once its stored content checked out (`restore ID --out -`). */
export interface Description {
  /** The path recorded at store time. */
  readonly path: string
  readonly bytes: number
  readonly sha256: string
}

/**
 * The original's "what would be restored": locates the tombstone and decodes and verifies its stored content, writing
 * nothing and recording nothing.
 */
export const describe = (
  tombstone: string,
  expected?: RestorePlan.Expected | undefined
): Effect.Effect<
  Description,
  TombstoneNotFound | PayloadPurged | StoreError | ContentCheckFailed | RestorePlan.ContentMismatch,
  ArchiveStore
> =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const located = (yield* store.locate([tombstone])).get(tombstone)
    const artifact = (yield* store.artifacts([tombstone]))[0]
    if (located === undefined || artifact === undefined) return yield* new TombstoneNotFound({ tombstone })
    const wrong = RestorePlan.mismatch(located, expected)
    if (wrong !== undefined) return yield* wrong
    if (artifact.layout === "purged") return yield* new PayloadPurged({ tombstone, sha256: artifact.sha256 })
    const checked = yield* Verifier.check(store, artifact)
    if (checked.problem !== undefined) return yield* new ContentCheckFailed({ tombstone, problem: checked.problem })
    return { path: located.path, bytes: checked.bytes, sha256: artifact.sha256 }
  }).pipe(Effect.withSpan("Restorer.describe"))

export const make = Effect.gen(function*() {
  const env: WriteStage.Env = {
    store: yield* ArchiveStore,
    evidence: yield* Evidence.Evidence,
    perf: (yield* RestoreSettings).timings
  }
  const { evidence, store } = env
  const stage = WriteStage.make(env)
  const guarded = Guarded.ofArchive(store.files, evidence.file)

  const validate = (request: Request): Effect.Effect<Request, InvalidTombstone> => {
    return Either.match(Ids.decodeTombstoneId(request.tombstone), {
      onLeft: Effect.fail,
      onRight: (tombstone) => Effect.succeed({ ...request, tombstone })
    })
  }

  const restore = (input: Request): Effect.Effect<Outcome, RestoreError> =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const started = clock.unsafeCurrentTimeNanos()
      const request = yield* validate(input)
      const found = yield* store.locate([request.tombstone])
      const located = found.get(request.tombstone)
      if (located === undefined) return yield* new TombstoneNotFound({ tombstone: request.tombstone })
      const action = yield* RestorePlan.plan(
        located,
        request,
        request.guarded === undefined ? guarded : [...guarded, ...request.guarded]
      )
      const payloads = action === "write" && located.layout === "inline"
        ? yield* store.inlinePayloads([located.artifactId])
        : new Map<string, Uint8Array>()
      const work: WriteStage.Work = {
        index: 0,
        request,
        located,
        action,
        payload: payloads.get(located.artifactId),
        fetchMs: Timestamp.elapsedMs(clock, started)
      }
      const writer = stage.localWriter()
      // Interruptible while it writes and records; a held file is then removed (an interrupt that lands between the
      // two is taken at the record). Once recorded, it is renamed: the rename is not cut off.
      const { failed, outcome } = yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // Interrupted before its answer came, the job's file (open or held) is removed all the same.
          const [written] = yield* restore(stage.materialize(writer, 0, [work], false)).pipe(
            Effect.onInterrupt(() => work.job === undefined ? Effect.void : stage.discard(writer, 0, [work.job]))
          )
          // Unreachable: without stopAfterFailure, materialize answers every item it is given, and this is its only one.
          if (written === undefined || written === "skipped") {
            return yield* Effect.dieMessage("restore: the writer skipped its only item")
          }
          if (!("phase" in written)) return yield* Effect.fail(written)
          const held = written.job === undefined ? [] : [{ w: work, job: written.job }]
          // Record, then rename: a restore that cannot be recorded leaves no visible file.
          const outcome = yield* restore(Effect.gen(function*() {
            const recording = clock.unsafeCurrentTimeNanos()
            yield* store.recordRestores([{ itemId: located.itemId, actor: request.actor, at: yield* Timestamp.now }])
            const timings = WriteStage.finishTimings(written, work.fetchMs, Timestamp.elapsedMs(clock, recording))
            const outcome = WriteStage.outcomeOf(work, written, timings)
            yield* evidence.append(stage.restoreLine(request, located, outcome))
            return outcome
          })).pipe(Effect.onError(() => stage.discard(writer, 0, held.map((h) => h.job))))
          return { failed: yield* stage.commit(writer, 0, held), outcome }
        })
      )
      const error = failed.get(work)
      if (error !== undefined) return yield* Effect.fail(error)
      yield* Metrics.recordRestores([outcome])
      return outcome
    }).pipe(
      Effect.tapError((error) =>
        Effect.zipRight(
          // A log that cannot take the RESTORE line cannot take this one either: the error already says so.
          evidence.append(stage.failureLine(input, error)).pipe(
            Effect.catchAll((e) => error._tag === "EvidenceError" ? Effect.void : Effect.logWarning(e.message))
          ),
          Metric.increment(Metrics.restoreFailures)
        )
      ),
      Effect.annotateLogs("tombstone", input.tombstone),
      Effect.withSpan("Restorer.restore")
    )

  const writers = (size: number, v8Flags?: ReadonlyArray<string>, tuneV8?: boolean) =>
    RestoreWriter.workers(size, { v8Flags, direct: store.directReads, exposeGc: tuneV8 })

  return Restorer.of({ restore, ...BatchPipeline.make(env, stage), writers })
})

export const layer = Layer.effect(Restorer, make)
