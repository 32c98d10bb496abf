/**
 * Input text files (manifests, results files) read as a stream: pieces of a mebibyte, lines, CSV rows a thousand at
 * a time, so memory is bounded by the work in hand and never by the file's length.
 */
import { parse as parseCsv } from "csv-parse/sync"
import * as fs from "node:fs"
import * as FileOps from "../FileOps.js"
import * as Utf8 from "./Utf8.js"

/**
 * A file's text in pieces of about a mebibyte, without its byte-order mark. Text that is not UTF-8 throws
 * `Utf8.NotUtf8`, with the line and offset of the first bad byte; with `tornTail` (a file its writer may have been
 * killed writing), a last character cut short is read as U+FFFD, in the torn last line its reader leaves out.
 */
export function* chunks(file: string, options: { readonly tornTail?: boolean } = {}): Generator<string> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  try {
    // A device or a FIFO never ends (a link to /dev/zero grew a process to 12 GB): only a regular file is read.
    if (!fs.fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`)
    const buf = Buffer.allocUnsafe(1 << 20)
    // The bytes of a character the last piece cut short, and where in the file the next piece begins.
    let carried = Buffer.alloc(0)
    let offset = 0
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      const bytes = carried.length === 0 ? buf.subarray(0, n) : Buffer.concat([carried, buf.subarray(0, n)])
      const whole = n === 0 ? bytes.length : Utf8.wholeCharacters(bytes)
      let text: string
      if (n === 0 && options.tornTail === true && Utf8.wholeCharacters(bytes) < bytes.length) {
        text = bytes.toString("utf8")
      } else {
        try {
          text = Utf8.decode(bytes.subarray(0, whole), offset, n === 0)
        } catch (e) {
          // Lines are counted only for the error: counting them as the text streams by cost 13x on a file of blanks.
          if (!(e instanceof Utf8.NotUtf8)) throw e
          throw new Utf8.NotUtf8(e.offset, e.line + lineFeedsBefore(fd, offset), e.byte)
        }
      }
      carried = Buffer.from(bytes.subarray(whole))
      if (offset === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      offset += whole
      if (text !== "") yield text
      if (n === 0) break
    }
  } finally {
    fs.closeSync(fd)
  }
}

/** The line feeds in the first `end` bytes of the open file. */
const lineFeedsBefore = (fd: number, end: number): number => {
  const buf = Buffer.allocUnsafe(Math.min(end, 1 << 20))
  let count = 0
  for (let at = 0; at < end;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, end - at), at)
    if (n === 0) break
    count += Utf8.lineFeeds(buf.subarray(0, n))
    at += n
  }
  return count
}

/**
 * The file's lines (split at `\n`), streamed. A line longer than a piece is gathered piece by piece and joined once:
 * splitting what was carried plus each new piece copied a 600 MB line once per mebibyte (116 s).
 */
export function* lines(file: string, options: { readonly tornTail?: boolean } = {}): Generator<string> {
  let carried: Array<string> = []
  for (const chunk of chunks(file, options)) {
    const parts = chunk.split("\n")
    const last = parts.pop()!
    if (parts.length > 0) {
      if (carried.length > 0) {
        parts[0] = carried.join("") + parts[0]
        carried = []
      }
      yield* parts
    }
    carried.push(last)
  }
  yield carried.join("")
}

/** One CSV record and the file's line it ends on. */
export interface CsvRow {
  readonly line: number
  readonly cells: ReadonlyArray<string>
}

/** CSV the parser refused; `line` is the file's, when known, and `message` is the parser's own wording. */
export class CsvError extends Error {
  constructor(readonly line: number | undefined, message: string) {
    super(message)
  }
}

// Cells are not trimmed (as Python's csv reads them): `a.txt ` is another file than `a.txt`. Ids and digests are
// trimmed where they are decoded, header names where they are matched.
const csvOptions = { skip_empty_lines: true, relax_column_count: true } as const

/** The numbers (from 1) of the lines of `text` that are not empty. */
const filledLines = (text: string): Array<number> => {
  const filled: Array<number> = []
  for (let line = 1, from = 0;; line++) {
    const end = text.indexOf("\n", from)
    if ((end < 0 ? text.length : end) > from) filled.push(line)
    if (end < 0) return filled
    from = end + 1
  }
}

/** The CSV records of text in hand; `offset` is the number of lines before it in its file. */
export const parseRows = (text: string, offset = 0): ReadonlyArray<CsvRow> => {
  try {
    // Without `info` the parser takes half the time. When there are as many records as filled lines, each record is
    // one line (a record over several lines, or a line skipped, would make fewer): the lines name them.
    const records = parseCsv(text, csvOptions) as Array<Array<string>>
    const lines = filledLines(text)
    if (lines.length === records.length) return records.map((cells, i) => ({ line: lines[i]! + offset, cells }))
    const located = parseCsv(text, { ...csvOptions, info: true }) as unknown as ReadonlyArray<
      { record: Array<string>; info: { lines: number } }
    >
    return located.map(({ info, record }) => ({ line: info.lines + offset, cells: record }))
  } catch (e) {
    const err = e as Error & { lines?: number }
    throw new CsvError(err.lines === undefined ? undefined : err.lines + offset, err.message)
  }
}

/**
 * A CSV file's records, the header first, parsed a thousand lines at a time and cut only between records (an even
 * number of quotes so far). A parse error is worded from the whole text (at most `maxBytes`), so its line numbers are
 * the file's, not a piece's. With `tornTail`, for a file its writer ends every record with a newline, a last record
 * cut short (no newline after it) is left out rather than refused.
 */
export function* csvRows(
  file: string,
  maxBytes: number,
  options: { readonly tornTail?: boolean } = {}
): Generator<CsvRow> {
  let pending: Array<string> = []
  // Where in `pending` the last record begins: the last line that starts outside quotes.
  let lastStart = 0
  let quotes = 0
  let before = 0
  let headed = false
  const flush = (): ReadonlyArray<CsvRow> => {
    const text = pending.join("\n")
    const offset = before
    before += pending.length
    pending = []
    lastStart = 0
    if (text.trim() === "") return []
    try {
      return parseRows(text, offset)
    } catch (e) {
      if (offset === 0) throw e
      let whole: string
      try {
        whole = FileOps.readBounded(file, maxBytes, { strictUtf8: true })
      } catch {
        throw e
      }
      parseRows(whole, 0)
      throw e
    }
  }
  const source = lines(file, options)
  let next = source.next()
  while (next.done !== true) {
    const line = next.value
    next = source.next()
    // The last piece is what follows the last newline: empty unless the final record was cut short, and then the
    // record it ends (begun on an earlier line if a quote is open) is left out. A file ending in a newline with a
    // quote open is refused instead: records after a stray quote would otherwise go with it.
    if (next.done === true && options.tornTail === true) {
      if (line !== "" && quotes % 2 === 1) pending = pending.slice(0, lastStart)
      break
    }
    if (quotes % 2 === 0) lastStart = pending.length
    pending.push(line)
    for (let i = 0; i < line.length; i++) if (line.charCodeAt(i) === 34) quotes++
    if (quotes % 2 === 0 && (pending.length >= 1000 || !headed)) {
      const rows = flush()
      if (rows.length > 0) headed = true
      yield* rows
    }
  }
  yield* flush()
}
