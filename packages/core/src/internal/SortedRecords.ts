/**
 * An external sort of (53-bit key, ordinal) records: runs of `runRecords` sorted in memory; past one run the sorted
 * runs go to one temporary file and are merged through buffers sharing `mergeBytes`. Memory is bounded whatever the
 * record count. `DistinctOutputs` finds two entries with one output with it; `--resume` looks its done items up in it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface Tuning {
  /** Records sorted in memory at once (12 bytes each); more spill to the temporary file. */
  readonly runRecords: number
  /** Bytes of read buffers shared by the runs while they are merged. */
  readonly mergeBytes: number
  /** Where the temporary folder goes (`os.tmpdir()` when unset), and its name's start. */
  readonly tempRoot: string | undefined
  readonly prefix: string
}

/** A record's bytes on disk: the key as a double, the ordinal as a 32-bit integer. */
export const recordBytes = 12

/** A sorted sequence of records: the run in memory, or one spilled run read back through a buffer. */
export interface Cursor {
  key: number
  ordinal: number
  readonly next: () => boolean
}

/** Sorts `keys`/`ordinals` [lo, hi) by key then ordinal, in place (quicksort; insertion sort for short spans). */
export const sortRecords = (keys: Float64Array, ordinals: Uint32Array, lo: number, hi: number): void => {
  const less = (i: number, k: number, o: number) => keys[i]! < k || (keys[i] === k && ordinals[i]! < o)
  const swap = (i: number, j: number) => {
    const k = keys[i]!
    keys[i] = keys[j]!
    keys[j] = k
    const o = ordinals[i]!
    ordinals[i] = ordinals[j]!
    ordinals[j] = o
  }
  while (hi - lo > 16) {
    swap(lo + ((hi - lo) >> 1), hi - 1)
    const pk = keys[hi - 1]!
    const po = ordinals[hi - 1]!
    let store = lo
    for (let i = lo; i < hi - 1; i++) if (less(i, pk, po)) swap(i, store++)
    swap(store, hi - 1)
    // The shorter side recursively, the longer one in the loop: the stack stays logarithmic.
    if (store - lo < hi - store) {
      sortRecords(keys, ordinals, lo, store)
      lo = store + 1
    } else {
      sortRecords(keys, ordinals, store + 1, hi)
      hi = store
    }
  }
  for (let i = lo + 1; i < hi; i++) {
    const k = keys[i]!
    const o = ordinals[i]!
    let j = i - 1
    while (j >= lo && !less(j, k, o)) {
      keys[j + 1] = keys[j]!
      ordinals[j + 1] = ordinals[j]!
      j--
    }
    keys[j + 1] = k
    ordinals[j + 1] = o
  }
}

/** A temporary file in a folder of its own (both removed by `close`), written and read at offsets. */
export const tempFile = (tuning: Tuning, name: string) => {
  const dir = fs.mkdtempSync(path.join(tuning.tempRoot ?? os.tmpdir(), tuning.prefix))
  let fd: number
  try {
    fd = fs.openSync(path.join(dir, name), "wx+", 0o600)
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    write: (buf: Uint8Array, length: number, at: number) => {
      let off = 0
      while (off < length) off += fs.writeSync(fd, buf, off, length - off, at + off)
    },
    read: (buf: Uint8Array, length: number, at: number) => {
      let got = 0
      while (got < length) {
        const r = fs.readSync(fd, buf, got, length - got, at + got)
        if (r === 0) throw new Error(`the temporary file ${path.join(dir, name)} ended early`)
        got += r
      }
    },
    close: () => {
      try {
        fs.closeSync(fd)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}

/** Records in runs of `tuning.runRecords`; the first full run and every later one go to a temporary file. */
export const make = (tuning: Tuning) => {
  const size = Math.max(1, tuning.runRecords)
  const keys = new Float64Array(size)
  const ordinals = new Uint32Array(size)
  let n = 0
  let spill: { readonly file: ReturnType<typeof tempFile>; readonly runs: Array<number> } | undefined
  let written = 0
  const flush = () => {
    sortRecords(keys, ordinals, 0, n)
    spill ??= { file: tempFile(tuning, "runs"), runs: [] }
    const buf = Buffer.allocUnsafe(n * recordBytes)
    for (let i = 0; i < n; i++) {
      buf.writeDoubleLE(keys[i]!, i * recordBytes)
      buf.writeUInt32LE(ordinals[i]!, i * recordBytes + 8)
    }
    spill.file.write(buf, buf.length, written)
    written += buf.length
    spill.runs.push(n)
    n = 0
  }
  const memoryCursor = (): Cursor => {
    let i = -1
    const c: Cursor = {
      key: 0,
      ordinal: 0,
      next: () => {
        if (++i >= n) return false
        c.key = keys[i]!
        c.ordinal = ordinals[i]!
        return true
      }
    }
    return c
  }
  const fileCursor = (file: ReturnType<typeof tempFile>, start: number, count: number, buffered: number): Cursor => {
    const buf = Buffer.allocUnsafe(buffered * recordBytes)
    let read = 0
    let at = 0
    let held = 0
    const c: Cursor = {
      key: 0,
      ordinal: 0,
      next: () => {
        if (at === held) {
          if (read === count) return false
          const want = Math.min(buffered, count - read) * recordBytes
          file.read(buf, want, start + read * recordBytes)
          held = want / recordBytes
          read += held
          at = 0
        }
        c.key = buf.readDoubleLE(at * recordBytes)
        c.ordinal = buf.readUInt32LE(at * recordBytes + 8)
        at++
        return true
      }
    }
    return c
  }
  return {
    /** Whether the records went to the temporary file (more than one run). */
    spilled: () => spill !== undefined,
    add: (key: number, ordinal: number) => {
      if (n === size) flush()
      keys[n] = key
      ordinals[n++] = ordinal
    },
    /** Every record sorted by key then ordinal, merged from the runs. */
    sorted: (): Cursor => {
      if (spill === undefined) {
        sortRecords(keys, ordinals, 0, n)
        return memoryCursor()
      }
      if (n > 0) flush()
      const runs = spill.runs
      const buffered = Math.max(64, Math.floor(tuning.mergeBytes / recordBytes / runs.length))
      let start = 0
      const heap: Array<Cursor> = []
      for (const count of runs) {
        const c = fileCursor(spill.file, start, count, buffered)
        start += count * recordBytes
        if (c.next()) heap.push(c)
      }
      const before = (a: Cursor, b: Cursor) => a.key < b.key || (a.key === b.key && a.ordinal < b.ordinal)
      const down = (i: number) => {
        for (;;) {
          const l = 2 * i + 1
          const r = l + 1
          let m = i
          if (l < heap.length && before(heap[l]!, heap[m]!)) m = l
          if (r < heap.length && before(heap[r]!, heap[m]!)) m = r
          if (m === i) return
          const t = heap[i]!
          heap[i] = heap[m]!
          heap[m] = t
          i = m
        }
      }
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i)
      let primed = false
      const c: Cursor = {
        key: 0,
        ordinal: 0,
        next: () => {
          if (primed && heap.length > 0) {
            if (!heap[0]!.next()) {
              const last = heap.pop()!
              if (heap.length > 0) heap[0] = last
            }
            if (heap.length > 0) down(0)
          }
          primed = true
          if (heap.length === 0) return false
          c.key = heap[0]!.key
          c.ordinal = heap[0]!.ordinal
          return true
        }
      }
      return c
    },
    close: () => {
      const file = spill?.file
      spill = undefined
      file?.close()
    }
  }
}

/** A key's ordinal, found among sorted records: the last ordinal given with that key. */
export interface Lookup {
  readonly size: number
  readonly get: (key: number) => number | undefined
  readonly close: () => void
}

/** Records a lookup reads from its file at a time: one `pread` of 3 KiB per lookup. */
const blockRecords = 256

/** Binary search: the first index in [0, n) where `past` holds (it holds from some index on), else `n`. */
const firstWhere = (n: number, past: (i: number) => boolean) => {
  let [lo, hi] = [0, n]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (past(mid)) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * A lookup over `records` (which it closes), one record per key. Within one run it holds them in memory; past it they
 * go to a file of their own, read a block per lookup through an index of each block's first key (8 bytes per 256
 * records), so memory stays bounded whatever the count.
 */
export const lookup = (records: ReturnType<typeof make>, tuning: Tuning): Lookup => {
  const spilled = records.spilled()
  const sorted = records.sorted()
  try {
    let size = 0
    // The last ordinal of each key, in key order.
    const each = (emit: (key: number, ordinal: number) => void) => {
      let more = sorted.next()
      while (more) {
        const key = sorted.key
        let ordinal = sorted.ordinal
        while ((more = sorted.next()) && sorted.key === key) ordinal = sorted.ordinal
        emit(key, ordinal)
        size++
      }
    }
    if (!spilled) {
      const keys: Array<number> = []
      const ordinals: Array<number> = []
      each((k, o) => {
        keys.push(k)
        ordinals.push(o)
      })
      const found = Float64Array.from(keys)
      const at = Uint32Array.from(ordinals)
      return {
        size,
        get: (key) => {
          const i = firstWhere(found.length, (j) => found[j]! >= key)
          return found[i] === key ? at[i] : undefined
        },
        close: () => {}
      }
    }
    const file = tempFile(tuning, "index")
    try {
      const out = Buffer.allocUnsafe(blockRecords * recordBytes)
      const firsts: Array<number> = []
      let inBlock = 0
      let written = 0
      const flush = () => {
        file.write(out, inBlock * recordBytes, written)
        written += inBlock * recordBytes
        inBlock = 0
      }
      each((k, o) => {
        if (inBlock === 0) firsts.push(k)
        out.writeDoubleLE(k, inBlock * recordBytes)
        out.writeUInt32LE(o, inBlock * recordBytes + 8)
        if (++inBlock === blockRecords) flush()
      })
      if (inBlock > 0) flush()
      const starts = Float64Array.from(firsts)
      const block = Buffer.allocUnsafe(blockRecords * recordBytes)
      return {
        size,
        get: (key) => {
          // The block whose first key is the last one not above `key`.
          const b = firstWhere(starts.length, (j) => starts[j]! > key) - 1
          if (b < 0) return undefined
          const count = Math.min(blockRecords, size - b * blockRecords)
          file.read(block, count * recordBytes, b * blockRecords * recordBytes)
          const i = firstWhere(count, (j) => block.readDoubleLE(j * recordBytes) >= key)
          return i < count && block.readDoubleLE(i * recordBytes) === key
            ? block.readUInt32LE(i * recordBytes + 8)
            : undefined
        },
        close: file.close
      }
    } catch (e) {
      file.close()
      throw e
    }
  } finally {
    records.close()
  }
}
