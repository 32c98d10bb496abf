/**
 * `verify`: re-reads stored content, decompresses it and re-hashes it against the recorded SHA-256, reporting every
 * mismatch (not just the first). Purged artifacts are listed apart: their bytes are gone by design, when a purge was
 * approved; bytes gone without one are a problem.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import { ArchiveStore, type ArtifactSummary, type StoreError, TombstoneNotFound } from "./ArchiveStore.js"
import { chunkSize } from "./Chunking.js"
import * as Codec from "./Codec.js"
import * as Evidence from "./Evidence.js"
import * as Hash from "./Hash.js"
import * as RestorePlan from "./RestorePlan.js"

export interface Problem {
  readonly artifact_id: string
  readonly sha256: string
  readonly tombstones: ReadonlyArray<string>
  readonly problem: string
}

export interface Report {
  readonly checked: number
  readonly ok: number
  readonly purged: number
  readonly bytes: number
  readonly problems: ReadonlyArray<Problem>
  /** Chunk rows no chunked artifact claims (a whole-archive check only): garbage for `gc`, not a content mismatch. */
  readonly orphan_chunks?: { readonly rows: number; readonly bytes: number; readonly artifacts: number } | undefined
}

/**
 * Decodes one artifact and checks its SHA-256 and size: a problem is a value (a malformed payload or chunk row too), a
 * database failure an error.
 */
export const check = (
  store: ArchiveStore["Type"],
  artifact: ArtifactSummary
): Effect.Effect<{ bytes: number; problem?: string }, StoreError> =>
  Effect.gen(function*() {
    const codec = Codec.forName(artifact.codec)
    if (codec._tag === "Left") return { bytes: 0, problem: codec.left.message }
    const oversized = Codec.oversized(codec.right.name, artifact)
    if (oversized !== undefined) return { bytes: 0, problem: oversized.message }
    const hasher = Hash.incremental()
    let bytes = 0
    const pieces = artifact.layout === "inline"
      ? Stream.fromEffect(
        Effect.map(store.inlinePayloads([artifact.artifactId]), (m) => m.get(artifact.artifactId) ?? new Uint8Array())
      )
      : store.chunks(artifact.artifactId)
    // Never past the recorded size, and a chunk never past the chunk size: a bomb is a problem, not an allocation.
    const limit = () =>
      artifact.layout === "inline" ? artifact.sizeBytes : Math.min(chunkSize, artifact.sizeBytes - bytes)
    // In pieces: a payload's recorded size, however large, is never memory here.
    const decoded = yield* Effect.either(Stream.runForEach(pieces, (compressed) =>
      Codec.decompressPieces(codec.right, compressed, limit(), (raw) => {
        hasher.update(raw)
        bytes += raw.length
      })))
    if (decoded._tag === "Left") {
      // A row the database returned but that is not a payload is this artifact's problem; a failing database is not.
      if (decoded.left._tag === "StoreError" && decoded.left.malformedRow !== true) {
        return yield* decoded.left
      }
      if (decoded.left._tag === "StoreError") {
        return { bytes, problem: `malformed row: ${decoded.left.detail}` }
      }
      return { bytes, problem: decoded.left.message }
    }
    const actual = hasher.digest()
    if (actual !== artifact.sha256) {
      return { bytes, problem: `sha256 mismatch: content hashes to ${actual}` }
    }
    if (bytes !== artifact.sizeBytes) {
      return { bytes, problem: `size mismatch: ${bytes} bytes, recorded ${artifact.sizeBytes}` }
    }
    return { bytes }
  })

/** Artifacts read per page in a whole-archive verify: memory is bounded by a page, not by the archive. */
export const defaultPageSize = 500

/**
 * Every artifact, a page at a time (keyset by each page's last `pageKey`, its digest or SQLite's rowid, so each page
 * is an indexed range scan); or those of the given tombstones, which the command line bounds.
 */
const artifactsOf = (
  store: ArchiveStore["Type"],
  tombstones: ReadonlyArray<string> | undefined,
  pageSize: number
): Stream.Stream<ArtifactSummary, StoreError> =>
  tombstones !== undefined
    ? Stream.fromIterableEffect(store.artifacts(tombstones))
    : Stream.paginateChunkEffect(undefined as string | undefined, (after) =>
      Effect.map(store.artifactPage(after, pageSize), (page) => {
        const last = page.at(-1)
        const key = last?.pageKey ?? last?.sha256
        // A page ending on the key it started after ends the walk rather than repeat it (a store whose keys do not
        // read back as they sort; SQLite's pages by rowid, which do).
        return [
          Chunk.unsafeFromArray(page),
          page.length < pageSize || key === undefined || key === after ? Option.none() : Option.some(key)
        ]
      }))

/** Verifies every artifact, or those behind the given tombstones; appends one VERIFY evidence line. */
export const verify = (options: {
  readonly tombstones?: ReadonlyArray<string> | undefined
  readonly actor: string
  /** Artifacts per page of a whole-archive verify (default `defaultPageSize`). */
  readonly pageSize?: number | undefined
}) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const evidence = yield* Evidence.Evidence
    const problems: Array<Problem> = []
    const found = new Set<string>()
    let seen = 0
    let ok = 0
    let purged = 0
    let bytes = 0
    const visit = (artifact: ArtifactSummary) =>
      Effect.gen(function*() {
        seen++
        if (options.tombstones !== undefined) { for (const t of artifact.tombstones) found.add(t) }
        // An item whose metadata records other content than its artifact holds restores someone else's file.
        const mislabeled = (artifact.itemDigests ?? []).flatMap(({ sha256, tombstone }) => {
          const wrong = RestorePlan.mismatch({ ...artifact, tombstone, recordedSha256: sha256 })
          return wrong === undefined ? [] : [wrong]
        })
        for (const wrong of mislabeled) {
          problems.push({
            artifact_id: artifact.artifactId,
            sha256: artifact.sha256,
            tombstones: [wrong.tombstone],
            problem: wrong.message
          })
        }
        if (artifact.malformed === undefined && artifact.layout === "purged" && artifact.purgeRecorded !== false) {
          purged++
          return
        }
        const problem = artifact.malformed !== undefined
          ? `malformed row: ${artifact.malformed}`
          : artifact.layout === "purged"
          ? "payload missing without a purge record"
          : yield* Effect.map(check(store, artifact), (result) => {
            bytes += result.bytes
            return result.problem
          })
        if (problem === undefined) {
          if (mislabeled.length === 0) ok++
        } else {
          const { artifactId: artifact_id, sha256, tombstones } = artifact
          problems.push({ artifact_id, sha256, tombstones, problem })
        }
      })
    yield* Stream.runForEach(artifactsOf(store, options.tombstones, options.pageSize ?? defaultPageSize), visit)
    // Vouch only for what was checked: a tombstone the archive does not hold is an error, not `checked: 0`.
    const unknown = (options.tombstones ?? []).filter((t) => !found.has(t))
    if (unknown.length > 0) return yield* new TombstoneNotFound({ tombstone: unknown.join(", ") })
    const orphans = options.tombstones === undefined ? yield* store.orphanChunks : undefined
    const orphan_chunks = orphans && { rows: orphans.rows, bytes: orphans.bytes, artifacts: orphans.artifacts.length }
    if (orphans !== undefined && orphans.rows > 0) {
      yield* Effect.logWarning(
        `${orphans.rows} orphaned chunk rows (${orphans.bytes} bytes) of ${orphans.artifacts.length} artifacts: run \`codex archive gc\``
      )
    }
    const report: Report = { checked: seen - purged, ok, purged, bytes, problems, orphan_chunks }
    yield* evidence.append(Evidence.verify({
      actor: options.actor,
      checked: report.checked,
      ok,
      purged,
      mismatches: problems.length,
      orphan_chunks: orphans?.rows
    }))
    return report
  }).pipe(Effect.withSpan("Verifier.verify"))
