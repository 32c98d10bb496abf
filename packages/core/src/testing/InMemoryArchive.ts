/**
 * An `ArchiveStore` held in memory, with the SQL store's semantics (dedup by sha256, tombstones, events, legal hold,
 * dual-control purge, inline and chunked payloads, compressed sizes, typed errors), for hosts' tests. It passes the
 * same conformance suite as the real backends.
 */
import { Effect, Layer, Stream } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  type Archived,
  type ArchiveEntry,
  type ArchiveOptions,
  ArchiveStore,
  type ArtifactSummary,
  type ItemDetail,
  type Layout,
  legalHoldRefusal,
  type ListedItem,
  type ListFilter,
  type Located,
  NotAnArchive,
  type OrphanChunks,
  type PayloadSourceError,
  type PurgeRequest,
  recordedSha256,
  type RestoreRecord,
  SameApprover,
  sameApprover,
  StoreError,
  TombstoneNotFound
} from "../ArchiveStore.js"
import { stringify as canonicalJson } from "../CanonicalJson.js"
import { chunkedCompression, chunkedMarker, codecOfCompression } from "../Chunking.js"
import * as CodexArchive from "../CodexArchive.js"
import type * as Restorer from "../Restorer.js"
import * as Retry from "../Retry.js"
import { legalHoldOf } from "../SqlArchiveStore.js"
import * as Timestamp from "../Timestamp.js"
import * as Tombstone from "../Tombstone.js"
import * as Uuid from "../Uuid.js"

interface ArtifactRow {
  readonly id: string
  readonly sha256: string
  sizeBytes: number
  compression: string
  readonly mimeType: string
  storageDriver: "db" | "chunked" | "object"
  blob: Uint8Array | null
  objectUrl: string | null
  chunks: Array<Uint8Array>
}

interface ItemRow {
  readonly id: string
  readonly seq: number
  readonly repo: string
  readonly path: string
  readonly commitSha: string
  readonly language: string | null
  readonly kind: string
  readonly reason: string
  readonly artifactId: string
  readonly metadata: Record<string, unknown>
  readonly archivedBy: string
  readonly archivedAt: string
  readonly tombstone: string
  readonly legalHold: boolean
  readonly deleteAfter: string | null
  restoredAt: string | null
  readonly tags: ReadonlyArray<string>
}

interface EventRow {
  readonly seq: number
  readonly itemId: string
  readonly action: string
  readonly actor: string
  readonly context: unknown
  readonly createdAt: string
}

/** Everything one in-memory archive holds; shared by every store made over it (two "connections" to one database). */
export interface State {
  readonly artifacts: Map<string, ArtifactRow>
  readonly bySha: Map<string, string>
  readonly items: Map<string, ItemRow>
  readonly byTombstone: Map<string, string>
  readonly events: Array<EventRow>
  seq: number
}

export const emptyState = (): State => ({
  artifacts: new Map(),
  bySha: new Map(),
  items: new Map(),
  byTombstone: new Map(),
  events: [],
  seq: 0
})

export interface Options {
  /** Where the archive "lives", for messages and evidence (default `memory:`). */
  readonly location?: string
  /** The archive to open: share one between stores to see each other's writes (default: a new, empty one). */
  readonly state?: State
  /**
   * Fault injection: called before every operation (`archive`, `locate`, `fetch`, `record_restore`, `list`, `show`,
   * `prune_request`, `purge`, `artifacts`, `artifact_page`, `orphan_chunks`, `orphan_chunk_page`, `gc`, `gc_page`,
   * `schema_version`, `probe`); a `StoreError` it returns fails that try (retried by the policy when `transient`), as a
   * database failure would.
   */
  readonly fault?: (operation: string) => StoreError | undefined
}

const marker = new TextEncoder().encode(chunkedMarker)
const copy = (b: Uint8Array) => Uint8Array.from(b)

const layoutOf = (
  a: ArtifactRow
): Layout => (a.storageDriver === "chunked" ? "chunked" : a.blob !== null ? "inline" : "purged")
const compressedOf = (a: ArtifactRow): number =>
  a.storageDriver === "chunked" ? a.chunks.reduce((n, c) => n + c.length, 0) : a.blob?.length ?? 0
const modeOf = (metadata: Record<string, unknown>): number | null => {
  const mode = metadata.file_mode
  return typeof mode === "string" && /^0?[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : null
}
/** A JSON round trip with sorted keys, as the SQL store writes metadata and contexts and reads them back. */
const asStored = <A>(value: A): A => JSON.parse(canonicalJson(value))

/** An in-memory `ArchiveStore`; every operation runs under the retry policy like the SQL store's. */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const policy = yield* Retry.RetryPolicy
    const state = options.state ?? emptyState()
    // One writer at a time, like SQLite: a transaction sees a settled archive and commits whole.
    const lock = yield* Effect.makeSemaphore(1)

    const unit = <A, E>(
      operation: string,
      effect: Effect.Effect<A, E>,
      write = false
    ): Effect.Effect<A, E | StoreError> => {
      const body = Effect.suspend((): Effect.Effect<A, E | StoreError> => {
        const fault = options.fault?.(operation)
        return fault !== undefined ? Effect.fail(fault) : effect
      })
      return policy.retry(operation, write ? lock.withPermits(1)(body) : body).pipe(
        Effect.withSpan(`ArchiveStore.${operation}`),
        Effect.annotateLogs("backend", "memory")
      )
    }

    const findItem = (tombstone: string): Effect.Effect<ItemRow, TombstoneNotFound> => {
      const id = state.byTombstone.get(tombstone)
      const item = id === undefined ? undefined : state.items.get(id)
      return item === undefined ? Effect.fail(new TombstoneNotFound({ tombstone })) : Effect.succeed(item)
    }

    const addEvent = (itemId: string, action: string, actor: string, context: unknown, createdAt: string) =>
      void state.events.push({ seq: state.seq++, itemId, action, actor, context: asStored(context), createdAt })

    // ---- archive: staged, then committed whole, so a failed payload leaves nothing behind --------------------------

    const archive = (entries: ReadonlyArray<ArchiveEntry>, options?: ArchiveOptions) =>
      unit(
        "archive",
        Effect.gen(function*() {
          const staged = new Map<string, ArtifactRow>()
          const written: Array<{ artifactId: string; compressed: number; reused: boolean }> = []
          const at: Array<string> = []
          for (const entry of entries) {
            const now = yield* Timestamp.now
            const known = staged.get(entry.sha256) ?? state.artifacts.get(state.bySha.get(entry.sha256) ?? "")
            if (known !== undefined && layoutOf(known) !== "purged") {
              written.push({ artifactId: known.id, compressed: compressedOf(known), reused: true })
            } else {
              // New content, or a purged artifact re-hydrated under its own id (spec §1.4).
              const next: ArtifactRow = known !== undefined
                ? { ...known, chunks: [] }
                : {
                  id: randomUUID(),
                  sha256: entry.sha256,
                  sizeBytes: entry.sizeBytes,
                  compression: entry.codec,
                  mimeType: entry.item.mimeType,
                  storageDriver: "db",
                  blob: null,
                  objectUrl: null,
                  chunks: []
                }
              next.sizeBytes = entry.sizeBytes
              next.objectUrl = null
              if (entry.payload._tag === "Whole") {
                next.blob = copy(yield* entry.payload.read)
                next.storageDriver = "db"
                next.compression = entry.codec
              } else {
                next.chunks = [...(yield* Stream.runCollect(entry.payload.stream))].map(copy)
                next.blob = marker
                next.storageDriver = "chunked"
                next.compression = chunkedCompression(entry.codec)
              }
              staged.set(entry.sha256, next)
              written.push({ artifactId: next.id, compressed: compressedOf(next), reused: false })
            }
            at.push(now)
          }
          for (const a of staged.values()) {
            state.artifacts.set(a.id, a)
            state.bySha.set(a.sha256, a.id)
          }
          return entries.map((entry, i): Archived => {
            const item = entry.item
            const w = written[i]!
            const metadata: Record<string, unknown> = {
              sha256: entry.sha256,
              size_bytes: entry.sizeBytes,
              compressed_size: w.compressed,
              compression: entry.codec,
              mime_type: item.mimeType,
              language: item.language,
              ...item.extraMetadata
            }
            const legalHold = legalHoldOf(metadata.legal_hold)
            delete metadata.legal_hold
            if (legalHold) metadata.legal_hold = true
            const row: ItemRow = {
              id: Uuid.v7(),
              seq: state.seq++,
              repo: item.repo,
              path: item.path,
              commitSha: item.commitSha,
              language: item.language,
              kind: item.kind,
              reason: item.reason,
              artifactId: w.artifactId,
              metadata: asStored(metadata),
              archivedBy: item.archivedBy,
              archivedAt: at[i]!,
              tombstone: Tombstone.make(),
              legalHold,
              deleteAfter: metadata.delete_after === undefined || metadata.delete_after === null
                ? null
                : String(metadata.delete_after),
              restoredAt: null,
              tags: [...new Set(item.tags)]
            }
            state.items.set(row.id, row)
            state.byTombstone.set(row.tombstone, row.id)
            addEvent(row.id, "ARCHIVE", item.archivedBy, item.context, at[i]!)
            return {
              tombstone: row.tombstone,
              itemId: row.id,
              artifactId: w.artifactId,
              sha256: entry.sha256,
              sizeBytes: entry.sizeBytes,
              compressedSize: w.compressed,
              archivedAt: at[i]!,
              deduplicated: w.reused,
              repo: item.repo,
              path: item.path
            }
          })
        }).pipe(Effect.tap((archived) => options?.beforeCommit?.(archived) ?? Effect.void)),
        true
      ) as Effect.Effect<ReadonlyArray<Archived>, StoreError | PayloadSourceError>

    const withdraw = (itemIds: ReadonlyArray<string>) =>
      unit(
        "withdraw",
        Effect.sync(() => {
          const gone = new Set(itemIds)
          for (const id of gone) {
            const item = state.items.get(id)
            if (item === undefined) continue
            state.items.delete(id)
            state.byTombstone.delete(item.tombstone)
          }
          const kept = state.events.filter((e) => !gone.has(e.itemId))
          state.events.splice(0, state.events.length, ...kept)
        }),
        true
      )

    // ---- restore ------------------------------------------------------------------------------------------------------

    const locate = (tombstones: ReadonlyArray<string>) =>
      unit(
        "locate",
        Effect.sync(() => {
          const found = new Map<string, Located>()
          for (const tombstone of tombstones) {
            const item = state.items.get(state.byTombstone.get(tombstone) ?? "")
            const a = item && state.artifacts.get(item.artifactId)
            if (item === undefined || a === undefined) continue
            found.set(tombstone, {
              tombstone,
              itemId: item.id,
              repo: item.repo,
              path: item.path,
              artifactId: a.id,
              sha256: a.sha256,
              sizeBytes: a.sizeBytes,
              compressedSize: compressedOf(a),
              codec: codecOfCompression(a.compression),
              layout: layoutOf(a),
              mode: modeOf(item.metadata),
              recordedSha256: recordedSha256(item.metadata)
            })
          }
          return found as ReadonlyMap<string, Located>
        })
      )

    const inlinePayloads = (artifactIds: ReadonlyArray<string>) =>
      unit(
        "fetch",
        Effect.sync(() => {
          const out = new Map<string, Uint8Array>()
          for (const id of artifactIds) {
            const blob = state.artifacts.get(id)?.blob
            if (blob != null) out.set(id, copy(blob))
          }
          return out as ReadonlyMap<string, Uint8Array>
        })
      )

    const chunks = (artifactId: string): Stream.Stream<Uint8Array, StoreError> =>
      Stream.unwrap(
        unit("fetch", Effect.sync(() => Stream.fromIterable((state.artifacts.get(artifactId)?.chunks ?? []).map(copy))))
      )

    const recordRestores = (records: ReadonlyArray<RestoreRecord>) =>
      records.length === 0 ? Effect.void : unit(
        "record_restore",
        Effect.suspend(() => {
          // All or nothing, as the SQL stores' one transaction: a record the event table would refuse (its actor is
          // NOT NULL) changes nothing.
          if (records.some((r) => typeof r.actor !== "string")) {
            return Effect.fail(
              new StoreError({
                operation: "record_restore",
                backend: "memory",
                detail: "event.actor is null",
                transient: false
              })
            )
          }
          for (const r of records) {
            const item = state.items.get(r.itemId)
            if (item === undefined) continue
            item.restoredAt = r.at
            addEvent(r.itemId, "RESTORE", r.actor, {}, r.at)
          }
          return Effect.void
        }),
        true
      )

    // ---- queries and retention --------------------------------------------------------------------------------------

    const newestFirst = (a: ItemRow, b: ItemRow) =>
      a.archivedAt < b.archivedAt ? 1 : a.archivedAt > b.archivedAt ? -1 : b.seq - a.seq

    const listed = (i: ItemRow): ListedItem => ({
      id: i.id,
      repo: i.repo,
      path: i.path,
      commit_sha: i.commitSha,
      reason: i.reason,
      archived_by: i.archivedBy,
      archived_at: i.archivedAt,
      tombstone_id: i.tombstone
    })

    const listPage = (filter: ListFilter, after: string | undefined) =>
      unit(
        "list",
        Effect.sync(() => {
          const ordered = [...state.items.values()]
            .filter((i) =>
              (filter.repo === undefined || i.repo === filter.repo) &&
              (filter.since === undefined || i.archivedAt >= filter.since)
            )
            // Newest first; ties in second-precision timestamps by insertion order (spec §2.3).
            .sort(newestFirst)
          const last = after === undefined ? undefined : state.items.get(after)
          // Keyset as the SQL stores page: what sorts after the last item listed, which itself may be filtered out.
          const rest = after === undefined
            ? ordered
            : last === undefined
            ? []
            : ordered.filter((i) => newestFirst(last, i) < 0)
          return rest.slice(0, Math.max(0, filter.limit)).map(listed)
        })
      )

    const list = (filter: ListFilter) => listPage(filter, undefined)

    const show = (tombstone: string) =>
      unit(
        "show",
        Effect.map(findItem(tombstone), (item): ItemDetail => {
          const a = state.artifacts.get(item.artifactId)
          return {
            ...listed(item),
            language: item.language,
            kind: item.kind,
            artifact_id: item.artifactId,
            metadata: asStored(item.metadata),
            legal_hold: item.legalHold,
            delete_after: item.deleteAfter,
            restored_at: item.restoredAt,
            tags: [...item.tags].sort(),
            artifact: {
              content_sha256: a?.sha256 ?? "",
              size_bytes: a?.sizeBytes ?? 0,
              compressed_size: a ? compressedOf(a) : 0,
              compression: a?.compression ?? null,
              mime_type: a?.mimeType ?? "",
              storage_driver: a?.storageDriver ?? "",
              object_url: a?.objectUrl ?? null,
              layout: a ? layoutOf(a) : "purged"
            },
            events: state.events.filter((e) => e.itemId === item.id)
              .sort((x, y) => (x.createdAt < y.createdAt ? -1 : x.createdAt > y.createdAt ? 1 : x.seq - y.seq))
              .map((e) => ({ action: e.action, actor: e.actor, context: asStored(e.context), created_at: e.createdAt }))
          }
        })
      )

    const requestPrune = (tombstone: string, actor: string, reason: string) =>
      unit(
        "prune_request",
        Effect.gen(function*() {
          const item = yield* findItem(tombstone)
          addEvent(item.id, "PRUNE_REQUEST", actor, { reason }, yield* Timestamp.now)
        }),
        true
      )

    const approveDelete = (request: PurgeRequest) =>
      sameApprover(request.primary, request.secondary)
        ? Effect.fail(new SameApprover({ actor: request.primary }))
        : unit(
          "purge",
          Effect.gen(function*() {
            const item = yield* findItem(request.tombstone)
            const refusal = legalHoldRefusal(request.tombstone, item.legalHold, item.metadata)
            if (refusal !== undefined) return yield* refusal
            const refCount = [...state.items.values()].filter((i) => i.artifactId === item.artifactId).length
            const blobScrubbed = request.apply && refCount <= 1
            const at = yield* Timestamp.now
            for (const [role, actor] of [["primary", request.primary], ["secondary", request.secondary]] as const) {
              addEvent(item.id, "DELETE_APPROVED", actor, {
                role,
                reason: request.reason,
                ...(request.apply ? { apply_requested: true, blob_scrubbed: blobScrubbed } : {}),
                ...(request.apply && refCount > 1 ? { shared_references: refCount - 1 } : {})
              }, at)
            }
            const a = state.artifacts.get(item.artifactId)
            // The original's purge: no bytes, driver 'object', the purge marker; its chunks go with it.
            if (blobScrubbed && a !== undefined) {
              a.blob = null
              a.chunks = []
              a.storageDriver = "object"
              a.objectUrl = a.objectUrl ?? "purged://dual-control"
            }
            return { blobScrubbed, refCount }
          }),
          true
        )

    const summaries = (requested?: ReadonlyArray<string>) =>
      Effect.sync(() => {
        const wanted = requested === undefined ? undefined : new Set(requested)
        const byId = new Map<string, Array<string>>()
        const digests = new Map<string, Array<{ tombstone: string; sha256: string }>>()
        if (wanted === undefined) { for (const id of state.artifacts.keys()) byId.set(id, []) }
        for (const i of state.items.values()) {
          if (wanted !== undefined && !wanted.has(i.tombstone)) continue
          byId.set(i.artifactId, [...(byId.get(i.artifactId) ?? []), i.tombstone])
          const sha256 = recordedSha256(i.metadata)
          if (sha256 !== undefined) {
            digests.set(i.artifactId, [...(digests.get(i.artifactId) ?? []), { tombstone: i.tombstone, sha256 }])
          }
        }
        const scrubbed = new Set(
          state.events
            .filter((e) =>
              e.action === "DELETE_APPROVED" && (e.context as { blob_scrubbed?: unknown }).blob_scrubbed === true
            )
            .map((e) => state.items.get(e.itemId)?.artifactId)
        )
        return [...byId].flatMap(([id, tombstones]): Array<ArtifactSummary> => {
          const a = state.artifacts.get(id)
          if (a === undefined) return []
          const layout = layoutOf(a) === "chunked" && a.chunks.length === 0 ? "purged" : layoutOf(a)
          const marked = a.storageDriver === "object" && (a.objectUrl ?? "").startsWith("purged://")
          return [{
            artifactId: id,
            sha256: a.sha256,
            sizeBytes: a.sizeBytes,
            compressedSize: compressedOf(a),
            codec: codecOfCompression(a.compression),
            layout,
            tombstones,
            itemDigests: digests.get(id) ?? [],
            ...(layout === "purged" ? { purgeRecorded: scrubbed.has(id) || marked } : {})
          }]
        }).sort((x, y) => (x.sha256 < y.sha256 ? -1 : x.sha256 > y.sha256 ? 1 : 0))
      })
    const artifacts = (requested?: ReadonlyArray<string>) => unit("artifacts", summaries(requested))
    const artifactPage = (after: string | undefined, limit: number) =>
      unit(
        "artifact_page",
        Effect.map(summaries(), (all) => all.filter((a) => after === undefined || a.sha256 > after).slice(0, limit))
      )

    // Chunks belong to their artifact here: none can be left behind by another tool.
    const none: OrphanChunks = { rows: 0, bytes: 0, artifacts: [] }

    return ArchiveStore.of({
      backend: "memory",
      inlineCap: Number.MAX_SAFE_INTEGER,
      location: options.location ?? "memory:",
      archive,
      withdraw,
      locate,
      inlinePayloads,
      chunks,
      recordRestores,
      list,
      listPage,
      show,
      requestPrune,
      approveDelete,
      artifacts,
      artifactPage,
      orphanChunks: unit("orphan_chunks", Effect.succeed(none)),
      removeOrphanChunks: unit("gc", Effect.succeed(none), true),
      orphanChunkPage: () => unit("orphan_chunk_page", Effect.succeed(none)),
      removeOrphanChunkPage: () => unit("gc_page", Effect.succeed(none), true),
      schemaVersion: unit("schema_version", Effect.succeed(0)),
      probe: unit("probe", Effect.sync(() => Math.min(1, state.items.size)))
    })
  })

/** A fresh, empty in-memory archive, no retries: what most host tests want. */
export const layer: Layer.Layer<ArchiveStore> = Layer.effect(ArchiveStore, make()).pipe(Layer.provide(Retry.none))

/** An in-memory archive with options (a shared `state`, fault injection); retried by the host's policy. */
export const layerWith = (options: Options): Layer.Layer<ArchiveStore, never, Retry.RetryPolicy> =>
  Layer.effect(ArchiveStore, make(options))

/**
 * Archives by name, as a server holds databases: `memory://<name>` URLs open the same archive while it exists; `null`
 * is an empty database, not an archive yet.
 */
const named = new Map<string, State | null>()

/** A new, empty database under a new `memory://` URL (an archive once a layer creates it); gone when the scope closes. */
export const fresh = Effect.acquireRelease(
  Effect.sync(() => {
    const url = `memory://${randomUUID()}`
    named.set(url, null)
    return url
  }),
  (url) => Effect.sync(() => void named.delete(url))
)

/**
 * The archive at a `memory://` URL, as a backend layer: like a database, an unknown one is `NotAnArchive` unless
 * `create` asks for it.
 */
export const layerAt = (
  options: { readonly url: string; readonly create: boolean }
): Layer.Layer<ArchiveStore, NotAnArchive, Retry.RetryPolicy> =>
  Layer.effect(
    ArchiveStore,
    Effect.gen(function*() {
      let state = named.get(options.url)
      if (state === undefined || state === null) {
        if (!options.create) {
          return yield* new NotAnArchive({
            location: options.url,
            detail: "no in-memory archive by that name (create it first)"
          })
        }
        state = emptyState()
        named.set(options.url, state)
      }
      return yield* make({ location: options.url, state })
    })
  )

/**
 * Everything a host program needs, over a fresh in-memory archive: `CodexArchive.layer`'s services (store, Archiver,
 * Restorer, evidence written to `evidenceDir`, default: a temporary folder removed when the layer is released,
 * metrics), no retries, default settings.
 */
export const services = (
  options: Options & { readonly evidenceDir?: string; readonly restore?: Partial<Restorer.Settings> } = {}
) =>
  Layer.unwrapScoped(Effect.map(
    options.evidenceDir !== undefined ? Effect.succeed(options.evidenceDir) : Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "codex-evidence-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (evidenceDir) =>
      CodexArchive.layer({
        store: layerWith(options),
        evidenceDir,
        retry: {
          enabled: false,
          max_attempts: 1,
          initial_delay: 0,
          max_delay: 0,
          multiplier: 1,
          jitter: 0,
          seed: null
        },
        restore: options.restore
      })
  ))
