/**
 * How we walk a tree (`store DIR`, `batch-restore --stubs DIR`): the folders never entered, and a stable order, so
 * every run visits and reports files the same way. Symbolic links are never followed: callers see them as entries.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** Version-control metadata and the archive's own state. */
export const skippedFolders: ReadonlySet<string> = new Set([".git", ".hg", ".svn", ".codex"])

export const isSkippedFolder = (name: string): boolean => skippedFolders.has(name)

/** A segment, as written, that is a skipped folder's name in any ASCII letter case. */
const mayEnterSkipped = new RegExp(
  `(?:^|[\\\\/])(?:${[...skippedFolders].map((name) => name.replace(/[.]/g, "\\.")).join("|")})(?:[\\\\/]|$)`,
  "i"
)

/**
 * The skipped folder a relative path goes into (any letter case: `.GIT` is `.git` on some file systems), if any: no
 * store records such a path, so an archive, stub or manifest naming one is forged (a `.git/hooks` file would run).
 */
export const skippedFolderOn = (relative: string): string | undefined =>
  // Normalizing only drops segments, so a path with no such segment as written has none: most paths, tested at once.
  mayEnterSkipped.test(relative)
    ? path.normalize(relative).split(/[\\/]/).find((part) => isSkippedFolder(part.toLowerCase()))
    : undefined

const byName = (a: fs.Dirent, b: fs.Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/**
 * The names among a folder's `entries` that no path reaches: a name that is not valid UTF-8 reads back with U+FFFD in
 * place of its bad bytes, and Node's string paths are UTF-8, so the file cannot be opened by it. Each maps to the real
 * names' bytes (two bad names can read back as one). Only a folder where some name holds a U+FFFD is listed again.
 */
const none: ReadonlyMap<string, ReadonlyArray<Buffer>> = new Map()

export const undecodable = (
  folder: string,
  entries: ReadonlyArray<fs.Dirent>
): ReadonlyMap<string, ReadonlyArray<Buffer>> => {
  if (!entries.some((entry) => entry.name.includes("\uFFFD"))) return none
  const out = new Map<string, Array<Buffer>>()
  for (const raw of fs.readdirSync(folder, { encoding: "buffer" })) {
    const name = raw.toString("utf8")
    if (name.includes("\uFFFD") && !Buffer.from(name, "utf8").equals(raw)) out.set(name, [...out.get(name) ?? [], raw])
  }
  return out
}

/**
 * Whether `name`, which some entry's bytes that are not UTF-8 read back as, is also an entry's real name: U+FFFD itself,
 * in UTF-8, beside them (the path reaches only that one).
 */
export const reachable = (folder: string, name: string): boolean =>
  fs.lstatSync(path.join(folder, name), { throwIfNoEntry: false }) !== undefined

/** A name's bytes for a message: printable ASCII as it is, any other byte as `\xNN`. */
export const showBytes = (raw: Uint8Array): string =>
  Array.from(
    raw,
    (b) => b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`
  )
    .join("")

/** A folder's entries sorted by name (UTF-16 code units, as `Array.prototype.sort`). */
export const entries = (folder: string): Array<fs.Dirent> =>
  fs.readdirSync(folder, { withFileTypes: true }).sort(byName)
