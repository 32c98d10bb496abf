/**
 * The append-only evidence log (spec §3): `<dir>/archive_ops.jsonl`, one compact JSON object per line, keys sorted,
 * non-ASCII escaped, `ts` always present. Each line is chained to the one before it (`prev`, `seq`, and `mac` with a
 * key: see EvidenceChain.ts). An append holds the log's lock file, reads the last line (a bounded read from the end),
 * and writes all its lines with one `write(2)` on an `O_APPEND` descriptor; nothing ever rewrites the file, and a
 * write that fails partway is cut back off, so an append leaves all its lines or none.
 */
import { Context, Data, Effect, Layer, type Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as BatchResults from "./BatchResults.js"
import * as EvidenceChain from "./EvidenceChain.js"
import * as FileOps from "./FileOps.js"
import * as Redact from "./Redact.js"
import * as Timestamp from "./Timestamp.js"

/** One stored file (`store`). */
export type Archive = {
  readonly action: "ARCHIVE"
  readonly actor: string
  readonly repo: string
  readonly path: string
  readonly tombstone: string
  readonly sha256: string
  readonly size: number
  readonly compressed_size: number
  readonly reason: string
  readonly commit: string
}

/** A restore's timings in milliseconds, as its RESTORE line (and `restore --json`) carries them. */
export type RestoreTimings = {
  readonly duration_ms: number
  readonly fetch_ms: number
  readonly decompression_ms: number
  readonly verify_ms: number
  readonly write_ms: number
  readonly record_ms: number
}

/** One restored file; `status` only when the output already held the content, timings only when enabled. */
export type Restore = {
  readonly action: "RESTORE"
  readonly actor: string
  readonly tombstone: string
  readonly path: string
  readonly repo: string
  readonly sha256: string
  readonly size: number
  readonly status?: "unchanged"
} & Partial<RestoreTimings>

/** One failed restore, including one whose archive could not be opened (`path` null: no output was chosen). */
export type RestoreFail = {
  readonly action: "RESTORE_FAIL"
  readonly actor: string
  readonly tombstone: string
  readonly path: string | null
  readonly reason: string
  /** The failure's tag. */
  readonly error: string
  readonly backend: string
  readonly url: string
}

/** The summary closing a batch restore (`performance.emit_to_evidence`): its results' counts; timings when enabled. */
export type RestoreBatch = {
  readonly action: "RESTORE_BATCH"
  readonly actor: string
  readonly tombstone: ""
  readonly status: "SUCCESS" | "FAILED" | "INTERRUPTED"
  readonly source: string | undefined
  readonly results_file: string | undefined
  /** Null when the run was not timed. */
  readonly duration_ms?: number | null
  readonly metrics?: { readonly name: "batch_restore"; readonly duration_ms: number | null }
} & Pick<BatchResults.Summary, "total" | "succeeded" | "failed" | "unchanged" | "skipped" | "not_run" | "bytes">

/** A `health-check`, which the original records as a RESTORE_BATCH line too (spec §10). */
export type HealthCheck = {
  readonly action: "RESTORE_BATCH"
  readonly actor: "health-check"
  readonly tombstone: ""
  readonly status: "SUCCESS" | "FAILED"
  readonly detail: string
}

export type PruneRequest = {
  readonly action: "PRUNE_REQUEST"
  readonly actor: string
  readonly tombstone: string
  readonly reason: string
}

/** Both approvals of a purge; `shared_references` only when other items still share the artifact. */
export type DeleteApproved = {
  readonly action: "DELETE_APPROVED"
  readonly tombstone: string
  readonly primary: string
  readonly secondary: string
  readonly reason: string
  readonly apply: boolean
  readonly blob_scrubbed: boolean
  readonly shared_references?: number
}

/** A `verify`; `orphan_chunks` only for a whole-archive check. */
export type Verify = {
  readonly action: "VERIFY"
  readonly actor: string
  readonly checked: number
  readonly ok: number
  readonly purged: number
  readonly mismatches: number
  readonly orphan_chunks?: number
}

/** A `gc`, dry run or not. */
export type Gc = {
  readonly action: "GC"
  readonly actor: string
  readonly dry_run: boolean
  /** Which group of a run (1, 2, ...): a run writes one line per group of at most `Retention.gcGroupSize` artifacts. */
  readonly part: number
  readonly orphan_chunk_rows: number
  readonly bytes: number
  readonly artifacts: ReadonlyArray<string>
}

/** Every line this tool writes, one type per kind; each is built by its constructor below. */
export type Entry =
  | Archive
  | Restore
  | RestoreFail
  | RestoreBatch
  | HealthCheck
  | PruneRequest
  | DeleteApproved
  | Verify
  | Gc

export type Action = Entry["action"]

/** A line as the log holds it: any record with an action (the original tool's lines, and test fixtures, included). */
export interface Record {
  readonly action: Action
  readonly [key: string]: unknown
}

export const archive = (f: Omit<Archive, "action">): Archive => ({
  action: "ARCHIVE",
  actor: f.actor,
  repo: f.repo,
  path: f.path,
  tombstone: f.tombstone,
  sha256: f.sha256,
  size: f.size,
  compressed_size: f.compressed_size,
  reason: f.reason,
  commit: f.commit
})

export const restore = (
  f: Omit<Restore, "action" | "status" | keyof RestoreTimings> & {
    readonly unchanged: boolean
    /** Left out of the line when timings are off (`performance.enabled`). */
    readonly timings: RestoreTimings | undefined
  }
): Restore => ({
  action: "RESTORE",
  actor: f.actor,
  tombstone: f.tombstone,
  path: f.path,
  repo: f.repo,
  sha256: f.sha256,
  size: f.size,
  ...(f.unchanged ? { status: "unchanged" } : {}),
  ...(f.timings === undefined ? {} : {
    duration_ms: f.timings.duration_ms,
    fetch_ms: f.timings.fetch_ms,
    decompression_ms: f.timings.decompression_ms,
    verify_ms: f.timings.verify_ms,
    write_ms: f.timings.write_ms,
    record_ms: f.timings.record_ms
  })
})

/** `reason` defaults to the error's message; it is redacted here, as the reason may quote a driver's message. */
export const restoreFail = (f: {
  readonly actor: string
  readonly tombstone: string
  readonly path: string | null
  readonly error: { readonly _tag: string; readonly message: string }
  readonly reason?: string | undefined
  readonly backend: string
  readonly url: string
}): RestoreFail => ({
  action: "RESTORE_FAIL",
  actor: f.actor,
  tombstone: f.tombstone,
  path: f.path,
  reason: Redact.text(f.reason ?? f.error.message),
  error: f.error._tag,
  backend: f.backend,
  url: f.url
})

/**
 * `duration_ms` is written twice, as the original does: plain and as `metrics`; `undefined` (timings off,
 * `performance.enabled`) leaves both out.
 */
export const restoreBatch = (
  f: Omit<RestoreBatch, "action" | "tombstone" | "duration_ms" | "metrics"> & {
    readonly duration_ms: number | null | undefined
  }
): RestoreBatch => ({
  action: "RESTORE_BATCH",
  actor: f.actor,
  tombstone: "",
  status: f.status,
  total: f.total,
  succeeded: f.succeeded,
  failed: f.failed,
  unchanged: f.unchanged,
  skipped: f.skipped,
  not_run: f.not_run,
  bytes: f.bytes,
  source: f.source,
  results_file: f.results_file,
  ...(f.duration_ms === undefined
    ? {}
    : { duration_ms: f.duration_ms, metrics: { name: "batch_restore", duration_ms: f.duration_ms } })
})

/** `summary` says what failed, or that every check passed; redacted here, as it quotes driver messages. */
export const healthCheck = (f: { readonly ok: boolean; readonly summary: string }): HealthCheck => ({
  action: "RESTORE_BATCH",
  actor: "health-check",
  tombstone: "",
  status: f.ok ? "SUCCESS" : "FAILED",
  detail: Redact.text(f.summary)
})

export const pruneRequest = (f: Omit<PruneRequest, "action">): PruneRequest => ({
  action: "PRUNE_REQUEST",
  actor: f.actor,
  tombstone: f.tombstone,
  reason: f.reason
})

export const deleteApproved = (
  f: Omit<DeleteApproved, "action" | "shared_references"> & { readonly shared_references: number | undefined }
): DeleteApproved => ({
  action: "DELETE_APPROVED",
  tombstone: f.tombstone,
  primary: f.primary,
  secondary: f.secondary,
  reason: f.reason,
  apply: f.apply,
  blob_scrubbed: f.blob_scrubbed,
  ...(f.shared_references === undefined ? {} : { shared_references: f.shared_references })
})

export const verify = (
  f: Omit<Verify, "action" | "orphan_chunks"> & { readonly orphan_chunks: number | undefined }
): Verify => ({
  action: "VERIFY",
  actor: f.actor,
  checked: f.checked,
  ok: f.ok,
  purged: f.purged,
  mismatches: f.mismatches,
  ...(f.orphan_chunks === undefined ? {} : { orphan_chunks: f.orphan_chunks })
})

export const gc = (f: Omit<Gc, "action">): Gc => ({
  action: "GC",
  actor: f.actor,
  dry_run: f.dry_run,
  part: f.part,
  orphan_chunk_rows: f.orphan_chunk_rows,
  bytes: f.bytes,
  artifacts: f.artifacts
})

export class EvidenceError
  extends Data.TaggedError("EvidenceError")<{ readonly file: string; readonly detail: string }>
{
  override get message() {
    return `cannot append to evidence log ${this.file}: ${this.detail}`
  }
}

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping. */
export const serialize = EvidenceChain.serialize

export class Evidence extends Context.Tag("@codex-archive/core/Evidence")<Evidence, {
  readonly file: string
  /** Appends records in order, all in one write; `ts` is added where absent. */
  readonly append: (...records: ReadonlyArray<Record>) => Effect.Effect<void, EvidenceError>
}>() {}

export const fileIn = (dir: string): string => path.join(dir, "archive_ops.jsonl")

export interface Options {
  /** HMAC key (`evidence.hmac_key`): each line then carries a `mac`, and the chain cannot be recomputed without it. */
  readonly hmac_key?: Redacted.Redacted<string> | null | undefined
}

export const make = (dir: string, options: Options = {}) =>
  Effect.gen(function*() {
    const file = fileIn(dir)
    const key = options.hmac_key ?? undefined
    // Fibers of this process queue here; other processes queue on the lock file.
    const lock = yield* Effect.makeSemaphore(1)
    const write = (records: ReadonlyArray<{ readonly [key: string]: unknown }>) => () => {
      const fd = openLog(file)
      try {
        const tail = EvidenceChain.readTail(fd)
        // A torn last line is ended first, so that the new lines start whole and chain to its exact bytes.
        const text = (tail.torn ? "\n" : "") + EvidenceChain.link(records, tail, key).join("\n") + "\n"
        FileOps.appendWhole(fd, Buffer.from(text, "utf8"))
      } finally {
        fs.closeSync(fd)
      }
    }
    const append = (...records: ReadonlyArray<Record>) =>
      records.length === 0 ? Effect.void : Effect.flatMap(Timestamp.now, (ts) =>
        lock.withPermits(1)(
          Effect.try({
            try: () => FileOps.makeFolders(dir),
            catch: (e) => new EvidenceError({ file, detail: (e as Error).message })
          }).pipe(
            Effect.zipRight(EvidenceChain.withLock(file, write(records.map((r) => redactStrings({ ts, ...r }))))),
            Effect.mapError((e) => e instanceof EvidenceError ? e : new EvidenceError({ file, detail: e.message }))
          )
        ))
    return Evidence.of({ file, append })
  })

/** The log itself, never a link at its name: one planted there would make every append write wherever it points. */
const openLog = (file: string): number => {
  try {
    const fd = fs.openSync(
      file,
      fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
      0o644
    )
    // A FIFO (or device) planted at the name would take every line and keep none, while the restore said success.
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd)
      throw new EvidenceError({ file, detail: "it is not a regular file; refusing to append to it" })
    }
    return fd
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP") {
      throw new EvidenceError({ file, detail: "it is a symbolic link; refusing to append through it" })
    }
    throw e
  }
}

/** Credentials never reach the log, whatever a caller put in a free-text field. */
const redactStrings = (record: { readonly [key: string]: unknown }): { readonly [key: string]: unknown } => {
  const out: { [key: string]: unknown } = {}
  for (const k of Object.keys(record)) out[k] = typeof record[k] === "string" ? Redact.text(record[k]) : record[k]
  return out
}

export const layer = (dir: string, options: Options = {}): Layer.Layer<Evidence> =>
  Layer.effect(Evidence, make(dir, options))

/** Reads every record back (for tests, `verify` and reports); a torn or invalid line is reported, not skipped. */
export const read = (dir: string): ReadonlyArray<{ readonly [key: string]: unknown }> => {
  const file = fileIn(dir)
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
}
