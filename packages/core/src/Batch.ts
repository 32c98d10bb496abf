/**
 * Batch restore: manifest entries → `Restorer.restoreAll` (grouped round trips, bounded concurrency, results in
 * manifest order) with resume, fail-fast, a stop signal, progress events, a results file kept current while it runs,
 * and one `RESTORE_BATCH` evidence line per run. A dry run checks every entry against the archive and writes nothing.
 */
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import { ArchiveStore } from "./ArchiveStore.js"
import * as BatchResults from "./BatchResults.js"
import * as Evidence from "./Evidence.js"
import * as Hash from "./Hash.js"
import type * as Manifest from "./Manifest.js"
import * as Redact from "./Redact.js"
import * as Restorer from "./Restorer.js"
import type * as WorkerPool from "./WorkerPool.js"

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
  /** Who runs the batch, for the summary evidence line. */
  readonly actor: string
  /** The manifest file or stub folder, for the summary evidence line. */
  readonly source?: string | undefined
}

export interface Report {
  readonly summary: BatchResults.Summary
  /** The results file could not be written at the end (the summary is still complete). */
  readonly resultsError: BatchResults.ResultsError | undefined
  /** The summary evidence line could not be written (its items already say why they failed). */
  readonly evidenceError?: Evidence.EvidenceError | undefined
}

/** Exit status of a finished batch: 0 only when every item is in place (restored, unchanged or skipped). */
export const exitCode = (summary: BatchResults.Summary): 0 | 1 =>
  summary.failed === 0 && summary.not_run === 0 && !summary.interrupted ? 0 : 1

const key = (tombstone: string, output: string) => `${tombstone}\u0000${output}`

/** The output still holds exactly what an earlier run restored there. */
const stillThere = (item: BatchResults.Item): boolean => {
  if (!BatchResults.isDone(item.status) || item.sha256 === undefined || item.bytes === undefined) return false
  try {
    const st = fs.statSync(item.output)
    return st.isFile() && st.size === item.bytes && Hash.file(item.output) === item.sha256
  } catch {
    return false
  }
}

const toItem = (entry: Manifest.Entry, result: Restorer.ItemResult, perf: boolean): BatchResults.Item => {
  const base = { tombstone: entry.tombstone, output: entry.output, actor: entry.actor }
  const name = `restore:${entry.tombstone}`
  if (result._tag === "Failure") {
    return {
      ...base,
      status: "FAILED",
      ...(perf ? { duration_ms: BatchResults.round3(result.duration_ms), metrics: { name, duration_ms: BatchResults.round3(result.duration_ms) } } : {}),
      detail: Redact.text(result.error.message),
      error: result.error._tag
    }
  }
  const { outcome } = result
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

export const run = (
  entries: ReadonlyArray<Manifest.Entry>,
  options: Options
): Effect.Effect<Report, BatchResults.ResultsError, Restorer.Restorer | Evidence.Evidence | Restorer.RestoreSettings> =>
  Effect.gen(function*() {
    const restorer = yield* Restorer.Restorer
    const evidence = yield* Evidence.Evidence
    const settings = yield* Restorer.RestoreSettings
    const perf = settings.timings
    const started = performance.now()
    const items: Array<BatchResults.Item> = entries.map((e) => ({ tombstone: e.tombstone, output: e.output, actor: e.actor, status: "NOT_RUN" }))

    const previous = new Map<string, BatchResults.Item>()
    if (options.resumeFrom !== undefined) {
      for (const item of yield* BatchResults.read(options.resumeFrom)) previous.set(key(item.tombstone, item.output), item)
    }

    let done = 0
    let failed = 0
    let totalBytes = 0
    let stopped = false
    const progress = (index: number, bytes: number) => {
      done++
      totalBytes += bytes
      const item = items[index]!
      if (item.status === "FAILED") failed++
      return options.onProgress
        ? options.onProgress({ index: done, total: entries.length, status: item.status, tombstone: item.tombstone, output: item.output, bytes, totalBytes, failed })
        : Effect.void
    }

    const summary = (inProgress: boolean) =>
      BatchResults.summarize(items, { durationMs: perf ? performance.now() - started : null, inProgress, interrupted: stopped })
    const writer = BatchResults.makeWriter(options.resultsFile, () => summary(true))
    const keepGoing = (e: BatchResults.ResultsError) => Effect.logWarning(`results not updated: ${e.message}`)

    // Items an earlier run restored, whose outputs still hold that content, are not restored again.
    const todo: Array<number> = []
    for (const [index, entry] of entries.entries()) {
      const before = previous.get(key(entry.tombstone, entry.output))
      if (before !== undefined && (before.sha256 === undefined || entry.sha256 === undefined || before.sha256 === entry.sha256) && stillThere(before)) {
        items[index] = { ...items[index]!, status: "SKIPPED", bytes: before.bytes, sha256: before.sha256, detail: "restored by an earlier run; content checked" }
        yield* progress(index, 0)
      } else {
        todo.push(index)
      }
    }

    /** Writes the results as they stand and the summary evidence line: runs however the batch ends. */
    const finish = Effect.gen(function*() {
      const final = summary(false)
      const written = yield* Effect.either(BatchResults.write(options.resultsFile ?? "", final).pipe(Effect.when(() => options.resultsFile !== undefined)))
      let evidenceError: Evidence.EvidenceError | undefined
      if (settings.batchEvidence) {
        evidenceError = yield* evidence.append({
          action: "RESTORE_BATCH",
          actor: options.actor,
          tombstone: "",
          status: final.failed > 0 ? "FAILED" : final.interrupted || final.not_run > 0 ? "INTERRUPTED" : "SUCCESS",
          total: final.total,
          succeeded: final.succeeded,
          failed: final.failed,
          unchanged: final.unchanged,
          skipped: final.skipped,
          not_run: final.not_run,
          bytes: final.bytes,
          source: options.source,
          results_file: options.resultsFile,
          ...(perf ? { duration_ms: final.duration_ms, metrics: { name: "batch_restore", duration_ms: final.duration_ms } } : {})
        }).pipe(Effect.flip, Effect.option, Effect.map(Option.getOrUndefined))
      }
      return { summary: final, resultsError: written._tag === "Left" ? written.left : undefined, evidenceError }
    })

    const requests = todo.map((index): Restorer.Request => {
      const { actor, contained, output, tombstone } = entries[index]!
      return { tombstone, output, actor, force: options.force, contained }
    })
    const stop = options.stop === undefined ? undefined : Effect.andThen(options.stop, () => Effect.sync(() => void (stopped = true)))
    const body = restorer.restoreAll(requests, {
      concurrency: options.concurrency ?? settings.concurrency,
      failFast: options.failFast === true,
      ...(stop ? { stop } : {}),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.workerV8Flags !== undefined ? { workerV8Flags: options.workerV8Flags } : {}),
      ...(options.tuneV8 !== undefined ? { tuneV8: options.tuneV8 } : {}),
      onResults: (results) =>
        Effect.gen(function*() {
          for (const [i, result] of results) {
            const index = todo[i]!
            items[index] = toItem(entries[index]!, result, perf)
            yield* progress(index, result._tag === "Success" && result.outcome.status === "restored" ? result.outcome.bytes : 0)
          }
          yield* writer.update.pipe(Effect.catchAll(keepGoing))
        })
    })
    yield* writer.flush.pipe(Effect.catchAll(keepGoing))
    // An interrupted batch (a second Ctrl-C, an embedding program) still leaves its results and evidence line.
    yield* body.pipe(Effect.onInterrupt(() => Effect.sync(() => void (stopped = true)).pipe(Effect.zipRight(finish))))
    return yield* finish
  }).pipe(Effect.withSpan("Batch.run"))

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

/** Checks that every tombstone exists, is not purged and that its output can be written; reads only. */
export const check = (
  entries: ReadonlyArray<Manifest.Entry>,
  options: { readonly force?: boolean | undefined } = {}
) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const located = yield* store.locate(entries.map((e) => e.tombstone))
    const results = entries.map((e): CheckItem => {
      const base = { tombstone: e.tombstone, output: e.output, actor: e.actor }
      const found = Option.fromNullable(located.get(e.tombstone))
      if (Option.isNone(found)) return { ...base, status: "FAILED", error: "TombstoneNotFound", detail: `unknown tombstone ${e.tombstone}: no such item in the archive` }
      const l = found.value
      if (l.layout === "purged") return { ...base, status: "FAILED", error: "PayloadPurged", detail: `payload of tombstone ${e.tombstone} has been purged; bytes unavailable` }
      const action = Restorer.outputAction(l, { ...e, force: options.force })
      if (typeof action !== "string") return { ...base, status: "FAILED", error: action._tag, detail: action.message }
      return { ...base, status: action === "write" ? "RESTORABLE" : "UNCHANGED", bytes: l.sizeBytes }
    })
    const count = (s: CheckStatus) => results.filter((r) => r.status === s).length
    return {
      dry_run: true,
      total: results.length,
      restorable: count("RESTORABLE"),
      unchanged: count("UNCHANGED"),
      failed: count("FAILED"),
      bytes: results.reduce((n, r) => n + (r.status === "RESTORABLE" ? r.bytes ?? 0 : 0), 0),
      results
    } satisfies CheckReport as CheckReport
  }).pipe(Effect.withSpan("Batch.check"))
