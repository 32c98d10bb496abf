/**
 * Tombstones: the UUID v4 handle of one archive operation, and the stub file left where the file stood
 * (spec §1.2). A stub parses back, so `restore STUB` and `batch-restore --stubs DIR` need nothing else.
 */
import { Data, Effect, Either, Option, ParseResult, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as FileOps from "./FileOps.js"
import { decodeTombstoneId, Sha256, Sha256FromString, TombstoneId, TombstoneIdFromString } from "./Ids.js"
import * as Printable from "./Printable.js"

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

/**
 * A field value as written in a stub: as is when it is plain (every stub written so far), else a JSON string, so a
 * newline in a file name cannot add lines. A plain value that itself looks like a JSON string is quoted too.
 */
export const encodeField = (value: string): string =>
  Printable.unsafe.test(value) || /^".*"$/s.test(value) || value !== value.trim()
    ? Printable.escapeJson(JSON.stringify(value))
    : value

/** POSIX single quotes for printable names; bash/zsh `$'...'` quoting when the name holds control characters. */
const shellQuote = (value: string): string =>
  /^[A-Za-z0-9_./@%+=:,-]+$/.test(value)
    ? value
    : Printable.unsafe.test(value)
    ? `$'${Printable.escape(value.replace(/[\\']/g, (c) => `\\${c}`))}'`
    : `'${value.replace(/'/g, `'\\''`)}'`

export class MalformedStub extends Data.TaggedError("MalformedStub")<{
  readonly source: string
  readonly problem: string
}> {
  override get message() {
    return `${this.source}: not a valid tombstone stub: ${this.problem}`
  }
}

/**
 * One field's value as a stub line holds it (after `# Name: `) to its text: no control character (a line cannot
 * hide another), no longer than a stub can be, and a JSON-quoted value (`encodeField`) unquoted.
 */
const fieldText = (name: string) =>
  Schema.transformOrFail(Schema.String, Schema.String, {
    strict: true,
    decode: (raw, _, ast) => {
      const refuse = (problem: string) => ParseResult.fail(new ParseResult.Type(ast, raw, `field '${name}' ${problem}`))
      if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(raw)) return refuse("contains a control character")
      if (raw.length > maxStubBytes) return refuse(`is longer than a stub (${maxStubBytes} characters)`)
      if (!/^".*"$/s.test(raw)) return ParseResult.succeed(raw)
      try {
        const decoded: unknown = JSON.parse(raw)
        return typeof decoded === "string" ? ParseResult.succeed(decoded) : refuse("is not a valid quoted string")
      } catch {
        return refuse("is not a valid quoted string")
      }
    },
    encode: (text) => ParseResult.succeed(encodeField(text))
  })

/** A stub's field from its line (`name`); a stub without the line has it empty. */
const fromLine = (name: string) =>
  Schema.optionalToRequired(Schema.String, fieldText(name), {
    decode: Option.getOrElse(() => ""),
    encode: Option.some
  }).pipe(Schema.fromKey(name))

/** A stub's id, decoded by the id's own decoder; the error is worded as the stub's reader sees the line. */
const id = <A extends string>(schema: Schema.Schema<A, string>, problem: (value: string) => string) =>
  schema.annotations({
    message: (issue) => ({ message: problem(String(issue.actual).trim().toLowerCase()), override: true })
  })

/**
 * The fields of a stub as its lines name them (`File`, `SHA256`, ...), decoded to a `Stub`: every line's text first
 * (so a line that hides another is named before anything is read from it), then the ids.
 */
const StubLines = Schema.Struct({
  path: fromLine("File"),
  archivedBy: fromLine("ArchivedBy"),
  reason: fromLine("Reason"),
  tombstone: fromLine("Tombstone"),
  sha256: fromLine("SHA256"),
  archivedAt: fromLine("ArchivedAt"),
  commit: fromLine("Commit")
}).pipe(Schema.compose(Schema.Struct({
  ...Stub.fields,
  tombstone: id(
    TombstoneIdFromString,
    (value) => (value === "" ? "no '# Tombstone:' line" : `tombstone '${value}' is not a UUID`)
  ),
  sha256: id(Sha256FromString, () => "no valid '# SHA256:' line")
})))
const decodeStubLines = Schema.decodeUnknownEither(StubLines)

/** The fields a stub carries; other comment lines ("# NOTE: ...") are free text. */
const stubFields = new Set(["File", "ArchivedBy", "Reason", "Tombstone", "SHA256", "ArchivedAt", "Commit"])

export const isStubText = (text: string): boolean => marker.test(text)

/** Parses a stub written by this tool or by the original one; `source` names the file in errors. */
export const parse = (text: string, source: string): Effect.Effect<Stub, MalformedStub> =>
  Effect.gen(function*() {
    if (!isStubText(text)) {
      return yield* new MalformedStub({ source, problem: "missing the '# TOMBSTONE ARCHIVE STUB' header" })
    }
    const fields: Record<string, string> = {}
    const lines = text.split(/\r?\n/)
    for (const line of lines) {
      const m = /^# ([A-Za-z0-9]+): ?(.*)$/s.exec(line)
      if (!m || !stubFields.has(m[1]!)) continue
      const [, name, raw] = m as unknown as [string, string, string]
      // A repeated field is how an injected line would win: refuse rather than pick one.
      if (name in fields) {
        return yield* new MalformedStub({ source, problem: `field '${name}' appears more than once` })
      }
      fields[name] = raw
    }
    const stub = yield* Either.mapLeft(
      decodeStubLines(fields),
      (error) => new MalformedStub({ source, problem: ParseResult.ArrayFormatter.formatErrorSync(error)[0]!.message })
    )
    // The restore command line names the tombstone too (ours and the original's): it must be the same one.
    for (const line of lines) {
      const m = /^#\s{2,}\S.*?\barchive restore\s+(\S+)/.exec(line)
      if (m && Either.getOrUndefined(decodeTombstoneId(m[1]!)) !== stub.tombstone) {
        const problem = `field 'To restore' names tombstone ${m[1]}, not ${stub.tombstone}`
        return yield* new MalformedStub({ source, problem })
      }
    }
    return stub
  })

/** The stub `text` holds, or `undefined` (not a stub, or a malformed one). */
const parsed = (text: string): Stub | undefined => Either.getOrUndefined(Effect.runSync(Effect.either(parse(text, ""))))

/**
 * The kinds of line a stub holds, ours or the original tool's (spec §1.2), each with how many times it may appear: the
 * header, the seven fields, two bare `#`, the restore heading, its command line and the closing note. The command line
 * must be the one for this stub's tombstone and path, as we write it or as the original does, and nothing more: text
 * added after it (`... && echo NOTES`) was taken for part of it (a second attack review).
 */
const stubLineKinds = (
  stub: Stub | undefined
): ReadonlyArray<readonly [(line: string) => boolean, number]> => {
  // The path as parsed, and without the blanks an editor may have added after the File line's value.
  const paths = stub === undefined ? [] : [stub.path, stub.path.trimEnd()]
  const commands = new Set(paths.flatMap((file) => [
    `#   codex archive restore ${stub!.tombstone} ${shellQuote(file)}`,
    `#   codex archive restore ${stub!.tombstone} ${file}`,
    `#   python -m codex.cli archive restore ${stub!.tombstone} --out ${file}`
  ]))
  return [
    [(line) => /^# TOMBST?ONE ARCHIVE STUB — DO NOT DELETE$/.test(line), 1],
    ...[...stubFields].map((name) => {
      const field = new RegExp(`^# ${name}:( .*)?$`, "s")
      return [(line: string) => field.test(line), 1] as const
    }),
    [(line) => line === "#", 2],
    [(line) => line === "# To restore:", 1],
    [(line) => commands.has(line.replace(/^#\s{2,}/, "#   ")), 1],
    [(line) => line === "# NOTE: This stub intentionally contains no functional code.", 1]
  ]
}

/**
 * How many lines of `text` are not the stub's own: 0 for a stub as written (line endings, trailing blanks and blank
 * lines differ between writers and editors and count for nothing), more for a stub someone wrote into, which a
 * restore in place would otherwise throw away. A stub line given more often than a stub holds it counts too.
 */
export const linesBesidesStub = (text: string, stub?: Stub): number => {
  // Parsed from its header on: lines written above a stub are counted below, not a reason to know nothing of it.
  const kinds = stubLineKinds(stub ?? parsed(text.slice(Math.max(0, text.search(/^# TOMBST?ONE ARCHIVE STUB/m)))))
  const left = kinds.map(([, times]) => times)
  let extra = 0
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = raw.trimEnd()
    if (line === "") continue
    const kind = kinds.findIndex(([matches], i) => left[i]! > 0 && matches(line))
    if (kind === -1) extra++
    else left[kind]!--
  }
  return extra
}

/** The tombstone a well-formed stub names, or `undefined` (not a stub, or a malformed one). */
export const tombstoneOf = (text: string): string | undefined => parsed(text)?.tombstone

/** The size of `file`, or `Infinity` when it cannot be read: either way too large to be a stub. */
const sizeOf = (file: string | Buffer): number => {
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
export const isStubFile = (file: string | Buffer, size: number = sizeOf(file)): boolean => {
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

/**
 * Whether `file` is a well-formed stub that names `tombstone` (its parsed field, not any mention of the id in its text):
 * `undefined` when not, else how many lines it holds besides the stub (`linesBesidesStub`), 0 for a pure stub.
 */
export const stubOf = (file: string, tombstone: string, size: number = sizeOf(file)): number | undefined => {
  if (size > maxStubBytes) return undefined
  try {
    const text = FileOps.readBounded(file, maxStubBytes, { noFollow: true })
    const stub = parsed(text)
    return stub?.tombstone === tombstone ? linesBesidesStub(text, stub) : undefined
  } catch {
    return undefined
  }
}

/** A well-formed stub that names `tombstone` and holds nothing else: what a restore in place may replace. */
export const isStubOf = (file: string, tombstone: string, size: number = sizeOf(file)): boolean =>
  stubOf(file, tombstone, size) === 0
