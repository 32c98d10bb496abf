/**
 * Prune requests and dual-control purge (spec §1.6), and the removal of orphaned chunk rows (`gc`), each recorded in
 * the database and the evidence log.
 */
import { Effect } from "effect"
import { ArchiveStore, type OrphanChunks, type PurgeRequest } from "./ArchiveStore.js"
import * as Evidence from "./Evidence.js"

export const requestPrune = (tombstone: string, actor: string, reason: string) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    yield* store.requestPrune(tombstone, actor, reason)
    yield* (yield* Evidence.Evidence).append(Evidence.pruneRequest({ actor, tombstone, reason }))
  })

/** Both approvals are recorded; with `apply`, the payload is scrubbed unless another item still shares it. */
export const purge = (request: PurgeRequest) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const outcome = yield* store.approveDelete(request)
    yield* (yield* Evidence.Evidence).append(Evidence.deleteApproved({
      tombstone: request.tombstone,
      primary: request.primary,
      secondary: request.secondary,
      reason: request.reason,
      apply: request.apply,
      blob_scrubbed: outcome.blobScrubbed,
      shared_references: outcome.refCount > 1 ? outcome.refCount - 1 : undefined
    }))
    return outcome
  })

/** Artifact ids per GC evidence line (and per removal transaction): the line, and memory, stay bounded. */
export const gcGroupSize = 1000

/** What a `gc` run found (or removed), counted: the ids went out a group at a time, to `onGroup` and the evidence. */
export interface Collected {
  readonly rows: number
  readonly bytes: number
  readonly artifacts: number
}

/**
 * Removes chunk rows no chunked artifact claims (another tool's purge or re-store left them, with their bytes); with
 * `dryRun` only counts them. A group of at most `groupSize` artifacts at a time, each group its own transaction and
 * its own GC evidence line (`part` 1, 2, ...; a run that finds nothing writes one line of zeros). A failure midway
 * leaves the groups before it removed and recorded.
 */
export const collectGarbage = (options: {
  readonly actor: string
  readonly dryRun: boolean
  readonly groupSize?: number | undefined
  /** Each group's orphans, as it is done (the CLI streams their ids out). */
  readonly onGroup?: ((group: OrphanChunks) => Effect.Effect<void>) | undefined
}) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const evidence = yield* Evidence.Evidence
    const size = options.groupSize ?? gcGroupSize
    let totals: Collected = { rows: 0, bytes: 0, artifacts: 0 }
    let after: string | undefined
    for (let part = 1;; part++) {
      const found = options.dryRun
        ? yield* store.orphanChunkPage(after, size)
        : yield* store.removeOrphanChunkPage(after, size)
      if (found.artifacts.length === 0 && part > 1) break
      yield* evidence.append(Evidence.gc({
        actor: options.actor,
        dry_run: options.dryRun,
        part,
        orphan_chunk_rows: found.rows,
        bytes: found.bytes,
        artifacts: found.artifacts
      }))
      if (options.onGroup !== undefined) yield* options.onGroup(found)
      totals = {
        rows: totals.rows + found.rows,
        bytes: totals.bytes + found.bytes,
        artifacts: totals.artifacts + found.artifacts.length
      }
      if (found.artifacts.length < size) break
      after = found.artifacts.at(-1)
    }
    return totals
  }).pipe(Effect.withSpan("Retention.collectGarbage"))
