/**
 * Batch results (spec §7.3, extended): per-item status and timings in manifest order, totals, p50/p95/p99 of item
 * durations and throughput; written as JSON, or CSV when the file name ends in `.csv`, always by atomic rename, and
 * read back by `--resume`.
 */
import { parse as parseCsv } from "csv-parse/sync"
import { Data, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as FileOps from "./FileOps.js"

/**
 * `SUCCESS` restored; `UNCHANGED` the output already had the content; `SKIPPED` done by an earlier run (`--resume`,
 * content checked); `FAILED`; `NOT_RUN` not attempted (fail-fast, interruption, or the batch is still running).
 */
export type Status = "SUCCESS" | "UNCHANGED" | "FAILED" | "SKIPPED" | "NOT_RUN"
export const statuses: ReadonlyArray<Status> = ["SUCCESS", "UNCHANGED", "FAILED", "SKIPPED", "NOT_RUN"]

/** Statuses whose output holds the archived content. */
export const isDone = (status: Status): boolean => status === "SUCCESS" || status === "UNCHANGED" || status === "SKIPPED"

export interface ItemMetrics {
  readonly name: string
  readonly duration_ms: number
  readonly fetch_ms?: number
  readonly decompression_ms?: number
  readonly verify_ms?: number
  readonly write_ms?: number
  readonly record_ms?: number
}

export interface Item {
  readonly tombstone: string
  readonly output: string
  readonly actor: string
  readonly status: Status
  readonly duration_ms?: number | undefined
  readonly metrics?: ItemMetrics | undefined
  /** Bytes of the restored content, and its SHA-256: what `--resume` checks the output against. */
  readonly bytes?: number | undefined
  readonly sha256?: string | undefined
  readonly detail?: string | undefined
  /** The failure's type (`TombstoneNotFound`, `StoreError`, ...). */
  readonly error?: string | undefined
}

export interface Summary {
  readonly total: number
  readonly succeeded: number
  readonly failed: number
  readonly unchanged: number
  readonly skipped: number
  readonly not_run: number
  /** True while the batch is running (the file is rewritten as it goes) and after an interruption. */
  readonly in_progress: boolean
  readonly interrupted: boolean
  readonly results: ReadonlyArray<Item>
  readonly duration_ms: number | null
  readonly bytes: number
  readonly latency_ms: { readonly p50: number; readonly p95: number; readonly p99: number } | null
  readonly throughput: { readonly files_per_s: number; readonly mib_per_s: number } | null
}

export class ResultsError extends Data.TaggedError("ResultsError")<{ readonly file: string; readonly problem: string }> {
  override get message() {
    return `results file ${this.file}: ${this.problem}`
  }
}

export const round3 = (ms: number): number => Math.round(ms * 1000) / 1000

/** Nearest-rank percentile of ascending values. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

export const summarize = (
  results: ReadonlyArray<Item>,
  run: { readonly durationMs: number | null; readonly inProgress: boolean; readonly interrupted: boolean }
): Summary => {
  const count = (status: Status) => results.reduce((n, r) => (r.status === status ? n + 1 : n), 0)
  const ran = results.filter((r) => r.status === "SUCCESS" || r.status === "UNCHANGED" || r.status === "FAILED")
  const durations = ran.flatMap((r) => (r.duration_ms === undefined ? [] : [r.duration_ms])).sort((a, b) => a - b)
  const bytes = results.reduce((n, r) => (r.status === "SUCCESS" ? n + (r.bytes ?? 0) : n), 0)
  const seconds = run.durationMs === null ? 0 : run.durationMs / 1000
  const processed = count("SUCCESS") + count("UNCHANGED")
  return {
    total: results.length,
    succeeded: count("SUCCESS"),
    failed: count("FAILED"),
    unchanged: count("UNCHANGED"),
    skipped: count("SKIPPED"),
    not_run: count("NOT_RUN"),
    in_progress: run.inProgress,
    interrupted: run.interrupted,
    results,
    duration_ms: run.durationMs === null ? null : round3(run.durationMs),
    bytes,
    latency_ms: durations.length === 0 ? null : {
      p50: round3(percentile(durations, 50)),
      p95: round3(percentile(durations, 95)),
      p99: round3(percentile(durations, 99))
    },
    throughput: seconds > 0 ? { files_per_s: round3(processed / seconds), mib_per_s: round3(bytes / 1048576 / seconds) } : null
  }
}

const csvColumns = ["tombstone", "output", "actor", "status", "duration_ms", "bytes", "sha256", "error", "detail"] as const

const csvField = (value: unknown): string => {
  const text = value === undefined || value === null ? "" : String(value)
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replace(/"/g, `""`)}"` : text
}

export const isCsv = (file: string): boolean => file.toLowerCase().endsWith(".csv")

// A batch's final summary is written to its results file and printed: megabytes of JSON, rendered once.
const rendered = new WeakMap<Summary, string>()

/** The summary as pretty JSON (what a JSON results file holds, without its final newline). */
export const toJson = (summary: Summary): string => {
  let text = rendered.get(summary)
  if (text === undefined) {
    text = JSON.stringify(summary, null, 2)
    rendered.set(summary, text)
  }
  return text
}

/** The file's text: pretty JSON of the summary, or one CSV row per item. */
export const render = (file: string, summary: Summary): string =>
  isCsv(file)
    ? [csvColumns.join(","), ...summary.results.map((r) => csvColumns.map((c) => csvField(r[c])).join(","))].join("\n") + "\n"
    : toJson(summary) + "\n"

/** Writes the results atomically: a reader (or a `--resume` after a kill) sees the old file or the new, never half. */
export const write = (file: string, summary: Summary): Effect.Effect<void, ResultsError> =>
  Effect.try({
    try: () => FileOps.writeFileAtomic(file, render(file, summary)),
    catch: (e) => new ResultsError({ file, problem: `cannot write: ${FileOps.describeErrno(e)}` })
  })

/** Reads the items of a results file written by `write` (JSON or CSV). */
export const read = (file: string): Effect.Effect<ReadonlyArray<Item>, ResultsError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const fail = (problem: string) => Effect.fail(new ResultsError({ file: absolute, problem }))
    let text: string
    try {
      text = fs.readFileSync(absolute, "utf8")
    } catch (e) {
      return fail((e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `cannot read: ${FileOps.describeErrno(e)}`)
    }
    let rows: ReadonlyArray<Record<string, unknown>>
    try {
      if (isCsv(absolute)) {
        rows = parseCsv(text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>
      } else {
        const doc: unknown = JSON.parse(text)
        const results = typeof doc === "object" && doc !== null ? (doc as { results?: unknown }).results : undefined
        if (!Array.isArray(results)) return fail("not a batch results file: no 'results' array")
        rows = results as Array<Record<string, unknown>>
      }
    } catch (e) {
      return fail(`cannot parse: ${(e as Error).message}`)
    }
    const items: Array<Item> = []
    for (const [i, row] of rows.entries()) {
      const status = String(row.status ?? "")
      if (typeof row.tombstone !== "string" || typeof row.output !== "string" || !statuses.includes(status as Status)) {
        return fail(`result ${i + 1} lacks a tombstone, an output or a known status`)
      }
      const bytes = row.bytes === undefined || row.bytes === "" ? undefined : Number(row.bytes)
      const sha256 = typeof row.sha256 === "string" && row.sha256 !== "" ? row.sha256 : undefined
      items.push({ tombstone: row.tombstone, output: row.output, actor: String(row.actor ?? ""), status: status as Status, bytes, sha256 })
    }
    return Effect.succeed(items)
  })

/**
 * Keeps a results file current while a batch runs without rewriting it per item: `update` rewrites it when at least
 * `intervalMs` passed since the last write, and never more often than 50× what a write costs (a file of 10,000 items
 * is megabytes), so keeping it current takes at most ~2 % of the run; `flush` writes now. Without a file both do nothing.
 */
export const makeWriter = (file: string | undefined, summary: () => Summary, intervalMs = 300) => {
  let last = performance.now()
  let cost = 0
  const flush: Effect.Effect<void, ResultsError> = file === undefined
    ? Effect.void
    : Effect.suspend(() => {
      const started = performance.now()
      return Effect.ensuring(write(file, summary()), Effect.sync(() => {
        last = performance.now()
        cost = last - started
      }))
    })
  const update: Effect.Effect<void, ResultsError> = Effect.suspend(() =>
    performance.now() - last >= Math.max(intervalMs, 50 * cost) ? flush : Effect.void
  )
  return { flush, update }
}
