/**
 * Two entries of a batch never restore to one file: not by the same name, nor by the same real path (a folder link
 * inside the manifest's folder), nor by an existing file's device and inode (a hard link). Memory is a few dozen
 * bytes per entry (53-bit hashes), never the entries themselves.
 */
import * as fs from "node:fs"
import type * as FileOps from "../FileOps.js"
import * as Hash from "../Hash.js"

/** What the check reads of an entry. */
export interface Output {
  readonly output: string
  readonly contained?: FileOps.Contained | undefined
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

/** An existing regular file's device and inode; none for anything else (absent, under a file, unreadable). */
const fileIdentity = (file: string): string | undefined => {
  try {
    const st = fs.lstatSync(file, { throwIfNoEntry: false })
    return st?.isFile() ? `${st.dev}:${st.ino}` : undefined
  } catch {
    return undefined
  }
}

/**
 * A checker fed every entry in order (`ordinal` from 0); it returns the problem, naming both entries, when an entry
 * is one file with an earlier one. `entryAt` reads an earlier entry again, to confirm a shared hash.
 */
export const checker = (entryAt: (ordinal: number) => Output) => {
  const realOf = (entry: Output) => entry.contained?.path ?? entry.output
  const reals = hashedKeys((ordinal) => realOf(entryAt(ordinal)))
  const inodes = hashedKeys((ordinal) => fileIdentity(realOf(entryAt(ordinal))) ?? "")
  return (entry: Output, ordinal: number, whereAt: (ordinal: number) => string): string | undefined => {
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
