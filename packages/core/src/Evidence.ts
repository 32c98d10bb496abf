/**
 * The append-only evidence log (spec §3): `<dir>/archive_ops.jsonl`, one compact JSON object per line, keys sorted,
 * non-ASCII escaped, `ts` always present. Each line is chained to the one before it (`prev`, `seq`, and `mac` with a
 * key: see EvidenceChain.ts). An append holds the log's lock file, reads the last line (a bounded read from the end),
 * and writes all its lines with one `write(2)` on an `O_APPEND` descriptor; nothing ever rewrites the file.
 */
import { Context, Data, Effect, Layer, type Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as EvidenceChain from "./EvidenceChain.js"
import * as Redact from "./Redact.js"
import * as Timestamp from "./Timestamp.js"

export type Action =
  | "ARCHIVE"
  | "RESTORE"
  | "RESTORE_FAIL"
  | "RESTORE_BATCH"
  | "PRUNE_REQUEST"
  | "DELETE_APPROVED"
  | "VERIFY"
  | "GC"

export interface Record {
  readonly action: Action
  readonly [key: string]: unknown
}

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
        const bytes = Buffer.from(text, "utf8")
        let offset = 0
        while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset)
      } finally {
        fs.closeSync(fd)
      }
    }
    const append = (...records: ReadonlyArray<Record>) =>
      records.length === 0 ? Effect.void : Effect.flatMap(Timestamp.now, (ts) =>
        lock.withPermits(1)(
          Effect.try({
            try: () => fs.mkdirSync(dir, { recursive: true }),
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
