/**
 * Batch results (spec §7.3, extended): per-item status and timings in manifest order, totals, p50/p95/p99 of item
 * durations and throughput; written as JSON, or CSV when the file name ends in `.csv`, as the batch runs (`open`),
 * and read back by `--resume` (`readDone`).
 */
import { Data, Effect, Either, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"
import * as Ids from "./Ids.js"
import * as RecordSchema from "./internal/RecordSchema.js"
import * as SortedRecords from "./internal/SortedRecords.js"
import * as TextFile from "./internal/TextFile.js"
import * as Printable from "./Printable.js"

/**
 * `SUCCESS` restored; `UNCHANGED` the output already had the content; `SKIPPED` done by an earlier run (`--resume`,
 * content checked); `FAILED`; `NOT_RUN` not attempted (fail-fast, interruption, or the batch is still running).
 */
export type Status = "SUCCESS" | "UNCHANGED" | "FAILED" | "SKIPPED" | "NOT_RUN"
export const statuses: ReadonlyArray<Status> = ["SUCCESS", "UNCHANGED", "FAILED", "SKIPPED", "NOT_RUN"]

/** Statuses whose output holds the archived content. */
export const isDone = (status: Status): boolean =>
  status === "SUCCESS" || status === "UNCHANGED" || status === "SKIPPED"

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

/** A results file that cannot be written or read back; `where` ("line N", "result N") names a record when known. */
export class ResultsError extends Data.TaggedError("ResultsError")<{
  readonly file: string
  readonly where?: string | undefined
  readonly problem: string
}> {
  override get message() {
    return `results file ${this.file}${this.where === undefined ? "" : ` (${this.where})`}: ${this.problem}`
  }
}

export const round3 = (ms: number): number => Math.round(ms * 1000) / 1000

/** Nearest-rank percentile of ascending values. */
export const percentile = (sorted: ArrayLike<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

/** The summary without its items: what a streamed batch holds and writes after them. */
export type Totals = Omit<Summary, "results">

/** The smallest duration told apart, and the width of each bin above it: a duration is known to within 0.5%. */
const binFloorMs = 0.001
const binGrowth = 1.01
const binCount = Math.ceil(Math.log(1e8 / binFloorMs) / Math.log(binGrowth)) + 1

/**
 * Durations counted in bins of 1% from 1 µs to ~28 h (2,500 counts, whatever the batch): the percentiles come from the
 * bins, each a bin's geometric middle (0 below 1 µs). Keeping every duration to sort cost 8 MB at a million items, and
 * sorting them at every flush of the results file cost the main thread ~0.1 s a time.
 */
const latencies = () => {
  const bins = new Float64Array(binCount)
  let n = 0
  return {
    add: (ms: number) => {
      const bin = ms < binFloorMs
        ? 0
        : Math.min(binCount - 1, 1 + Math.floor(Math.log(ms / binFloorMs) / Math.log(binGrowth)))
      bins[bin]!++
      n++
    },
    get count() {
      return n
    },
    /** Nearest rank, as `percentile` on the durations themselves, to within the bin. */
    percentile: (p: number): number => {
      const rank = Math.max(1, Math.ceil((p / 100) * n))
      let seen = 0
      for (let bin = 0; bin < binCount; bin++) {
        seen += bins[bin]!
        if (seen >= rank) return bin === 0 ? 0 : binFloorMs * binGrowth ** (bin - 0.5)
      }
      return 0
    }
  }
}

/**
 * Running totals of a batch, item by item: counts, bytes, and the durations' histogram the percentiles come from (a
 * fixed 20 KB: nothing here grows with the batch).
 */
export const tally = () => {
  const counts: Record<Status, number> = { SUCCESS: 0, UNCHANGED: 0, FAILED: 0, SKIPPED: 0, NOT_RUN: 0 }
  let bytes = 0
  const durations = latencies()
  return {
    add: (item: Item) => {
      counts[item.status]++
      if (item.status === "SUCCESS") bytes += item.bytes ?? 0
      if (
        (item.status === "SUCCESS" || item.status === "UNCHANGED" || item.status === "FAILED") &&
        item.duration_ms !== undefined
      ) durations.add(item.duration_ms)
    },
    get seen() {
      return counts.SUCCESS + counts.UNCHANGED + counts.FAILED + counts.SKIPPED + counts.NOT_RUN
    },
    /** The totals of a batch of `total` items; those not seen yet count as not run. */
    totals: (
      total: number,
      run: { readonly durationMs: number | null; readonly inProgress: boolean; readonly interrupted: boolean }
    ): Totals => {
      const seconds = run.durationMs === null ? 0 : run.durationMs / 1000
      const processed = counts.SUCCESS + counts.UNCHANGED
      const seen = counts.SUCCESS + counts.UNCHANGED + counts.FAILED + counts.SKIPPED + counts.NOT_RUN
      return {
        total,
        succeeded: counts.SUCCESS,
        failed: counts.FAILED,
        unchanged: counts.UNCHANGED,
        skipped: counts.SKIPPED,
        not_run: counts.NOT_RUN + Math.max(0, total - seen),
        in_progress: run.inProgress,
        interrupted: run.interrupted,
        duration_ms: run.durationMs === null ? null : round3(run.durationMs),
        bytes,
        latency_ms: durations.count === 0 ? null : {
          p50: round3(durations.percentile(50)),
          p95: round3(durations.percentile(95)),
          p99: round3(durations.percentile(99))
        },
        throughput: seconds > 0
          ? { files_per_s: round3(processed / seconds), mib_per_s: round3(bytes / 1048576 / seconds) }
          : null
      }
    }
  }
}

export const summarize = (
  results: ReadonlyArray<Item>,
  run: { readonly durationMs: number | null; readonly inProgress: boolean; readonly interrupted: boolean }
): Summary => {
  const t = tally()
  for (const r of results) t.add(r)
  const { total, succeeded, failed, unchanged, skipped, not_run, in_progress, interrupted, ...rest } = t.totals(
    results.length,
    run
  )
  return { total, succeeded, failed, unchanged, skipped, not_run, in_progress, interrupted, results, ...rest }
}

const csvColumns = [
  "tombstone",
  "output",
  "actor",
  "status",
  "duration_ms",
  "bytes",
  "sha256",
  "error",
  "detail"
] as const

const csvField = (value: unknown): string => {
  const text = value === undefined || value === null ? "" : String(value)
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replace(/"/g, `""`)}"` : text
}

export const isCsv = (file: string): boolean => file.toLowerCase().endsWith(".csv")

/** The summary as pretty JSON (a dry run's report, tests); a batch's results file is written by `open`. */
export const toJson = (summary: Summary): string => Printable.escapeJson(JSON.stringify(summary, null, 2))

/**
 * A results file written as the batch runs, its items appended in manifest order and never held: JSON holds
 * `"results"` first, one item per line, then the totals; each `flush` cuts the old totals off and writes the items
 * since the last one and the current totals in one write, so the file is valid JSON between flushes, and one cut short
 * by a kill or a full disk is still read line by line (`readDone`). CSV is one row per item. `update` flushes the
 * first time, then when at least `intervalMs` passed since the last flush, or `writerTuning.maxPending` items wait:
 * however fast items come (a resume skipping every entry), the writer holds a bounded number.
 */
export interface Writer {
  readonly append: (item: Item) => void
  readonly update: (totals: () => Totals) => Effect.Effect<void, ResultsError>
  readonly flush: (totals: Totals) => Effect.Effect<void, ResultsError>
  readonly close: Effect.Effect<void>
}

/** Items a results writer holds before `update` flushes them, whatever the time since the last flush (tests shrink it). */
export const writerTuning: { maxPending: number } = { maxPending: 4096 }

export const open = (files: ReadonlyArray<string>, intervalMs = 300): Effect.Effect<Writer, ResultsError> =>
  Effect.suspend(() => {
    const outs: Array<{ file: string; fd: number; csv: boolean; end: number; pending: Array<string>; first: boolean }> =
      []
    const closeAll = () => {
      for (const o of outs) fs.closeSync(o.fd)
    }
    for (const file of files) {
      try {
        const refused = FileOps.notReplaceable(file)
        if (refused !== undefined) throw refused
        const fd = fs.openSync(file, "w", 0o644)
        const csv = isCsv(file)
        const head = csv ? csvColumns.join(",") + "\n" : `{\n  "results": [`
        fs.writeSync(fd, head)
        outs.push({ file, fd, csv, end: Buffer.byteLength(head), pending: [], first: true })
      } catch (e) {
        closeAll()
        return Effect.fail(new ResultsError({ file, problem: `cannot write: ${FileOps.describeErrno(e)}` }))
      }
    }
    // The first update flushes at once: a batch killed early still leaves what it restored for `--resume`.
    let last = -Infinity
    const flush = (totals: Totals): Effect.Effect<void, ResultsError> =>
      Effect.forEach(outs, (o) =>
        Effect.try({
          try: () => {
            const body = o.pending.join("")
            o.pending = []
            const tail = o.csv ? "" : "\n  ],\n" + JSON.stringify(totals, null, 2).slice(2) + "\n"
            // The old totals go first, then the new items and totals are one write: a kill or a full disk between two
            // writes left old totals after the new items, a file --resume refused. Now the file ends in items (maybe a
            // last one cut short, left out on resume) or in the new totals.
            if (!o.csv) fs.ftruncateSync(o.fd, o.end)
            const bytes = Buffer.from(body + tail, "utf8")
            let done = 0
            while (done < bytes.length) done += fs.writeSync(o.fd, bytes, done, bytes.length - done, o.end + done)
            o.end += bytes.length - Buffer.byteLength(tail, "utf8")
          },
          catch: (e) => new ResultsError({ file: o.file, problem: `cannot write: ${FileOps.describeErrno(e)}` })
        }), { discard: true }).pipe(Effect.ensuring(Effect.sync(() => void (last = performance.now()))))
    return Effect.succeed({
      append: (item) => {
        for (const o of outs) {
          o.pending.push(
            o.csv
              ? csvColumns.map((c) => csvField(item[c])).join(",") + "\n"
              : `${o.first ? "" : ","}\n    ${Printable.escapeJson(JSON.stringify(item))}`
          )
          o.first = false
        }
      },
      update: (totals) =>
        Effect.suspend(() =>
          (outs[0]?.pending.length ?? 0) >= writerTuning.maxPending || performance.now() - last >= intervalMs
            ? flush(totals())
            : Effect.void
        ),
      flush,
      close: Effect.sync(closeAll)
    })
  })

/**
 * What an earlier run restored, by tombstone and output, for `--resume`: its size and SHA-256. Memory is bounded
 * whatever the count: a 53-bit hash of each key goes through `SortedRecords` (in memory up to one run, then a
 * temporary file read a block per lookup), and each item's 40 bytes of size and digest likewise (then one `pread`).
 * Two keys sharing a hash would share a record; an item is skipped only if its output still hashes to that record's
 * content, so at worst a file already holding that exact content is not written again.
 */
export interface Done {
  readonly size: number
  readonly get: (tombstone: string, output: string) => { readonly bytes: number; readonly sha256: string } | undefined
}

/** The done set's sizes; tests shrink them to go through its temporary files. */
export const doneTuning: { runRecords: number; mergeBytes: number; tempRoot: string | undefined } = {
  runRecords: 131072,
  mergeBytes: 4 * 1024 * 1024,
  tempRoot: undefined
}

const doneKey = (tombstone: string, output: string) => Hash.hash53(`${tombstone}\u0000${output}`)

/** An item's size (a double) and SHA-256 (32 bytes), by ordinal. */
const payloadBytes = 40

const doneSet = () => {
  const tuning = { ...doneTuning, prefix: "codex-resume-" }
  const records = SortedRecords.make(tuning)
  const held = Math.max(1, tuning.runRecords)
  // The first run's payloads in memory; past it, all of them in a temporary file, appended through this buffer.
  let payloads = Buffer.allocUnsafe(Math.min(held, 1024) * payloadBytes)
  let inBuffer = 0
  let spill: ReturnType<typeof SortedRecords.tempFile> | undefined
  let written = 0
  let count = 0
  const flush = () => {
    spill!.write(payloads, inBuffer * payloadBytes, written)
    written += inBuffer * payloadBytes
    inBuffer = 0
  }
  const close = () => {
    records.close()
    const file = spill
    spill = undefined
    file?.close()
  }
  return {
    add: (tombstone: string, output: string, bytes: number, sha256: string) => {
      records.add(doneKey(tombstone, output), count++)
      if (inBuffer * payloadBytes === payloads.length) {
        if (payloads.length < held * payloadBytes) {
          const grown = Buffer.allocUnsafe(Math.min(held, 2 * inBuffer) * payloadBytes)
          payloads.copy(grown)
          payloads = grown
        } else {
          spill ??= SortedRecords.tempFile(tuning, "payloads")
          flush()
        }
      }
      payloads.writeDoubleLE(bytes, inBuffer * payloadBytes)
      payloads.write(sha256, inBuffer * payloadBytes + 8, 32, "hex")
      inBuffer++
    },
    close,
    /** The lookup; the set is then read only. */
    done: (): Done & { readonly close: () => void } => {
      if (spill !== undefined && inBuffer > 0) flush()
      const index = SortedRecords.lookup(records, tuning)
      const one = Buffer.allocUnsafe(payloadBytes)
      const payloadOf = (ordinal: number) => {
        if (spill === undefined) return payloads.subarray(ordinal * payloadBytes, (ordinal + 1) * payloadBytes)
        spill.read(one, payloadBytes, ordinal * payloadBytes)
        return one
      }
      return {
        size: index.size,
        get: (tombstone, output) => {
          const ordinal = index.get(doneKey(tombstone, output))
          if (ordinal === undefined) return undefined
          const p = payloadOf(ordinal)
          return { bytes: p.readDoubleLE(0), sha256: p.toString("hex", 8, payloadBytes) }
        },
        close: () => {
          index.close()
          close()
        }
      }
    }
  }
}

/** A results file read whole (one not written by this version) is at most this long: a V8 string's limit is 512 MiB. */
export const maxWholeBytes = 256 * 1024 * 1024

/**
 * The fields `--resume` reads of one result, `bytes` a number in JSON and text in CSV (whose empty cells are left
 * out: CSV has no null); the other fields are not read.
 */
const resultOf = <I>(bytes: Schema.Schema<number, I>) =>
  Schema.Struct({
    tombstone: Ids.TombstoneIdFromString,
    output: Schema.String.pipe(Schema.filter((output) => output !== "" || "an empty path")),
    status: Schema.Literal(...statuses).annotations({
      message: () => ({ message: `expected one of ${statuses.join(", ")}`, override: true })
    }),
    bytes: Schema.optionalWith(bytes, { exact: true }),
    sha256: Schema.optionalWith(Ids.Sha256FromString, { exact: true })
  }).annotations({ message: () => "a result must be an object with tombstone, output and status" })

const Bytes = Schema.NonNegativeInt.annotations({
  message: () => ({ message: "expected a whole number of bytes", override: true })
})
const decodeJson = Schema.decodeUnknownEither(resultOf(Bytes))
const decodeCsv = Schema.decodeUnknownEither(resultOf(Schema.compose(Schema.NumberFromString, Bytes)))

/** One record of a results file and where it stands ("line N", "result N"). */
interface Row {
  readonly where: string
  readonly value: unknown
}

/** A results file's structure is wrong at `where`: the file cannot be resumed from. */
class Malformed extends Error {
  constructor(readonly where: string | undefined, problem: string) {
    super(problem)
  }
}

/**
 * The records of a JSON results file this version wrote (`"results"` on its second line, one item per line), streamed;
 * one cut short by a kill ends in a torn line, which is left out. `undefined` for any other JSON file.
 */
const streamedJson = (file: string): Iterable<Row> | undefined => {
  const lines = TextFile.lines(file)
  lines.next()
  const second = lines.next()
  lines.return(undefined)
  if (second.done === true || second.value !== `  "results": [`) return undefined
  return {
    *[Symbol.iterator]() {
      let n = 0
      let torn: number | undefined
      for (const line of TextFile.lines(file, { tornTail: true })) {
        n++
        if (n <= 2) continue
        const text = line.trim().replace(/,$/, "")
        // The items end where the totals begin.
        if (text === "]") return
        if (text === "") continue
        if (torn !== undefined) {
          throw new Malformed(`line ${torn}`, "not a JSON result (only the last may be cut short)")
        }
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch {
          torn = n
          continue
        }
        yield { where: `line ${n}`, value }
      }
    }
  }
}

/** The records of any other JSON results file (an older version's, pretty-printed), read whole. */
function* wholeJson(file: string): Generator<Row> {
  let doc: unknown
  try {
    const text = FileOps.readBounded(file, maxWholeBytes, { strictUtf8: true })
    // An editor's byte-order mark is no part of the document (the manifest readers drop it too).
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e
    throw new Malformed(undefined, `cannot parse: ${e.message}`)
  }
  const results = typeof doc === "object" && doc !== null ? (doc as { results?: unknown }).results : undefined
  if (!Array.isArray(results)) throw new Malformed(undefined, "not a batch results file: no 'results' array")
  for (const [i, value] of results.entries()) yield { where: `result ${i + 1}`, value: value as unknown }
}

/**
 * The records of a CSV results file, streamed, keyed by its header's column names; a last row cut short by a kill
 * is left out, as a torn JSON line is.
 */
function* csvResults(file: string): Generator<Row> {
  let header: ReadonlyArray<string> | undefined
  try {
    for (const row of TextFile.csvRows(file, maxWholeBytes, { tornTail: true })) {
      if (header === undefined) {
        header = row.cells.map((h) => h.trim().toLowerCase())
        continue
      }
      const value: Record<string, string> = {}
      for (const [i, name] of header.entries()) {
        if (row.cells[i] !== undefined && row.cells[i] !== "" && !(name in value)) value[name] = row.cells[i]!
      }
      yield { where: `line ${row.line}`, value }
    }
  } catch (e) {
    if (!(e instanceof TextFile.CsvError)) throw e
    throw new Malformed(e.line === undefined ? undefined : `line ${e.line}`, `cannot parse: ${e.message}`)
  }
}

/**
 * Reads what an earlier run restored from its results file (JSON or CSV), each record decoded by one Schema: a JSON
 * file this version wrote is streamed line by line, even one cut short by a kill, and so is CSV; any other JSON file
 * (an older version's, pretty-printed) is read whole.
 */
export const readDone = (file: string): Effect.Effect<Done, ResultsError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const absolute = path.resolve(file)
      const csv = isCsv(absolute)
      const decode = csv ? decodeCsv : decodeJson
      const set = doneSet()
      try {
        const rows = csv ? csvResults(absolute) : streamedJson(absolute) ?? wholeJson(absolute)
        for (const row of rows) {
          const result = decode(row.value)
          if (Either.isLeft(result)) throw new Malformed(row.where, RecordSchema.describe(result.left.issue))
          const { bytes, output, sha256, status, tombstone } = result.right
          if (isDone(status) && bytes !== undefined && sha256 !== undefined) set.add(tombstone, output, bytes, sha256)
        }
        return Effect.succeed(set.done())
      } catch (e) {
        set.close()
        return Effect.fail(
          e instanceof Malformed
            ? new ResultsError({ file: absolute, where: e.where, problem: e.message })
            : new ResultsError({
              file: absolute,
              problem: (e as NodeJS.ErrnoException).code === "ENOENT"
                ? "no such file"
                : `cannot read: ${FileOps.describeErrno(e)}`
            })
        )
      }
    }),
    (done) => Effect.sync(done.close)
  )
