/**
 * How we walk a tree (`store DIR`, `batch-restore --stubs DIR`): the folders never entered, and a stable order, so
 * every run visits and reports files the same way. Symbolic links are never followed: callers see them as entries.
 */
import * as fs from "node:fs"

/** Version-control metadata and the archive's own state. */
export const skippedFolders: ReadonlySet<string> = new Set([".git", ".hg", ".svn", ".codex"])

export const isSkippedFolder = (name: string): boolean => skippedFolders.has(name)

const byName = (a: fs.Dirent, b: fs.Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/** A folder's entries sorted by name (UTF-16 code units, as `Array.prototype.sort`). */
export const entries = (folder: string): Array<fs.Dirent> =>
  fs.readdirSync(folder, { withFileTypes: true }).sort(byName)
