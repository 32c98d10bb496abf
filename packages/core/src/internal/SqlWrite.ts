/**
 * `ArchiveStore.archive` over SQL: content deduplicated against the archive, new content inserted many rows per
 * statement, payloads read ahead of the inserts, then items, events and tags in multi-row inserts. Runs inside the
 * caller's transaction.
 */
import type { SqlClient, SqlError } from "@effect/sql"
import { Effect, Exit, Fiber, Queue, Stream, type Take } from "effect"
import { randomUUID } from "node:crypto"
import type { Archived, ArchiveEntry, Payload, PayloadSourceError } from "../ArchiveStore.js"
import { stringify as canonicalJson } from "../CanonicalJson.js"
import { chunkedCompression, chunkedMarker, chunkSize, compressedSizeSql } from "../Chunking.js"
import type { Dialect } from "../Dialect.js"
import * as Timestamp from "../Timestamp.js"
import * as Tombstone from "../Tombstone.js"
import * as Uuid from "../Uuid.js"
import * as Rows from "./SqlRows.js"
import { layoutOf, legalHoldOf, type Row } from "./SqlRows.js"

/** Items per group: one artifact lookup and one insert per table per group, well under every parameter limit. */
const group = 500
/** Payloads read ahead while storing: bounded by count and by raw size; a large file by its first chunks. */
const prefetchItems = 64
const prefetchBytes = 16 * 1024 * 1024
const chunksAhead = 4

/** The artifact an archived entry points to: its id, compressed size, and whether it was already there. */
interface StoredArtifact {
  readonly artifactId: string
  readonly compressed: number
  readonly reused: boolean
}

type Existing = typeof Rows.ExistingRow.Type
const existingRow = Rows.decoder("artifact", Rows.ExistingRow, ["id"])
const existingBySha = Rows.decoder("artifact", Rows.ExistingByShaRow, ["id"])
const idRow = Rows.decoder("artifact", Rows.ExistingRow.pick("id"), ["id"])
const shaRow = Rows.decoder("artifact", Rows.ExistingByShaRow.pick("id", "content_sha256"), ["id"])
const storedRow = Rows.decoder("artifact", Rows.ExistingByShaRow.pick("id", "content_sha256", "compressed_size"), [
  "id"
])

/** New whole content waiting for its multi-row insert. */
interface Pending {
  readonly entry: ArchiveEntry
  readonly id: string
  readonly blob: Uint8Array
}

export const make = (sql: SqlClient.SqlClient, dialect: Dialect) => {
  const ts = dialect.timestamp
  const marker = new TextEncoder().encode(chunkedMarker)
  const compressedOf = (t: string) => sql.literal(compressedSizeSql(t))

  /** `latest`: see rows committed after this transaction's snapshot (InnoDB); `lock`: and hold the row until commit. */
  const findArtifact = (sha256: string, read: "latest" | "lock") =>
    Effect.flatMap(
      sql<Row>`SELECT id, storage_driver, CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${
        compressedOf("artifact")
      }
        FROM artifact WHERE content_sha256 = ${sha256}${
        sql.literal(read === "lock" ? dialect.lockForUpdate : dialect.readLatest)
      }`,
      (rows) => Effect.map(Rows.decodeAll(existingRow, rows.slice(0, 1)), (found) => found[0])
    )

  /**
   * Inserts the artifact row unless a concurrent writer committed the same content first; then reads back the
   * winner (InnoDB needs a locking read to see rows committed after its snapshot). Returns the winner's row.
   */
  const claimArtifact = (
    artifactId: string,
    entry: ArchiveEntry,
    driver: string,
    compression: string,
    blob: Uint8Array
  ) =>
    Effect.gen(function*() {
      const inserted = yield* sql<
        Row
      >`INSERT INTO artifact (id, content_sha256, size_bytes, compression, mime_type, storage_driver, blob_bytes, object_url, created_at)
        VALUES (${artifactId}, ${entry.sha256}, ${entry.sizeBytes}, ${compression}, ${entry.item.mimeType}, ${driver}, ${blob}, NULL, ${
        ts(yield* Timestamp.now)
      })
        ${sql.literal(dialect.ignoreDuplicateContent)}${sql.literal(dialect.returning ? " RETURNING id" : "")}`
      // Ours unless another writer stored the same content first; without RETURNING the store cannot tell, so it looks.
      if (inserted.length > 0) return { id: artifactId, compressed_size: 0 }
      return (yield* findArtifact(entry.sha256, "latest"))!
    })

  /**
   * Inserts new whole content many rows per statement. Content another writer committed first is left alone and
   * its row reused. Returns each pending entry's artifact, by content.
   */
  const insertPending = (pending: ReadonlyArray<Pending>) =>
    Effect.gen(function*() {
      const out = new Map<string, StoredArtifact>()
      if (pending.length === 0) return out
      const at = ts(yield* Timestamp.now)
      const rows = pending.map(({ blob, entry, id }) => ({
        id,
        content_sha256: entry.sha256,
        size_bytes: entry.sizeBytes,
        compression: entry.codec,
        mime_type: entry.item.mimeType,
        storage_driver: "db",
        blob_bytes: blob,
        object_url: null,
        created_at: at
      }))
      const insert = sql`INSERT INTO artifact ${sql.insert(rows)} ${sql.literal(dialect.ignoreDuplicateContent)}`
      let lost: ReadonlyArray<Pending> = pending
      if (dialect.returning) {
        const mine = new Set<string>(
          (yield* Rows.decodeAll(idRow, yield* sql<Row>`${insert} RETURNING id`)).map((r) => r.id)
        )
        lost = pending.filter((p) => !mine.has(p.id))
      } else yield* insert
      const winners = new Map<string, string>()
      if (lost.length > 0) {
        const found = yield* sql<Row>`SELECT id, content_sha256 FROM artifact
          WHERE content_sha256 IN ${sql.in(lost.map((p) => p.entry.sha256))}${sql.literal(dialect.readLatest)}`
        for (const r of yield* Rows.decodeAll(shaRow, found)) winners.set(r.content_sha256, r.id)
      }
      const others: Array<string> = []
      for (const p of pending) {
        const winner = winners.get(p.entry.sha256) ?? p.id
        if (winner === p.id) out.set(p.entry.sha256, { artifactId: p.id, compressed: p.blob.length, reused: false })
        else others.push(winner)
      }
      // Another writer's content: its stored size is read back (rare: two writers storing the same file at once).
      if (others.length > 0) {
        // A locking read on InnoDB: the winner committed after this transaction's snapshot.
        const found = yield* sql<Row>`SELECT id, content_sha256, ${compressedOf("artifact")} FROM artifact
          WHERE id IN ${sql.in(others)}${sql.literal(dialect.readLatest)}`
        for (const r of yield* Rows.decodeAll(storedRow, found)) {
          out.set(r.content_sha256, { artifactId: r.id, compressed: r.compressed_size, reused: true })
        }
      }
      return out
    })

  /** Writes the content of a new (or purged, when `exists`) artifact; `reused` when another writer won the race. */
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
          if (winner.id !== artifactId) {
            return { artifactId: winner.id, compressed: winner.compressed_size, reused: true }
          }
        }
        return { artifactId, compressed, reused: false }
      }
      if (exists) {
        yield* sql`DELETE FROM artifact_chunk WHERE artifact_id = ${artifactId}`
        yield* sql`UPDATE artifact SET blob_bytes = ${marker}, storage_driver = 'chunked', compression = ${
          chunkedCompression(entry.codec)
        }, size_bytes = ${entry.sizeBytes}, object_url = NULL WHERE id = ${artifactId}`
      } else {
        const winner = yield* claimArtifact(artifactId, entry, "chunked", chunkedCompression(entry.codec), marker)
        if (winner.id !== artifactId) return { artifactId: winner.id, compressed: winner.compressed_size, reused: true }
      }
      let seq = 0
      yield* Stream.runForEach(entry.payload.stream, (bytes) => {
        compressed += bytes.length
        const n = seq++
        return sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) VALUES (${artifactId}, ${n}, ${bytes})`
      })
      return { artifactId, compressed, reused: false }
    })

  /** The artifact of an entry that is chunked, or whose content the archive has (deduplicated) or had (purged). */
  const artifactFor = (
    entry: ArchiveEntry,
    existing: Existing | undefined
  ): Effect.Effect<StoredArtifact, SqlError.SqlError | PayloadSourceError | Rows.BadRow> =>
    existing === undefined
      ? writePayload(randomUUID(), entry, false)
      : layoutOf(existing) !== "purged"
      ? Effect.succeed({ artifactId: existing.id, compressed: existing.compressed_size, reused: true })
      // A purged artifact is re-hydrated by archiving its content again (spec §1.4). Its row is locked first: of two
      // writers re-hydrating it at once, the second waits, then finds the content back and reuses it.
      : Effect.flatMap(findArtifact(entry.sha256, "lock"), (row) =>
        row !== undefined && layoutOf(row) !== "purged"
          ? Effect.succeed({ artifactId: row.id, compressed: row.compressed_size, reused: true })
          : writePayload(existing.id, entry, true))

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
    const deleteAfter = metadata.delete_after === undefined || metadata.delete_after === null
      ? null
      : String(metadata.delete_after)
    return {
      item: {
        id: itemId,
        repo: item.repo,
        path: item.path,
        commit_sha: item.commitSha,
        language: item.language,
        kind: item.kind,
        reason: item.reason,
        artifact_id: written.artifactId,
        metadata: canonicalJson(metadata),
        archived_by: item.archivedBy,
        archived_at: ts(at),
        tombstone_id: tombstone,
        legal_hold: dialect.bool(legalHold),
        delete_after: deleteAfter === null ? null : ts(deleteAfter),
        restored_at: null
      },
      event: {
        id: Uuid.v7(),
        item_id: itemId,
        action: "ARCHIVE",
        actor: item.archivedBy,
        context: canonicalJson(item.context),
        created_at: ts(at)
      },
      tags: [...new Set(item.tags)].map((tag) => ({ item_id: itemId, tag })),
      archived: {
        tombstone,
        itemId,
        artifactId: written.artifactId,
        sha256: entry.sha256,
        sizeBytes: entry.sizeBytes,
        compressedSize: written.compressed,
        archivedAt: at,
        deduplicated: written.reused,
        repo: item.repo,
        path: item.path
      } satisfies Archived
    }
  }

  /** Multi-row insert; a JSON column's text gets the dialect's cast. */
  const insertRows = (table: "item" | "event" | "tag", rows: ReadonlyArray<Record<string, unknown>>) => {
    if (rows.length === 0) return Effect.void
    const column = table === "item" ? "metadata" : table === "event" ? "context" : undefined
    const cast = dialect.jsonCast
    return column === undefined || cast === ""
      ? sql`INSERT INTO ${sql(table)} ${sql.insert(rows)}`
      : sql`INSERT INTO ${sql(table)} ${
        sql.insert(rows.map((r) => ({ ...r, [column]: sql`${r[column] as string}${sql.literal(cast)}` })))
      }`
  }

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
    const cost = (
      e: ArchiveEntry
    ) => (e.payload._tag === "Whole" ? e.sizeBytes : Math.min(e.sizeBytes, chunksAhead * chunkSize))
    const start = (e: ArchiveEntry) =>
      Effect.gen(function*() {
        if (e.payload._tag === "Whole") {
          // Content already in hand (an Exit, such as a store's small files packed with their hash) needs no fiber.
          if (Exit.isExit(e.payload.read)) return Effect.succeed<Payload>(e.payload)
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
        while (
          cursor < order.length && inFlight.size < prefetchItems &&
          (inFlight.size === 0 || bytes + cost(order[cursor]!) <= prefetchBytes)
        ) {
          const e = order[cursor++]!
          if (inFlight.has(e.sha256) || !wanted(e)) continue
          inFlight.set(e.sha256, yield* start(e))
          bytes += cost(e)
          // Content in hand started nothing: no need to give way (a turn of the scheduler per file, in a store).
          started ||= !(e.payload._tag === "Whole" && Exit.isExit(e.payload.read))
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

  /** Archives `entries` in the caller's transaction; the result is in their order. */
  const archive = (entries: ReadonlyArray<ArchiveEntry>) =>
    Effect.gen(function*() {
      // Sorted by content so concurrent writers take artifact locks in one order and cannot deadlock each other.
      const order = entries.map((e, i) => [e, i] as const).sort((
        [a],
        [b]
      ) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0))
      const written = new Array<StoredArtifact>(entries.length)
      const archivedAt = new Array<string>(entries.length)
      // Content already settled in this call: later duplicates reuse it without another round trip.
      const settled = new Map<string, StoredArtifact>()
      const settle = (sha256: string, indices: ReadonlyArray<number>, artifact: StoredArtifact) => {
        settled.set(sha256, { ...artifact, reused: true })
        indices.forEach((i, n) => (written[i] = n === 0 ? artifact : { ...artifact, reused: true }))
      }
      // New whole content, inserted many rows at a time; `waiting` holds the entries of each pending content.
      let pending: Array<Pending> = []
      let pendingBytes = 0
      const waiting = new Map<string, Array<number>>()
      const flush = Effect.gen(function*() {
        const stored = yield* insertPending(pending)
        for (const p of pending) settle(p.entry.sha256, waiting.get(p.entry.sha256)!, stored.get(p.entry.sha256)!)
        pending = []
        pendingBytes = 0
        waiting.clear()
      })
      for (let g = 0; g < order.length; g += group) {
        const slice = order.slice(g, g + group)
        const unknown = [...new Set(slice.map(([e]) => e.sha256).filter((sha) => !settled.has(sha)))]
        const existing = new Map<string, Existing>()
        if (unknown.length > 0) {
          const rows = yield* sql<
            Row
          >`SELECT id, content_sha256, storage_driver, CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob,
              ${compressedOf("artifact")}
            FROM artifact WHERE content_sha256 IN ${sql.in(unknown)}`
          for (const row of yield* Rows.decodeAll(existingBySha, rows)) existing.set(row.content_sha256, row)
        }
        const at = yield* Timestamp.now
        const ahead = readAhead(slice.map(([e]) => e), (e) =>
          !settled.has(e.sha256) && !existing.has(e.sha256) && !waiting.has(e.sha256))
        for (const [k, [entry, i]] of slice.entries()) {
          archivedAt[i] = at
          const known = settled.get(entry.sha256)
          const queued = waiting.get(entry.sha256)
          if (known !== undefined) {
            written[i] = known
          } else if (queued !== undefined) {
            queued.push(i)
          } else if (!existing.has(entry.sha256) && entry.payload._tag === "Whole") {
            const ready = yield* ahead(k)
            const blob = ready.payload._tag === "Whole" ? yield* ready.payload.read : new Uint8Array()
            pending.push({ entry, id: randomUUID(), blob })
            pendingBytes += blob.length
            waiting.set(entry.sha256, [i])
            if (pending.length >= dialect.bulkInsert.rows || pendingBytes >= dialect.bulkInsert.bytes) {
              yield* flush
            }
          } else {
            // Out-of-order inserts could take artifact locks against the content order: what is pending goes first.
            yield* flush
            settle(entry.sha256, [i], yield* artifactFor(yield* ahead(k), existing.get(entry.sha256)))
          }
        }
        yield* flush
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
    })

  return { archive }
}
