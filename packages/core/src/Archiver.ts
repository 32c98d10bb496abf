/**
 * Store: walk the inputs (streamed) → in groups of `groupSize` files: hash each (a small one hashed and compressed
 * from one read) → one transaction for the group (other content is read again, compressed and checked against its
 * hash inside it, only for content the archive lacks) →
 * evidence ARCHIVE per file → optionally replace each original with its tombstone stub → `onStored`. A failure or a
 * stop leaves the groups before it committed (with their stubs and evidence) and its own group as if never started: no
 * stub, no item (a group whose evidence fails is withdrawn), unless a stub failed; stubs are written only after their
 * group's commit, atomically, and only over files that did not change.
 * Memory is bounded by the group, not by the tree. Hashing and compression run in a `Packer`: worker threads for
 * large stores, this thread for small ones.
 */
import { Context, Data, Duration, Effect, Either, Exit, Layer, Metric, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  type Archived,
  type ArchiveEntry,
  ArchiveStore,
  defaultInlineLimit,
  type Kind,
  legalHoldValue,
  PayloadSourceError,
  type Reason,
  type StoreError
} from "./ArchiveStore.js"
import * as Chunking from "./Chunking.js"
import * as Codec from "./Codec.js"
import * as Evidence from "./Evidence.js"
import * as FileOps from "./FileOps.js"
import * as Guarded from "./Guarded.js"
import * as Hash from "./Hash.js"
import * as Metrics from "./Metrics.js"
import * as Mime from "./Mime.js"
import * as Packer from "./Packer.js"
import * as Tombstone from "./Tombstone.js"
import * as Walk from "./Walk.js"
import * as WorkerPool from "./WorkerPool.js"

export interface StoreOptions<E = never> {
  readonly repo: string
  readonly actor: string
  readonly commit: string
  readonly reason: Reason
  readonly kind: Kind
  readonly tags?: ReadonlyArray<string>
  readonly metadata?: Readonly<Record<string, string>>
  readonly mime?: string | undefined
  readonly language?: string | undefined
  readonly writeStub?: boolean
  /** Recorded paths are made relative to this folder when the input is inside it (default: as given). */
  readonly cwd: string
  /** Content up to this many bytes is stored inline, where the original tool reads it (config `store.inline_limit`). */
  readonly inlineLimit?: number | undefined
  /** Files never archived though the walk reaches them: the store's own outputs, written while it runs. */
  readonly exclude?: ReadonlyArray<string> | undefined
  /**
   * Files the host keeps, skipped (and reported) where the walk finds them, besides the archive's own and the evidence
   * log: its configuration file, a key file.
   */
  readonly guarded?: ReadonlyArray<Guarded.Guarded> | undefined
  /** Worker threads hashing and compressing (`WorkerPool.Count`): default 0, all in this thread; `"auto"` as the CLI. */
  readonly workers?: WorkerPool.Count | undefined
  /** V8 flags each worker thread sets as it starts (`Batch.Options.workerV8Flags`). */
  readonly workerV8Flags?: ReadonlyArray<string> | undefined
  /** Files per transaction (`defaultGroupSize`). */
  readonly groupSize?: number | undefined
  /**
   * Told each group once it is committed (and its stubs written). When given, the report's `stored` stays empty:
   * the caller keeps what it needs, and a store of a million files holds one group.
   */
  readonly onStored?: ((group: ReadonlyArray<StoredFile>) => Effect.Effect<void, E>) | undefined
  /**
   * Told each file the walk passes over, as it does. When given, the report's `skipped` stays empty: a store run again
   * over a million stubs holds none of them.
   */
  readonly onSkipped?: ((file: SkippedFile) => void) | undefined
}

/**
 * Files up to this size are hashed and compressed from one read, in one message to a worker instead of two (the
 * main thread's messages were ~12 % of a small-file store); content the archive already holds is compressed for
 * nothing, by otherwise idle workers. A group holds at most 1,000 × 16 KiB of it.
 */
const onePass = 16 * 1024

/** Files per transaction: big enough that per-transaction costs vanish, small enough that a group's records stay small. */
export const defaultGroupSize = 1000

export interface StoredFile {
  /** Absolute path of the original. */
  readonly source: string
  /** The path recorded in the archive (POSIX). */
  readonly path: string
  readonly tombstone: string
  readonly sha256: string
  readonly size_bytes: number
  readonly compressed_size: number
  readonly deduplicated: boolean
  readonly stub: boolean
}

export interface SkippedFile {
  readonly path: string
  readonly reason: string
}

export interface StoreReport {
  readonly repo: string
  /** Every stored file, unless `onStored` took them group by group. */
  readonly stored: ReadonlyArray<StoredFile>
  readonly skipped: ReadonlyArray<SkippedFile>
  readonly count: number
  readonly deduplicated: number
  readonly bytes: number
}

export class InputError extends Data.TaggedError("InputError")<{ readonly path: string; readonly problem: string }> {
  override get message() {
    return `${this.path}: ${this.problem}`
  }
}

export class StubError extends Data.TaggedError("StubError")<
  { readonly path: string; readonly detail: string; readonly report: StoreReport }
> {
  override get message() {
    return `${this.path}: archived, but the stub was not written: ${this.detail}`
  }
}

/** Metadata keys the tool records itself: a user's value would overwrite the system's own record of the file. */
export const reservedMetadataKeys: ReadonlyArray<string> = [
  "sha256",
  "size_bytes",
  "compressed_size",
  "compression",
  "mime_type",
  "language",
  "file_mode"
]

const reservedHint: Readonly<Record<string, string>> = { mime_type: " (use --mime)", language: " (use --language)" }

/** What is wrong with one user metadata entry, if anything: a reserved key, or a `legal_hold` that is not a boolean. */
export const metadataProblem = (key: string, value: string): string | undefined => {
  // Set on an object it sets the prototype, not a key: the entry was dropped without a word.
  if (key === "__proto__") return "'__proto__' cannot be a metadata key"
  if (reservedMetadataKeys.includes(key)) {
    return `'${key}' is reserved: the archive records it itself${reservedHint[key] ?? ""}`
  }
  if (key === "legal_hold" && legalHoldValue(value) === undefined) {
    return `legal_hold '${value}' is not a boolean (use true/false, yes/no, on/off or 1/0)`
  }
  return undefined
}

const checkMetadata = (metadata: Readonly<Record<string, string>>): Effect.Effect<void, InputError> => {
  for (const [key, value] of Object.entries(metadata)) {
    const problem = metadataProblem(key, value)
    if (problem !== undefined) return Effect.fail(new InputError({ path: `metadata ${key}=${value}`, problem }))
  }
  return Effect.void
}

export type StoreFailure =
  | InputError
  | StoreError
  | PayloadSourceError
  | Evidence.EvidenceError
  | StubError
  | WorkerPool.WorkerFailed

interface Candidate {
  readonly source: string
  readonly recorded: string
  readonly size: number
  readonly mode: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly nlink: number
  /** The file's identity when walked: a stub replaces only that file, not one reached through a folder swapped since. */
  readonly dev: number
  readonly ino: number
  /** Its real path (the top's, resolved once, and the names walked): only the file there is read and replaced. */
  readonly real: string
  readonly sha256: string
}

/** What the packer reads of a walked file. */
const sourceOf = (c: Omit<Candidate, "sha256">): Packer.Source => ({
  file: c.source,
  display: c.recorded,
  size: c.size,
  dev: c.dev,
  ino: c.ino,
  real: c.real
})

const posix = (p: string) => p.split(path.sep).join("/")

const notUtf8 = "name is not valid UTF-8, so no path reaches it; not archived (rename it to store it)"

/**
 * Expands files and directories (recursively, sorted), streamed: a folder's names are held while the walk is in it.
 * Symbolic links are never followed or archived: they are reported as skipped (to `skip`), as are sockets, FIFOs
 * and devices, and files that already are tombstone stubs. Every input is checked before the first file is yielded:
 * a missing one stores nothing.
 */
export const walk = (
  inputs: ReadonlyArray<string>,
  cwd: string,
  skip: (file: SkippedFile) => void,
  exclude: ReadonlySet<string> = new Set(),
  guarded: ReadonlyArray<Guarded.Guarded> = []
): Effect.Effect<Iterable<Omit<Candidate, "sha256">>, InputError> =>
  Effect.suspend(() => {
    const tops = inputs.map((input) => {
      const absolute = path.resolve(cwd, input)
      const relative = path.relative(cwd, absolute)
      const recorded = relative === ""
        ? "."
        : relative.startsWith("..") || path.isAbsolute(relative)
        ? posix(absolute)
        : posix(relative)
      return { absolute, recorded }
    })
    for (const { absolute, recorded } of tops) {
      try {
        const st = fs.lstatSync(absolute)
        if (st.isDirectory()) fs.readdirSync(absolute)
      } catch (e) {
        return Effect.fail(
          new InputError({
            path: recorded,
            problem: (e as NodeJS.ErrnoException).code === "ENOENT"
              ? "no such file or directory"
              : FileOps.describeErrno(e)
          })
        )
      }
    }
    // The kept files there are now, by identity (a hard link to the database has another name); others by name.
    const keptInodes = Guarded.byInode(guarded)
    // Only overlapping inputs (`a a/x`) can reach a file twice: a single input needs no record of what it reached.
    const seen = inputs.length > 1 ? new Set<string>() : undefined
    const visit = function*(
      absolute: string,
      recorded: string,
      real: string,
      top: boolean
    ): Generator<Omit<Candidate, "sha256">> {
      let st: fs.Stats
      try {
        st = fs.lstatSync(absolute)
      } catch (e) {
        if (top) {
          throw new InputError({
            path: recorded,
            problem: (e as NodeJS.ErrnoException).code === "ENOENT"
              ? "no such file or directory"
              : FileOps.describeErrno(e)
          })
        }
        skip({ path: recorded, reason: FileOps.describeErrno(e) })
        return
      }
      if (st.isSymbolicLink()) return void skip({ path: recorded, reason: "symbolic link (not followed)" })
      if (st.isDirectory()) {
        if (!top && Walk.isSkippedFolder(path.basename(absolute))) return
        let names: Array<string>
        let undecodable: ReadonlyMap<string, ReadonlyArray<Buffer>>
        try {
          const entries = Walk.entries(absolute)
          names = entries.map((entry) => entry.name)
          undecodable = Walk.undecodable(absolute, entries)
        } catch (e) {
          if (top) throw new InputError({ path: recorded, problem: FileOps.describeErrno(e) })
          return void skip({ path: recorded, reason: FileOps.describeErrno(e) })
        }
        // Listed where it was found, not through a link swapped in for it (or above it) since its lstat.
        let listed: string
        try {
          listed = fs.realpathSync.native(absolute)
        } catch (e) {
          return void skip({ path: recorded, reason: FileOps.describeErrno(e) })
        }
        if (listed !== real) {
          return void skip({
            path: recorded,
            reason: `replaced by a link while it was walked (it leads to ${listed}); not followed`
          })
        }
        for (const name of new Set(names)) {
          const sub = (shown: string) => recorded === "." ? shown : `${recorded}/${shown}`
          const raws = undecodable.get(name)
          if (raws !== undefined) {
            // Reported as it is on disk: its name read as UTF-8 would be another path, which holds nothing.
            for (const raw of raws) skip({ path: sub(Walk.showBytes(raw)), reason: notUtf8 })
            // Unless a name holding U+FFFD itself (in UTF-8) is there too: a file like any other.
            if (!Walk.reachable(absolute, name)) continue
          }
          yield* visit(path.join(absolute, name), sub(name), path.join(real, name), false)
        }
        return
      }
      if (!st.isFile()) {
        return void skip({ path: recorded, reason: "not a regular file (socket, FIFO or device)" })
      }
      // The store's own outputs (its manifest and that manifest's temporary) appear while the walk runs.
      if (exclude.has(absolute)) return
      if (FileOps.isTemporary(path.basename(absolute))) {
        return void skip({ path: recorded, reason: "a temporary file a killed run of codex left; not archived" })
      }
      // The archive's own files: a stub written over the database destroyed the archive.
      const kept = keptInodes.get(`${st.dev}:${st.ino}`) ?? Guarded.find(absolute, guarded, true)
      if (kept !== undefined) return void skip({ path: recorded, reason: `${kept.what}; never archived` })
      if (seen !== undefined) {
        if (seen.has(absolute)) {
          return
        }
        seen.add(absolute)
      }
      if (Tombstone.isStubFile(absolute, st.size)) {
        return void skip({ path: recorded, reason: "already a tombstone stub" })
      }
      const { ctimeMs, dev, ino, mtimeMs, nlink, size } = st
      yield { source: absolute, recorded, size, mode: st.mode & 0o777, mtimeMs, ctimeMs, nlink, dev, ino, real }
    }
    return Effect.succeed({
      *[Symbol.iterator]() {
        for (const { absolute, recorded } of tops) {
          // Resolved once (the kernel's bytes as Node reads them, as `/proc/self/fd` will give them back): below it, a
          // real path is its parent's and the name walked (links are never followed).
          let real: string
          try {
            real = FileOps.realPathOf(absolute)
          } catch (e) {
            throw new InputError({ path: recorded, problem: `cannot resolve its folder: ${FileOps.describeErrno(e)}` })
          }
          yield* visit(absolute, recorded, real, true)
        }
      }
    })
  })

/** Every file `walk` finds, in memory. */
export const collect = (
  inputs: ReadonlyArray<string>,
  cwd: string
): Effect.Effect<
  { files: ReadonlyArray<Omit<Candidate, "sha256">>; skipped: ReadonlyArray<SkippedFile> },
  InputError
> => {
  const skipped: Array<SkippedFile> = []
  return Effect.flatMap(
    walk(inputs, cwd, (file) => void skipped.push(file)),
    (files) =>
      Effect.try({
        try: () => ({ files: Array.from(files), skipped }),
        catch: (e) => (e instanceof InputError ? e : new InputError({ path: inputs.join(", "), problem: String(e) }))
      })
  )
}

/**
 * The compressed content of a large file as a stream of chunks; fails if the bytes no longer hash to `sha256`, or as
 * soon as they run past `size` (a file that grew is not read to its end).
 */
export const payloadOf = (
  source: Packer.Source,
  sha256: string,
  compress: (raw: Uint8Array) => Effect.Effect<Uint8Array, PayloadSourceError>,
  concurrency: number
): Stream.Stream<Uint8Array, PayloadSourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const { display, size } = source
    const fd = yield* Effect.acquireRelease(
      Effect.try({
        // The file walked, where it was walked (as the Packer reads small files).
        try: () => FileOps.openWalked(source),
        catch: (e) =>
          (e as NodeJS.ErrnoException).code === "ECHANGED"
            ? Packer.fileChanged(display)
            : new PayloadSourceError({ path: display, detail: FileOps.describeErrno(e) })
      }),
      (fd) => Effect.sync(() => fs.closeSync(fd))
    )
    const hasher = Hash.incremental()
    const split = Chunking.splitter(fd)
    let done = false
    let read = 0
    const changed = Effect.fail(Option.some(Packer.fileChanged(display)))
    const next = Effect.suspend((): Effect.Effect<Uint8Array, Option.Option<PayloadSourceError>> => {
      if (done) return Effect.fail(Option.none())
      let piece: Chunking.Piece
      try {
        piece = split()
      } catch (e) {
        return Effect.fail(Option.some(new PayloadSourceError({ path: display, detail: FileOps.describeErrno(e) })))
      }
      if (piece.chunk !== undefined) {
        read += piece.chunk.length
        if (read > size) return changed
        hasher.update(piece.chunk)
      }
      done = piece.end
      if (done && (read !== size || hasher.digest() !== sha256)) return changed
      return piece.chunk === undefined ? Effect.fail(Option.none()) : Effect.succeed(piece.chunk)
    })
    // Read and hashed in order here; compressed out of order (in worker threads), emitted in order.
    return Stream.repeatEffectOption(next).pipe(Stream.mapEffect(compress, { concurrency }))
  }))

export class Archiver extends Context.Tag("@codex-archive/core/Archiver")<Archiver, {
  readonly store: <E = never>(
    inputs: ReadonlyArray<string>,
    options: StoreOptions<E>
  ) => Effect.Effect<StoreReport, StoreFailure | E>
}>() {}

/** A source file that could not be read is bad input, named by its recorded path (the payload error's `path`). */
const inputError = (e: PayloadSourceError) => Effect.fail(new InputError({ path: e.path, problem: e.detail }))

export const make = Effect.gen(function*() {
  const store = yield* ArchiveStore
  const evidence = yield* Evidence.Evidence

  /**
   * `held` if a transaction that reached its commit, then failed or was stopped, is in the archive. An empty
   * transaction goes first: after a failed commit, SQLite's one connection can still be inside the old transaction,
   * where `locate` would see rows that are never committed, and stubs written for them would lose the files.
   */
  const committed = (held: ReadonlyArray<Archived>) =>
    Effect.gen(function*() {
      if (Either.isLeft(yield* Effect.either(store.archive([])))) return undefined
      const found = yield* Effect.option(store.locate(held.map((a) => a.tombstone)))
      return Option.isSome(found) && found.value.size === held.length ? held : undefined
    })

  /** A group's ARCHIVE lines; a group whose lines cannot be written is taken back, so no item is left without one. */
  const recordArchived = (
    archived: ReadonlyArray<Archived>,
    options: Pick<StoreOptions, "actor" | "reason" | "commit">
  ) =>
    Effect.tapError(
      evidence.append(...archived.map((a) =>
        Evidence.archive({
          actor: options.actor,
          repo: a.repo,
          path: a.path,
          tombstone: a.tombstone,
          sha256: a.sha256,
          size: a.sizeBytes,
          compressed_size: a.compressedSize,
          reason: options.reason,
          commit: options.commit
        })
      )),
      (e) =>
        Effect.catchAll(store.withdraw(archived.map((a) => a.itemId)), (w) =>
          Effect.fail(
            new Evidence.EvidenceError({
              file: e.file,
              detail: `${e.detail}; the ${archived.length} items of this group stay in the archive without their ` +
                `lines (taking them back failed: ${w.message})`
            })
          ))
    )

  const storeFiles = <E>(inputs: ReadonlyArray<string>, options: StoreOptions<E>) =>
    Effect.gen(function*() {
      yield* checkMetadata(options.metadata ?? {})
      // Cannot fail: forName fails only for an unknown name, and the default codec is a known one.
      const codec = yield* Effect.orDie(Codec.forName(Codec.defaultCodec))
      // Inline up to the configured limit, and never past what the backend can take in one value.
      const inlineLimit = Math.min(options.inlineLimit ?? defaultInlineLimit, store.inlineCap)
      const groupSize = Math.max(1, options.groupSize ?? defaultGroupSize)
      const skipped: Array<SkippedFile> = []
      const exclude = new Set((options.exclude ?? []).map((file) => path.resolve(options.cwd, file)))
      const skip = options.onSkipped ?? ((file: SkippedFile) => void skipped.push(file))
      const guarded = [...Guarded.ofArchive(store.files, evidence.file), ...(options.guarded ?? [])]
      const files = (yield* walk(inputs, options.cwd, skip, exclude, guarded))[Symbol.iterator]()
      const take = Effect.try({
        try: () => {
          const group: Array<Omit<Candidate, "sha256">> = []
          for (let r = files.next();; r = files.next()) {
            if (r.done === true) break
            group.push(r.value)
            if (group.length === groupSize) break
          }
          return group
        },
        catch: (e) => (e instanceof InputError
          ? e
          : new InputError({ path: inputs.join(", "), problem: FileOps.describeErrno(e) }))
      })
      const collected: Array<StoredFile> | undefined = options.onStored === undefined ? [] : undefined
      let count = 0
      let deduplicated = 0
      let bytes = 0
      const report = (): StoreReport => ({
        repo: options.repo,
        stored: collected ?? [],
        skipped,
        count,
        deduplicated,
        bytes
      })
      let group = yield* take
      // Many files (a full first group): hash and compress them in worker threads while this thread writes the database.
      const workers = WorkerPool.countFor(
        options.workers,
        group.length === groupSize ? Number.MAX_SAFE_INTEGER : group.length
      )
      const packer = workers > 0 ? yield* Packer.workers(workers, options.workerV8Flags) : Packer.inThread()
      while (group.length > 0) {
        // Small files are hashed and packed in one call for the group (a fiber each cost the main thread ~10 KB);
        // larger ones are hashed here and read again, in chunks, as the database takes them.
        const small = (file: Omit<Candidate, "sha256">) => file.size <= Math.min(onePass, inlineLimit)
        const packs = yield* packer.hashPackAll(group.filter(small).map(sourceOf), codec.name).pipe(
          Effect.catchTag("PayloadSourceError", inputError)
        )
        const hashes = yield* Effect.forEach(
          group.filter((file) => !small(file)),
          (file) => Effect.catchTag(packer.hash(sourceOf(file)), "PayloadSourceError", inputError),
          { concurrency: 64 }
        )
        let [p, h] = [0, 0]
        const candidates: Array<Candidate & { readonly packed?: Uint8Array }> = group.map((file) => {
          if (!small(file)) return { ...file, sha256: hashes[h++]! }
          const { data, sha256 } = packs[p++]!
          return { ...file, sha256, packed: data }
        })
        const entries: Array<ArchiveEntry> = candidates.map((c) => {
          const guessed = Mime.guess(c.source)
          return {
            sha256: c.sha256,
            sizeBytes: c.size,
            codec: codec.name,
            payload: c.packed !== undefined
              ? { _tag: "Whole", read: Effect.succeed(c.packed) }
              : c.size <= inlineLimit
              ? { _tag: "Whole", read: packer.pack(sourceOf(c), c.sha256, codec.name) }
              : {
                _tag: "Chunks",
                stream: payloadOf(
                  sourceOf(c),
                  c.sha256,
                  (raw) => packer.compress(raw, codec.name, c.recorded),
                  packer.concurrency
                )
              },
            item: {
              repo: options.repo,
              path: c.recorded,
              commitSha: options.commit,
              kind: options.kind,
              reason: options.reason,
              language: options.language ?? guessed.language,
              mimeType: options.mime ?? guessed.mime,
              archivedBy: options.actor,
              tags: options.tags ?? [],
              extraMetadata: { ...options.metadata, file_mode: c.mode.toString(8).padStart(4, "0") },
              context: { commit: options.commit, repo: options.repo, path: c.recorded, tool: "codex-archive" }
            }
          }
        })
        // A stop (Ctrl-C) leaves the group whole or not at all: once committed, its evidence lines, stubs and
        // `onStored` are finished before the stop is obeyed.
        yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            // The transaction can be stopped (it rolls back) until it commits. A stop landing during its commit is seen
            // only after it, and a connection lost during it leaves the outcome unknown: when the transaction reached
            // its commit and the call failed, the archive says whether the group is in; if it is, it is finished.
            let holding: ReadonlyArray<Archived> | undefined
            const exit = yield* Effect.exit(restore(store.archive(entries, {
              beforeCommit: (archived) => Effect.sync(() => void (holding = archived))
            })))
            const archived = Exit.isSuccess(exit)
              ? exit.value
              : holding === undefined
              ? undefined
              : yield* committed(holding)
            if (archived === undefined) return yield* exit
            yield* recordArchived(archived, options)
            yield* Metric.incrementBy(Metrics.stored, archived.length)
            yield* Metric.incrementBy(
              Metrics.storedBytes,
              archived.reduce((n, a) => n + a.sizeBytes, 0)
            )
            const stored: Array<StoredFile> = archived.map((a, i) => ({
              source: candidates[i]!.source,
              path: a.path,
              tombstone: a.tombstone,
              sha256: a.sha256,
              size_bytes: a.sizeBytes,
              compressed_size: a.compressedSize,
              deduplicated: a.deduplicated,
              stub: false
            }))
            const account = () => {
              for (const file of stored) {
                collected?.push(file)
                count++
                if (file.deduplicated) {
                  deduplicated++
                }
                bytes += file.size_bytes
              }
            }
            if (options.writeStub) {
              for (const [i, file] of stored.entries()) {
                const c = candidates[i]!
                const stubFailed = (detail: string) => {
                  account()
                  return new StubError({ path: file.path, detail, report: report() })
                }
                const text = Tombstone.render({
                  path: file.path,
                  archivedBy: options.actor,
                  reason: options.reason,
                  tombstone: file.tombstone,
                  sha256: file.sha256,
                  archivedAt: archived[i]!.archivedAt,
                  commit: options.commit
                })
                // Only the file walked and read, unchanged since, in the folder walked.
                const refused = yield* Effect.try({
                  try: () => FileOps.replaceUnchanged({ ...sourceOf(c), ...c }, Buffer.from(text, "utf8"), c.mode),
                  catch: (e) => stubFailed(FileOps.describeErrno(e))
                })
                if (refused !== undefined) return yield* stubFailed(refused)
                stored[i] = { ...file, stub: true }
              }
            }
            account()
            if (options.onStored) yield* options.onStored(stored)
            if (Exit.isInterrupted(exit)) return yield* exit
          })
        )
        group = yield* take
      }
      return report()
    }).pipe(
      Effect.timed,
      Effect.tap(([elapsed]) => Metric.update(Metrics.storeDuration, Duration.toMillis(elapsed))),
      Effect.map(([, report]) => report),
      Effect.scoped,
      Effect.withSpan("Archiver.store")
    )

  return Archiver.of({ store: storeFiles })
})

export const layer = Layer.effect(Archiver, make)
