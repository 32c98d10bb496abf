/**
 * Tombstones: the UUID v4 handle of one archive operation, and the stub file left where the file stood
 * (spec §1.2). A stub parses back, so `restore STUB` and `batch-restore --stubs DIR` need nothing else.
 */
import { Data, Effect } from "effect"
import { randomUUID } from "node:crypto"

export const make = (): string => randomUUID()

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Canonical 36-character lowercase hyphenated form. Upper-case input is accepted and normalised by `normalize`. */
export const isTombstoneId = (value: string): boolean => uuid.test(value)

export const normalize = (value: string): string => value.trim().toLowerCase()

export const header = "# TOMBSTONE ARCHIVE STUB — DO NOT DELETE"
/** Detects a stub cheaply from a file's first bytes (also the original tool's misspelt header). */
export const marker = /^# TOMBST?ONE ARCHIVE STUB/
export const maxStubBytes = 4096

export interface Stub {
  readonly path: string
  readonly archivedBy: string
  readonly reason: string
  readonly tombstone: string
  readonly sha256: string
  readonly archivedAt: string
  readonly commit: string
}

export const render = (stub: Stub): string =>
  [
    header,
    `# File: ${stub.path}`,
    `# ArchivedBy: ${stub.archivedBy}`,
    `# Reason: ${stub.reason}`,
    `# Tombstone: ${stub.tombstone}`,
    `# SHA256: ${stub.sha256}`,
    `# ArchivedAt: ${stub.archivedAt}`,
    `# Commit: ${stub.commit}`,
    "#",
    "# To restore:",
    `#   codex archive restore ${stub.tombstone} ${shellQuote(stub.path)}`,
    "#",
    "# NOTE: This stub intentionally contains no functional code.",
    ""
  ].join("\n")

const shellQuote = (value: string): string =>
  /^[A-Za-z0-9_./@%+=:,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`

export class MalformedStub extends Data.TaggedError("MalformedStub")<{
  readonly source: string
  readonly problem: string
}> {
  override get message() {
    return `${this.source}: not a valid tombstone stub: ${this.problem}`
  }
}

export const isStubText = (text: string): boolean => marker.test(text)

/** Parses a stub written by this tool or by the original one; `source` names the file in errors. */
export const parse = (text: string, source: string): Effect.Effect<Stub, MalformedStub> =>
  Effect.gen(function*() {
    if (!isStubText(text)) {
      return yield* new MalformedStub({ source, problem: "missing the '# TOMBSTONE ARCHIVE STUB' header" })
    }
    const fields = new Map<string, string>()
    for (const line of text.split(/\r?\n/)) {
      const m = /^# ([A-Za-z0-9]+): ?(.*)$/.exec(line)
      if (m && !fields.has(m[1]!)) fields.set(m[1]!, m[2]!)
    }
    const tombstone = normalize(fields.get("Tombstone") ?? "")
    if (!tombstone) return yield* new MalformedStub({ source, problem: "no '# Tombstone:' line" })
    if (!isTombstoneId(tombstone)) {
      return yield* new MalformedStub({ source, problem: `tombstone '${tombstone}' is not a UUID` })
    }
    const sha256 = (fields.get("SHA256") ?? "").trim().toLowerCase()
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      return yield* new MalformedStub({ source, problem: "no valid '# SHA256:' line" })
    }
    return {
      path: fields.get("File") ?? "",
      archivedBy: fields.get("ArchivedBy") ?? "",
      reason: fields.get("Reason") ?? "",
      tombstone,
      sha256,
      archivedAt: fields.get("ArchivedAt") ?? "",
      commit: fields.get("Commit") ?? ""
    }
  })
