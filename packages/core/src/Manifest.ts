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
import * as FileOps from "./FileOps.js"
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

export const formatOf = (file: string): Format | undefined => {
  const ext = path.extname(file).toLowerCase()
  return ext === ".json" ? "json" : ext === ".jsonl" || ext === ".ndjson" ? "jsonl" : ext === ".csv" ? "csv" : undefined
}

/** Larger than any real manifest (a million entries), below the longest string Node can hold. */
export const maxManifestBytes = 256 * 1024 * 1024

/** Reads and checks a manifest file; the format comes from its extension (JSON vs JSON Lines also by content). */
export const load = (file: string, options: LoadOptions): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.suspend(() => {
    const absolute = path.resolve(file)
    const format = formatOf(absolute)
    if (format === undefined) {
      return Effect.fail(new ManifestError({ file: absolute, where: undefined, problem: "unknown manifest format: the name must end in .json, .jsonl or .csv" }))
    }
    let text: string
    try {
      text = FileOps.readBounded(absolute, maxManifestBytes)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      return Effect.fail(new ManifestError({ file: absolute, where: undefined, problem: code === "ENOENT" ? "no such file" : `cannot read: ${FileOps.describeErrno(e)}` }))
    }
    return parse(text, { ...options, file: absolute, format, baseDir: path.dirname(absolute) })
  })

interface Raw {
  readonly where: string
  readonly value: unknown
}

/** Parses manifest text; `file` names it in errors and `baseDir` anchors relative outputs. */
export const parse = (
  text: string,
  options: LoadOptions & { readonly file: string; readonly format: Format; readonly baseDir: string }
): Effect.Effect<ReadonlyArray<Entry>, ManifestError> =>
  Effect.suspend(() => {
    const fail = (where: string | undefined, problem: string) => Effect.fail(new ManifestError({ file: options.file, where, problem }))
    const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
    let raws: ReadonlyArray<Raw> | ManifestError
    switch (options.format) {
      case "csv":
        raws = csvRecords(body, options.file)
        break
      case "jsonl":
        // A `.jsonl` file holding one JSON document (what the original tool read) is still accepted.
        raws = looksLikeOneDocument(body) ? jsonRecords(body, options.file) : jsonLines(body, options.file)
        break
      case "json":
        // JSON Lines saved as `.json` is recognised by content: it is not one document, and its lines are.
        raws = jsonRecords(body, options.file)
        if (raws instanceof ManifestError && raws.problem.startsWith("invalid JSON") && !looksLikeOneDocument(body)) raws = jsonLines(body, options.file)
        break
    }
    if (raws instanceof ManifestError) return Effect.fail(raws)
    if (raws.length === 0) return fail(undefined, "contains no restore entries")
    const base = realBase(options.baseDir)
    const entries: Array<Entry> = []
    const seen = new Map<string, string>()
    const same = sameFile()
    const realFolders = new Map<string, string>()
    const baseDir = path.resolve(options.baseDir)
    for (const raw of raws) {
      const checked = entryOf(raw, options.defaultActor, baseDir, base, realFolders)
      if (typeof checked === "string") return fail(raw.where, checked)
      const previous = seen.get(checked.output)
      if (previous !== undefined) return fail(raw.where, `output ${checked.output} is also the output of ${previous}; two entries cannot restore to the same file`)
      seen.set(checked.output, raw.where)
      const twin = same(checked, raw.where)
      if (twin !== undefined) return fail(raw.where, twin)
      entries.push(checked)
    }
    return Effect.succeed(entries)
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
    return new ManifestError({ file, where: line === undefined ? undefined : `line ${line}`, problem: `invalid JSON: ${message}` })
  }
  const items = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.items) ? doc.items : undefined
  if (items === undefined) {
    return new ManifestError({ file, where: undefined, problem: "JSON manifest must be an array of entries or an object with an 'items' array" })
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

const csvRecords = (text: string, file: string): ReadonlyArray<Raw> | ManifestError => {
  let records: Array<{ record: Array<string>; info: { lines: number } }>
  try {
    records = parseCsv(text, { info: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as unknown as typeof records
  } catch (e) {
    const err = e as Error & { lines?: number }
    return new ManifestError({ file, where: err.lines === undefined ? undefined : `line ${err.lines}`, problem: `invalid CSV: ${err.message}` })
  }
  if (records.length === 0) return []
  const header = records[0]!.record.map((h) => h.trim().toLowerCase())
  const column = (name: string) => header.indexOf(name)
  const tombstone = column("tombstone")
  const output = column("output")
  const actor = column("actor")
  if (tombstone < 0 || output < 0) {
    return new ManifestError({ file, where: `line ${records[0]!.info.lines}`, problem: `CSV header must name the columns tombstone and output (found: ${header.join(", ")})` })
  }
  return records.slice(1).map(({ info, record }) => ({
    where: `line ${info.lines}`,
    value: {
      tombstone: record[tombstone] ?? "",
      output: record[output] ?? "",
      ...(actor >= 0 ? { actor: record[actor] ?? "" } : {})
    }
  }))
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const realBase = (dir: string): string => {
  try {
    return fs.realpathSync(dir)
  } catch {
    return path.resolve(dir)
  }
}

/** `target` lies strictly below `base`; both absolute and normalized (`path.resolve`, realpath), so a prefix says it. */
const inside = (base: string, target: string): boolean =>
  target.length > base.length && target.startsWith(base) && (base.endsWith(path.sep) || target[base.length] === path.sep)

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
 * Detects outputs that are one file under two names: the same real path (a folder link inside the manifest's
 * folder), or an existing file's device and inode (a hard link). Returns the problem, naming both entries.
 */
const sameFile = () => {
  const byPath = new Map<string, { where: string; output: string }>()
  const byInode = new Map<string, { where: string; output: string }>()
  return (entry: Entry, where: string): string | undefined => {
    const real = entry.contained?.path ?? entry.output
    const inode = fileIdentity(real)
    const first = byPath.get(real) ?? (inode === undefined ? undefined : byInode.get(inode))
    if (first !== undefined) {
      return `output ${entry.output} is the same file as ${first.output} (${first.where}); two entries cannot restore to the same file`
    }
    byPath.set(real, { where, output: entry.output })
    if (inode !== undefined) byInode.set(inode, { where, output: entry.output })
    return undefined
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
const entryOf = (raw: Raw, defaultActor: string, baseDir: string, realBaseDir: string, cache: Map<string, string>): Entry | string => {
  if (!isObject(raw.value)) return "each manifest entry must be an object with tombstone and output"
  const { actor, output, sha256, tombstone } = raw.value
  if (tombstone !== undefined && tombstone !== null && typeof tombstone !== "string") return "tombstone must be a string"
  if (typeof tombstone !== "string" || tombstone.trim() === "") return "missing tombstone"
  const decoded = Ids.decodeTombstoneId(tombstone)
  if (Either.isLeft(decoded)) return decoded.left.message
  const id = decoded.right
  if (typeof output !== "string" || output.trim() === "") return "missing output path"
  const resolved = path.resolve(baseDir, output.trim())
  const real = realTarget(resolved, cache)
  if (!inside(baseDir, resolved) || !inside(realBaseDir, real)) {
    return `output '${output}' is outside the manifest's folder ${baseDir}`
  }
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
export const fromStubs = (dir: string, options: LoadOptions): Effect.Effect<ReadonlyArray<Entry>, ManifestError | Tombstone.MalformedStub> =>
  Effect.gen(function*() {
    const root = path.resolve(dir)
    const fail = (problem: string) => new ManifestError({ file: root, where: undefined, problem })
    const st = fs.statSync(root, { throwIfNoEntry: false })
    if (!st) return yield* fail("no such folder")
    if (!st.isDirectory()) return yield* fail("not a folder")
    const actor = options.defaultActor.trim()
    if (actor === "") return yield* fail("no actor: give one with --actor")
    const found: Array<string> = []
    const walk = (folder: string) => {
      for (const entry of Walk.entries(folder)) {
        const full = path.join(folder, entry.name)
        if (entry.isDirectory()) {
          if (!Walk.isSkippedFolder(entry.name)) walk(full)
        } else if (entry.isFile() && Tombstone.isStubFile(full)) found.push(full)
      }
    }
    yield* Effect.try({ try: () => walk(root), catch: (e) => fail(`cannot read the tree: ${FileOps.describeErrno(e)}`) })
    if (found.length === 0) return yield* fail("contains no tombstone stubs")
    const entries: Array<Entry> = []
    // The walk follows no link, so each stub's real path is the tree's real path plus its place in the tree.
    const real = realBase(root)
    const same = sameFile()
    for (const file of found) {
      const text = yield* Effect.try({ try: () => fs.readFileSync(file, "utf8"), catch: (e) => fail(`${file}: ${FileOps.describeErrno(e)}`) })
      const stub = yield* Tombstone.parse(text, file)
      const entry = { tombstone: stub.tombstone, output: file, actor, sha256: stub.sha256, contained: { root: real, path: path.join(real, path.relative(root, file)) } }
      const twin = same(entry, file)
      if (twin !== undefined) return yield* fail(twin)
      entries.push(entry)
    }
    return entries
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
        return Effect.fail(new ManifestError({
          file: absolute,
          where: `entry ${i + 1}`,
          problem: `${output} is outside the manifest's folder ${base}; write the manifest into a folder that contains every stored file`
        }))
      }
      items.push({ tombstone: e.tombstone, output: path.relative(base, output).split(path.sep).join("/"), sha256: e.sha256 })
    }
    return Effect.try({
      try: () => FileOps.writeFileAtomic(absolute, JSON.stringify(items, null, 2) + "\n"),
      catch: (e) => new ManifestError({ file: absolute, where: undefined, problem: `cannot write: ${FileOps.describeErrno(e)}` })
    })
  })
