/**
 * Two entries of a batch never restore to one file: not by the same name, nor by the same real path (a folder link
 * inside the manifest's folder), nor by an existing file's device and inode (a hard link). Memory is bounded whatever
 * the entry count: each entry leaves a 12-byte record (53-bit hash of a key, ordinal), sorted a run at a time; past one
 * run the sorted runs go to one temporary file and are merged through small buffers. Hashes shared by two ordinals are
 * candidates only: the entries are read again and their keys compared, so two keys never pass for one.
 */
import * as fs from "node:fs"
import type * as FileOps from "../FileOps.js"
import * as Hash from "../Hash.js"
import * as SortedRecords from "./SortedRecords.js"

/** What the check reads of an entry. */
export interface Output {
  readonly output: string
  readonly contained?: FileOps.Contained | undefined
}

/** Sizes and hash of the check; tests shrink them to spill many runs and to force collisions. */
export const tuning: {
  /** Records sorted in memory at once (12 bytes each); more spill to the temporary file. */
  runRecords: number
  /** Bytes of read buffers shared by the runs while they are merged. */
  mergeBytes: number
  /** Hashes shared by two ordinals confirmed per pass over the entries. */
  candidates: number
  /** A 53-bit hash of a key. */
  hash: (key: string) => number
  /** Where the temporary folder goes (`os.tmpdir()` when unset). */
  tempRoot: string | undefined
} = { runRecords: 131072, mergeBytes: 4 * 1024 * 1024, candidates: 1024, hash: Hash.hash53, tempRoot: undefined }

/** The check's verdict: every entry distinct, the first entry that is an earlier one's file, or the first refused. */
export type Verdict<A> =
  | { readonly _tag: "Distinct"; readonly total: number }
  | { readonly _tag: "Duplicate"; readonly item: A; readonly problem: string }
  | { readonly _tag: "Refused"; readonly item: A }

const realOf = (entry: Output) => entry.contained?.path ?? entry.output

/** An existing regular file's device and inode; none for anything else (absent, under a file, unreadable). */
const fileIdentity = (file: string): string | undefined => {
  try {
    const st = fs.lstatSync(file, { throwIfNoEntry: false })
    return st?.isFile() ? `${st.dev}:${st.ino}` : undefined
  } catch {
    return undefined
  }
}

// A record's key is its hash for a real path and -(hash + 1) for a device and inode: one sort keeps the kinds apart.
const inodeKey = (h: number) => -h - 1

/**
 * The hashes whose earliest possible duplicate (the first ordinal ≥ `from` after a hash's first one) comes soonest,
 * at most `tuning.candidates` of them, and the ordinal before which every other hash's duplicates are impossible.
 */
const candidatesFrom = (sorted: SortedRecords.Cursor, from: number) => {
  const limit = Math.max(3, tuning.candidates)
  // A max-heap by earliest duplicate, so the latest candidate is the one dropped.
  const heap: Array<{ readonly at: number; readonly key: number }> = []
  let dropped = Infinity
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1
      if (heap[p]!.at >= heap[i]!.at) return
      const t = heap[p]!
      heap[p] = heap[i]!
      heap[i] = t
      i = p
    }
  }
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && heap[l]!.at > heap[m]!.at) m = l
      if (r < heap.length && heap[r]!.at > heap[m]!.at) m = r
      if (m === i) return
      const t = heap[i]!
      heap[i] = heap[m]!
      heap[m] = t
      i = m
    }
  }
  const offer = (key: number, at: number) => {
    if (heap.length < limit) {
      heap.push({ key, at })
      return up(heap.length - 1)
    }
    if (at >= heap[0]!.at) return void (dropped = Math.min(dropped, at))
    dropped = Math.min(dropped, heap[0]!.at)
    heap[0] = { key, at }
    down(0)
  }
  let more = sorted.next()
  while (more) {
    const key = sorted.key
    let earliest = Infinity
    let members = 0
    do {
      // Ordinals come in order within a key: the first is the key's first sighting, never a duplicate.
      if (members++ > 0 && earliest === Infinity && sorted.ordinal >= from) earliest = sorted.ordinal
      more = sorted.next()
    } while (more && sorted.key === key)
    if (earliest !== Infinity) offer(key, earliest)
  }
  return { keys: new Set(heap.map((c) => c.key)), dropped }
}

interface First {
  readonly ordinal: number
  readonly output: string
  readonly where: string
}

/** How the check reads an item: its output (`undefined`: refused), where it stands, and the error of a changed input. */
export interface Options<A> {
  readonly entryOf: (item: A) => Output | undefined
  readonly whereOf: (item: A) => string
  readonly changed: () => unknown
}

/** Entries checked between two pauses of `checking`: tens of milliseconds. */
const sliceEntries = 4096

/**
 * Checks the entries `items()` yields, in order (read once, then again only to confirm shared hashes, up to the
 * entry in question): the first entry that is an earlier one's file by name, real path or device and inode, or the
 * first item `entryOf` refuses (`undefined`), whichever comes first. An item that throws ends the check the same way:
 * the error is thrown again unless an earlier entry is a duplicate. `changed` is thrown when a later read differs.
 * Pauses (yields) every few thousand entries, for `EventLoop.sliced`; closed at a pause, it removes its temporary file.
 */
export function* checking<A>(
  items: () => Iterable<A>,
  options: Options<A>
): Generator<void, Verdict<A>> {
  const hash = tuning.hash
  const records = SortedRecords.make({ ...tuning, prefix: "codex-distinct-" })
  try {
    let total = 0
    let refused: A | undefined
    let thrown: { readonly error: unknown } | undefined
    try {
      for (const item of items()) {
        const entry = options.entryOf(item)
        if (entry === undefined) {
          refused = item
          break
        }
        const real = realOf(entry)
        records.add(hash(real), total)
        const inode = fileIdentity(real)
        if (inode !== undefined) records.add(inodeKey(hash(inode)), total)
        if (++total % sliceEntries === 0) yield
      }
    } catch (e) {
      thrown = { error: e }
    }
    // Every entry before `from` is distinct: each round confirms the soonest candidates and moves it on.
    let from = 0
    for (;;) {
      const { dropped, keys } = candidatesFrom(records.sorted(), from)
      if (keys.size === 0) break
      const found = yield* confirm(items, options, keys, Math.min(dropped, total))
      if (found !== undefined) return found
      if (dropped >= total) break
      from = dropped
    }
    if (thrown !== undefined) throw thrown.error
    return refused === undefined ? { _tag: "Distinct", total } : { _tag: "Refused", item: refused }
  } finally {
    records.close()
  }
}

/** The same check, run through at once. */
export const check = <A>(
  items: () => Iterable<A>,
  options: Options<A>
): Verdict<A> => {
  const slices = checking(items, options)
  for (;;) {
    const step = slices.next()
    if (step.done === true) return step.value
  }
}

/** One pass over the entries before `until`: the first whose real path, then device and inode, is an earlier one's. */
function* confirm<A>(
  items: () => Iterable<A>,
  options: Options<A>,
  keys: ReadonlySet<number>,
  until: number
): Generator<void, Verdict<A> | undefined> {
  const hash = tuning.hash
  const seen = new Map<string, First>()
  const inodes = new Map<string, First>()
  const checkInodes = Array.from(keys).some((k) => k < 0)
  let ordinal = 0
  if (until === 0) return undefined
  for (const item of items()) {
    const entry = options.entryOf(item)
    if (entry === undefined) throw options.changed()
    const real = realOf(entry)
    const first = (known: Map<string, First>, key: string, hashed: number) => {
      if (!keys.has(hashed)) return undefined
      const earlier = known.get(key)
      if (earlier === undefined) {
        known.set(key, { ordinal, output: entry.output, where: options.whereOf(item) })
      }
      return earlier
    }
    // One name always has one real path: the real path finds both.
    let earlier = first(seen, real, hash(real))
    if (earlier === undefined && checkInodes) {
      const inode = fileIdentity(real)
      if (inode !== undefined) earlier = first(inodes, inode, inodeKey(hash(inode)))
    }
    if (earlier !== undefined) {
      const problem = earlier.output === entry.output
        ? `output ${entry.output} is also the output of ${earlier.where}; two entries cannot restore to the same file`
        : `output ${entry.output} is the same file as ${earlier.output} (${earlier.where}); two entries cannot restore to the same file`
      return { _tag: "Duplicate", item, problem }
    }
    if (++ordinal === until) return undefined
    if (ordinal % sliceEntries === 0) yield
  }
  throw options.changed()
}
