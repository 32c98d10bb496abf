/**
 * Prune requests and dual-control purge (spec §1.6), and the removal of orphaned chunk rows (`gc`), each recorded in
 * the database and the evidence log.
 */
import { Effect } from "effect"
import { ArchiveStore, type PurgeRequest } from "./ArchiveStore.js"
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

/**
 * Removes chunk rows no chunked artifact claims (another tool's purge or re-store left them, with their bytes); with
 * `dryRun` only counts them. One GC evidence line either way.
 */
export const collectGarbage = (options: { readonly actor: string; readonly dryRun: boolean }) =>
  Effect.gen(function*() {
    const store = yield* ArchiveStore
    const found = options.dryRun ? yield* store.orphanChunks : yield* store.removeOrphanChunks
    yield* (yield* Evidence.Evidence).append(Evidence.gc({
      actor: options.actor,
      dry_run: options.dryRun,
      orphan_chunk_rows: found.rows,
      bytes: found.bytes,
      artifacts: found.artifacts
    }))
    return found
  }).pipe(Effect.withSpan("Retention.collectGarbage"))
