/**
 * The files the tool keeps while it runs, which it must never archive nor write over: an embedded archive database and
 * its journals, the evidence log and its lock, the manifest being read. `--results a.db` replaced the archive, a store
 * of a folder holding the database stubbed it, `--results` over the evidence log emptied it and left a chain that
 * verified from its first new line.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { OutputError } from "./FileOps.js"

export interface Guarded {
  readonly file: string
  /** What it is, for the refusal: "the archive database". */
  readonly what: string
}

/** An embedded (SQLite) database and the journals it keeps beside itself. */
export const embeddedDatabase = (file: string): ReadonlyArray<Guarded> => [
  { file, what: "the archive database" },
  ...["-wal", "-shm", "-journal"].map((suffix) => ({ file: file + suffix, what: "a journal of the archive database" }))
]

/** The evidence log and the lock its writers take. */
export const evidenceLog = (file: string): ReadonlyArray<Guarded> => [
  { file, what: "the evidence log" },
  { file: `${file}.lock`, what: "the evidence log's lock" }
]

/** What an archive keeps while the tool runs: its own files (none for a server) and the evidence log it writes. */
export const ofArchive = (files: ReadonlyArray<Guarded> | undefined, evidenceFile: string): ReadonlyArray<Guarded> => [
  ...(files ?? []),
  ...evidenceLog(evidenceFile)
]

/** An absolute path with its folder's symbolic links resolved (as far as the folder exists). */
const placeOf = (file: string): string => {
  const absolute = path.resolve(file)
  try {
    return path.join(fs.realpathSync.native(path.dirname(absolute)), path.basename(absolute))
  } catch {
    return absolute
  }
}

/** A file's status, or none when it cannot be had (absent, or a file where a folder should be: ENOTDIR). */
const statusOf = (file: string): fs.Stats | undefined => {
  try {
    return fs.statSync(file)
  } catch {
    return undefined
  }
}

/** Whether two names are one file: one inode when both exist (hard links too), one place when either does not yet. */
export const sameFile = (a: string, b: string): boolean => {
  const sa = statusOf(a)
  const sb = statusOf(b)
  if (sa !== undefined && sb !== undefined) return sa.dev === sb.dev && sa.ino === sb.ino
  return placeOf(a) === placeOf(b)
}

/** The guarded files there are now, by device and inode: a walk's `lstat` finds a hard link to one by its identity. */
export const byInode = (guarded: ReadonlyArray<Guarded>): ReadonlyMap<string, Guarded> => {
  const out = new Map<string, Guarded>()
  for (const g of guarded) {
    const st = statusOf(g.file)
    if (st !== undefined) out.set(`${st.dev}:${st.ino}`, g)
  }
  return out
}

/** The guarded file `file` is, if any. `renamed`: written by a rename, so only its own name can replace one. */
export const find = (
  file: string,
  guarded: ReadonlyArray<Guarded>,
  renamed = false
): Guarded | undefined => {
  // A rename replaces a name, not an inode: only a guarded file of the same name can be hit, and most outputs of a
  // batch are ruled out without a system call.
  const name = path.basename(file)
  return guarded.find((g) =>
    renamed ? path.basename(g.file) === name && placeOf(g.file) === placeOf(file) : sameFile(file, g.file)
  )
}

/** Refuses an output that is a guarded file, naming what it is; `undefined` when it is none. */
export const refusal = (
  output: string,
  guarded: ReadonlyArray<Guarded>,
  renamed = false
): OutputError | undefined => {
  const hit = find(output, guarded, renamed)
  return hit === undefined
    ? undefined
    : new OutputError({ output, problem: "guarded", detail: `is ${hit.what}; refusing to write over it` })
}
