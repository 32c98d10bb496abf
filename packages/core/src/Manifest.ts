/**
 * Restore manifests (spec §7.1, fixed per §12): JSON (array or `{items}`), JSON Lines and CSV, every entry checked
 * before anything is restored; a tree of tombstone stubs as a manifest; and the manifest `store --manifest-out` writes.
 * Relative outputs resolve against the manifest's folder and may not leave it, then or while the batch runs (each
 * entry carries its real path below the folder's real path: `FileOps.Contained`); two entries never share an output,
 * by name or by file identity (a folder link inside the manifest's folder, a hard link).
 */
import { parse as parseCsv } from "csv-parse/sync"
import { Data, Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StringDecoder } from "node:string_decoder"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"
import * as Ids from "./Ids.js"
import * as Tombstone from "./Tombstone.js"
import * as Walk from "./Walk.js"

export interface Entry {
  readonly tombstone: string
  /** Absolute path. */
  readonly output: string
  readonly actor: string
  /** The content's SHA-256 when the manifest records it (`store --manifest-out`, stub trees). */
  readonly sha256?: string | undefined
  /** Where the output really lands, kept inside the manifest's (or stub tree's) folder while the batch runs. */
  readonly contained?: FileOps.Contained | undefined
}

export type Format = "json" | "jsonl" | "csv"

/** A manifest that cannot be used as it is: nothing is restored. `where` is "line N" or "entry N" when known. */
export class ManifestError extends Data.TaggedError("ManifestError")<{
  readonly file: string
  readonly where: string | undefined
  readonly problem: string
}> {
  override get message() {
    return `manifest ${this.file}${this.where === undefined ? "" : ` (${this.where})`}: ${this.problem}`
  }
}

export interface LoadOptions {
  /** Actor for entries that name none (`--actor`/`--by`, `CODEX_ACTOR`, the OS user). */
  readonly defaultActor: string
}

interface Raw {
  readonly where: string
  readonly value: unknown
}

export const formatOf = (file: string): Format | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" || ext === ".ndjson" ? "jsonl" : ext === ".csv" ? "csv" : undefined
}

/** Larger than any real manifest (a million entries), below the longest string Node can hold. */
export const maxManifestBytes = 256 * 1024 * 1024

/**
 * A checked manifest read again as the batch runs: `total` entries, every one checked (and no two sharing an output)
 * before `entries` is first read, none of them held in memory. `entries` throws a `ManifestError` if the file no longer
 * holds what was checked.
 */
export interface Source {
  readonly total: number
  readonly entries: () => Iterable<Entry>
}

/** Reads and checks a manifest file; the format comes from its extension (JSON vs JSON Lines also by content). */
export const load = (file: string, options: LoadOptions): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.flatMap(open(file, options), (source) => collect(source, path.resolve(file)))

/** The entries of a source, all in memory (small manifests, tests). */
const collect = (source: Source, file: string) =>
  Effect.try({ try: () => Array.from(source.entries()), catch: (e) => asManifestError(e, file) })

/**
 * Opens a manifest file as a `Source`: streamed twice, once now to check every entry, then as the batch runs. Memory
 * is bounded by the entry in hand, plus a few dozen bytes per entry for finding two entries with one output.
 */
export const open = (file: string, options: LoadOptions): Effect.Effect<Source, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const format = formatOf(absolute)
    if (format === undefined) {
      return Effect.fail(
        new ManifestError({
          file: absolute,
          where: undefined,
          problem: "unknown manifest format: the name must end in .json, .jsonl or .csv"
        })
      )
    }
    let first: string
    try {
      first = firstText(absolute)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      return Effect.fail(
        new ManifestError({
          file: absolute,
          where: undefined,
          problem: code === "ENOENT" ? "no such file" : `cannot read: ${FileOps.describeErrno(e)}`
        })
      )
    }
    const raws = streamedRaws(absolute, format, first)
    return checked(raws, { ...options, file: absolute, baseDir: path.dirname(absolute) })
  })

/** Parses manifest text; `file` names it in errors and `baseDir` anchors relative outputs. */
export const parse = (
  text: string,
  options: LoadOptions & { readonly file: string; readonly format: Format; readonly baseDir: string }
): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.suspend(() => {
    const raws = textRaws(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, options.format, options.file)
    if (raws instanceof ManifestError) return Effect.fail(raws)
    return Effect.flatMap(checked(() => raws, options), (source) => collect(source, options.file))
  })

/** The raw records of manifest text held in memory (what the streamed readers fall back to). */
const textRaws = (body: string, format: Format, file: string): ReadonlyArray<Raw> | ManifestError => {
  switch (format) {
    case "csv": {
      const raws = csvRecords(body, file)
      return raws instanceof ManifestError ? raws : raws.records
    }
    case "jsonl":
      // A `.jsonl` file holding one JSON document (what the original tool read) is still accepted.
      return looksLikeOneDocument(body) ? jsonRecords(body, file) : jsonLines(body, file)
    case "json": {
      // JSON Lines saved as `.json` is recognised by content: it is not one document, and its lines are.
      const raws = jsonRecords(body, file)
      return raws instanceof ManifestError && raws.problem.startsWith("invalid JSON") && !looksLikeOneDocument(body)
        ? jsonLines(body, file)
        : raws
    }
  }
}

/** A file's text in pieces of about a mebibyte, without its byte-order mark. */
function* textChunks(file: string): Generator<string> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  try {
    // A device or a FIFO never ends (a link to /dev/zero grew a process to 12 GB): only a regular file is a manifest.
    if (!fs.fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`)
    const buf = Buffer.allocUnsafe(1 << 20)
    const decoder = new StringDecoder("utf8")
    let first = true
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      let text = decoder.write(buf.subarray(0, n))
      if (first && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
        first = false
      }
      if (text !== "") yield text
    }
    const rest = decoder.end()
    if (rest !== "") yield rest
  } finally {
    fs.closeSync(fd)
  }
}

/** The file's lines, streamed. */
function* textLines(file: string): Generator<string> {
  let carry = ""
  for (const chunk of textChunks(file)) {
    const parts = (carry + chunk).split("\n")
    carry = parts.pop()!
    yield* parts
  }
  yield carry
}

/** The start of the file (up to its first non-blank line): enough to tell an array from JSON Lines or `{items}`. */
const firstText = (file: string): string => {
  for (const line of textLines(file)) if (line.trim() !== "") return line.trim()
  return ""
}

/** Not a plain top-level array, or not valid JSON: the whole text is parsed instead, for its precise error. */
class NotPlain extends Error {}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9

/** The texts of a top-level JSON array's elements, as the file streams past; throws `NotPlain` at any surprise. */
function* arrayElements(chunks: Iterable<string>): Generator<string> {
  let opened = false
  let closed = false
  let depth = 0
  let inString = false
  let escaped = false
  let element = ""
  let count = 0
  const done = (text: string) => {
    if (text.trim() === "") throw new NotPlain()
    count++
    return text
  }
  for (const chunk of chunks) {
    let from = 0
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i)
      if (inString) {
        if (escaped) escaped = false
        else if (c === 92) escaped = true
        else if (c === 34) inString = false
      } else if (!opened || closed) {
        if (c === 91 && !opened) {
          opened = true
          from = i + 1
        } else if (!isSpace(c)) throw new NotPlain()
      } else if (c === 34) inString = true
      else if (c === 123 || c === 91) depth++
      else if (c === 125 || c === 93) {
        if (depth > 0) depth--
        else if (c === 125) throw new NotPlain()
        else {
          const last = element + chunk.slice(from, i)
          element = ""
          closed = true
          if (count > 0 || last.trim() !== "") yield done(last)
        }
      } else if (c === 44 && depth === 0) {
        const text = element + chunk.slice(from, i)
        element = ""
        from = i + 1
        yield done(text)
      }
    }
    if (opened && !closed) element += chunk.slice(from)
  }
  if (!closed) throw new NotPlain()
}

/**
 * The raw records of a manifest file, read as a stream each time: a JSON array element by element, JSON Lines line
 * by line, CSV a thousand records at a time. A `{items}` document, or JSON Lines saved as `.json`, is read whole.
 */
const streamedRaws = (file: string, format: Format, first: string): () => Iterable<Raw> => {
  const whole = (): ReadonlyArray<Raw> => {
    const text = FileOps.readBounded(file, maxManifestBytes)
    const raws = textRaws(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, format, file)
    if (raws instanceof ManifestError) throw raws
    return raws
  }
  if (format === "csv") return () => csvStream(file)
  if (first.startsWith("[")) {
    return () => ({
      *[Symbol.iterator]() {
        let n = 0
        try {
          for (const text of arrayElements(textChunks(file))) {
            n++
            yield { where: `entry ${n}`, value: JSON.parse(text) as unknown }
          }
        } catch (e) {
          if (!(e instanceof NotPlain) && !(e instanceof SyntaxError)) throw e
          // The whole text gives the error, with its line; valid after all, its entries past those already read.
          yield* whole().slice(n)
        }
      }
    })
  }
  if (format === "jsonl" && !looksLikeOneDocument(first)) return () => jsonLineStream(file)
  return whole
}

function* jsonLineStream(file: string): Generator<Raw> {
  let i = 0
  for (const text of textLines(file)) {
    i++
    const line = text.trim()
    if (line === "") continue
    try {
      yield { where: `line ${i}`, value: JSON.parse(line) as unknown }
    } catch (e) {
      throw new ManifestError({ file, where: `line ${i}`, problem: `invalid JSON: ${(e as Error).message}` })
    }
  }
}

/** CSV records a thousand at a time, cut only between records (an even number of quotes so far). */
function* csvStream(file: string): Generator<Raw> {
  let header: ReadonlyArray<string> | undefined
  let pending: Array<string> = []
  let quotes = 0
  let before = 0
  const flush = function*(): Generator<Raw> {
    const text = pending.join("\n")
    const offset = before
    before += pending.length
    pending = []
    if (text.trim() === "") return
    const raws = csvRecords(text, file, header, offset)
    if (raws instanceof ManifestError) {
      // The whole text gives the error as csv-parse words it, its line numbers the file's.
      const whole = csvRecords(Array.from(textChunks(file)).join(""), file)
      throw whole instanceof ManifestError ? whole : raws
    }
    if (header === undefined) header = raws.header
    yield* raws.records
  }
  for (const line of textLines(file)) {
    pending.push(line)
    for (let i = 0; i < line.length; i++) if (line.charCodeAt(i) === 34) quotes++
    if (quotes % 2 === 0 && (pending.length >= 1000 || header === undefined)) yield* flush()
  }
  yield* flush()
}

interface Keys {
  readonly add: (key: string, ordinal: number) => number | undefined
}

/**
 * Keys seen so far, held as 53-bit hashes (a few dozen bytes each, where the keys took hundreds): a hash seen before
 * is confirmed against the key it was first seen with, read again (`keyAt`), so two keys never pass for one.
 */
const hashedKeys = (keyAt: (ordinal: number) => string): Keys => {
  const byHash = new Map<number, number>()
  const exact = new Map<string, number>()
  return {
    add: (key, ordinal) => {
      const known = exact.get(key)
      if (known !== undefined) return known
      const h = Hash.hash53(key)
      const first = byHash.get(h)
      if (first === undefined) return void byHash.set(h, ordinal)
      const firstKey = keyAt(first)
      if (firstKey === key) return first
      exact.set(firstKey, first)
      exact.set(key, ordinal)
      return undefined
    }
  }
}

/** The error a streamed read threw, as a `ManifestError` naming the file. */
const asManifestError = (e: unknown, file: string): ManifestError =>
  e instanceof ManifestError
    ? e
    : new ManifestError({ file, where: undefined, problem: `cannot read: ${FileOps.describeErrno(e)}` })

/**
 * Checks every record once, streamed (each entry, and that no two share an output, by name or by file identity),
 * and returns the source that reads them again, checked the same way.
 */
const checked = (
  raws: () => Iterable<Raw>,
  options: LoadOptions & { readonly file: string; readonly baseDir: string }
): Effect.Effect<Source, ManifestError> =>
  Effect.suspend(() => {
    const fail = (where: string | undefined, problem: string) =>
      Effect.fail(new ManifestError({ file: options.file, where, problem }))
    const base = realBase(options.baseDir)
    const baseDir = path.resolve(options.baseDir)
    const read = function*(): Generator<readonly [Raw, Entry | string]> {
      // One real path per folder: a folder holds many entries.
      const realFolders = new Map<string, string>()
      for (const raw of raws()) yield [raw, entryOf(raw, options.defaultActor, baseDir, base, realFolders)]
    }
    const at = (ordinal: number): readonly [Raw, Entry] => {
      let n = 0
      for (const [raw, entry] of read()) if (n++ === ordinal) return [raw, entry as Entry]
      throw new ManifestError({ file: options.file, where: undefined, problem: "changed while it was being read" })
    }
    const duplicate = duplicates((ordinal) => at(ordinal)[1])
    let total = 0
    try {
      for (const [raw, checked] of read()) {
        if (typeof checked === "string") return fail(raw.where, checked)
        const problem = duplicate(checked, total, (ordinal) => at(ordinal)[0].where)
        if (problem !== undefined) return fail(raw.where, problem)
        total++
      }
    } catch (e) {
      return Effect.fail(asManifestError(e, options.file))
    }
    if (total === 0) return fail(undefined, "contains no restore entries")
    const entries = function*(): Generator<Entry> {
      let n = 0
      for (const [raw, entry] of read()) {
        if (typeof entry === "string") {
          throw new ManifestError({
            file: options.file,
            where: raw.where,
            problem: `changed after it was checked: ${entry}`
          })
        }
        n++
        yield entry
      }
      if (n !== total) {
        throw new ManifestError({
          file: options.file,
          where: undefined,
          problem: `changed after it was checked: ${n} entries, not ${total}`
        })
      }
    }
    return Effect.succeed({ total, entries: () => ({ [Symbol.iterator]: entries }) })
  })

const looksLikeOneDocument = (text: string): boolean => {
  const trimmed = text.trim()
  if (trimmed.startsWith("[")) return true
  if (!trimmed.startsWith("{")) return false
  // A first line that is a whole entry object means one object per line (JSON Lines); `{items}` is a document.
  try {
    const first: unknown = JSON.parse(trimmed.split("\n", 1)[0]!)
    return isObject(first) && "items" in first
  } catch {
    return true
  }
}

const lineAt = (text: string, position: number): number => text.slice(0, position).split("\n").length

/** The first line at which the text stops being a valid beginning of JSON (V8 does not always say where). */
const badLine = (text: string): number | undefined => {
  if (text.length > 4 * 1024 * 1024) return undefined
  const lines = text.split("\n")
  let prefix = ""
  for (let i = 0; i < lines.length; i++) {
    prefix += (i === 0 ? "" : "\n") + lines[i]
    try {
      JSON.parse(prefix)
    } catch (e) {
      const message = (e as Error).message
      const at = /position (\d+)/.exec(message)
      const incomplete = /end of JSON input/.test(message) || (at !== null && Number(at[1]) >= prefix.length)
      if (!incomplete) return at === null ? i + 1 : lineAt(prefix, Number(at[1]))
    }
  }
  return lines.length
}

const jsonRecords = (text: string, file: string): ReadonlyArray<Raw> | ManifestError => {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    const message = (e as Error).message
    const position = /position (\d+)/.exec(message)
    const line = position ? lineAt(text, Number(position[1])) : badLine(text)
    return new ManifestError({
      file,
      where: line === undefined ? undefined : `line ${line}`,
      problem: `invalid JSON: ${message}`
    })
  }
  const items = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.items) ? doc.items : undefined
  if (items === undefined) {
    return new ManifestError({
      file,
      where: undefined,
      problem: "JSON manifest must be an array of entries or an object with an 'items' array"
    })
  }
  return items.map((value, i) => ({ where: `entry ${i + 1}`, value }))
}

const jsonLines = (text: string, file: string): ReadonlyArray<Raw> | ManifestError => {
  const raws: Array<Raw> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    try {
      raws.push({ where: `line ${i + 1}`, value: JSON.parse(line) })
    } catch (e) {
      return new ManifestError({ file, where: `line ${i + 1}`, problem: `invalid JSON: ${(e as Error).message}` })
    }
  }
  return raws
}

/** CSV records; `header` and `offset` (lines before `text`) when `text` continues a file whose header was read. */
const csvRecords = (
  text: string,
  file: string,
  known?: ReadonlyArray<string>,
  offset = 0
): { readonly header: ReadonlyArray<string> | undefined; readonly records: ReadonlyArray<Raw> } | ManifestError => {
  let records: Array<{ record: Array<string>; info: { lines: number } }>
  try {
    records = parseCsv(text, {
      info: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true
    }) as unknown as typeof records
  } catch (e) {
    const err = e as Error & { lines?: number }
    return new ManifestError({
      file,
      where: err.lines === undefined ? undefined : `line ${err.lines + offset}`,
      problem: `invalid CSV: ${err.message}`
    })
  }
  if (records.length === 0) return { header: known, records: [] }
  const header = known ?? records[0]!.record.map((h) => h.trim().toLowerCase())
  const column = (name: string) => header.indexOf(name)
  const tombstone = column("tombstone")
  const output = column("output")
  const actor = column("actor")
  if (tombstone < 0 || output < 0) {
    return new ManifestError({
      file,
      where: `line ${records[0]!.info.lines + offset}`,
      problem: `CSV header must name the columns tombstone and output (found: ${header.join(", ")})`
    })
  }
  return {
    header,
    records: (known === undefined ? records.slice(1) : records).map(({ info, record }) => ({
      where: `line ${info.lines + offset}`,
      value: {
        tombstone: record[tombstone] ?? "",
        output: record[output] ?? "",
        ...(actor >= 0 ? { actor: record[actor] ?? "" } : {})
      }
    }))
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const realBase = (dir: string): string => {
  try {
    return fs.realpathSync(dir)
  } catch {
    return path.resolve(dir)
  }
}

/** `target` lies strictly below `base`; both absolute and normalized (`path.resolve`, realpath), so a prefix says it. */
const inside = (base: string, target: string): boolean =>
  target.length > base.length && target.startsWith(base) &&
  (base.endsWith(path.sep) || target[base.length] === path.sep)

/**
 * `target` lies below `base`, both as written and once symbolic links on the way are resolved: a folder inside `base`
 * that links outside it does not count as inside.
 */
export const contains = (base: string, target: string): boolean => {
  const from = path.resolve(base)
  const to = path.resolve(from, target)
  return inside(from, to) && inside(realBase(from), realTarget(to, new Map()))
}

/** Where a path would really land: symbolic links on the way must not lead out of the manifest's folder. */
const realTarget = (target: string, cache: Map<string, string>): string => {
  const folder = path.dirname(target)
  const real = realFolder(folder, cache)
  // No link on the way (the usual case): the path itself, without joining it again.
  return real === folder ? target : path.join(real, path.basename(target))
}

/** A folder's real path; one that does not exist yet is its nearest existing ancestor's real path plus the rest. */
const realFolder = (folder: string, cache: Map<string, string>): string => {
  const known = cache.get(folder)
  if (known !== undefined) return known
  let real: string | undefined
  try {
    // Most outputs of a fresh restore lie in folders not made yet: ask without an exception per folder.
    if (fs.lstatSync(folder, { throwIfNoEntry: false }) !== undefined) real = fs.realpathSync.native(folder)
  } catch {
    // a file on the way, a dangling link, no permission: resolved through its parent, like a missing folder
  }
  if (real === undefined) {
    const parent = path.dirname(folder)
    real = parent === folder ? folder : path.join(realFolder(parent, cache), path.basename(folder))
  }
  cache.set(folder, real)
  return real
}

/**
 * Finds outputs that are one file under two names: the same name, the same real path (a folder link inside the
 * manifest's folder), or an existing file's device and inode (a hard link). Held as hashes (`hashedKeys`): O(entries)
 * but a few dozen bytes each. Returns the problem, naming both entries.
 */
const duplicates = (entryAt: (ordinal: number) => Entry) => {
  const realOf = (entry: Entry) => entry.contained?.path ?? entry.output
  const reals = hashedKeys((ordinal) => realOf(entryAt(ordinal)))
  const inodes = hashedKeys((ordinal) => fileIdentity(realOf(entryAt(ordinal))) ?? "")
  return (entry: Entry, ordinal: number, whereAt: (ordinal: number) => string): string | undefined => {
    // One name always has one real path: the real path finds both.
    const real = realOf(entry)
    const inode = fileIdentity(real)
    const first = reals.add(real, ordinal) ?? (inode === undefined ? undefined : inodes.add(inode, ordinal))
    if (first === undefined) return undefined
    const other = entryAt(first)
    return other.output === entry.output
      ? `output ${entry.output} is also the output of ${whereAt(first)}; two entries cannot restore to the same file`
      : `output ${entry.output} is the same file as ${other.output} (${
        whereAt(first)
      }); two entries cannot restore to the same file`
  }
}

/** An existing regular file's device and inode; none for anything else (absent, under a file, unreadable). */
const fileIdentity = (file: string): string | undefined => {
  try {
    const st = fs.lstatSync(file, { throwIfNoEntry: false })
    return st?.isFile() ? `${st.dev}:${st.ino}` : undefined
  } catch {
    return undefined
  }
}

/** Checks one entry; a string is the problem. */
const entryOf = (
  raw: Raw,
  defaultActor: string,
  baseDir: string,
  realBaseDir: string,
  cache: Map<string, string>
): Entry | string => {
  if (!isObject(raw.value)) return "each manifest entry must be an object with tombstone and output"
  const { actor, output, sha256, tombstone } = raw.value
  if (tombstone !== undefined && tombstone !== null && typeof tombstone !== "string") {
    return "tombstone must be a string"
  }
  if (typeof tombstone !== "string" || tombstone.trim() === "") return "missing tombstone"
  const decoded = Ids.decodeTombstoneId(tombstone)
  if (Either.isLeft(decoded)) return decoded.left.message
  const id = decoded.right
  if (typeof output !== "string" || output.trim() === "") return "missing output path"
  if (output.includes("\0")) return `output ${JSON.stringify(output)} contains a NUL byte, which no file name can hold`
  const resolved = path.resolve(baseDir, output.trim())
  const real = realTarget(resolved, cache)
  if (!inside(baseDir, resolved) || !inside(realBaseDir, real)) {
    return `output '${output}' is outside the manifest's folder ${baseDir}`
  }
  const skipped = Walk.skippedFolderOn(path.relative(realBaseDir, real))
  if (skipped !== undefined) return `output '${output}' goes into a ${skipped} folder, which no store archives`
  const contained = { root: realBaseDir, path: real }
  if (actor !== undefined && actor !== null && typeof actor !== "string") return "actor must be a string"
  const who = (typeof actor === "string" ? actor.trim() : "") || defaultActor.trim()
  if (who === "") return "no actor: give one in the entry or with --actor"
  const digest = typeof sha256 === "string" ? Either.getOrUndefined(Ids.decodeSha256(sha256)) : undefined
  if (sha256 !== undefined && sha256 !== null && digest === undefined) return "sha256 must be 64 hex digits"
  return digest === undefined
    ? { tombstone: id, output: resolved, actor: who, contained }
    : { tombstone: id, output: resolved, actor: who, sha256: digest, contained }
}

/** Every tombstone stub under `dir` (sorted, symbolic links not followed), each restored where it stands. */
export const fromStubs = (
  dir: string,
  options: LoadOptions
): Effect.Effect<ReadonlyArray<Entry>, ManifestError | Tombstone.MalformedStub> =>
  Effect.flatMap(openStubs(dir, options), (source) =>
    Effect.try({
      try: () => Array.from(source.entries()),
      catch: (e) => (e instanceof Tombstone.MalformedStub ? e : asManifestError(e, path.resolve(dir)))
    }))

/**
 * A tree of stubs as a `Source`: walked twice (sorted, symbolic links not followed), once now to parse and check
 * every stub, then as the batch runs; a folder's names are held while the walk is in it, no stub longer than that.
 */
export const openStubs = (
  dir: string,
  options: LoadOptions
): Effect.Effect<Source, ManifestError | Tombstone.MalformedStub> =>
  Effect.gen(function*() {
    const root = path.resolve(dir)
    const fail = (problem: string) => new ManifestError({ file: root, where: undefined, problem })
    const st = fs.statSync(root, { throwIfNoEntry: false })
    if (!st) return yield* fail("no such folder")
    if (!st.isDirectory()) return yield* fail("not a folder")
    const actor = options.defaultActor.trim()
    if (actor === "") return yield* fail("no actor: give one with --actor")
    // The walk follows no link, so each stub's real path is the tree's real path plus its place in the tree.
    const real = realBase(root)
    const walk = function*(folder: string): Generator<string> {
      let names: Array<fs.Dirent>
      try {
        names = Walk.entries(folder)
      } catch (e) {
        throw fail(`cannot read the tree: ${FileOps.describeErrno(e)}`)
      }
      for (const entry of names) {
        const full = path.join(folder, entry.name)
        if (entry.isDirectory()) {
          if (!Walk.isSkippedFolder(entry.name)) yield* walk(full)
        } else if (entry.isFile() && Tombstone.isStubFile(full)) yield full
      }
    }
    const read = function*(): Generator<Entry> {
      for (const file of walk(root)) {
        let text: string
        try {
          // Once, bounded, through no link: the walk's check was a moment ago and the tree may be shared.
          text = FileOps.readBounded(file, Tombstone.maxStubBytes, { noFollow: true })
        } catch (e) {
          throw fail(`${file}: ${FileOps.describeErrno(e)}`)
        }
        const stub = Effect.runSync(Effect.either(Tombstone.parse(text, file)))
        if (stub._tag === "Left") throw stub.left
        yield {
          tombstone: stub.right.tombstone,
          output: file,
          actor,
          sha256: stub.right.sha256,
          contained: { root: real, path: path.join(real, path.relative(root, file)) }
        }
      }
    }
    const at = (ordinal: number): Entry => {
      let n = 0
      for (const entry of read()) if (n++ === ordinal) return entry
      throw fail("changed while it was being read")
    }
    const duplicate = duplicates(at)
    const counted = yield* Effect.try({
      try: () => {
        let total = 0
        for (const entry of read()) {
          const twin = duplicate(entry, total, (ordinal) => at(ordinal).output)
          if (twin !== undefined) throw fail(twin)
          total++
        }
        return total
      },
      catch: (e) => (e instanceof Tombstone.MalformedStub ? e : asManifestError(e, root))
    })
    if (counted === 0) return yield* fail("contains no tombstone stubs")
    const entries = function*(): Generator<Entry> {
      let n = 0
      for (const entry of read()) {
        if (++n > counted) break
        yield entry
      }
    }
    return { total: counted, entries: () => ({ [Symbol.iterator]: entries }) } satisfies Source as Source
  })

export interface Written {
  readonly tombstone: string
  /** Absolute path of the stored file: where a restore puts it back. */
  readonly output: string
  readonly sha256: string
}

/**
 * Writes the manifest `store --manifest-out FILE` produces: a JSON array of `{tombstone, output, sha256}` with
 * outputs relative to the manifest's folder, atomically. Every output must lie inside that folder, since `load`
 * refuses outputs that leave it.
 */
export const write = (file: string, entries: ReadonlyArray<Written>): Effect.Effect<void, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const base = path.dirname(absolute)
    const items: Array<{ tombstone: string; output: string; sha256: string }> = []
    for (const [i, e] of entries.entries()) {
      const output = path.resolve(e.output)
      if (!inside(base, output)) {
        return Effect.fail(
          new ManifestError({
            file: absolute,
            where: `entry ${i + 1}`,
            problem:
              `${output} is outside the manifest's folder ${base}; write the manifest into a folder that contains every stored file`
          })
        )
      }
      items.push({
        tombstone: e.tombstone,
        output: path.relative(base, output).split(path.sep).join("/"),
        sha256: e.sha256
      })
    }
    return Effect.try({
      try: () => FileOps.writeFileAtomic(absolute, JSON.stringify(items, null, 2) + "\n"),
      catch: (e) =>
        new ManifestError({ file: absolute, where: undefined, problem: `cannot write: ${FileOps.describeErrno(e)}` })
    })
  })

/**
 * The manifest `store --manifest-out FILE` produces, written as the store runs: entries are appended to a temporary
 * file beside it (one per line, the same JSON as `write`), which `commit` renames into place; `abort` removes it, so a
 * failed store leaves no manifest, whole or partial.
 */
export const writer = (file: string): Effect.Effect<{
  /** The manifest and the temporary it is written to: a store that walks their folder must not archive them. */
  readonly files: ReadonlyArray<string>
  readonly append: (entries: ReadonlyArray<Written>) => Effect.Effect<void, ManifestError>
  readonly commit: Effect.Effect<void, ManifestError>
  readonly abort: Effect.Effect<void>
}, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const base = path.dirname(absolute)
    const temp = path.join(base, `.${path.basename(absolute)}.codex-manifest.tmp`)
    const fail = (where: string | undefined, problem: string) => new ManifestError({ file: absolute, where, problem })
    let fd: number
    try {
      // Never through a link planted at the fixed temporary name.
      fd = FileOps.createNew(temp, 0o644)
      fs.writeFileSync(fd, "[")
    } catch (e) {
      return Effect.fail(fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`))
    }
    let n = 0
    let open = true
    const close = () => {
      if (open) fs.closeSync(fd)
      open = false
    }
    return Effect.succeed({
      files: [absolute, temp],
      append: (entries) =>
        Effect.suspend(() => {
          let text = ""
          for (const e of entries) {
            const output = path.resolve(e.output)
            n++
            if (!inside(base, output)) {
              return Effect.fail(
                fail(
                  `entry ${n}`,
                  `${output} is outside the manifest's folder ${base}; write the manifest into a folder that contains every stored file`
                )
              )
            }
            const item = {
              tombstone: e.tombstone,
              output: path.relative(base, output).split(path.sep).join("/"),
              sha256: e.sha256
            }
            text += `${n === 1 ? "" : ","}\n  ${JSON.stringify(item)}`
          }
          return Effect.try({
            try: () => fs.writeFileSync(fd, text),
            catch: (e) => fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`)
          })
        }),
      commit: Effect.try({
        try: () => {
          fs.writeFileSync(fd, n === 0 ? "]\n" : "\n]\n")
          close()
          const refused = FileOps.notReplaceable(absolute)
          if (refused !== undefined) throw refused
          fs.renameSync(temp, absolute)
        },
        catch: (e) => {
          close()
          fs.rmSync(temp, { force: true })
          return fail(undefined, `cannot write: ${FileOps.describeErrno(e)}`)
        }
      }),
      abort: Effect.sync(() => {
        close()
        fs.rmSync(temp, { force: true })
      })
    })
  })
