/**
 * The three manifest formats read as streams of raw records, each named by where it stands ("entry N", "line N"): a
 * JSON array element by element, JSON Lines line by line, CSV a thousand records at a time. Memory is bounded by the
 * record in hand; a `{items}` document, or JSON Lines saved as `.json`, is read whole (at most `maxManifestBytes`).
 */
import * as path from "node:path"
import * as FileOps from "./FileOps.js"
import * as TextFile from "./internal/TextFile.js"
import { ManifestError } from "./ManifestEntry.js"

export type Format = "json" | "jsonl" | "csv"

/** One record as the file holds it, not yet checked; `where` names it in errors. */
export interface Raw {
  readonly where: string
  readonly value: unknown
}

export const formatOf = (file: string): Format | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" || ext === ".ndjson" ? "jsonl" : ext === ".csv" ? "csv" : undefined
}

/** Larger than any real manifest (a million entries), below the longest string Node can hold. */
export const maxManifestBytes = 256 * 1024 * 1024

const isObject = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The most of a first line `firstText` keeps: far more than an entry's line, whatever the line's length. */
const firstTextCap = 1024 * 1024

/**
 * The start of the file (its first non-blank line, at most `firstTextCap` characters of it): enough to tell an array
 * from JSON Lines or `{items}`. Whole, the line of a compact one-line manifest was held (36 MB for 400,000 entries:
 * 137 instead of 89 MiB for a dry run), and a file of blanks read line by line into one string.
 */
export const firstText = (file: string): string => {
  let kept = ""
  const chunks = TextFile.chunks(file)
  try {
    for (const chunk of chunks) {
      kept = kept === "" ? chunk.trimStart() : kept + chunk
      const end = kept.indexOf("\n")
      if (end >= 0) return kept.slice(0, end).trim()
      if (kept.length >= firstTextCap) return kept.slice(0, firstTextCap).trim()
    }
  } finally {
    chunks.return(undefined)
  }
  return kept.trim()
}

/**
 * The raw records of a manifest file, read as a stream each time the returned function is called. `first` is its
 * `firstText`; a read throws `ManifestError`, or the file system's error.
 */
export const records = (file: string, format: Format, first: string): () => Iterable<Raw> => {
  const whole = (): ReadonlyArray<Raw> =>
    textRecords(FileOps.readBounded(file, maxManifestBytes, { strictUtf8: true }), format, file)
  if (format === "csv") return () => csvRecords(TextFile.csvRows(file, maxManifestBytes), file)
  // Nothing but blanks: no entries, known without reading 200 MB of them whole (650 MiB, an attack review found).
  if (first === "") return () => []
  if (first.startsWith("[")) {
    return () => ({
      *[Symbol.iterator]() {
        let n = 0
        try {
          for (const text of arrayElements(TextFile.chunks(file))) {
            // Counted once parsed: the fallback below goes on after the entries already given, not one past them.
            const value = JSON.parse(text) as unknown
            n++
            yield { where: `entry ${n}`, value }
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

/** The raw records of manifest text held in memory (what the streamed readers fall back to); throws `ManifestError`. */
export const textRecords = (text: string, format: Format, file: string): ReadonlyArray<Raw> => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  switch (format) {
    case "csv":
      // Parsed as it is read, so that a parse error is worded by `csvRecords` like a streamed one.
      return Array.from(csvRecords(
        (function*() {
          yield* TextFile.parseRows(body)
        })(),
        file
      ))
    case "jsonl":
      // A `.jsonl` file holding one JSON document (what the original tool read) is still accepted.
      return looksLikeOneDocument(body) ? jsonRecords(body, file) : jsonLines(body, file)
    case "json": {
      // JSON Lines saved as `.json` is recognised by content: it is not one document, and its lines are.
      try {
        return jsonRecords(body, file)
      } catch (e) {
        if (e instanceof ManifestError && e.problem.startsWith("invalid JSON") && !looksLikeOneDocument(body)) {
          return jsonLines(body, file)
        }
        throw e
      }
    }
  }
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

function* jsonLineStream(file: string): Generator<Raw> {
  let i = 0
  for (const text of TextFile.lines(file)) {
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

/** The columns an entry is read from: each may be named once. */
const fields = ["tombstone", "output", "actor", "sha256"]

/** CSV rows as records keyed by the header's column names (any letter case, any order); the header must name both. */
function* csvRecords(rows: Iterable<TextFile.CsvRow>, file: string): Generator<Raw> {
  let header: ReadonlyArray<string> | undefined
  try {
    for (const row of rows) {
      if (header === undefined) {
        header = row.cells.map((h) => h.trim().toLowerCase())
        if (!header.includes("tombstone") || !header.includes("output")) {
          throw new ManifestError({
            file,
            where: `line ${row.line}`,
            problem: `CSV header must name the columns tombstone and output (found: ${header.join(", ")})`
          })
        }
        // Two columns of a field: which one the file meant is not ours to guess (one of them won silently).
        const twice = fields.find((f) => header!.indexOf(f) !== header!.lastIndexOf(f))
        if (twice !== undefined) {
          throw new ManifestError({
            file,
            where: `line ${row.line}`,
            problem: `CSV header names the column ${twice} twice; keep one`
          })
        }
        continue
      }
      // Cells past the header's columns: `id,report,final.txt` (a comma in a name left unquoted) restored to `report`.
      if (row.cells.slice(header.length).some((cell) => cell !== "")) {
        throw new ManifestError({
          file,
          where: `line ${row.line}`,
          problem: `${row.cells.length} cells where the header names ${header.length} columns (quote a value that ` +
            "holds a comma)"
        })
      }
      const value: Record<string, string> = {}
      for (let i = row.cells.length - 1; i >= 0; i--) if (header[i] !== undefined) value[header[i]!] = row.cells[i]!
      yield { where: `line ${row.line}`, value }
    }
  } catch (e) {
    if (!(e instanceof TextFile.CsvError)) throw e
    throw new ManifestError({
      file,
      where: e.line === undefined ? undefined : `line ${e.line}`,
      problem: `invalid CSV: ${e.message}`
    })
  }
}

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

const jsonRecords = (text: string, file: string): ReadonlyArray<Raw> => {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    const message = (e as Error).message
    const position = /position (\d+)/.exec(message)
    const line = position ? lineAt(text, Number(position[1])) : badLine(text)
    throw new ManifestError({
      file,
      where: line === undefined ? undefined : `line ${line}`,
      problem: `invalid JSON: ${message}`
    })
  }
  const items = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.items) ? doc.items : undefined
  if (items === undefined) {
    throw new ManifestError({
      file,
      where: undefined,
      problem: "JSON manifest must be an array of entries or an object with an 'items' array"
    })
  }
  return items.map((value: unknown, i) => ({ where: `entry ${i + 1}`, value }))
}

const jsonLines = (text: string, file: string): ReadonlyArray<Raw> => {
  const raws: Array<Raw> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    try {
      raws.push({ where: `line ${i + 1}`, value: JSON.parse(line) })
    } catch (e) {
      throw new ManifestError({ file, where: `line ${i + 1}`, problem: `invalid JSON: ${(e as Error).message}` })
    }
  }
  return raws
}
