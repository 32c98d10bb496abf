/**
 * Batch restore: manifest entries → `Restorer.restoreAll` (grouped round trips, bounded concurrency, results in
 * manifest order) with resume, fail-fast, a stop signal, progress events, a results file kept current while it runs,
 * and one `RESTORE_BATCH` evidence line per run. A dry run checks every entry against the archive and writes nothing.
 */
import { Chunk, Effect, Either, Option, Queue, Stream } from "effect"
import { ArchiveStore, type Located, StoreError } from "./ArchiveStore.js"
import * as BatchResults from "./BatchResults.js"
import * as Evidence from "./Evidence.js"
import * as Guarded from "./Guarded.js"
import * as Manifest from "./Manifest.js"
import * as Redact from "./Redact.js"
import * as RestorePlan from "./RestorePlan.js"
import * as Restorer from "./Restorer.js"
import * as WorkerPool from "./WorkerPool.js"

export interface Progress {
  /** Items finished so far, 1-based; reaches `total`. */
  readonly index: number
  readonly total: number
  readonly status: BatchResults.Status
  readonly tombstone: string
  readonly output: string
  /** Bytes of this item, and of all items restored so far. */
  readonly bytes: number
  readonly totalBytes: number
  readonly failed: number
}

export interface Options {
  /** Round trips in flight (`batch.concurrent`); the configured value when absent. */
  readonly concurrency?: number | undefined
  readonly failFast?: boolean | undefined
  /** Replace outputs that exist with different content. */
  readonly force?: boolean | undefined
  /** Where the results go (JSON, or CSV by extension), rewritten as the batch runs; none when absent. */
  readonly resultsFile?: string | undefined
  /** A results file of an earlier run: its done items whose outputs still hold their content are skipped. */
  readonly resumeFrom?: string | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
  /** Completes when the batch should stop launching items (Ctrl-C, SIGTERM); started items finish. */
  readonly stop?: Effect.Effect<void> | undefined
  /** Worker threads writing files (`Restorer.RunOptions.workers`): default 0, in this thread; `"auto"` as the CLI. */
  readonly workers?: WorkerPool.Count | undefined
  /** V8 flags each worker thread sets as it starts (`Restorer.RunOptions.workerV8Flags`). */
  readonly workerV8Flags?: ReadonlyArray<string> | undefined
  /** The host owns its process: workers may set `--expose-gc` (`Restorer.RunOptions.tuneV8`). Default: no. */
  readonly tuneV8?: boolean | undefined
  /** A second file the results go to, always JSON (what the CLI prints); none when absent. */
  readonly summaryFile?: string | undefined
  /** Entries held at a time, read and not yet written to the results (`defaultWindow`). */
  readonly window?: number | undefined
  /** Who runs the batch, for the summary evidence line. */
  readonly actor: string
  /** The manifest file or stub folder, for the summary evidence line. */
  readonly source?: string | undefined
  /** Files of the host no entry may restore over, besides the archive's and the run's own (a configuration file). */
  readonly guarded?: ReadonlyArray<Guarded.Guarded> | undefined
}

export interface Report {
  readonly summary: BatchResults.Summary
  /** The results file could not be written at the end (the summary's totals are still complete). */
  readonly resultsError: BatchResults.ResultsError | undefined
  /** The summary evidence line could not be written (its items already say why they failed). */
  readonly evidenceError?: Evidence.EvidenceError | undefined
}

/** Exit status of a finished batch: 0 only when every item is in place (restored, unchanged or skipped). */
export const exitCode = (summary: BatchResults.Summary): 0 | 1 =>
  summary.failed === 0 && summary.not_run === 0 && !summary.interrupted ? 0 : 1

const toItem = (entry: Manifest.Entry, result: Restorer.ItemResult, perf: boolean): BatchResults.Item => {
  const base = { tombstone: entry.tombstone, output: entry.output, actor: entry.actor }
  const name = `restore:${entry.tombstone}`
  if (result._tag === "Failure") {
    return {
      ...base,
      status: "FAILED",
      ...(perf
        ? {
          duration_ms: BatchResults.round3(result.duration_ms),
          metrics: { name, duration_ms: BatchResults.round3(result.duration_ms) }
        }
        : {}),
      detail: Redact.text(result.error.message),
      error: result.error._tag
    }
  }
  const { outcome } = result
  if (outcome.status === "skipped") {
    const { bytes, sha256 } = outcome
    return { ...base, status: "SKIPPED", bytes, sha256, detail: "restored by an earlier run; content checked" }
  }
  const t = outcome.timings
  return {
    ...base,
    status: outcome.status === "restored" ? "SUCCESS" : "UNCHANGED",
    ...(perf
      ? {
        duration_ms: BatchResults.round3(t.duration_ms),
        metrics: {
          name,
          duration_ms: BatchResults.round3(t.duration_ms),
          fetch_ms: BatchResults.round3(t.fetch_ms),
          decompression_ms: BatchResults.round3(t.decompression_ms),
          verify_ms: BatchResults.round3(t.verify_ms),
          write_ms: BatchResults.round3(t.write_ms),
          record_ms: BatchResults.round3(t.record_ms)
        }
      }
      : {}),
    bytes: outcome.bytes,
    sha256: outcome.sha256
  }
}

const notRun = (e: Manifest.Entry): BatchResults.Item => ({
  tombstone: e.tombstone,
  output: e.output,
  actor: e.actor,
  status: "NOT_RUN"
})

/**
 * Entries held at most: read from the manifest and not yet written to the results. The batch's memory is bounded by
 * this, not by the manifest; the window slides, one `restoreStream` for the whole batch.
 */
export const defaultWindow = 8192

/**
 * Runs a batch. Entries come from a `Manifest.Source` as the window slides; results go to the results file (and
 * `summaryFile`, JSON, for printing) in manifest order as they are known. The report's `summary.results` holds the
 * items only when `entries` is an array (already in memory); a streamed batch's items are in its files.
 */
export const run = (
  entries: ReadonlyArray<Manifest.Entry> | Manifest.Source,
  options: Options
): Effect.Effect<
  Report,
  BatchResults.ResultsError | Manifest.ManifestError,
  Restorer.Restorer | Evidence.Evidence | Restorer.RestoreSettings
> =>
  Effect.gen(function*() {
    const restorer = yield* Restorer.Restorer
    const evidence = yield* Evidence.Evidence
    const settings = yield* Restorer.RestoreSettings
    const perf = settings.timings
    // Wall time, not the Effect clock: hosts and tests run batches under a TestClock, and a frozen run has no throughput.
    const started = performance.now()
    const source: Manifest.Source = "total" in entries ? entries : { total: entries.length, entries: () => entries }
    const collected: Array<BatchResults.Item> | undefined = "total" in entries ? undefined : []
    const total = source.total
    const window = Math.max(1, options.window ?? defaultWindow)

    const previous = options.resumeFrom === undefined ? undefined : yield* BatchResults.readDone(options.resumeFrom)
    const files = [
      ...(options.resultsFile === undefined ? [] : [options.resultsFile]),
      ...(options.summaryFile === undefined ? [] : [options.summaryFile])
    ]
    // No entry may restore over the files this run reads and writes: its manifest, its results, the run it resumes.
    const runFiles: ReadonlyArray<Guarded.Guarded> = [
      ...(options.source === undefined ? [] : [{ file: options.source, what: "the manifest being restored" }]),
      ...files.map((file) => ({ file, what: "a results file of this batch" })),
      ...(options.resumeFrom === undefined
        ? []
        : [{ file: options.resumeFrom, what: "the results file resumed from" }]),
      ...(options.guarded ?? [])
    ]
    const writer = yield* BatchResults.open(files)
    const tally = BatchResults.tally()

    let done = 0
    let failed = 0
    let totalBytes = 0
    let stopped = false
    // A stub tree is live: it may hold more stubs by the end than were counted at the start, and the totals count them.
    const totals = (inProgress: boolean) =>
      tally.totals(Math.max(total, tally.seen), {
        durationMs: perf ? performance.now() - started : null,
        inProgress,
        interrupted: stopped
      })
    const keepGoing = (e: BatchResults.ResultsError) => Effect.logWarning(`results not updated: ${e.message}`)
    const progress = (item: BatchResults.Item, bytes: number) => {
      done++
      totalBytes += bytes
      if (item.status === "FAILED") failed++
      return options.onProgress
        ? options.onProgress({
          index: done,
          total,
          status: item.status,
          tombstone: item.tombstone,
          output: item.output,
          bytes,
          totalBytes,
          failed
        })
        : Effect.void
    }
    const emit = (item: BatchResults.Item) => {
      writer.append(item)
      tally.add(item)
      collected?.push(item)
    }

    const next = reader(source, options.source)
    let unreadable: Manifest.ManifestError | undefined

    // The entries in hand, a sliding window: taken from the manifest, not yet written to the results (in order). Each
    // holds one of `window` permits from when it is read until it is written, so the manifest is read only as far
    // ahead as that, however long one item takes; the pipeline never drains between windows. A queue of permits, not a
    // semaphore: the reader takes as many as are free at once, waiting only while none is.
    const permits = yield* Queue.unbounded<true>()
    const release = (n: number) => Queue.offerAll(permits, Array.from({ length: n }, () => true as const))
    yield* release(window)
    const inHand = new Map<number, { readonly entry: Manifest.Entry; item: BatchResults.Item | undefined }>()
    let read = 0
    let written = 0
    const writeReady = Effect.suspend(() => {
      let n = 0
      for (let held = inHand.get(written); held?.item !== undefined; held = inHand.get(written)) {
        emit(held.item)
        inHand.delete(written++)
        n++
      }
      return release(n)
    })

    /** Writes what is left as not run, the final results and the summary evidence line: runs however the batch ends. */
    const finish = Effect.gen(function*() {
      for (; written < read; written++) {
        const held = inHand.get(written)!
        emit(held.item ?? notRun(held.entry))
      }
      inHand.clear()
      // The rest is listed not run when the batch stopped itself (fail-fast). Stopped from outside (Ctrl-C), or on a
      // manifest that cannot be read on (it changed after its check), it is counted, not listed: listing meant reading
      // the rest of a large manifest (1.6 s for 150,000 entries) between the Ctrl-C and the exit.
      if (unreadable === undefined && !stopped) {
        for (let e = yield* next(); e !== undefined; e = yield* next()) emit(notRun(e))
      }
      const final = totals(false)
      const flushed = yield* Effect.either(writer.flush(final))
      yield* writer.close
      let evidenceError: Evidence.EvidenceError | undefined
      if (settings.batchEvidence) {
        evidenceError = yield* evidence.append(Evidence.restoreBatch({
          actor: options.actor,
          // A manifest found changed fails the batch, whatever was restored.
          status: final.failed > 0 || unreadable !== undefined
            ? "FAILED"
            : final.interrupted || final.not_run > 0
            ? "INTERRUPTED"
            : "SUCCESS",
          total: final.total,
          succeeded: final.succeeded,
          failed: final.failed,
          unchanged: final.unchanged,
          skipped: final.skipped,
          not_run: final.not_run,
          bytes: final.bytes,
          source: options.source,
          results_file: options.resultsFile,
          duration_ms: perf ? final.duration_ms : undefined
        })).pipe(Effect.flip, Effect.option, Effect.map(Option.getOrUndefined))
      }
      const { total: t, succeeded, failed: f, unchanged, skipped, not_run, in_progress, interrupted, ...rest } = final
      const summary: BatchResults.Summary = {
        total: t,
        succeeded,
        failed: f,
        unchanged,
        skipped,
        not_run,
        in_progress,
        interrupted,
        results: collected ?? [],
        ...rest
      }
      return { summary, resultsError: flushed._tag === "Left" ? flushed.left : undefined, evidenceError }
    })

    const stop = options.stop === undefined
      ? undefined
      : Effect.andThen(options.stop, () => Effect.sync(() => void (stopped = true)))
    const workers = WorkerPool.countFor(options.workers, total)
    const body = Effect.gen(function*() {
      // One pool of worker threads for the whole batch.
      const pool = workers > 0 ? yield* restorer.writers(workers, options.workerV8Flags, options.tuneV8) : undefined
      yield* writer.flush(totals(true)).pipe(Effect.catchAll(keepGoing))
      // Where each request sent to the pipeline sits in the manifest.
      const ordinalOf = new Map<number, number>()
      let sent = 0
      /**
       * What an earlier run restored at an entry's output (`--resume`), for the pipeline to skip it if the archive and the
       * output both still hold that content; none when the manifest says other content.
       */
      const resumedAt = (entry: Manifest.Entry) => {
        const before = previous?.get(entry.tombstone, entry.output)
        return before === undefined || (entry.sha256 !== undefined && before.sha256 !== entry.sha256)
          ? undefined
          : before
      }
      /**
       * The next entries to restore, as one chunk (one round trip to locate them): a permit each, waiting only for the
       * first, so a chunk never waits for entries that only its own results would let in.
       */
      const takeChunk: Effect.Effect<Chunk.Chunk<Restorer.Request>, Option.Option<Manifest.ManifestError>> = Effect.gen(
        function*() {
          let unused = (yield* Queue.takeBetween(permits, 1, Restorer.locateGroupSize(total))).length
          const requests: Array<Restorer.Request> = []
          for (; unused > 0; unused--) {
            const entry = yield* Effect.mapError(next(), Option.some)
            if (entry === undefined) break
            const ordinal = read++
            const held = { entry, item: undefined as BatchResults.Item | undefined }
            inHand.set(ordinal, held)
            ordinalOf.set(sent++, ordinal)
            const { actor, contained, output, tombstone } = entry
            const expected = expectedOf(entry, options.source)
            requests.push({
              tombstone,
              output,
              actor,
              force: options.force,
              contained,
              resumed: resumedAt(entry),
              expected
            })
          }
          yield* release(unused)
          yield* writeReady
          // Entries an earlier run restored never reach `onResults`: their items are flushed from here.
          yield* writer.update(() => totals(true)).pipe(Effect.catchAll(keepGoing))
          if (unused > 0 && requests.length === 0) return yield* Effect.fail(Option.none())
          return Chunk.unsafeFromArray(requests)
        }
      )
      const requests = Stream.repeatEffectChunkOption(takeChunk).pipe(
        Stream.takeWhile(() => !stopped && !(options.failFast === true && failed > 0))
      )
      yield* restorer.restoreStream(requests, total, {
        concurrency: options.concurrency ?? settings.concurrency,
        failFast: options.failFast === true,
        guarded: runFiles,
        ...(stop ? { stop } : {}),
        workers,
        writer: pool,
        onResults: (results) =>
          Effect.gen(function*() {
            for (const [i, result] of results) {
              const ordinal = ordinalOf.get(i)!
              ordinalOf.delete(i)
              const held = inHand.get(ordinal)!
              held.item = toItem(held.entry, result, perf)
              yield* progress(
                held.item,
                result._tag === "Success" && result.outcome.status === "restored" ? result.outcome.bytes : 0
              )
            }
            yield* writeReady
            yield* writer.update(() => totals(true)).pipe(Effect.catchAll(keepGoing))
          })
      })
    }).pipe(Effect.scoped)
    // An interrupted batch fiber (an embedding program's interrupt) still leaves its results and evidence line.
    yield* body.pipe(
      Effect.onInterrupt(() => Effect.sync(() => void (stopped = true)).pipe(Effect.zipRight(Effect.orDie(finish)))),
      // The manifest failing midway (it changed after its check), or found changed at its end: what was restored is
      // still in the results and the summary line, then the batch fails naming the manifest.
      Effect.flatMap(() => {
        const changed = stopped ? undefined : source.changed?.()
        return changed === undefined ? Effect.void : Effect.fail(changed)
      }),
      Effect.catchTag(
        "ManifestError",
        (e) => Effect.sync(() => void (unreadable = e)).pipe(Effect.zipRight(finish), Effect.zipRight(Effect.fail(e)))
      )
    )
    return yield* finish
  }).pipe(Effect.scoped, Effect.withSpan("Batch.run"))

/** The SHA-256 an entry pins, and where it comes from: its stub, or the manifest `source`. */
const expectedOf = (entry: Manifest.Entry, source: string | undefined): RestorePlan.Expected | undefined =>
  entry.sha256 === undefined ? undefined : {
    sha256: entry.sha256,
    from: entry.sha256From ?? (source === undefined ? "the manifest entry" : `manifest ${source}`)
  }

/** The entries of a source one at a time (`undefined` at the end); a source that fails to read is a ManifestError. */
const reader = (source: Manifest.Source, file: string | undefined) => {
  const iterator = source.entries()[Symbol.iterator]()
  return (): Effect.Effect<Manifest.Entry | undefined, Manifest.ManifestError> =>
    Effect.try({
      try: () => {
        const r = iterator.next()
        return r.done === true ? undefined : r.value
      },
      catch: (e) => (e instanceof Manifest.ManifestError
        ? e
        : new Manifest.ManifestError({ file: file ?? "manifest", where: undefined, problem: String(e) }))
    })
}

// ---- dry run ------------------------------------------------------------------------------------------------------

export type CheckStatus = "RESTORABLE" | "UNCHANGED" | "FAILED"

export interface CheckItem {
  readonly tombstone: string
  readonly output: string
  readonly actor: string
  readonly status: CheckStatus
  readonly bytes?: number | undefined
  readonly detail?: string | undefined
  readonly error?: string | undefined
}

export interface CheckReport {
  readonly dry_run: true
  readonly total: number
  readonly restorable: number
  readonly unchanged: number
  readonly failed: number
  readonly bytes: number
  readonly results: ReadonlyArray<CheckItem>
}

/** Entries a streamed dry run checks per round trip: what it holds at a time. */
export const checkGroupSize = 500

/** One group's entries checked against what `locate` found, by the rules of a real run (`RestorePlan.plan`). */
const checkEntries = (
  entries: ReadonlyArray<Manifest.Entry>,
  located: ReadonlyMap<string, Located | StoreError>,
  force: boolean | undefined,
  guarded: ReadonlyArray<Guarded.Guarded>,
  source: string | undefined
) =>
  entries.map((e): CheckItem => {
    const base = { tombstone: e.tombstone, output: e.output, actor: e.actor }
    const found = Option.fromNullable(located.get(e.tombstone))
    if (Option.isNone(found)) {
      return {
        ...base,
        status: "FAILED",
        error: "TombstoneNotFound",
        detail: `unknown tombstone ${e.tombstone}: no such item in the archive`
      }
    }
    const l = found.value
    // Its row is not what the schema promises: named as a real run names it, the other entries still checked.
    if (l instanceof StoreError) return { ...base, status: "FAILED", error: l._tag, detail: l.message }
    const wrong = RestorePlan.mismatch(l, expectedOf(e, source))
    if (wrong !== undefined) return { ...base, status: "FAILED", error: wrong._tag, detail: wrong.message }
    if (l.layout === "purged") {
      return {
        ...base,
        status: "FAILED",
        error: "PayloadPurged",
        detail: `payload of tombstone ${e.tombstone} has been purged; bytes unavailable`
      }
    }
    const action = RestorePlan.plan(l, { ...e, force }, guarded)
    if (Either.isLeft(action)) {
      return { ...base, status: "FAILED", error: action.left._tag, detail: action.left.message }
    }
    return { ...base, status: action.right === "write" ? "RESTORABLE" : "UNCHANGED", bytes: l.sizeBytes }
  })

/** A dry run's totals, its items counted in. */
const tallyChecks = (report: CheckReport, items: ReadonlyArray<CheckItem>): CheckReport => {
  const count = (s: CheckStatus) => items.filter((r) => r.status === s).length
  return {
    ...report,
    total: report.total + items.length,
    restorable: report.restorable + count("RESTORABLE"),
    unchanged: report.unchanged + count("UNCHANGED"),
    failed: report.failed + count("FAILED"),
    bytes: report.bytes + items.reduce((n, r) => n + (r.status === "RESTORABLE" ? r.bytes ?? 0 : 0), 0)
  }
}

const noChecks: CheckReport = { dry_run: true, total: 0, restorable: 0, unchanged: 0, failed: 0, bytes: 0, results: [] }

/**
 * What no output may replace, as a real run refuses it: the archive's files, and the evidence log when the host
 * provides one (a dry run needs none, so it is not required).
 */
const guardedHere = Effect.gen(function*() {
  const store = yield* ArchiveStore
  const evidence = yield* Effect.serviceOption(Evidence.Evidence)
  return Option.isSome(evidence) ? Guarded.ofArchive(store.files, evidence.value.file) : store.files ?? []
})

/** Checks that every tombstone exists, is not purged and that its output can be written; reads only. */
export const check = (
  entries: ReadonlyArray<Manifest.Entry>,
  options: { readonly force?: boolean | undefined } = {}
) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const located = yield* RestorePlan.locate(store, entries.map((e) => e.tombstone))
    const results = checkEntries(entries, located, options.force, yield* guardedHere, undefined)
    return { ...tallyChecks(noChecks, results), results } satisfies CheckReport as CheckReport
  }).pipe(Effect.withSpan("Batch.check"))

/**
 * `check` over a whole manifest, streamed: a group of entries at a time, each group's items handed to `onItems` in
 * manifest order; the report holds the totals and no items. Memory is bounded by the group, not by the manifest.
 */
export const checkSource = <E = never>(
  source: Manifest.Source,
  options: {
    readonly force?: boolean | undefined
    readonly groupSize?: number | undefined
    /** The manifest file, for errors reading it. */
    readonly source?: string | undefined
    /** Files no entry may restore over, as the real run would be told (`Options.guarded`, its results files). */
    readonly guarded?: ReadonlyArray<Guarded.Guarded> | undefined
    readonly onItems: (items: ReadonlyArray<CheckItem>) => Effect.Effect<void, E>
  }
) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const next = reader(source, options.source)
    const size = options.groupSize ?? checkGroupSize
    const guarded = [
      ...(yield* guardedHere),
      ...(options.source === undefined ? [] : [{ file: options.source, what: "the manifest being restored" }]),
      ...(options.guarded ?? [])
    ]
    let report = noChecks
    for (;;) {
      const entries: Array<Manifest.Entry> = []
      while (entries.length < size) {
        const entry = yield* next()
        if (entry === undefined) break
        entries.push(entry)
      }
      if (entries.length === 0) break
      const located = yield* RestorePlan.locate(store, entries.map((e) => e.tombstone))
      const items = checkEntries(entries, located, options.force, guarded, options.source)
      yield* options.onItems(items)
      report = tallyChecks(report, items)
      if (entries.length < size) break
    }
    // A stub tree whose stubs changed while they were checked: the report is of another tree than the one named.
    const changed = source.changed?.()
    if (changed !== undefined) return yield* Effect.fail(changed)
    return report
  }).pipe(Effect.withSpan("Batch.checkSource"))
