/**
 * The file side of a restore: decompress, verify SHA-256 and size, write a temporary file, rename it into place.
 * A held target stops at the verified temporary file: the caller records the restore, then `commit`s (renames) or
 * `discard`s it, so a restore that could not be recorded never leaves a visible file. A target with a `root` is
 * contained: its folders are created and checked without following symbolic links, and checked again under the rename.
 * One synchronous program does it, run either in the calling thread (single restores, small batches) or in a pool
 * of worker threads, so a large batch decodes and writes files on every core while the main thread talks to the
 * database (PERFORMANCE.md: file creation and zstd are CPU-bound; two writers restored the large corpus 1.7× faster).
 * Given the archive's `DirectReads`, workers also read the payloads (`copy`) on connections of their own.
 */
import { Effect, type Scope } from "effect"
import type { DirectReads } from "./ArchiveStore.js"
import * as Chunking from "./Chunking.js"
import * as Codec from "./Codec.js"
import * as FileOps from "./FileOps.js"
import * as WorkerPool from "./WorkerPool.js"

/**
 * What to write. Every `write`, `copy` and `open` gets exactly one `Reply`, at the `write` or `copy` or at its `close`.
 * `copy` reads the payload itself, through the archive's `DirectReads` (a writer made with them only).
 */
export type Op =
  | (Target & { readonly op: "write"; readonly data: Uint8Array })
  | (Target & { readonly op: "copy"; readonly artifactId: string; readonly chunked: boolean })
  | (Target & { readonly op: "open" })
  | { readonly op: "append"; readonly id: number; readonly data: Uint8Array }
  | { readonly op: "close"; readonly id: number }
  | { readonly op: "abort"; readonly id: number }
  /** Renames held files into place, each checked again first: one `Reply` per id. */
  | { readonly op: "commit"; readonly ids: ReadonlyArray<number> }
  /** Removes held files, and open ones (a caller interrupted mid-file): no reply. */
  | { readonly op: "discard"; readonly ids: ReadonlyArray<number> }

export interface Target {
  readonly id: number
  readonly output: string
  /** Where the bytes go until they are verified (`FileOps.tempFor`). */
  readonly temp: string
  readonly mode: number
  readonly codec: Codec.CodecName
  readonly sha256: string
  readonly size: number
  /** Stop at the verified temporary file until a `commit` or `discard` (record then rename). */
  readonly hold?: boolean | undefined
  /**
   * The real path of the folder the output must stay in (a batch's manifest folder); `output` lies below it, as a
   * real path. No folder between them may be a symbolic link, when created, when the temp file is made, at rename.
   */
  readonly root?: string | undefined
}

export type Reply =
  | {
    readonly id: number
    readonly ok: true
    readonly bytes: number
    /** Time reading the payload from the archive (`copy` only). */
    readonly fetch: number
    readonly decompress: number
    readonly verify: number
    readonly write: number
  }
  | {
    readonly id: number
    readonly ok: false
    /** corrupt: the codec rejected the bytes; integrity: they decode to other content; unwritable: the file system said no;
     * missing: the archive no longer holds the payload (purged); unreadable: the archive could not be read;
     * skipped: not attempted, an earlier op of the batch failed and the batch asked to stop there;
     * escapes: a folder on the way to a contained output is a symbolic link, or the temp file changed. */
    readonly problem: "corrupt" | "integrity" | "unwritable" | "missing" | "unreadable" | "skipped" | "escapes"
    readonly detail: string
    /** The SHA-256 of what was decoded (integrity). */
    readonly actual?: string
    /** The errno code (unwritable). */
    readonly code?: string
  }

export interface RestoreWriter {
  /** Independent lanes: ops of one file must go to one lane; lanes run in parallel. */
  readonly lanes: number
  /** Whether it reads payloads from the archive itself (`copy`): made with the archive's `DirectReads`. */
  readonly readsArchive: boolean
  /**
   * Runs a batch of ops in order on a lane; with `stopAfterFailure`, ops after a failed write are skipped.
   * A worker pool takes over each `data` that spans its whole ArrayBuffer (no copy): the caller must not reuse it.
   */
  readonly run: (
    lane: number,
    ops: ReadonlyArray<Op>,
    stopAfterFailure?: boolean
  ) => Effect.Effect<ReadonlyArray<Reply>, WorkerPool.WorkerFailed>
  /**
   * Until `resume`, on every lane, a whole-file op (`write`, `copy`) not yet begun is skipped, even one already sent:
   * a stopped batch waits for the files being written, not for the units queued behind them.
   */
  readonly halt: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

type Setup = ReturnType<typeof Codec.zstdPaths> & {
  readonly direct: DirectReads | undefined
  /** `Codec.boundedDecoder`'s source: workers get code as text. */
  readonly decoder: string
  /** The raw size of a chunk: no chunk decodes to more. */
  readonly chunkSize: number
  /** `Codec.pieceBytes`: a whole payload larger than it is decoded into its file a piece at a time. */
  readonly pieceBytes: number
  /** `Chunking.seqError`'s source: chunk rows are checked in order as they are read. */
  readonly seqError: string
  /** `FileOps.makeFoldersWith`'s source: an output's missing folders are made, naming what is in the way. */
  readonly makeFolders: string
  /** The host let us expose V8's collector (`--expose-gc`, a flag of the whole process) to free read buffers early. */
  readonly exposeGc: boolean
  /** Payloads are handed over to this program (a worker's): it frees their buffers once their message is handled. */
  readonly owned: boolean
  /** `halt`'s flag, shared with every worker (one Int32 over a SharedArrayBuffer): 1 once halted. */
  readonly halted: Int32Array
}

const setupOf = (direct: DirectReads | undefined, exposeGc = false, owned = false): Setup => ({
  ...Codec.zstdPaths(),
  direct,
  decoder: Codec.boundedDecoder.toString(),
  chunkSize: Chunking.chunkSize,
  pieceBytes: Codec.pieceBytes,
  seqError: Chunking.seqError.toString(),
  makeFolders: FileOps.makeFoldersWith.toString(),
  exposeGc,
  owned,
  halted: new Int32Array(new SharedArrayBuffer(4))
})

interface Batch {
  readonly ops: ReadonlyArray<Op>
  readonly stopAfterFailure: boolean
}

/**
 * The writer program. It is shipped to workers as source text, so it must not refer to anything outside itself:
 * modules come through `req`, and errors go back as data.
 * Its phase timings use `performance.now()`: it runs outside Effect (often in a worker thread), with no Clock to ask.
 */
const program: WorkerPool.Program<Setup, Batch, ReadonlyArray<Reply>> = (req, setup) => {
  const fs = req("node:fs") as typeof import("node:fs")
  const pathMod = req("node:path") as typeof import("node:path")
  const crypto = req("node:crypto") as typeof import("node:crypto")
  const zlib = req("node:zlib") as typeof import("node:zlib")
  type Query = { get(id: string): unknown; iterate(id: string): IterableIterator<unknown> }
  // Chunking's and FileOps' own code, compiled here as the decoder is (a --keep-names bundle's `__name(...)` calls given
  // a stub).
  const compiled = <F>(source: string): F =>
    ((req("node:vm") as typeof import("node:vm")).runInThisContext(`(__name) => (${source})`) as (name: unknown) => F)(
      (target: unknown) => target
    )
  const seqError = compiled<typeof Chunking.seqError>(setup.seqError)
  const makeFolders = compiled<typeof FileOps.makeFoldersWith>(setup.makeFolders)(fs, pathMod)
  // The archive, opened read-only on first `copy`: a connection of this thread's own, so content skips the main thread.
  let archive: { readonly inline: Query; readonly chunks: Query } | undefined
  const archiveQueries = () => {
    if (archive !== undefined) return archive
    const direct = setup.direct
    if (direct === undefined) throw new Error("restore writer: copy needs an archive to read from (DirectReads)")
    type Db = { pragma(p: string): unknown; prepare(sql: string): { pluck(): Query; raw(): Query } }
    const Database = req(direct.driver) as new(file: string, options: object) => Db
    const db = new Database(direct.file, { readonly: true, fileMustExist: true })
    // Another connection may be writing: wait for its lock like the main connection's retries would, rather than fail.
    db.pragma("busy_timeout = 5000")
    // Content is read once: a large page cache would only add to peak memory.
    db.pragma("cache_size = -1024")
    archive = { inline: db.prepare(direct.inline).pluck(), chunks: db.prepare(direct.chunks).raw() }
    return archive
  }
  // Every payload, read here or sent by the main thread, is a new buffer outside this small heap, which collects too
  // rarely to reuse them; a young-generation collection every MiB (well under a millisecond) frees them: ~25 MB less
  // peak RSS per worker reading SQLite, same speed. The flag is the whole process's and stays on: set back, it raced
  // with the other workers' reading it. So only a host that opted in (`tuneV8`) gets it; the CLI sets it at start, or
  // its code cache, written at exit under the changed flags, was rejected at every later start. Without it, V8
  // collects the buffers in its own time.
  const collect = (() => {
    if (!setup.exposeGc) return () => {}
    ;(req("node:v8") as typeof import("node:v8")).setFlagsFromString("--expose-gc")
    const gc = (req("node:vm") as typeof import("node:vm")).runInNewContext("gc") as (
      options: { type: "minor" }
    ) => void
    return () => gc({ type: "minor" })
  })()
  let unreleased = 0
  /** Counts payload bytes taken, and frees their buffers every MiB (see `collect`). */
  const release = (bytes: number) => {
    unreleased += bytes
    if (unreleased < 1024 * 1024) return
    unreleased = 0
    collect()
  }
  /**
   * Lets go of the payloads handed over to this worker with a message, once it is handled. A message's buffers outlive
   * the collections made while it is handled, so V8 moves them to the old generation, where they waited for a full
   * collection: a PostgreSQL batch restore's workers each held ~65 MiB of them. Handed on (detached), each buffer is
   * young again, and goes at the next young-generation collection. Not before the message ends: two of its ops may
   * share a buffer.
   */
  const letGo = (ops: ReadonlyArray<Op>) => {
    if (!setup.owned) return
    let bytes = 0
    for (const op of ops) {
      const buffer = "data" in op ? op.data.buffer : undefined
      if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) continue
      bytes += buffer.byteLength
      structuredClone(buffer, { transfer: [buffer] })
    }
    release(bytes)
  }
  // One output buffer reused for every decode (`reuse`): no per-file allocation, memory flat over a long batch.
  let bounded: Codec.BoundedDecode | undefined
  /** Decodes to at most `limit` bytes (the recorded size): a payload that claims or yields more is corrupt. */
  const decode: Codec.BoundedDecode = (codec, data, limit, onPiece) => {
    if (bounded === undefined) {
      const vm = req("node:vm") as typeof import("node:vm")
      // Compiled in the global scope: a host bundled with --keep-names left `__name(...)` calls in the text, given here.
      const make =
        (vm.runInThisContext(`(__name) => (${setup.decoder})`) as (name: unknown) => typeof Codec.boundedDecoder)(
          (target: unknown) => target
        )
      bounded = make(req(setup.zstdBinding) as Codec.ZstdDecoding, zlib, true)
    }
    return bounded(codec, data, limit, onPiece)
  }

  /** A contained folder held open while temp files in it wait (`holdFolder`), with its identity. */
  interface Folder {
    readonly dir: string
    readonly fd: number
    readonly dev: number
    readonly ino: number
    refs: number
  }
  interface Job {
    readonly target: Target
    fd: number
    /** The temp file's identity, from its descriptor (-1 before it exists). */
    dev: number
    ino: number
    hash: ReturnType<typeof crypto.createHash>
    bytes: number
    fetch: number
    decompress: number
    verify: number
    write: number
    failure: Reply | undefined
    /** The digest, once taken (a whole payload is checked before its file is created). */
    actual: string | undefined
    /** Its contained folder, held open (`holdFolder`) until its temp file is renamed or removed. */
    folder: Folder | undefined
  }
  const jobs = new Map<number, Job>()
  const opened = (id: number): Job => {
    const job = jobs.get(id)
    if (job === undefined) throw new Error(`restore writer: no open file for job ${id}`)
    return job
  }

  type Problem = "corrupt" | "integrity" | "unwritable" | "missing" | "unreadable" | "escapes"
  const fail = (
    id: number,
    problem: Problem,
    detail: string,
    extra: { actual?: string; code?: string } = {}
  ): Reply => ({ id, ok: false, problem, detail, ...extra })
  /** A contained output whose way leaves its root: the item fails, nothing is written outside. */
  class Escape extends Error {}
  const errno = (id: number, e: unknown) => {
    if (e instanceof Escape) return fail(id, "escapes", e.message)
    const err = e as NodeJS.ErrnoException
    return fail(id, "unwritable", err.message ?? String(e), err.code === undefined ? {} : { code: err.code })
  }

  // Folders of contained outputs checked during this message (a unit): each is walked once, not once per file.
  let checked = new Set<string>()
  /** Creates and checks the folders from `root` down to `dir`, one at a time, following no symbolic link. */
  const containedDir = (root: string, dir: string) => {
    if (checked.has(dir)) return
    if (dir !== root && !dir.startsWith(root.endsWith(pathMod.sep) ? root : root + pathMod.sep)) {
      throw new Escape(`${dir} is outside ${root}`)
    }
    let current = ""
    for (const part of [root, ...dir.slice(root.length).split(pathMod.sep).filter((p) => p !== "")]) {
      current = current === "" ? part : pathMod.join(current, part)
      if (checked.has(current)) continue
      let st = fs.lstatSync(current, { throwIfNoEntry: false })
      if (st === undefined && current !== root) {
        let made = true
        try {
          fs.mkdirSync(current)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          made = false
        }
        st = fs.lstatSync(current)
        // A folder above, swapped for a link after its check, sent the mkdir through it: the new (empty) folder is
        // removed where it was made, if it is still the one made. Node has no mkdirat: this is checked after the fact,
        // and a swap undone between the mkdir and this check goes unseen (it leaves an empty folder, nothing in it).
        // In bytes: a name that is not UTF-8, read as a string, is another name (which lstat and rmdir would miss).
        const real = made ? fs.realpathSync.native(current, { encoding: "buffer" }) : undefined
        if (real !== undefined && !real.equals(Buffer.from(current))) {
          let removed = false
          try {
            const there = fs.lstatSync(real)
            if (there.dev === st.dev && there.ino === st.ino) fs.rmdirSync(real)
            removed = fs.lstatSync(real, { throwIfNoEntry: false }) === undefined
          } catch {
            // no longer there, or no longer empty: not ours to remove
          }
          throw new Escape(
            `${current} was created at ${real.toString()}, through a link; ${
              removed ? "removed" : "left there, empty (remove it)"
            }, nothing written outside ${root}`
          )
        }
      }
      if (st?.isSymbolicLink()) {
        // A link to nothing leads nowhere: it is in the way, named as an uncontained output's folders name it.
        if (!fs.existsSync(current)) {
          throw new Error(`${current} is a symbolic link to ${fs.readlinkSync(current)}, which does not exist`)
        }
        throw new Escape(`${current} is a symbolic link; nothing written outside ${root}`)
      }
      // A file in the way is no escape: the output cannot be written, and the message names what is in the way.
      if (st === undefined || !st.isDirectory()) throw new Error(`${current} is not a folder`)
      checked.add(current)
    }
  }
  const exclusive = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW
  /** A new temp file, never one that was there: a leftover (or a planted link) is removed, not written through. */
  const createTemp = (temp: string): number => {
    try {
      return fs.openSync(temp, exclusive, 0o600)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      fs.rmSync(temp, { force: true })
      return fs.openSync(temp, exclusive, 0o600)
    }
  }
  /** Linux tells where an open file or folder is now (`/proc/self/fd`), wherever it was moved. */
  const procFds = fs.existsSync("/proc/self/fd")
  /**
   * Contained folders holding temp files not yet renamed or removed, each open while it holds one: a folder moved away
   * mid-run still leads to them, so a failed item's temp file is removed where it went, not left there (it was, when
   * the folder was gone at the rename). Known by path and identity: a folder made again at a moved one's path is
   * another. Bounded: past `maxFolders` open at once (per thread), a folder is known by its path only.
   */
  const folders = new Map<string, Folder>()
  const maxFolders = 1024
  let openFolders = 0
  const folderFlags = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW
  const holdFolder = (dir: string): Folder | undefined => {
    if (!procFds) return undefined
    const known = folders.get(dir)
    if (known !== undefined) {
      // Its identity checked for every file, not once per message: another thread may make the folder again meanwhile.
      const st = fs.lstatSync(dir, { throwIfNoEntry: false })
      if (st !== undefined && st.dev === known.dev && st.ino === known.ino) {
        known.refs++
        return known
      }
    }
    // Not openable (gone from its path for an instant, mid-swap): the one known, if any, is the likeliest.
    const likeliest = () => {
      if (known !== undefined) known.refs++
      return known
    }
    if (openFolders >= maxFolders) return likeliest()
    let fd: number
    try {
      fd = fs.openSync(dir, folderFlags)
    } catch {
      return likeliest()
    }
    openFolders++
    const st = fs.fstatSync(fd)
    const folder: Folder = { dir, fd, dev: st.dev, ino: st.ino, refs: 1 }
    // A stale entry's holders keep their own reference to it.
    folders.set(dir, folder)
    return folder
  }
  const releaseFolder = (folder: Folder | undefined) => {
    if (folder === undefined || --folder.refs > 0) return
    if (folders.get(folder.dir) === folder) folders.delete(folder.dir)
    openFolders--
    try {
      fs.closeSync(folder.fd)
    } catch {
      // already closed
    }
  }
  const deleted = Buffer.from(" (deleted)")
  /**
   * Where an open file or folder is now, as the kernel knows it, in its bytes (a name that is not UTF-8 read as a string
   * is another name); `undefined` if unknown or removed.
   */
  const whereNow = (fd: number): Buffer | undefined => {
    try {
      const at = fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" })
      return at.subarray(at.length - deleted.length).equals(deleted) ? undefined : at
    } catch {
      return undefined
    }
  }
  /** Removes an open temp file wherever it is, following it while it moves (a few times at most): whether it did. */
  const removeOpen = (fd: number, dev: number, ino: number): boolean => {
    for (let tries = 0; tries < 8; tries++) {
      const at = whereNow(fd)
      if (at === undefined) return true
      try {
        if (isOurs(at, dev, ino)) fs.rmSync(at, { force: true })
      } catch {
        // moved meanwhile: looked up again
      }
    }
    return whereNow(fd) === undefined
  }
  const openTemp = (job: Job): number => {
    const { root, temp } = job.target
    if (root !== undefined) {
      containedDir(root, pathMod.dirname(temp))
      // Held before the temp file is made in it: the file's own place is then checked (`createdInside`).
      job.folder ??= holdFolder(pathMod.dirname(temp))
      return createTemp(temp)
    }
    try {
      return createTemp(temp)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e
      makeFolders(pathMod.dirname(temp))
      return createTemp(temp)
    }
  }
  /**
   * Opens the job's temp file; a contained one's identity is noted, to be checked again before the rename, and where
   * it was really created is checked before anything is written to it.
   */
  const openJob = (job: Job) => {
    job.fd = openTemp(job)
    // Syscalls dominate a small file's cost: only contained outputs pay for the identity (0: created, not tracked).
    const st = job.target.root === undefined ? { dev: 0, ino: 0 } : fs.fstatSync(job.fd)
    job.dev = st.dev
    job.ino = st.ino
    if (job.target.root !== undefined) createdInside(job)
  }
  /**
   * A folder on the way swapped for a link after its check makes the temp file be created outside: the kernel knows
   * where (Linux: `/proc/self/fd`), so such a file is removed where it is, by that path, while still empty, and the
   * item fails. Removing it through the path we asked for missed it once the link was swapped back (an attack left
   * restored copies outside). Without `/proc`, the checks before the rename remain.
   */
  const createdInside = (job: Job) => {
    let at: Buffer
    try {
      at = fs.readlinkSync(`/proc/self/fd/${job.fd}`, { encoding: "buffer" })
    } catch {
      return
    }
    if (at.equals(Buffer.from(job.target.temp))) return
    // Looked up again as it is removed: the folder may be swapped back meanwhile.
    const removed = removeOpen(job.fd, job.dev, job.ino)
    fs.closeSync(job.fd)
    job.fd = -1
    job.dev = -1
    throw new Escape(
      `${job.target.temp} was created at ${at.toString()}, through a link; ${
        removed ? "removed" : "left there, empty (remove it)"
      }, nothing written outside ${job.target.root}`
    )
  }
  /** The temp path still names the file this job wrote (not a file swapped in, nor one reached through a new link). */
  const isOurs = (temp: string | Buffer, dev: number, ino: number): boolean => {
    const st = fs.lstatSync(temp, { throwIfNoEntry: false })
    return st !== undefined && st.isFile() && st.dev === dev && st.ino === ino
  }
  /**
   * Removes a temp file, but only the one written: a swapped folder must not make us delete a stranger's file. Not at
   * its path, it is looked for where its folder went.
   */
  const removeTemp = (target: Target, dev: number, ino: number, folder: Folder | undefined) => {
    // Never created (dev < 0): nothing of ours is there.
    if (dev < 0) return
    if (target.root === undefined) {
      try {
        fs.rmSync(target.temp, { force: true })
      } catch {
        // not ours to remove after all (a permission changed): left, the item's failure says why
      }
      return
    }
    // Looked for a few times, at its path and where its folder is: a folder being swapped is at neither for an instant.
    let removed = false
    for (let tries = 0; tries < 8; tries++) {
      try {
        const now = folder === undefined ? undefined : whereNow(folder.fd)
        const moved = now === undefined ? [] : [Buffer.concat([now, Buffer.from(`/${pathMod.basename(target.temp)}`)])]
        const at = [target.temp, ...moved].find((p) => isOurs(p, dev, ino))
        if (at === undefined && removed) return
        if (at === undefined) continue
        fs.rmSync(at, { force: true })
        removed = true
      } catch {
        // moved meanwhile: looked for again
      }
    }
  }
  /** A contained output's folder resolves to itself: no folder on its way is a link (one call checks the chain). */
  const checkWay = (target: Target) => {
    const dir = pathMod.dirname(target.output)
    const real = fs.realpathSync.native(dir)
    if (real !== dir) throw new Escape(`${dir} now leads to ${real}; nothing written outside ${target.root}`)
  }
  /** Renames a verified temp file into place; a contained one only if its way (checked by the caller) and file held. */
  const rename = (target: Target, dev: number, ino: number) => {
    if (target.root !== undefined && !isOurs(target.temp, dev, ino)) {
      throw new Escape(`${target.temp} is no longer the file written`)
    }
    fs.renameSync(target.temp, target.output)
  }
  /** Verified temp files waiting for a `commit` or `discard`, with the reply their write earned. */
  type Held = {
    readonly target: Target
    readonly dev: number
    readonly ino: number
    readonly folder: Folder | undefined
    readonly reply: Reply & { ok: true }
  }
  const held = new Map<number, Held>()
  /**
   * Renames held files, folder by folder: each contained folder's way is checked once, right before its files are
   * renamed, and each file's identity right before its own rename. Replies in the order of `ids`.
   */
  const commitAll = (ids: ReadonlyArray<number>): Array<Reply> => {
    const replies = new Array<Reply>(ids.length)
    const byFolder = new Map<string, Array<[number, Held]>>()
    for (const [k, id] of ids.entries()) {
      const h = held.get(id)
      held.delete(id)
      if (h === undefined) {
        replies[k] = fail(id, "unwritable", "restore writer: nothing held to commit")
        continue
      }
      const dir = pathMod.dirname(h.target.output)
      const group = byFolder.get(dir)
      if (group === undefined) byFolder.set(dir, [[k, h]])
      else group.push([k, h])
    }
    for (const group of byFolder.values()) {
      let way: unknown
      try {
        if (group[0]![1].target.root !== undefined) checkWay(group[0]![1].target)
      } catch (e) {
        way = e
      }
      for (const [k, h] of group) {
        const t = performance.now()
        try {
          if (way !== undefined) throw way
          rename(h.target, h.dev, h.ino)
          replies[k] = { ...h.reply, write: h.reply.write + performance.now() - t }
        } catch (e) {
          removeTemp(h.target, h.dev, h.ino, h.folder)
          replies[k] = errno(h.target.id, e)
        }
        releaseFolder(h.folder)
      }
    }
    return replies
  }
  const writeAll = (fd: number, bytes: Uint8Array) => {
    let offset = 0
    while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset)
  }
  const discard = (job: Job) => {
    // Still open, a contained one is found wherever it is now (its folder moved away), not looked for by path.
    const followed = job.fd >= 0 && job.target.root !== undefined && procFds && job.dev >= 0
    if (followed) removeOpen(job.fd, job.dev, job.ino)
    if (job.fd >= 0) {
      try {
        fs.closeSync(job.fd)
      } catch {
        // already closed
      }
      job.fd = -1
    }
    if (!followed) removeTemp(job.target, job.dev, job.ino, job.folder)
    releaseFolder(job.folder)
    job.folder = undefined
  }

  /**
   * Decodes and hashes one piece, a whole payload or one chunk (at most `chunkSize`); never past the recorded size.
   * A codec error becomes the job's failure.
   */
  const feed = (job: Job, data: Uint8Array, chunk: boolean): Uint8Array | undefined => {
    let t = performance.now()
    let raw: Uint8Array
    const left = job.target.size - job.bytes
    try {
      raw = decode(job.target.codec, data, chunk ? Math.min(setup.chunkSize, left) : left)
    } catch (e) {
      job.failure = fail(job.target.id, "corrupt", e instanceof Error ? e.message : String(e))
      return undefined
    }
    job.decompress += performance.now() - t
    t = performance.now()
    job.hash.update(raw)
    job.bytes += raw.length
    job.verify += performance.now() - t
    return raw
  }

  const start = (target: Target): Job => ({
    target,
    fd: -1,
    dev: -1,
    ino: -1,
    hash: crypto.createHash("sha256"),
    bytes: 0,
    fetch: 0,
    decompress: 0,
    verify: 0,
    write: 0,
    failure: undefined,
    actual: undefined,
    folder: undefined
  })

  /** Whether what was fed so far is exactly the expected content. */
  const verified = (job: Job): boolean => {
    job.actual ??= job.hash.digest("hex")
    return job.actual === job.target.sha256 && job.bytes === job.target.size
  }

  const finish = (job: Job): Reply => {
    const { id, mode } = job.target
    if (job.failure === undefined && !verified(job)) {
      // The recorded SHA-256 matched but not the recorded size: say so, not "sha256 X does not match X".
      job.failure = job.actual === job.target.sha256
        ? fail(id, "corrupt", `it decodes to ${job.bytes} bytes, not the ${job.target.size} its record says`)
        : fail(id, "integrity", "content does not match its checksum", { actual: job.actual! })
    }
    if (job.failure !== undefined) {
      discard(job)
      return job.failure
    }
    const t = performance.now()
    try {
      // Nothing appended yet (an empty file): it still needs a temp file to rename.
      if (job.fd < 0) openJob(job)
      fs.fchmodSync(job.fd, mode)
      fs.closeSync(job.fd)
      job.fd = -1
      if (job.target.hold !== true) {
        if (job.target.root !== undefined) checkWay(job.target)
        rename(job.target, job.dev, job.ino)
        releaseFolder(job.folder)
      }
    } catch (e) {
      discard(job)
      return errno(id, e)
    }
    job.write += performance.now() - t
    const reply = {
      id,
      ok: true as const,
      bytes: job.bytes,
      fetch: job.fetch,
      decompress: job.decompress,
      verify: job.verify,
      write: job.write
    }
    if (job.target.hold === true) {
      held.set(id, { target: job.target, dev: job.dev, ino: job.ino, folder: job.folder, reply })
    }
    return reply
  }

  /** Writes decoded bytes to the job's temp file, creating it on first use. */
  const put = (job: Job, raw: Uint8Array) => {
    const t = performance.now()
    try {
      if (job.fd < 0) openJob(job)
      writeAll(job.fd, raw)
    } catch (e) {
      job.failure = errno(job.target.id, e)
    }
    job.write += performance.now() - t
  }

  const append = (job: Job, data: Uint8Array) => {
    if (job.failure !== undefined) return
    const raw = feed(job, data, true)
    if (raw !== undefined) put(job, raw)
  }

  /**
   * A whole payload: verified before its file is created, so a corrupt one leaves nothing behind. One whose recorded
   * size is more than a piece is decoded into its temp file a piece at a time and verified at the end (a failure
   * removes the file): decoded whole, a row claiming 3 GiB of zeros (98 KB stored) took 3 GiB, then ended the worker
   * and every item in flight with it.
   */
  const writeWhole = (job: Job, data: Uint8Array): Reply => {
    if (job.target.size > setup.pieceBytes) {
      writePieces(job, data)
      return finish(job)
    }
    const raw = feed(job, data, false)
    if (raw !== undefined && verified(job)) put(job, raw)
    return finish(job)
  }
  const stopped = new Error("stopped")
  const writePieces = (job: Job, data: Uint8Array) => {
    let t = performance.now()
    try {
      decode(job.target.codec, data, job.target.size, (raw) => {
        job.decompress += performance.now() - t
        t = performance.now()
        job.hash.update(raw)
        job.bytes += raw.length
        job.verify += performance.now() - t
        put(job, raw)
        if (job.failure !== undefined) throw stopped
        t = performance.now()
      })
      job.decompress += performance.now() - t
    } catch (e) {
      if (e !== stopped) job.failure ??= fail(job.target.id, "corrupt", e instanceof Error ? e.message : String(e))
    }
  }

  const unreadable = (id: number, e: unknown) =>
    fail(id, "unreadable", `cannot read ${setup.direct?.file}: ${e instanceof Error ? e.message : String(e)}`)
  const missing = (id: number) => fail(id, "missing", "the archive no longer holds this payload")

  /** Reads a payload from the archive and writes it: inline in one read, chunks one at a time (bounded memory). */
  const copy = (target: Target, artifactId: string, chunked: boolean): Reply => {
    const job = start(target)
    let t = performance.now()
    if (!chunked) {
      let data: unknown
      try {
        data = archiveQueries().inline.get(artifactId)
      } catch (e) {
        return unreadable(target.id, e)
      }
      job.fetch = performance.now() - t
      if (!(data instanceof Uint8Array)) return missing(target.id)
      release(data.length)
      return writeWhole(job, data)
    }
    let pieces = 0
    try {
      for (const row of archiveQueries().chunks.iterate(artifactId)) {
        job.fetch += performance.now() - t
        const [seq, data] = row as [unknown, Uint8Array]
        const wrong = seqError(artifactId, pieces, Number(seq))
        if (wrong !== undefined) {
          job.failure ??= fail(target.id, "corrupt", wrong)
          break
        }
        pieces++
        release((data as Uint8Array).length)
        append(job, data as Uint8Array)
        if (job.failure !== undefined) break
        t = performance.now()
      }
    } catch (e) {
      job.failure ??= unreadable(target.id, e)
    }
    if (pieces === 0) job.failure ??= missing(target.id)
    return finish(job)
  }

  return ({ ops, stopAfterFailure }) => {
    const replies: Array<Reply> = []
    let failed = false
    checked = new Set()
    for (const op of ops) {
      switch (op.op) {
        case "write":
        case "copy": {
          if (failed && stopAfterFailure) {
            replies.push({ id: op.id, ok: false, problem: "skipped", detail: "not attempted after an earlier failure" })
            break
          }
          if (Atomics.load(setup.halted, 0) === 1) {
            replies.push({ id: op.id, ok: false, problem: "skipped", detail: "not attempted: the batch was stopped" })
            break
          }
          const reply = op.op === "write" ? writeWhole(start(op), op.data) : copy(op, op.artifactId, op.chunked)
          failed ||= !reply.ok
          replies.push(reply)
          break
        }
        case "open":
          jobs.set(op.id, start(op))
          break
        case "append": {
          append(opened(op.id), op.data)
          break
        }
        case "close": {
          const job = opened(op.id)
          jobs.delete(op.id)
          const reply = finish(job)
          failed ||= !reply.ok
          replies.push(reply)
          break
        }
        case "abort": {
          const job = jobs.get(op.id)
          jobs.delete(op.id)
          if (job !== undefined) discard(job)
          break
        }
        case "commit":
          replies.push(...commitAll(op.ids))
          break
        case "discard":
          for (const id of op.ids) {
            const open = jobs.get(id)
            jobs.delete(id)
            if (open !== undefined) discard(open)
            const h = held.get(id)
            held.delete(id)
            if (h === undefined) continue
            removeTemp(h.target, h.dev, h.ino, h.folder)
            releaseFolder(h.folder)
          }
          break
      }
    }
    letGo(ops)
    return { value: replies }
  }
}

const writerOf = (pool: WorkerPool.WorkerPool<Batch, ReadonlyArray<Reply>>, setup: Setup): RestoreWriter => {
  // Buffers handed over so far: one given again (to two calls in one turn, which travel as one message) is copied,
  // since the worker lets go of each message's buffers once it is handled.
  const handed = new WeakSet<ArrayBufferLike>()
  /** An op whose payload is on a buffer of its own (`WorkerPool.owned`), to be handed over to a worker, not cloned. */
  const owned = (op: Op): Op => {
    if (!("data" in op)) return op
    const own = WorkerPool.owned(op.data)
    const data = handed.has(own.buffer) ? new Uint8Array(own) : own
    handed.add(data.buffer)
    return { ...op, data }
  }
  return {
    lanes: pool.lanes,
    readsArchive: setup.direct !== undefined,
    run: (lane, ops, stopAfterFailure) => {
      const sent = setup.owned ? ops.map(owned) : ops
      return pool.run(
        lane,
        { ops: sent, stopAfterFailure: stopAfterFailure === true },
        setup.owned ? WorkerPool.transferable(sent.flatMap((op) => ("data" in op ? [op.data] : []))) : []
      )
    },
    halt: Effect.sync(() => void Atomics.store(setup.halted, 0, 1)),
    resume: Effect.sync(() => void Atomics.store(setup.halted, 0, 0))
  }
}

/** Runs the program in this thread: no start-up cost, for single restores and small batches. */
export const inThread = (): RestoreWriter => {
  const setup = setupOf(undefined)
  return writerOf(WorkerPool.inThread(program, setup), setup)
}

/**
 * Heap bounds for a large restore or store, for a host that owns its process: set them at start-up (the CLI's launcher
 * does for batch-restore and store; set later, the young generation has already grown) and pass them as the workers'
 * flags, since flags set at run time no longer held once workers had started. V8, on a machine with gigabytes free,
 * lets the old generation grow to 4x what survived the last major collection and doubles the young one up to 32 MB; a
 * restore drops records and buffers at a steady rate, so that headroom was resident memory no one used. The large
 * corpus's batch restore from SQLite peaked at ~250 MiB, ~190 MiB with these, and took up to ~14% longer (more
 * collections): the 200 MiB goal bought with time; since workers read the payloads themselves, ~0.15 s of CPU in 4 s.
 * A SQLite store: no slower since `Packer.hashPackAll`. The host passes them to every pool of workers it starts
 * (a store's too): V8 dropped them for the whole process once a worker started, and a store's young generation grew to
 * 32 MiB instead of 2 (100,000 files: 219 MiB instead of 182, on every backend 213-228 instead of 177-193). The
 * servers' drivers allocate more per row, so they pay more: of 100,000 small files, a batch restore from PostgreSQL
 * peaked at 214 instead of 359-422 MiB for 8-15% more time (MariaDB 219-230 against 377-384 MiB, 5-10%), a store at
 * 222 instead of 286 MiB, no slower (MariaDB 232 against 312 MiB, 7% slower).
 */
export const heapFlags: ReadonlyArray<string> = ["--heap-growing-percent=50", "--semi-space-growth-factor=1"]

/**
 * A pool of `size` worker threads, each one lane, setting `v8Flags` as they start and reading payloads through
 * `direct` when given (`copy`); terminated when the scope closes.
 */
export const workers = (
  size: number,
  options: {
    readonly v8Flags?: ReadonlyArray<string> | undefined
    readonly direct?: DirectReads | undefined
    /** Workers reading the archive may set `--expose-gc` (process-wide) to free read buffers early. Default: no. */
    readonly exposeGc?: boolean | undefined
  } = {}
): Effect.Effect<RestoreWriter, never, Scope.Scope> =>
  Effect.suspend(() => {
    const setup = setupOf(options.direct, options.exposeGc ?? false, true)
    return Effect.map(WorkerPool.make(program, setup, size, options.v8Flags), (pool) => writerOf(pool, setup))
  })
