/**
 * The `ArchiveStore` port, written once over `@effect/sql`'s generic `SqlClient`. Dialect branches appear only where
 * SQL really differs (types of booleans and timestamps, insertion order). Every method is one retried unit: a
 * transaction is retried whole, never a statement inside it, so retries never nest.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Chunk, Effect, Fiber, Layer, Option, Queue, Schedule, Stream, type Take } from "effect"
import { randomUUID } from "node:crypto"
import {
  type Archived,
  NotAnArchive,
  type ArchiveEntry,
  type PayloadSourceError,
  ArchiveStore,
  type ArtifactSummary,
  chunkedCompression,
  chunkedMarker,
  chunkSize,
  codecOfCompression,
  type ItemDetail,
  type Layout,
  LegalHold,
  legalHoldValue,
  type ListedItem,
  type Located,
  type OrphanChunks,
  type Payload,
  SameApprover,
  StoreError,
  TombstoneNotFound
} from "./ArchiveStore.js"
import * as CanonicalJson from "./CanonicalJson.js"
import type { BackendName } from "./Config.js"
import * as Migrations from "./Migrations.js"
import * as Redact from "./Redact.js"
import * as Retry from "./Retry.js"
import * as Timestamp from "./Timestamp.js"
import * as Tombstone from "./Tombstone.js"
import * as Uuid from "./Uuid.js"

/** Items per `IN (...)` list: well under every dialect's parameter limit. */
const group = 500

/** The artifact an archived entry points to: its id, compressed size, and whether it was already there. */
interface StoredArtifact {
  readonly artifactId: string
  readonly compressed: number
  readonly reused: boolean
}
/** Payloads read ahead while storing: bounded by count and by raw size; a large file by its first chunks. */
const prefetchItems = 64
const prefetchBytes = 16 * 1024 * 1024
const chunksAhead = 4
/** Chunks fetched per round trip when streaming a large artifact. */
const chunkWindow = 4

type Row = Record<string, unknown>

const toBool = (v: unknown): boolean => v === true || v === 1 || v === "1" || v === "t" || v === "true"
const toNum = (v: unknown): number => (typeof v === "bigint" ? Number(v) : Number(v ?? 0))
const toBytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : Buffer.from(v as ArrayBuffer))

/** Dates come back as `Date` (pg, mysql) or text (sqlite, legacy rows); all leave here as `YYYY-MM-DDTHH:MM:SSZ`. */
export const toTimestamp = (v: unknown): string | null => {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return Timestamp.format(v.getTime())
  const s = String(v)
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(s) ? `${s.replace(" ", "T")}Z` : s
}

/** Compact JSON with sorted keys, as the original stores metadata and event contexts. */
const canonicalJson = CanonicalJson.stringify

const modeOf = (metadata: unknown): number | null => {
  const mode = (metadata as { file_mode?: unknown } | null)?.file_mode
  return typeof mode === "string" && /^0?[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : null
}

const parseJson = (v: unknown): unknown => {
  if (typeof v !== "string") return v ?? {}
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/** `legal_hold` from metadata, coerced as the original does: bool/number truthiness or 1/true/yes/on. */
export const legalHoldOf = (v: unknown): boolean => legalHoldValue(v) ?? false

export const make = (options: {
  readonly backend: BackendName
  readonly location: string
  readonly secrets?: ReadonlyArray<string> | undefined
  /** The backend's migrations: the schema version is read against them. */
  readonly migrations: ReadonlyArray<Migrations.Migration>
  /** An embedded database's file and driver module, when other threads may open it to read payloads. */
  readonly direct?: { readonly driver: string; readonly file: string } | undefined
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const policy = yield* Retry.RetryPolicy
    const { backend } = options

    const fail = (operation: string) => (error: SqlError.SqlError) =>
      new StoreError({
        operation,
        backend,
        detail: Redact.secrets(describeSqlError(error), options.secrets ?? []),
        transient: Retry.isTransientCause(error)
      })

    /** One retried, error-mapped unit of work. */
    const isSqlError = (e: unknown): e is SqlError.SqlError => (e as { _tag?: string } | null)?._tag === "SqlError"
    const unit = <A, E, R>(operation: string, effect: Effect.Effect<A, E | SqlError.SqlError, R>) =>
      policy.retry(
        operation,
        Effect.catchIf(
          // @effect/sql dies when a rollback or commit fails (a server restart mid-transaction): that is a store fault too.
          Effect.catchSomeDefect(effect, (d) => (isSqlError(d) ? Option.some(Effect.fail(d)) : Option.none())),
          isSqlError,
          (e) => Effect.fail(fail(operation)(e))
        )
      ).pipe(Effect.withSpan(`ArchiveStore.${operation}`), Effect.annotateLogs("backend", backend)) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | StoreError, R>

    const isPg = backend === "postgres"
    const isMysql = backend === "mariadb"
    // Timestamps are written as text in the spec's format; MariaDB's TIMESTAMP wants it without `T`/`Z` (UTC session).
    const ts = (iso: string) => (isMysql ? iso.replace("T", " ").replace("Z", "") : iso)
    const bool = (b: boolean) => (isPg ? b : b ? 1 : 0)
    // Ties in second-precision timestamps break by insertion order (spec §2.3): SQLite's rowid, else our `seq` column.
    const itemOrder = sql.literal(backend === "sqlite" ? "rowid" : "seq")
    const json = (value: unknown) => (isPg ? sql`${canonicalJson(value)}::jsonb` : sql`${canonicalJson(value)}`)
    // PostgreSQL's UUID columns reject other text outright; such a tombstone simply names no item.
    const lookupable = (tombstone: string) => !isPg || uuidShape.test(tombstone)

    // A chunked artifact keeps a marker in `blob_bytes` (so the original never calls it purged): the driver decides.
    const layoutOf = (row: Row): Layout =>
      row.storage_driver === "chunked" ? "chunked" : row.has_blob !== null && toBool(row.has_blob) ? "inline" : "purged"
    const codecOf = (v: unknown): string | null => (v === null || v === undefined ? null : codecOfCompression(String(v)))
    const marker = new TextEncoder().encode(chunkedMarker)
    /** Stored bytes of the artifact aliased `t`: its chunks when chunked (its `blob_bytes` is only a marker). */
    const compressedOf = (t: string) =>
      sql.literal(`CASE WHEN ${t}.storage_driver = 'chunked' THEN COALESCE((SELECT SUM(LENGTH(c.blob_bytes)) FROM artifact_chunk c
        WHERE c.artifact_id = ${t}.id), 0) ELSE COALESCE(LENGTH(${t}.blob_bytes), 0) END AS compressed_size`)

    // ---- archive ----------------------------------------------------------------------------------------------------

    /** `latest`: see rows committed after this transaction's snapshot (InnoDB); `lock`: and hold the row until commit. */
    const findArtifact = (sha256: string, read: "latest" | "lock") =>
      Effect.map(
        sql<Row>`SELECT id, storage_driver, CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${compressedOf("artifact")}
          FROM artifact WHERE content_sha256 = ${sha256}${
          read === "lock" && backend !== "sqlite" ? sql` FOR UPDATE` : isMysql ? sql` LOCK IN SHARE MODE` : sql``
        }`,
        (rows) => rows[0]
      )

    /**
     * Inserts the artifact row unless a concurrent writer committed the same content first; then reads back the
     * winner (InnoDB needs a locking read to see rows committed after its snapshot). Returns the winner's row.
     */
    const claimArtifact = (artifactId: string, entry: ArchiveEntry, driver: string, compression: string, blob: Uint8Array) =>
      Effect.gen(function*() {
        const inserted = yield* sql<Row>`INSERT INTO artifact (id, content_sha256, size_bytes, compression, mime_type, storage_driver, blob_bytes, object_url, created_at)
          VALUES (${artifactId}, ${entry.sha256}, ${entry.sizeBytes}, ${compression}, ${entry.item.mimeType}, ${driver}, ${blob}, NULL, ${ts(yield* Timestamp.now)})
          ${isMysql ? sql`ON DUPLICATE KEY UPDATE id = id` : sql`ON CONFLICT (content_sha256) DO NOTHING RETURNING id`}`
        // Ours unless another writer stored the same content first; MariaDB cannot say which, so it looks.
        if (inserted.length > 0) return { id: artifactId } as Row
        return (yield* findArtifact(entry.sha256, "latest"))!
      })

    /** Writes the content of a new (or purged, when `existing`) artifact; `reused` when another writer won the race. */
    const writePayload = (artifactId: string, entry: ArchiveEntry, exists: boolean) =>
      Effect.gen(function*() {
        let compressed = 0
        if (entry.payload._tag === "Whole") {
          const blob = yield* entry.payload.read
          compressed = blob.length
          if (exists) {
            yield* sql`UPDATE artifact SET blob_bytes = ${blob}, storage_driver = 'db', compression = ${entry.codec}, size_bytes = ${entry.sizeBytes}, object_url = NULL WHERE id = ${artifactId}`
          } else {
            const winner = yield* claimArtifact(artifactId, entry, "db", entry.codec, blob)
            if (String(winner.id) !== artifactId) return { artifactId: String(winner.id), compressed: toNum(winner.compressed_size), reused: true }
          }
          return { artifactId, compressed, reused: false }
        }
        if (exists) {
          yield* sql`DELETE FROM artifact_chunk WHERE artifact_id = ${artifactId}`
          yield* sql`UPDATE artifact SET blob_bytes = ${marker}, storage_driver = 'chunked', compression = ${chunkedCompression(entry.codec)}, size_bytes = ${entry.sizeBytes}, object_url = NULL WHERE id = ${artifactId}`
        } else {
          const winner = yield* claimArtifact(artifactId, entry, "chunked", chunkedCompression(entry.codec), marker)
          if (String(winner.id) !== artifactId) return { artifactId: String(winner.id), compressed: toNum(winner.compressed_size), reused: true }
        }
        let seq = 0
        yield* Stream.runForEach(entry.payload.stream, (bytes) => {
          compressed += bytes.length
          const n = seq++
          return sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) VALUES (${artifactId}, ${n}, ${bytes})`
        })
        return { artifactId, compressed, reused: false }
      })

    /** The artifact an entry's item points to: an existing one (deduplicated) or one written now. */
    const artifactFor = (entry: ArchiveEntry, existing: Row | undefined): Effect.Effect<StoredArtifact, SqlError.SqlError | PayloadSourceError> =>
      existing === undefined
        ? writePayload(randomUUID(), entry, false)
        : layoutOf(existing) !== "purged"
        ? Effect.succeed({ artifactId: String(existing.id), compressed: toNum(existing.compressed_size), reused: true })
        // A purged artifact is re-hydrated by archiving its content again (spec §1.4). Its row is locked first: of two
        // writers re-hydrating it at once, the second waits, then finds the content back and reuses it.
        : Effect.flatMap(findArtifact(entry.sha256, "lock"), (row) =>
          row !== undefined && layoutOf(row) !== "purged"
            ? Effect.succeed({ artifactId: String(row.id), compressed: toNum(row.compressed_size), reused: true })
            : writePayload(String(existing.id), entry, true))

    /** The item, its ARCHIVE event and its tags, as rows for multi-row inserts. */
    const rowsFor = (entry: ArchiveEntry, written: StoredArtifact, at: string) => {
      const itemId = Uuid.v7()
      const tombstone = Tombstone.make()
      const item = entry.item
      const metadata: Record<string, unknown> = {
        sha256: entry.sha256,
        size_bytes: entry.sizeBytes,
        compressed_size: written.compressed,
        compression: entry.codec,
        mime_type: item.mimeType,
        language: item.language,
        ...item.extraMetadata
      }
      const legalHold = legalHoldOf(metadata.legal_hold)
      delete metadata.legal_hold
      if (legalHold) metadata.legal_hold = true
      const deleteAfter = metadata.delete_after === undefined || metadata.delete_after === null ? null : String(metadata.delete_after)
      return {
        item: {
          id: itemId, repo: item.repo, path: item.path, commit_sha: item.commitSha, language: item.language, kind: item.kind,
          reason: item.reason, artifact_id: written.artifactId, metadata: canonicalJson(metadata), archived_by: item.archivedBy,
          archived_at: ts(at), tombstone_id: tombstone, legal_hold: bool(legalHold),
          delete_after: deleteAfter === null ? null : isMysql ? ts(deleteAfter) : deleteAfter, restored_at: null
        },
        event: { id: Uuid.v7(), item_id: itemId, action: "ARCHIVE", actor: item.archivedBy, context: canonicalJson(item.context), created_at: ts(at) },
        tags: [...new Set(item.tags)].map((tag) => ({ item_id: itemId, tag })),
        archived: {
          tombstone, itemId, artifactId: written.artifactId, sha256: entry.sha256, sizeBytes: entry.sizeBytes,
          compressedSize: written.compressed, archivedAt: at, deduplicated: written.reused, repo: item.repo, path: item.path
        } satisfies Archived
      }
    }

    /** Multi-row insert; PostgreSQL needs its JSON text cast to jsonb. */
    const insertRows = (table: "item" | "event" | "tag", rows: ReadonlyArray<Record<string, unknown>>) =>
      rows.length === 0 ? Effect.void : isPg && table !== "tag"
        ? sql`INSERT INTO ${sql(table)} ${sql.insert(rows.map((r) => ({ ...r, [table === "item" ? "metadata" : "context"]: sql`${r[table === "item" ? "metadata" : "context"] as string}::jsonb` })))}`
        : sql`INSERT INTO ${sql(table)} ${sql.insert(rows)}`

    /**
     * Reads payloads ahead of the insert loop, a few MiB at a time: reading compresses in worker threads when there
     * are many files, so every core stays busy while memory stays bounded. A large file is read ahead by its first
     * chunks. Returns the payload of `order[k]`, started early when it is new content.
     */
    const readAhead = (order: ReadonlyArray<ArchiveEntry>, wanted: (e: ArchiveEntry) => boolean) => {
      const inFlight = new Map<string, Effect.Effect<Payload, PayloadSourceError>>()
      let cursor = 0
      let bytes = 0
      /** What a read ahead holds at most: a whole payload, or the first chunks of a large one. */
      const cost = (e: ArchiveEntry) => (e.payload._tag === "Whole" ? e.sizeBytes : Math.min(e.sizeBytes, chunksAhead * chunkSize))
      const start = (e: ArchiveEntry) =>
        Effect.gen(function*() {
          if (e.payload._tag === "Whole") {
            const fiber = yield* Effect.fork(e.payload.read)
            return Effect.map(Fiber.join(fiber), (b): Payload => ({ _tag: "Whole", read: Effect.succeed(b) }))
          }
          const queue = yield* Queue.bounded<Take.Take<Uint8Array, PayloadSourceError>>(chunksAhead)
          yield* Effect.fork(Stream.runIntoQueue(e.payload.stream, queue))
          return Effect.succeed<Payload>({ _tag: "Chunks", stream: Stream.flattenTake(Stream.fromQueue(queue)) })
        })
      return (k: number): Effect.Effect<ArchiveEntry, PayloadSourceError> =>
        Effect.gen(function*() {
          cursor = Math.max(cursor, k)
          let started = false
          while (cursor < order.length && inFlight.size < prefetchItems && (inFlight.size === 0 || bytes + cost(order[cursor]!) <= prefetchBytes)) {
            const e = order[cursor++]!
            if (inFlight.has(e.sha256) || !wanted(e)) continue
            inFlight.set(e.sha256, yield* start(e))
            bytes += cost(e)
            started = true
          }
          // Let the new reads start (hand their work to the workers) before this fiber goes back to synchronous SQL.
          if (started) yield* Effect.yieldNow()
          const entry = order[k]!
          const read = inFlight.get(entry.sha256)
          if (read === undefined) return entry
          inFlight.delete(entry.sha256)
          bytes -= cost(entry)
          return { ...entry, payload: yield* read }
        })
    }

    const archive = (entries: ReadonlyArray<ArchiveEntry>) => {
      // Sorted by content so concurrent writers take artifact locks in one order and cannot deadlock each other.
      const order = entries.map((e, i) => [e, i] as const).sort(([a], [b]) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0))
      return unit(
        "archive",
        sql.withTransaction(Effect.gen(function*() {
          const written = new Array<StoredArtifact>(entries.length)
          const archivedAt = new Array<string>(entries.length)
          // Content already settled in this call: later duplicates reuse it without another round trip.
          const settled = new Map<string, Row>()
          // Groups keep round trips per file constant: one artifact lookup and one insert per table per group.
          for (let g = 0; g < order.length; g += group) {
            const slice = order.slice(g, g + group)
            const unknown = [...new Set(slice.map(([e]) => e.sha256).filter((sha) => !settled.has(sha)))]
            const existing = new Map<string, Row>()
            if (unknown.length > 0) {
              const rows = yield* sql<Row>`SELECT id, content_sha256, storage_driver, CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob,
                  ${compressedOf("artifact")}
                FROM artifact WHERE content_sha256 IN ${sql.in(unknown)}`
              for (const row of rows) existing.set(String(row.content_sha256).trim(), row)
            }
            const at = yield* Timestamp.now
            const ahead = readAhead(slice.map(([e]) => e), (e) => !settled.has(e.sha256) && !existing.has(e.sha256))
            for (const [k, [entry, i]] of slice.entries()) {
              const known = settled.get(entry.sha256)
              const artifact = known !== undefined
                ? { artifactId: String(known.id), compressed: toNum(known.compressed_size), reused: true }
                : yield* artifactFor(yield* ahead(k), existing.get(entry.sha256))
              settled.set(entry.sha256, { id: artifact.artifactId, compressed_size: artifact.compressed, has_blob: 1 })
              written[i] = artifact
              archivedAt[i] = at
            }
          }
          // Items go in in the caller's order (the paths a manifest or stub tree lists), their ids made in that order:
          // restoring those files later updates neighbouring rows and index pages, not a few rows on every page.
          const out = new Array<Archived>(entries.length)
          for (let g = 0; g < entries.length; g += group) {
            const items: Array<Record<string, unknown>> = []
            const events: Array<Record<string, unknown>> = []
            const tags: Array<Record<string, unknown>> = []
            for (let i = g; i < Math.min(g + group, entries.length); i++) {
              const rows = rowsFor(entries[i]!, written[i]!, archivedAt[i]!)
              items.push(rows.item)
              events.push(rows.event)
              tags.push(...rows.tags)
              out[i] = rows.archived
            }
            yield* insertRows("item", items)
            yield* insertRows("event", events)
            yield* insertRows("tag", tags)
          }
          return out as ReadonlyArray<Archived>
        }))
      )
    }

    // ---- restore ----------------------------------------------------------------------------------------------------

    const locate = (tombstones: ReadonlyArray<string>) =>
      unit("locate", Effect.gen(function*() {
        const found = new Map<string, Located>()
        for (let i = 0; i < tombstones.length; i += group) {
          const ids = tombstones.slice(i, i + group).filter(lookupable)
          if (ids.length === 0) continue
          const rows = yield* sql<Row>`SELECT i.id AS item_id, i.tombstone_id, i.repo, i.path, i.metadata, a.id AS artifact_id, a.content_sha256, a.size_bytes,
              a.compression, a.storage_driver, CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${compressedOf("a")}
            FROM item i JOIN artifact a ON a.id = i.artifact_id WHERE i.tombstone_id IN ${sql.in(ids)}`
          for (const row of rows) {
            const tombstone = String(row.tombstone_id)
            found.set(tombstone, {
              tombstone,
              itemId: String(row.item_id),
              repo: String(row.repo),
              path: String(row.path),
              artifactId: String(row.artifact_id),
              sha256: String(row.content_sha256).trim(),
              sizeBytes: toNum(row.size_bytes),
              compressedSize: toNum(row.compressed_size),
              codec: codecOf(row.compression),
              layout: layoutOf(row),
              mode: modeOf(parseJson(row.metadata))
            })
          }
        }
        return found as ReadonlyMap<string, Located>
      }))

    const inlinePayloads = (artifactIds: ReadonlyArray<string>) =>
      unit("fetch", Effect.gen(function*() {
        const out = new Map<string, Uint8Array>()
        const unique = [...new Set(artifactIds)]
        for (let i = 0; i < unique.length; i += group) {
          const rows = yield* sql<Row>`SELECT id, blob_bytes FROM artifact WHERE id IN ${sql.in(unique.slice(i, i + group))} AND blob_bytes IS NOT NULL`
          for (const row of rows) out.set(String(row.id), toBytes(row.blob_bytes))
        }
        return out as ReadonlyMap<string, Uint8Array>
      }))

    const chunks = (artifactId: string): Stream.Stream<Uint8Array, StoreError> =>
      Stream.paginateChunkEffect(0, (from) =>
        unit("fetch", sql<Row>`SELECT seq, blob_bytes FROM artifact_chunk WHERE artifact_id = ${artifactId} AND seq >= ${from} AND seq < ${from + chunkWindow} ORDER BY seq`).pipe(
          Effect.map((rows) => [
            Chunk.fromIterable(rows.map((r) => toBytes(r.blob_bytes))),
            rows.length === chunkWindow ? Option.some(from + chunkWindow) : Option.none()
          ] as const)
        ))

    const recordRestores = (records: ReadonlyArray<{ readonly itemId: string; readonly actor: string; readonly at: string }>) =>
      records.length === 0 ? Effect.void : unit("record_restore", sql.withTransaction(Effect.gen(function*() {
        const byTime = new Map<string, Array<string>>()
        for (const r of records) {
          const ids = byTime.get(r.at)
          if (ids === undefined) byTime.set(r.at, [r.itemId])
          else ids.push(r.itemId)
        }
        for (const [at, ids] of byTime) {
          for (let i = 0; i < ids.length; i += group) {
            yield* sql`UPDATE item SET restored_at = ${ts(at)} WHERE id IN ${sql.in(ids.slice(i, i + group))}`
          }
        }
        for (let i = 0; i < records.length; i += group) {
          const rows = records.slice(i, i + group).map((r) => ({
            id: Uuid.v7(), item_id: r.itemId, action: "RESTORE", actor: r.actor, context: "{}", created_at: ts(r.at)
          }))
          yield* sql`INSERT INTO event ${sql.insert(rows)}`
        }
      })))

    // ---- queries and retention --------------------------------------------------------------------------------------

    // SQLite rows written by the original's legacy layer use `YYYY-MM-DD HH:MM:SS`; strftime reads both forms.
    const archivedAt = backend === "sqlite" ? sql`strftime('%Y-%m-%dT%H:%M:%SZ', archived_at)` : sql`archived_at`

    const list = (filter: { readonly repo?: string | undefined; readonly since?: string | undefined; readonly limit: number }) =>
      unit("list", Effect.gen(function*() {
        const where = [
          ...(filter.repo !== undefined ? [sql`repo = ${filter.repo}`] : []),
          ...(filter.since !== undefined ? [sql`${archivedAt} >= ${ts(filter.since)}`] : [])
        ]
        const rows = yield* sql<Row>`SELECT id, repo, path, commit_sha, reason, archived_by, archived_at, tombstone_id FROM item
          ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``}
          ORDER BY ${archivedAt} DESC, ${itemOrder} DESC LIMIT ${filter.limit}`
        return rows.map((r): ListedItem => ({
          id: String(r.id), repo: String(r.repo), path: String(r.path), commit_sha: String(r.commit_sha).trim(), reason: String(r.reason),
          archived_by: String(r.archived_by), archived_at: toTimestamp(r.archived_at)!, tombstone_id: String(r.tombstone_id)
        }))
      }))

    const findItem = (tombstone: string) =>
      !lookupable(tombstone) ? Effect.fail(new TombstoneNotFound({ tombstone })) :
      Effect.flatMap(sql<Row>`SELECT * FROM item WHERE tombstone_id = ${tombstone}`, (rows) =>
        rows[0] === undefined ? Effect.fail(new TombstoneNotFound({ tombstone })) : Effect.succeed(rows[0]))

    const show = (tombstone: string) =>
      unit("show", Effect.gen(function*() {
        const item = yield* findItem(tombstone)
        const [artifact] = yield* sql<Row>`SELECT content_sha256, size_bytes, compression, mime_type, storage_driver, object_url,
            CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${compressedOf("artifact")}
          FROM artifact WHERE id = ${item.artifact_id as string}`
        const tags = yield* sql<Row>`SELECT tag FROM tag WHERE item_id = ${item.id as string} ORDER BY tag`
        const events = yield* sql<Row>`SELECT action, actor, context, created_at FROM event WHERE item_id = ${item.id as string}
          ORDER BY created_at, ${sql.literal(backend === "sqlite" ? "rowid" : "seq")}`
        return {
          id: String(item.id), repo: String(item.repo), path: String(item.path), commit_sha: String(item.commit_sha).trim(),
          language: item.language === null ? null : String(item.language), kind: String(item.kind), reason: String(item.reason),
          artifact_id: String(item.artifact_id), metadata: parseJson(item.metadata), archived_by: String(item.archived_by),
          archived_at: toTimestamp(item.archived_at)!, tombstone_id: String(item.tombstone_id), legal_hold: toBool(item.legal_hold),
          delete_after: toTimestamp(item.delete_after), restored_at: toTimestamp(item.restored_at),
          tags: tags.map((t) => String(t.tag)),
          artifact: {
            content_sha256: String(artifact?.content_sha256 ?? "").trim(), size_bytes: toNum(artifact?.size_bytes),
            compressed_size: toNum(artifact?.compressed_size),
            compression: artifact?.compression === null || artifact === undefined ? null : String(artifact.compression),
            mime_type: String(artifact?.mime_type ?? ""), storage_driver: String(artifact?.storage_driver ?? ""),
            object_url: artifact?.object_url == null ? null : String(artifact.object_url),
            layout: artifact ? layoutOf(artifact) : "purged"
          },
          events: events.map((e) => ({ action: String(e.action), actor: String(e.actor), context: parseJson(e.context), created_at: toTimestamp(e.created_at)! }))
        } satisfies ItemDetail
      }))

    const requestPrune = (tombstone: string, actor: string, reason: string) =>
      unit("prune_request", sql.withTransaction(Effect.gen(function*() {
        const item = yield* findItem(tombstone)
        yield* sql`INSERT INTO event (id, item_id, action, actor, context, created_at)
          VALUES (${Uuid.v7()}, ${item.id as string}, 'PRUNE_REQUEST', ${actor}, ${json({ reason })}, ${ts(yield* Timestamp.now)})`
      })))

    const approveDelete = (request: { tombstone: string; primary: string; secondary: string; reason: string; apply: boolean }) =>
      request.primary === request.secondary
        ? Effect.fail(new SameApprover({ actor: request.primary }))
        : unit("purge", sql.withTransaction(Effect.gen(function*() {
          const item = yield* findItem(request.tombstone)
          if (toBool(item.legal_hold)) return yield* new LegalHold({ tombstone: request.tombstone })
          // The column says no hold; metadata that says otherwise, or cannot be read as a boolean, still blocks.
          const held = (parseJson(item.metadata) as { legal_hold?: unknown } | null)?.legal_hold
          if (held !== undefined && held !== null && legalHoldValue(held) !== false) {
            const unreadable = legalHoldValue(held) === undefined ? String(held) : undefined
            return yield* new LegalHold({ tombstone: request.tombstone, unreadable })
          }
          const [count] = yield* sql<Row>`SELECT COUNT(*) AS n FROM item WHERE artifact_id = ${item.artifact_id as string}`
          const refCount = toNum(count?.n)
          const blobScrubbed = request.apply && refCount <= 1
          const at = ts(yield* Timestamp.now)
          for (const [role, actor] of [["primary", request.primary], ["secondary", request.secondary]] as const) {
            const context = {
              role,
              reason: request.reason,
              ...(request.apply ? { apply_requested: true, blob_scrubbed: blobScrubbed } : {}),
              ...(request.apply && refCount > 1 ? { shared_references: refCount - 1 } : {})
            }
            yield* sql`INSERT INTO event (id, item_id, action, actor, context, created_at)
              VALUES (${Uuid.v7()}, ${item.id as string}, 'DELETE_APPROVED', ${actor}, ${json(context)}, ${at})`
          }
          // The original's own statement: the schema's triggers remove (on SQLite, overwrite first) its chunk rows.
          if (blobScrubbed) {
            yield* sql`UPDATE artifact SET blob_bytes = NULL, storage_driver = 'object', object_url = COALESCE(object_url, 'purged://dual-control')
              WHERE id = ${item.artifact_id as string}`
          }
          return { blobScrubbed, refCount }
        })))

    // How many chunk rows a chunked payload still has (none: its bytes are gone), and the purge marker (spec §1.6).
    const payloadFacts = sql.literal(
      "(SELECT COUNT(*) FROM artifact_chunk c WHERE c.artifact_id = a.id) AS chunk_rows, a.object_url"
    )
    const purgeMarked = (r: Row) => r.storage_driver === "object" && String(r.object_url ?? "").startsWith("purged://")
    /**
     * The artifacts among `ids` whose bytes a purge removed: a DELETE_APPROVED event with `blob_scrubbed: true` on one
     * of their items. Bytes gone without one (nor the purge marker, which is all an archive of the original tool may
     * have) were lost or removed behind the archive's back, not purged.
     */
    const scrubbedByPurge = (ids: ReadonlyArray<string>) =>
      ids.length === 0 ? Effect.succeed(new Set<string>()) : Effect.map(
        sql<Row>`SELECT p.artifact_id, e.context FROM event e JOIN item p ON p.id = e.item_id
          WHERE e.action = 'DELETE_APPROVED' AND p.artifact_id IN ${sql.in(ids)}`,
        (rows) => {
          const scrubbed = rows.filter((r) => (parseJson(r.context) as { blob_scrubbed?: unknown } | null)
            ?.blob_scrubbed === true)
          return new Set(scrubbed.map((r) => String(r.artifact_id)))
        }
      )
    const artifacts = (requested?: ReadonlyArray<string>) =>
      unit("artifacts", Effect.gen(function*() {
        const tombstones = requested?.filter(lookupable)
        const rows = tombstones === undefined
          ? yield* sql<Row>`SELECT a.id, a.content_sha256, a.size_bytes, a.compression, a.storage_driver,
              CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, i.tombstone_id, ${payloadFacts}
              FROM artifact a LEFT JOIN item i ON i.artifact_id = a.id ORDER BY a.content_sha256`
          : tombstones.length === 0 ? [] : yield* sql<Row>`SELECT a.id, a.content_sha256, a.size_bytes, a.compression, a.storage_driver,
              CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, i.tombstone_id, ${payloadFacts}
              FROM artifact a JOIN item i ON i.artifact_id = a.id WHERE i.tombstone_id IN ${sql.in(tombstones)} ORDER BY a.content_sha256`
        const byId = new Map<string, ArtifactSummary & { tombstones: Array<string> }>()
        const marked = new Set(rows.filter(purgeMarked).map((r) => String(r.id)))
        for (const r of rows) {
          const id = String(r.id)
          const entry = byId.get(id) ?? {
            artifactId: id, sha256: String(r.content_sha256).trim(), sizeBytes: toNum(r.size_bytes),
            codec: codecOf(r.compression),
            layout: layoutOf(r) === "chunked" && toNum(r.chunk_rows) === 0 ? "purged" : layoutOf(r), tombstones: []
          }
          if (r.tombstone_id !== null && r.tombstone_id !== undefined) entry.tombstones.push(String(r.tombstone_id))
          byId.set(id, entry)
        }
        const gone = [...byId.values()].filter((a) => a.layout === "purged")
        const scrubbed = yield* scrubbedByPurge(gone.map((a) => a.artifactId))
        for (const a of gone) {
          byId.set(a.artifactId, { ...a, purgeRecorded: scrubbed.has(a.artifactId) || marked.has(a.artifactId) })
        }
        return [...byId.values()] as ReadonlyArray<ArtifactSummary>
      }))

    // Chunk rows that no chunked artifact claims: left by another tool's purge or re-store before our triggers.
    const orphaned = sql.literal(
      "NOT EXISTS (SELECT 1 FROM artifact a WHERE a.id = artifact_chunk.artifact_id AND a.storage_driver = 'chunked')"
    )
    const findOrphans = Effect.map(
      sql<Row>`SELECT artifact_id, COUNT(*) AS n, SUM(LENGTH(blob_bytes)) AS b FROM artifact_chunk WHERE ${orphaned}
        GROUP BY artifact_id ORDER BY artifact_id`,
      (rows): OrphanChunks => ({
        rows: rows.reduce((n, r) => n + toNum(r.n), 0),
        bytes: rows.reduce((n, r) => n + toNum(r.b), 0),
        artifacts: rows.map((r) => String(r.artifact_id))
      })
    )
    const orphanChunks = unit("orphan_chunks", findOrphans)
    const removeOrphanChunks = unit("gc", sql.withTransaction(Effect.gen(function*() {
      const found = yield* findOrphans
      for (let i = 0; i < found.artifacts.length; i += group) {
        const ids = sql.in(found.artifacts.slice(i, i + group))
        // Our connection does not zero freed pages: overwritten in place first, the bytes leave the SQLite file.
        if (backend === "sqlite") {
          yield* sql`UPDATE artifact_chunk SET blob_bytes = zeroblob(LENGTH(blob_bytes)) WHERE artifact_id IN ${ids} AND ${orphaned}`
        }
        yield* sql`DELETE FROM artifact_chunk WHERE artifact_id IN ${ids} AND ${orphaned}`
      }
      return found
    })))

    const schemaVersion = unit("schema_version", Effect.provideService(Migrations.version(options.migrations), SqlClient.SqlClient, sql))

    const probe = unit("probe", Effect.map(sql<Row>`SELECT id FROM item LIMIT 1`, (rows) => rows.length))

    return ArchiveStore.of({
      backend,
      // One MariaDB value must fit `max_allowed_packet` (16 MiB by default): content above one chunk is chunked there.
      inlineCap: isMysql ? chunkSize : Number.MAX_SAFE_INTEGER,
      location: options.location,
      archive,
      locate,
      inlinePayloads,
      chunks,
      recordRestores,
      directReads: options.direct && {
        ...options.direct,
        inline: "SELECT blob_bytes FROM artifact WHERE id = ?",
        chunks: "SELECT blob_bytes FROM artifact_chunk WHERE artifact_id = ? ORDER BY seq"
      },
      list,
      show,
      requestPrune,
      approveDelete,
      artifacts,
      orphanChunks,
      removeOrphanChunks,
      schemaVersion,
      probe
    })
  })

/** What a backend hands to `fromClient`: its dialect's migrations, and how to name the archive in messages. */
export interface ClientOptions {
  readonly backend: BackendName
  /** The redacted URL (or file), for messages and evidence. */
  readonly location: string
  /** Known credentials, scrubbed verbatim from driver messages. */
  readonly secrets?: ReadonlyArray<string> | undefined
  readonly migrations: ReadonlyArray<Migrations.Migration>
  /** Create the schema when missing (`init`, `store`); otherwise a database without the tables is `NotAnArchive`. */
  readonly create: boolean
  /** The connection cannot write: the schema is checked, never migrated. */
  readonly readOnly?: boolean | undefined
  /** PostgreSQL: the schema the client's `search_path` points at, created (with `create`) before the tables. */
  readonly schema?: string | undefined
  /** An embedded database's file and driver module, when other threads may open it to read payloads. */
  readonly direct?: { readonly driver: string; readonly file: string } | undefined
}

/** What a server backend (PostgreSQL, MariaDB) hands to `serve`: its own client besides. */
export interface ServeOptions extends ClientOptions {
  readonly secrets: ReadonlyArray<string>
  /** The dialect's client; `SqlError`s it fails with are mapped here (a missing database is `NotAnArchive`). */
  readonly client: Layer.Layer<SqlClient.SqlClient, unknown>
}

/** Driver codes of "the database named in the URL does not exist" (PostgreSQL 3D000, MySQL ER_BAD_DB_ERROR). */
const missingDatabase = (error: unknown): boolean => {
  const cause = (error as { cause?: { code?: unknown; errno?: unknown } } | undefined)?.cause
  return cause?.code === "3D000" || cause?.errno === 1049
}

/** The columns every reader and writer of an archive relies on: tables named so that lack them are someone else's. */
export const archiveColumns: Readonly<Record<"item" | "artifact", ReadonlyArray<string>>> = {
  item: ["id", "tombstone_id", "artifact_id", "repo", "path", "metadata", "archived_at"],
  artifact: ["id", "content_sha256", "size_bytes", "compression", "blob_bytes"]
}

/**
 * Why a database whose tables have these columns is not an archive, or undefined when it is one. A database missing
 * either table is one only when it may become one (`create`): nothing of anyone else's is there to damage.
 */
export const notAnArchiveReason = (
  columns: ReadonlyMap<string, ReadonlySet<string>>,
  create: boolean
): string | undefined => {
  for (const [table, wanted] of Object.entries(archiveColumns)) {
    const have = columns.get(table)
    // With `create`, a missing table is one our migrations have yet to make (another process may be making them now:
    // MySQL DDL commits table by table); only a table that exists without the archive's columns is someone else's.
    if (have === undefined) {
      if (create) continue
      return "is a database but not a codex archive (no item/artifact tables)"
    }
    const missing = wanted.filter((c) => !have.has(c))
    if (missing.length > 0) return `is a database but not a codex archive (table ${table} lacks ${missing.join(", ")})`
  }
  return undefined
}

const storeErrorOf = (options: Pick<ClientOptions, "backend" | "location" | "secrets">) => (operation: string) => (error: unknown) =>
  new StoreError({
    operation,
    backend: options.backend,
    // One line, credentials scrubbed, the location named: the driver's words alone rarely say which server.
    detail: `${options.location}: ${Redact.secrets(describeUnknown(error), options.secrets ?? []).replace(/\s*\n\s*/g, " ")}`,
    transient: Retry.isTransientCause(error)
  })

/** The tables named `item`/`artifact` the client sees, with their columns (lower case). */
const archiveTables = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql.onDialectOrElse({
      sqlite: () =>
        sql<Row>`SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p
          WHERE m.type = 'table' AND m.name IN ('item', 'artifact')`,
      pg: () =>
        sql<Row>`SELECT table_name AS t, column_name AS c FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name IN ('item', 'artifact')`,
      orElse: () =>
        sql<Row>`SELECT table_name AS t, column_name AS c FROM information_schema.columns
          WHERE table_schema = DATABASE() AND table_name IN ('item', 'artifact')`
    }),
    (rows) => {
      const columns = new Map<string, Set<string>>()
      for (const r of rows) {
        const table = String(r.t).toLowerCase()
        columns.set(table, (columns.get(table) ?? new Set()).add(String(r.c).toLowerCase()))
      }
      return columns
    }
  )

/**
 * The migrated schema + `ArchiveStore` over the `SqlClient` in context (a host's own pool, or the backend's): only
 * the store comes out, so the host's `SqlClient` stays the host's. Needs the retry policy.
 */
export const fromClient = (options: ClientOptions): Layer.Layer<ArchiveStore, NotAnArchive | StoreError, SqlClient.SqlClient | Retry.RetryPolicy> => {
  const { location } = options
  const setup = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // A named schema must exist before the check can see its tables (and before the migrations can make them).
    if (options.schema !== undefined && options.create && !options.readOnly) {
      yield* sql.onDialectOrElse({ pg: () => sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema!)}`, orElse: () => Effect.void })
    }
    // Refused before the first write: tables named item/artifact without the archive's columns are someone else's.
    const reason = notAnArchiveReason(yield* archiveTables(sql), options.create && !options.readOnly)
    if (reason !== undefined) return yield* new NotAnArchive({ location, detail: reason })
    if (options.readOnly) return
    // MySQL DDL auto-commits and the Migrator records a migration before running it, so a run cut short would stay
    // half done: pending statements (each idempotent) run here first, and are recorded only once they all succeeded.
    yield* sql.onDialectOrElse({
      mysql: () =>
        Effect.gen(function*() {
          const applied = yield* Migrations.version(options.migrations)
          for (const m of options.migrations) if (m.id > applied) for (const statement of m.statements) yield* sql.unsafe(statement)
        }),
      orElse: () => Effect.void
    })
    // Concurrent first runs race on creating the migrations table; the loser runs again and finds the work done.
    yield* Migrations.run(options.migrations).pipe(
      Effect.catchAllDefect(Effect.fail),
      Effect.retry(Schedule.recurs(2))
    )
  }).pipe(
    // Opening is under the retry policy like every query: a server still starting or a lock at open is waited out.
    (open) => Effect.flatMap(Retry.RetryPolicy, (policy) => policy.retry("open", open)),
    Effect.mapError((e): NotAnArchive | StoreError => e instanceof NotAnArchive ? e : storeErrorOf(options)("migrate")(e))
  )
  return Layer.effect(ArchiveStore, Effect.zipRight(setup, make(options)))
}

/** A server database's client, its failures to connect as the archive's: a missing database is `NotAnArchive`. */
export const connect = <A>(
  options: Pick<ClientOptions, "backend" | "location" | "secrets">,
  client: Layer.Layer<A, unknown>
): Layer.Layer<A, NotAnArchive | StoreError> =>
  client.pipe(Layer.catchAll((error) =>
    Layer.fail<NotAnArchive | StoreError>(missingDatabase(error)
      ? new NotAnArchive({ location: options.location, detail: "the database does not exist (create it on the server first)" })
      : storeErrorOf(options)("connect")(error))
  ))

/** The migrated schema + `ArchiveStore` over a server database, on a client of its own. Needs the retry policy. */
export const serve = (options: ServeOptions): Layer.Layer<ArchiveStore, NotAnArchive | StoreError, Retry.RetryPolicy> =>
  fromClient(options).pipe(Layer.provide(connect(options, options.client)))

const describeUnknown = (error: unknown): string =>
  (error as { _tag?: string })?._tag === "SqlError"
    ? describeSqlError(error as SqlError.SqlError)
    : error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i


/** The driver's own words (the SqlError wrapper only says "Failed to execute statement"). */
const describeSqlError = (error: SqlError.SqlError): string => {
  const cause = error.cause as { message?: unknown; code?: unknown } | undefined
  const detail = cause && typeof cause.message === "string" && cause.message.length > 0 ? cause.message : error.message
  return typeof cause?.code === "string" && !detail.includes(cause.code) ? `${detail} (${cause.code})` : detail
}

