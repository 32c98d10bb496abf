/**
 * Tombstones: the UUID v4 handle of one archive operation, and the stub file left where the file stood
 * (spec §1.2). A stub parses back, so `restore STUB` and `batch-restore --stubs DIR` need nothing else.
 */
import { Data, Effect, Either, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as FileOps from "./FileOps.js"
import { decodeSha256, decodeTombstoneId, Sha256, TombstoneId } from "./Ids.js"

export const make = (): TombstoneId => randomUUID() as TombstoneId

/** Already in the canonical form (no normalising): input from users goes through `Ids.decodeTombstoneId`. */
export const isTombstoneId: (value: string) => value is TombstoneId = Schema.is(TombstoneId)

export const header = "# TOMBSTONE ARCHIVE STUB — DO NOT DELETE"
/** Detects a stub cheaply from a file's first bytes (also the original tool's misspelt header). */
export const marker = /^# TOMBST?ONE ARCHIVE STUB/
export const maxStubBytes = 4096

/** The fields of a stub once parsed; its ids are decoded, the rest is free text. */
export const Stub = Schema.Struct({
  path: Schema.String,
  archivedBy: Schema.String,
  reason: Schema.String,
  tombstone: TombstoneId,
  sha256: Sha256,
  archivedAt: Schema.String,
  commit: Schema.String
})
export type Stub = typeof Stub.Type

/** Renders any field values (the ids as the caller holds them); `parse` is where they are checked. */
export const render = (stub: typeof Stub.Encoded): string =>
  [
    header,
    `# File: ${encodeField(stub.path)}`,
    `# ArchivedBy: ${encodeField(stub.archivedBy)}`,
    `# Reason: ${encodeField(stub.reason)}`,
    `# Tombstone: ${stub.tombstone}`,
    `# SHA256: ${stub.sha256}`,
    `# ArchivedAt: ${encodeField(stub.archivedAt)}`,
    `# Commit: ${encodeField(stub.commit)}`,
    "#",
    "# To restore:",
    `#   codex archive restore ${stub.tombstone} ${shellQuote(stub.path)}`,
    "#",
    "# NOTE: This stub intentionally contains no functional code.",
    ""
  ].join("\n")

/** Characters that would break a stub line or hide in it: C0/C1 controls, DEL, Unicode line/paragraph separators. */
const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
const unsafeAll = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const hex4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/**
 * A field value as written in a stub: as is when it is plain (every stub written so far), else a JSON string, so a
 * newline in a file name cannot add lines. A plain value that itself looks like a JSON string is quoted too.
 */
export const encodeField = (value: string): string =>
  unsafe.test(value) || /^".*"$/s.test(value) || value !== value.trim()
    ? JSON.stringify(value).replace(unsafeAll, hex4)
    : value

/** The inverse of `encodeField`; `undefined` for a quoted value that is not a valid JSON string. */
const decodeField = (value: string): string | undefined => {
  if (!/^".*"$/s.test(value)) return value
  try {
    const decoded: unknown = JSON.parse(value)
    return typeof decoded === "string" ? decoded : undefined
  } catch {
    return undefined
  }
}

/** POSIX single quotes for printable names; bash/zsh `$'...'` quoting when the name holds control characters. */
const shellQuote = (value: string): string =>
  /^[A-Za-z0-9_./@%+=:,-]+$/.test(value)
    ? value
    : unsafe.test(value)
    ? `$'${value.replace(/[\\']/g, (c) => `\\${c}`).replace(unsafeAll, hex4)}'`
    : `'${value.replace(/'/g, `'\\''`)}'`

export class MalformedStub extends Data.TaggedError("MalformedStub")<{
  readonly source: string
  readonly problem: string
}> {
  override get message() {
    return `${this.source}: not a valid tombstone stub: ${this.problem}`
  }
}

/** The fields a stub carries; other comment lines ("# NOTE: ...") are free text. */
const stubFields = new Set(["File", "ArchivedBy", "Reason", "Tombstone", "SHA256", "ArchivedAt", "Commit"])

export const isStubText = (text: string): boolean => marker.test(text)

/** Parses a stub written by this tool or by the original one; `source` names the file in errors. */
export const parse = (text: string, source: string): Effect.Effect<Stub, MalformedStub> =>
  Effect.gen(function*() {
    if (!isStubText(text)) {
      return yield* new MalformedStub({ source, problem: "missing the '# TOMBSTONE ARCHIVE STUB' header" })
    }
    const fields = new Map<string, string>()
    const lines = text.split(/\r?\n/)
    for (const line of lines) {
      const m = /^# ([A-Za-z0-9]+): ?(.*)$/s.exec(line)
      if (!m || !stubFields.has(m[1]!)) continue
      const [, name, raw] = m as unknown as [string, string, string]
      // A repeated field is how an injected line would win: refuse rather than pick one.
      if (fields.has(name)) {
        return yield* new MalformedStub({ source, problem: `field '${name}' appears more than once` })
      }
      if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(raw)) {
        return yield* new MalformedStub({ source, problem: `field '${name}' contains a control character` })
      }
      const value = decodeField(raw)
      if (value === undefined) {
        return yield* new MalformedStub({ source, problem: `field '${name}' is not a valid quoted string` })
      }
      fields.set(name, value)
    }
    const given = fields.get("Tombstone")?.trim() ?? ""
    if (!given) return yield* new MalformedStub({ source, problem: "no '# Tombstone:' line" })
    const tombstone = decodeTombstoneId(given)
    if (Either.isLeft(tombstone)) {
      return yield* new MalformedStub({ source, problem: `tombstone '${given.toLowerCase()}' is not a UUID` })
    }
    const sha256 = decodeSha256(fields.get("SHA256") ?? "")
    if (Either.isLeft(sha256)) return yield* new MalformedStub({ source, problem: "no valid '# SHA256:' line" })
    // The restore command line names the tombstone too (ours and the original's): it must be the same one.
    for (const line of lines) {
      const m = /^#\s{2,}\S.*?\barchive restore\s+(\S+)/.exec(line)
      if (m && Either.getOrUndefined(decodeTombstoneId(m[1]!)) !== tombstone.right) {
        const problem = `field 'To restore' names tombstone ${m[1]}, not ${tombstone.right}`
        return yield* new MalformedStub({ source, problem })
      }
    }
    return {
      path: fields.get("File") ?? "",
      archivedBy: fields.get("ArchivedBy") ?? "",
      reason: fields.get("Reason") ?? "",
      tombstone: tombstone.right,
      sha256: sha256.right,
      archivedAt: fields.get("ArchivedAt") ?? "",
      commit: fields.get("Commit") ?? ""
    }
  })

/** The tombstone a well-formed stub names, or `undefined` (not a stub, or a malformed one). */
export const tombstoneOf = (text: string): string | undefined =>
  Either.getOrUndefined(Either.map(Effect.runSync(Effect.either(parse(text, ""))), (stub) => stub.tombstone))

/** The size of `file`, or `Infinity` when it cannot be read: either way too large to be a stub. */
const sizeOf = (file: string): number => {
  try {
    return fs.statSync(file, { throwIfNoEntry: false })?.size ?? Infinity
  } catch {
    return Infinity
  }
}

/**
 * Stub detection, the one place: a file no larger than a stub can be whose first bytes are the header. Cheap (64
 * bytes read) and never throws; `size` is passed by callers that have already stat'ed the file.
 */
export const isStubFile = (file: string, size: number = sizeOf(file)): boolean => {
  if (size > maxStubBytes) return false
  try {
    // A FIFO or link swapped in since the caller's stat must not block the open nor be followed.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW)
    try {
      const buf = Buffer.alloc(64)
      const n = fs.readSync(fd, buf, 0, 64, 0)
      return isStubText(buf.subarray(0, n).toString("utf8"))
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return false
  }
}

/** A well-formed stub that names `tombstone`: its parsed field, not any mention of the id in its text. */
export const isStubOf = (file: string, tombstone: string, size: number = sizeOf(file)): boolean => {
  if (size > maxStubBytes) return false
  try {
    return tombstoneOf(FileOps.readBounded(file, maxStubBytes, { noFollow: true })) === tombstone
  } catch {
    return false
  }
}
