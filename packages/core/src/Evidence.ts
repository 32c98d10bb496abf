/**
 * The append-only evidence log (spec §3): `<dir>/archive_ops.jsonl`, one compact JSON object per line, keys sorted,
 * non-ASCII escaped, `ts` always present. Lines are written whole with one `write(2)` on an `O_APPEND` descriptor,
 * so concurrent processes never interleave partial lines, and nothing ever rewrites the file.
 */
import { Context, Data, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
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

export interface Record {
  readonly action: Action
  readonly [key: string]: unknown
}

export class EvidenceError extends Data.TaggedError("EvidenceError")<{ readonly file: string; readonly detail: string }> {
  override get message() {
    return `cannot append to evidence log ${this.file}: ${this.detail}`
  }
}

const sortKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === "object") {
    const out: { [k: string]: unknown } = {}
    for (const k of Object.keys(value).sort()) {
      const v = (value as { [k: string]: unknown })[k]
      if (v !== undefined) out[k] = sortKeys(v)
    }
    return out
  }
  return value
}

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping. */
export const serialize = (record: { readonly [key: string]: unknown }): string =>
  JSON.stringify(sortKeys(record)).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

export class Evidence extends Context.Tag("@codex-archive/core/Evidence")<Evidence, {
  readonly file: string
  /** Appends records in order, all in one write; `ts` is added where absent. */
  readonly append: (...records: ReadonlyArray<Record>) => Effect.Effect<void, EvidenceError>
}>() {}

export const fileIn = (dir: string): string => path.join(dir, "archive_ops.jsonl")

export const make = (dir: string) =>
  Effect.gen(function*() {
    const file = fileIn(dir)
    const lock = yield* Effect.makeSemaphore(1)
    const append = (...records: ReadonlyArray<Record>) =>
      records.length === 0 ? Effect.void : Effect.flatMap(Timestamp.now, (ts) =>
        lock.withPermits(1)(Effect.try({
          try: () => {
            const text = records.map((r) => serialize(redactStrings({ ts, ...r })) + "\n").join("")
            fs.mkdirSync(dir, { recursive: true })
            const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644)
            try {
              const bytes = Buffer.from(text, "utf8")
              let offset = 0
              while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset)
            } finally {
              fs.closeSync(fd)
            }
          },
          catch: (e) => new EvidenceError({ file, detail: (e as Error).message })
        })))
    return Evidence.of({ file, append })
  })

/** Credentials never reach the log, whatever a caller put in a free-text field. */
const redactStrings = (record: { readonly [key: string]: unknown }): { readonly [key: string]: unknown } => {
  const out: { [key: string]: unknown } = {}
  for (const k of Object.keys(record)) out[k] = typeof record[k] === "string" ? Redact.text(record[k]) : record[k]
  return out
}

export const layer = (dir: string): Layer.Layer<Evidence> => Layer.effect(Evidence, make(dir))

/** Reads every record back (for tests, `verify` and reports); a torn or invalid line is reported, not skipped. */
export const read = (dir: string): ReadonlyArray<{ readonly [key: string]: unknown }> => {
  const file = fileIn(dir)
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
}
