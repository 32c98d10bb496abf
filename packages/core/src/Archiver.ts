/**
 * Store: walk the inputs → hash each regular file → one transaction for the whole set (content is read again,
 * compressed and checked against its hash inside it, only for content the archive lacks) → evidence ARCHIVE per
 * file → optionally replace each original with its tombstone stub. A failure anywhere before the commit leaves the
 * database as it was; stubs are written only after the commit, atomically, and only over files that did not change.
 * Hashing and compression run in a `Packer`: worker threads for large stores, this thread for small ones.
 */
import { Context, Data, Duration, Effect, Layer, Metric, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  type ArchiveEntry,
  ArchiveStore,
  chunkSize,
  defaultInlineLimit,
  type Kind,
  legalHoldValue,
  PayloadSourceError,
  type Reason,
  type StoreError
} from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import * as Evidence from "./Evidence.js"
import * as FileOps from "./FileOps.js"
import * as Hash from "./Hash.js"
import * as Metrics from "./Metrics.js"
import * as Mime from "./Mime.js"
import * as Packer from "./Packer.js"
import * as Tombstone from "./Tombstone.js"
import * as Walk from "./Walk.js"
import * as WorkerPool from "./WorkerPool.js"

export interface StoreOptions {
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
  /** Worker threads hashing and compressing (`WorkerPool.Count`): default 0, all in this thread; `"auto"` as the CLI. */
  readonly workers?: WorkerPool.Count | undefined
}

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
  readonly stored: ReadonlyArray<StoredFile>
  readonly skipped: ReadonlyArray<SkippedFile>
}

export class InputError extends Data.TaggedError("InputError")<{ readonly path: string; readonly problem: string }> {
  override get message() {
    return `${this.path}: ${this.problem}`
  }
}

export class StubError extends Data.TaggedError("StubError")<{ readonly path: string; readonly detail: string; readonly report: StoreReport }> {
  override get message() {
    return `${this.path}: archived, but the stub was not written: ${this.detail}`
  }
}

/** Metadata keys the tool records itself: a user's value would overwrite the system's own record of the file. */
export const reservedMetadataKeys: ReadonlyArray<string> = [
  "sha256", "size_bytes", "compressed_size", "compression", "mime_type", "language", "file_mode"
]

const reservedHint: Readonly<Record<string, string>> = { mime_type: " (use --mime)", language: " (use --language)" }

/** What is wrong with one user metadata entry, if anything: a reserved key, or a `legal_hold` that is not a boolean. */
export const metadataProblem = (key: string, value: string): string | undefined => {
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

export type StoreFailure = InputError | StoreError | PayloadSourceError | Evidence.EvidenceError | StubError | WorkerPool.WorkerFailed

interface Candidate {
  readonly source: string
  readonly recorded: string
  readonly size: number
  readonly mode: number
  readonly mtimeMs: number
  readonly sha256: string
}

const posix = (p: string) => p.split(path.sep).join("/")

/**
 * Expands files and directories (recursively, sorted). Symbolic links are never followed or archived: they are
 * reported as skipped, as are sockets, FIFOs and devices, and files that already are tombstone stubs.
 */
export const collect = (inputs: ReadonlyArray<string>, cwd: string): Effect.Effect<{ files: ReadonlyArray<Omit<Candidate, "sha256">>; skipped: ReadonlyArray<SkippedFile> }, InputError> =>
  Effect.try({
    try: () => {
      const files: Array<Omit<Candidate, "sha256">> = []
      const skipped: Array<SkippedFile> = []
      const seen = new Set<string>()
      const visit = (absolute: string, recorded: string, top: boolean) => {
        let st: fs.Stats
        try {
          st = fs.lstatSync(absolute)
        } catch (e) {
          if (top) throw new InputError({ path: recorded, problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : FileOps.describeErrno(e) })
          skipped.push({ path: recorded, reason: FileOps.describeErrno(e) })
          return
        }
        if (st.isSymbolicLink()) return void skipped.push({ path: recorded, reason: "symbolic link (not followed)" })
        if (st.isDirectory()) {
          if (!top && Walk.isSkippedFolder(path.basename(absolute))) return
          let names: Array<string>
          try {
            names = Walk.entries(absolute).map((entry) => entry.name)
          } catch (e) {
            if (top) throw new InputError({ path: recorded, problem: FileOps.describeErrno(e) })
            return void skipped.push({ path: recorded, reason: FileOps.describeErrno(e) })
          }
          for (const name of names) visit(path.join(absolute, name), recorded === "." ? name : `${recorded}/${name}`, false)
          return
        }
        if (!st.isFile()) return void skipped.push({ path: recorded, reason: "not a regular file (socket, FIFO or device)" })
        if (seen.has(absolute)) return
        seen.add(absolute)
        if (Tombstone.isStubFile(absolute, st.size)) return void skipped.push({ path: recorded, reason: "already a tombstone stub" })
        files.push({ source: absolute, recorded, size: st.size, mode: st.mode & 0o777, mtimeMs: st.mtimeMs })
      }
      for (const input of inputs) {
        const absolute = path.resolve(cwd, input)
        const relative = path.relative(cwd, absolute)
        const recorded = relative === "" ? "." : relative.startsWith("..") || path.isAbsolute(relative) ? posix(absolute) : posix(relative)
        visit(absolute, recorded, true)
      }
      return { files, skipped }
    },
    catch: (e) => (e instanceof InputError ? e : new InputError({ path: inputs.join(", "), problem: String(e) }))
  })

/** The compressed content of a large file as a stream of chunks; fails if the bytes no longer hash to `sha256`. */
export const payloadOf = (
  file: string,
  display: string,
  sha256: string,
  compress: (raw: Uint8Array) => Effect.Effect<Uint8Array, PayloadSourceError>,
  concurrency: number
): Stream.Stream<Uint8Array, PayloadSourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const fd = yield* Effect.acquireRelease(
      Effect.try({ try: () => fs.openSync(file, "r"), catch: (e) => new PayloadSourceError({ path: display, detail: FileOps.describeErrno(e) }) }),
      (fd) => Effect.sync(() => fs.closeSync(fd))
    )
    const hasher = Hash.incremental()
    let done = false
    let emitted = 0
    const next = Effect.suspend((): Effect.Effect<Uint8Array, Option.Option<PayloadSourceError>> => {
      if (done) return Effect.fail(Option.none())
      const buf = Buffer.allocUnsafe(chunkSize)
      let filled = 0
      try {
        let n: number
        while (filled < chunkSize && (n = fs.readSync(fd, buf, filled, chunkSize - filled, null)) > 0) filled += n
      } catch (e) {
        return Effect.fail(Option.some(new PayloadSourceError({ path: display, detail: FileOps.describeErrno(e) })))
      }
      if (filled < chunkSize) done = true
      const raw = buf.subarray(0, filled)
      hasher.update(raw)
      if (done && hasher.digest() !== sha256) {
        return Effect.fail(Option.some(new PayloadSourceError({ path: display, detail: "file changed while it was being stored; nothing was archived" })))
      }
      // An empty file still has one (empty) piece of content; a file ending on a chunk boundary has no extra one.
      if (filled === 0 && emitted > 0) return Effect.fail(Option.none())
      emitted++
      return Effect.succeed(raw)
    })
    // Read and hashed in order here; compressed out of order (in worker threads), emitted in order.
    return Stream.repeatEffectOption(next).pipe(Stream.mapEffect(compress, { concurrency }))
  }))

export class Archiver extends Context.Tag("@codex-archive/core/Archiver")<Archiver, {
  readonly store: (inputs: ReadonlyArray<string>, options: StoreOptions) => Effect.Effect<StoreReport, StoreFailure>
}>() {}

export const make = Effect.gen(function*() {
  const store = yield* ArchiveStore
  const evidence = yield* Evidence.Evidence

  const storeFiles = (inputs: ReadonlyArray<string>, options: StoreOptions) =>
    Effect.gen(function*() {
      yield* checkMetadata(options.metadata ?? {})
      // Cannot fail: forName fails only for an unknown name, and the default codec is a known one.
      const codec = yield* Effect.orDie(Codec.forName(Codec.defaultCodec))
      // Inline up to the configured limit, and never past what the backend can take in one value.
      const inlineLimit = Math.min(options.inlineLimit ?? defaultInlineLimit, store.inlineCap)
      const { files, skipped } = yield* collect(inputs, options.cwd)
      // Many files: hash and compress them in worker threads while this thread writes the database.
      const workers = WorkerPool.countFor(options.workers, files.length)
      const packer = workers > 0 ? yield* Packer.workers(workers) : Packer.inThread()
      const candidates: Array<Candidate> = yield* Effect.forEach(files, (file) =>
        packer.hash(file.source, file.recorded).pipe(
          Effect.catchTag("PayloadSourceError", (e) => Effect.fail(new InputError({ path: file.recorded, problem: e.detail }))),
          Effect.map((sha256) => ({ ...file, sha256 }))
        ), { concurrency: 64 })
      const entries: Array<ArchiveEntry> = candidates.map((c) => {
        const guessed = Mime.guess(c.source)
        return {
          sha256: c.sha256,
          sizeBytes: c.size,
          codec: codec.name,
          payload: c.size <= inlineLimit
            ? { _tag: "Whole", read: packer.pack(c.source, c.recorded, c.sha256, codec.name) }
            : { _tag: "Chunks", stream: payloadOf(c.source, c.recorded, c.sha256, (raw) => packer.compress(raw, codec.name, c.recorded), packer.concurrency) },
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
      const archived = entries.length === 0 ? [] : yield* store.archive(entries)
      yield* evidence.append(...archived.map((a): Evidence.Record => ({
        action: "ARCHIVE",
        actor: options.actor,
        repo: a.repo,
        path: a.path,
        tombstone: a.tombstone,
        sha256: a.sha256,
        size: a.sizeBytes,
        compressed_size: a.compressedSize,
        reason: options.reason,
        commit: options.commit
      })))
      yield* Metric.incrementBy(Metrics.stored, archived.length)
      yield* Metric.incrementBy(Metrics.storedBytes, archived.reduce((n, a) => n + a.sizeBytes, 0))
      const stored: Array<StoredFile> = archived.map((a, i) => ({
        source: candidates[i]!.source, path: a.path, tombstone: a.tombstone, sha256: a.sha256, size_bytes: a.sizeBytes,
        compressed_size: a.compressedSize, deduplicated: a.deduplicated, stub: false
      }))
      if (!options.writeStub) return { repo: options.repo, stored, skipped }
      for (const [i, file] of stored.entries()) {
        const c = candidates[i]!
        const report = () => ({ repo: options.repo, stored, skipped })
        const st = yield* Effect.try({
          try: () => fs.statSync(c.source, { throwIfNoEntry: false }),
          catch: (e) => new StubError({ path: file.path, detail: FileOps.describeErrno(e), report: report() })
        })
        if (!st || st.size !== c.size || st.mtimeMs !== c.mtimeMs) {
          return yield* new StubError({ path: file.path, detail: "the file changed after it was archived; left as it is", report: report() })
        }
        const text = Tombstone.render({
          path: file.path, archivedBy: options.actor, reason: options.reason, tombstone: file.tombstone,
          sha256: file.sha256, archivedAt: archived[i]!.archivedAt, commit: options.commit
        })
        yield* Effect.try({
          try: () => FileOps.writeFileAtomic(c.source, text, c.mode),
          catch: (e) => new StubError({ path: file.path, detail: FileOps.describeErrno(e), report: report() })
        })
        stored[i] = { ...file, stub: true }
      }
      return { repo: options.repo, stored, skipped }
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
