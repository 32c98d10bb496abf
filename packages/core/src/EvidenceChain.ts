/**
 * The evidence log's hash chain: what makes `archive_ops.jsonl` tamper-evident, and the check that proves it.
 *
 * Each line we write carries two new fields (the original tool reads the line as before):
 * - `seq`: 1 for the first chained line of a file, then the previous line's `seq` + 1. It restarts at 1 after a line
 *   that is not a chained record (a line the original tool wrote, a torn or garbage line), and lets `verify` tell a
 *   deleted line (a gap) from an edited one and from reordering.
 * - `prev`: hex SHA-256 of the previous line's exact bytes, without its newline, whatever that line is (a chained
 *   line, a line that predates chaining, a torn line); for the first line of the file, `genesis` (64 zeros).
 * - `mac` (only with a key): HMAC-SHA256(key, the line's canonical bytes without `mac`). Since those bytes include
 *   `prev`, the MACs form a keyed chain: a forger who edits a line and recomputes every plain `prev` is caught.
 *
 * Appending after a torn tail (a crash mid-write, appended garbage without a newline) first ends that line with a
 * newline, then chains to its bytes: `verify` reports exactly that line, and the lines after it stay checkable.
 * Concurrent processes keep one chain through a lock file (`archive_ops.jsonl.lock`, created with O_EXCL).
 */
import { Data, Effect, Redacted } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as CanonicalJson from "./CanonicalJson.js"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"

/** The `prev` of a file's first line. */
export const genesis = "0".repeat(64)

/** Python's `json.dumps(sort_keys=True, separators=(",", ":"))`, including its ASCII escaping: a line's bytes. */
export const serialize = (record: { readonly [key: string]: unknown }): string => CanonicalJson.stringifyAscii(record)

export const hashLine = (bytes: string | Uint8Array): string => Hash.sha256(bytes)

export const macOf = (key: Redacted.Redacted<string>, canonical: string): string =>
  crypto.createHmac("sha256", Redacted.value(key)).update(canonical, "utf8").digest("hex")

/** Chains `records` after a line whose hash is `prev` and whose successor's seq is `seq`: the lines to write. */
export const link = (
  records: ReadonlyArray<{ readonly [key: string]: unknown }>,
  tail: { readonly prev: string; readonly seq: number },
  key: Redacted.Redacted<string> | undefined
): Array<string> => {
  let { prev, seq } = tail
  return records.map((record) => {
    const body = { ...record, prev, seq }
    const plain = serialize(body)
    const line = key === undefined ? plain : serialize({ ...body, mac: macOf(key, plain) })
    prev = hashLine(line)
    seq += 1
    return line
  })
}

const chunkSize = 64 * 1024
/** Lines longer than this are hashed but not parsed (none of ours comes near it). */
const parseCap = 1024 * 1024
const hex64 = /^[0-9a-f]{64}$/

type Parsed =
  | { readonly kind: "chained"; readonly seq: number; readonly prev: string; readonly record: { [k: string]: unknown } }
  | { readonly kind: "record" }
  | { readonly kind: "half" }
  | { readonly kind: "garbage" }

/** Bytes both writers' lines are made of: printable ASCII (both escape every other character). */
const printableAscii = (bytes: Buffer): boolean => {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! < 0x20 || bytes[i]! > 0x7e) return false
  return true
}

/**
 * What a line is: a chained record, a record without a chain, half a record (starts `{`, does not parse, and could be
 * the start of a line a writer wrote), garbage.
 */
const parse = (bytes: Buffer | undefined): Parsed => {
  if (bytes === undefined) return { kind: "garbage" }
  let value: unknown
  try {
    value = JSON.parse(bytes.toString("utf8"))
  } catch {
    // A raw control character or a byte past ASCII is in no line this tool or the original wrote, nor in a cut one.
    return bytes[0] === 0x7b && printableAscii(bytes) ? { kind: "half" } : { kind: "garbage" }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { kind: "garbage" }
  const record = value as { [k: string]: unknown }
  const { prev, seq } = record
  return typeof prev === "string" && hex64.test(prev) && Number.isSafeInteger(seq) && (seq as number) >= 1
    ? { kind: "chained", seq: seq as number, prev, record }
    : { kind: "record" }
}

/**
 * Where the next line chains to, read from the end of an open file in bounded steps (never the whole file): the
 * last line's hash, the next `seq`, and whether the last line lacks its newline (torn).
 */
export const readTail = (fd: number): { readonly prev: string; readonly seq: number; readonly torn: boolean } => {
  const size = fs.fstatSync(fd).size
  if (size === 0) return { prev: genesis, seq: 1, torn: false }
  // One read of the last few KiB holds the last line nearly always; longer lines take the bounded loop below.
  const head = Buffer.allocUnsafe(Math.min(size, 4096))
  const got = fs.readSync(fd, head, 0, head.length, size - head.length)
  const torn = head[got - 1] !== 0x0a
  const end = torn ? size : size - 1
  const inHead = head.subarray(0, end - (size - got)).lastIndexOf(0x0a)
  if (inHead >= 0 || got === size) {
    const line = head.subarray(inHead + 1, end - (size - got))
    return { prev: hashLine(line), seq: nextSeq(parse(line)), torn }
  }
  const buf = Buffer.allocUnsafe(chunkSize)
  let start = 0
  for (let pos = end; pos > 0;) {
    const from = Math.max(0, pos - chunkSize)
    const n = fs.readSync(fd, buf, 0, pos - from, from)
    const at = buf.subarray(0, n).lastIndexOf(0x0a)
    if (at >= 0) {
      start = from + at + 1
      break
    }
    pos = from
  }
  const hash = crypto.createHash("sha256")
  const text = end - start <= parseCap ? Buffer.alloc(end - start) : undefined
  for (let pos = start; pos < end;) {
    const n = fs.readSync(fd, buf, 0, Math.min(chunkSize, end - pos), pos)
    if (n === 0) break
    hash.update(buf.subarray(0, n))
    text?.set(buf.subarray(0, n), pos - start)
    pos += n
  }
  return { prev: hash.digest("hex"), seq: nextSeq(parse(text)), torn }
}

const nextSeq = (last: Parsed) => last.kind === "chained" ? last.seq + 1 : 1

// --- The lock: one appender at a time across processes ------------------------------------------------------------

/** A lock older than this is taken to belong to a hung or vanished holder (an append holds it for milliseconds). */
const staleMs = 30_000
/** How long an appender waits for a live holder before it reports the lock. */
const waitMs = 60_000

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** The lock's text when its holder is gone (dead pid on this host, or too old); undefined when it is live or gone. */
const staleText = (lock: string): string | undefined => {
  try {
    const stat = fs.statSync(lock)
    // Never through a link, never past a lock's size: a link to /dev/zero planted as the lock would be read forever.
    const text = FileOps.readBounded(lock, 4096, { noFollow: true })
    const [pid, host] = text.trim().split(/\s+/)
    const dead = host === os.hostname() && Number(pid) > 0 && !alive(Number(pid))
    return dead || Date.now() - stat.mtimeMs > staleMs ? text : undefined
  } catch {
    return undefined
  }
}

/**
 * Breaks a stale lock: rename it aside (atomic), and delete it only if it still is the lock judged stale. When another
 * breaker re-created the lock in between, it is put back (a hard link fails rather than replace a newer lock).
 */
const breakStale = (lock: string) => {
  const text = staleText(lock)
  if (text === undefined) return
  const aside = `${lock}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.stale`
  try {
    fs.renameSync(lock, aside)
  } catch {
    return
  }
  try {
    if (FileOps.readBounded(aside, 4096, { noFollow: true }) !== text) fs.linkSync(aside, lock)
  } catch {
    // EEXIST: a newer lock is in place already; nothing to put back.
  } finally {
    fs.rmSync(aside, { force: true })
  }
}

/** One attempt to take the lock: true when taken. */
const tryLock = (lock: string, stamp: string): boolean => {
  let fd: number
  try {
    fd = fs.openSync(lock, "wx", 0o644)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    // Only a regular file can be a lock this tool took: a planted link or FIFO would be waited on for a minute.
    const refused = FileOps.notLockFile(lock)
    if (refused !== undefined) throw new Error(refused)
    breakStale(lock)
    return false
  }
  try {
    fs.writeSync(fd, stamp)
  } catch (e) {
    fs.rmSync(lock, { force: true })
    throw e
  } finally {
    fs.closeSync(fd)
  }
  return true
}

const release = (lock: string, stamp: string) => {
  try {
    // Only our own lock: if it was judged stale and broken, the file now belongs to someone else.
    if (FileOps.readBounded(lock, 4096, { noFollow: true }) === stamp) fs.rmSync(lock, { force: true })
  } catch {
    // Already gone.
  }
}

/** Who holds the lock, as its first line says (bounded, never through a link), for the error that names it. */
const holderOf = (lock: string): string => {
  try {
    return JSON.stringify(FileOps.readBounded(lock, 4096, { noFollow: true }).trim().split("\n")[0]!.slice(0, 200))
  } catch {
    return "?"
  }
}

/** Real time, not the Effect clock: a test clock must not freeze appenders waiting on another process. */
const pause = (ms: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Runs `body` holding `<file>.lock`; fails with the cause when the lock cannot be taken. Only the waits between
 * attempts can be interrupted: the lock is never taken without its release being in place.
 */
export const withLock = <A>(file: string, body: () => A): Effect.Effect<A, Error> => {
  const lock = `${file}.lock`
  const stamp = `${process.pid} ${os.hostname()} ${crypto.randomBytes(6).toString("hex")}\n`
  return Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const deadline = Date.now() + waitMs
      for (let attempt = 0;; attempt++) {
        if (yield* Effect.try({ try: () => tryLock(lock, stamp), catch: (e) => e as Error })) break
        if (Date.now() > deadline) {
          const holder = yield* Effect.sync(() => holderOf(lock))
          return yield* Effect.fail(new Error(`${lock} is held by process ${holder} for over ${waitMs / 1000} s`))
        }
        yield* restore(pause(Math.min(1 + attempt, 20) * (0.5 + Math.random())))
      }
      return yield* Effect.try({ try: body, catch: (e) => e as Error }).pipe(
        Effect.ensuring(Effect.sync(() => release(lock, stamp)))
      )
    })
  )
}

// --- Verification -------------------------------------------------------------------------------------------------

export type BreakKind = "edited" | "deleted" | "reordered" | "inserted" | "truncated" | "garbage" | "forged"

export interface Break {
  /** 1-based line number of the line at fault. */
  readonly line: number
  readonly kind: BreakKind
  readonly detail: string
}

export interface Report {
  readonly file: string
  /** Lines in the file (a last line without its newline counts). */
  readonly lines: number
  /** Lines 1..legacy predate chaining (written by the original tool or before chaining). */
  readonly legacy: number
  /** The first chained line, or null when no line is chained. */
  readonly chain_from: number | null
  /** Whether MACs were checked (a key was given). */
  readonly keyed: boolean
  readonly ok: boolean
  /** The first break; lines after it are counted, not judged. */
  readonly break: Break | null
}

export class EvidenceReadError extends Data.TaggedError("EvidenceReadError")<{
  readonly file: string
  readonly detail: string
}> {
  override get message() {
    return `cannot read evidence log ${this.file}: ${this.detail}`
  }
}

interface Line {
  readonly number: number
  readonly hash: string
  /** The bytes, unless longer than `parseCap`. */
  readonly bytes: Buffer | undefined
  readonly terminated: boolean
}

/** The file's lines, read in fixed chunks: memory stays bounded by the longest line kept (`parseCap`). */
function* linesOf(fd: number): Generator<Line> {
  const buf = Buffer.alloc(chunkSize)
  let parts: Array<Buffer> | undefined = []
  let length = 0
  let hash = crypto.createHash("sha256")
  let number = 0
  let pending = false
  const take = (segment: Buffer) => {
    pending = true
    hash.update(segment)
    length += segment.length
    if (parts !== undefined && length <= parseCap) parts.push(Buffer.from(segment))
    else parts = undefined
  }
  const emit = (terminated: boolean): Line => {
    const line = { number: ++number, hash: hash.digest("hex"), bytes: parts && Buffer.concat(parts), terminated }
    parts = []
    length = 0
    hash = crypto.createHash("sha256")
    pending = false
    return line
  }
  for (let pos = 0;;) {
    const n = fs.readSync(fd, buf, 0, chunkSize, pos)
    if (n === 0) break
    pos += n
    let from = 0
    for (let at = buf.indexOf(0x0a, from); at >= 0 && at < n; at = buf.indexOf(0x0a, from)) {
      take(buf.subarray(from, at))
      yield emit(true)
      from = at + 1
    }
    if (from < n) take(buf.subarray(from, n))
  }
  if (pending) yield emit(false)
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** Checks the chain of one evidence file, streaming; reports the first break by line number and kind. */
export const verify = (
  file: string,
  options: { readonly key?: Redacted.Redacted<string> | null | undefined } = {}
): Effect.Effect<Report, EvidenceReadError> =>
  Effect.try({
    try: () => {
      // Non-blocking and regular only: a FIFO at the name hung the open (past SIGTERM), a link to /dev/zero never ended.
      const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
      try {
        if (!fs.fstatSync(fd).isFile()) throw new Error("it is not a regular file")
        return verifyLines(file, linesOf(fd), options.key ?? undefined)
      } finally {
        fs.closeSync(fd)
      }
    },
    catch: (e) =>
      new EvidenceReadError({
        file,
        detail: (e as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (e as Error).message
      })
  })

const verifyLines = (file: string, lines: Iterator<Line>, key: Redacted.Redacted<string> | undefined): Report => {
  let legacy = 0
  let chainFrom: number | null = null
  let found: Break | null = null
  let count = 0
  // The two lines before the current one: their hashes, and the seq of the previous one.
  let h1 = genesis
  let h2: string | undefined
  let lastSeq = 0
  let next = lines.next()
  while (!next.done) {
    const line = next.value
    next = lines.next()
    count = line.number
    if (found !== null) continue
    const parsed = parse(line.bytes)
    const at = (kind: BreakKind, detail: string, number = line.number) => (found = { line: number, kind, detail })
    if (parsed.kind !== "chained") {
      if (!line.terminated) at("truncated", "the last line is cut off (no newline): a crash mid-write, or a cut file")
      else if (chainFrom === null) legacy++
      else if (parsed.kind === "half") at("truncated", "half a record: a crash mid-write, or a line cut short")
      else if (parsed.kind === "garbage") at("garbage", "not a JSON record")
      else at("inserted", "a record without a chain (no prev/seq) after chaining began: added by hand or another tool")
    } else if (!line.terminated) {
      at("truncated", "the last line has no newline: the file was cut")
    } else if (key !== undefined && parsed.record.mac === undefined) {
      at("forged", "carries no mac, but the log is checked with a key")
    } else if (key !== undefined && parsed.record.mac !== macOf(key, serialize({ ...parsed.record, mac: undefined }))) {
      at("forged", "its mac does not match: the line was edited, or written with another key")
    } else if (chainFrom === null) {
      chainFrom = line.number
      const expected = line.number === 1 ? genesis : h1
      if (parsed.prev !== expected) {
        // Its seq one of as many lines as stand before it: they are all there, and the one before was edited (its
        // chain fields too, so it no longer reads as chained), not deleted.
        const gone = line.number === 1 || (parsed.seq > 1 && parsed.seq !== line.number)
        if (gone) at("deleted", "it chains to a line that is not there: lines before it are gone")
        else at("edited", `its bytes do not match the prev recorded by line ${line.number}`, line.number - 1)
      } else if (parsed.seq !== 1) {
        at("edited", `the first chained line has seq ${parsed.seq}, not 1`)
      }
    } else if (parsed.seq !== lastSeq + 1 || parsed.prev !== h1) {
      const expected = lastSeq + 1
      const ahead = next.done ? undefined : next.value
      const after = ahead === undefined ? undefined : parse(ahead.bytes)
      const follows = after?.kind === "chained" && after.seq === expected && after.prev === h1
      if (ahead !== undefined && parsed.prev === ahead.hash) {
        at("reordered", `it belongs after line ${ahead.number} (the two were swapped)`)
      } else if (follows) {
        at("inserted", `line ${line.number + 1} chains to line ${line.number - 1}: this line is not part of the chain`)
      } else if (h2 !== undefined && parsed.prev === h2 && parsed.seq === lastSeq) {
        const detail = `line ${line.number} chains to line ${line.number - 2}: this line is not part of the chain`
        at("inserted", detail, line.number - 1)
      } else if (parsed.seq === expected) {
        at("edited", `its bytes do not match the prev recorded by line ${line.number}`, line.number - 1)
      } else if (parsed.seq > expected && (after?.kind !== "chained" || after.seq > parsed.seq)) {
        at("deleted", `${plural(parsed.seq - expected, "line")} missing before it (seq ${lastSeq} then ${parsed.seq})`)
      } else {
        at("reordered", `seq ${parsed.seq} where ${expected} was expected`)
      }
    }
    if (parsed.kind === "chained") lastSeq = parsed.seq
    h2 = h1
    h1 = line.hash
  }
  const keyed = key !== undefined
  // A key vouches for lines that carry its mac: a log with none (every chain field stripped) proves nothing.
  if (keyed && found === null && chainFrom === null && count > 0) {
    found = { line: 1, kind: "forged", detail: "no line carries a chain or a mac: a keyed check cannot vouch for it" }
  }
  return { file, lines: count, legacy, chain_from: chainFrom, keyed, ok: found === null, break: found }
}

/** One line for people: where the chain starts and whether it holds. */
export const describe = (report: Report): string => {
  const start = report.chain_from === null
    ? report.lines === 0 ? "empty" : `lines 1-${report.lines} predate chaining; no chained line yet`
    : report.legacy > 0
    ? `lines 1-${report.legacy} predate chaining; chain from line ${report.chain_from}`
    : `chained from line ${report.chain_from}`
  const head = `${report.file}: ${plural(report.lines, "line")}, ${start}${report.keyed ? ", keyed" : ""}`
  return report.break === null
    ? `${head}: intact`
    : `${head}: line ${report.break.line}: ${report.break.kind}: ${report.break.detail}`
}
