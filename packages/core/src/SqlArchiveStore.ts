/**
 * The `ArchiveStore` port, written once over `@effect/sql`'s generic `SqlClient` and the backend's `Dialect`; the write
 * path lives in `internal/SqlWrite`, row coercion in `internal/SqlRows`. Every method is one retried unit: a
 * transaction is retried whole, never a statement inside it, so retries never nest.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import {
  Chunk,
  Config as EffectConfig,
  type ConfigError,
  Effect,
  Either,
  Layer,
  Option,
  Schedule,
  Stream
} from "effect"
import {
  type ArchiveEntry,
  type ArchiveOptions,
  ArchiveStore,
  type ArtifactSummary,
  type ItemDetail,
  legalHoldRefusal,
  type ListedItem,
  type ListFilter,
  type Located,
  NotAnArchive,
  type OrphanChunks,
  recordedSha256,
  SameApprover,
  sameApprover,
  StoreError,
  TombstoneNotFound
} from "./ArchiveStore.js"
import { stringify as canonicalJson } from "./CanonicalJson.js"
import * as Chunking from "./Chunking.js"
import type { Dialect } from "./Dialect.js"
import type { Guarded } from "./Guarded.js"
import * as Rows from "./internal/SqlRows.js"
import { codecOf, layoutOf, modeOf, type Row } from "./internal/SqlRows.js"
import * as SqlWrite from "./internal/SqlWrite.js"
import * as Migrations from "./Migrations.js"
import * as PayloadReader from "./PayloadReader.js"
import * as Redact from "./Redact.js"
import * as Retry from "./Retry.js"
import * as Timestamp from "./Timestamp.js"
import * as Uuid from "./Uuid.js"

/** Items per `IN (...)` list: well under every dialect's parameter limit. */
const group = 500
/** Chunks fetched per round trip when streaming a large artifact. */
const chunkWindow = 4

export { stringify as canonicalJson } from "./CanonicalJson.js"
export { legalHoldOf, toTimestamp } from "./internal/SqlRows.js"

// Each row shape's decoder, compiled once: a batch restore decodes tens of thousands of rows.
const locatedItem = Rows.decoder("item", Rows.LocatedItemRow, ["tombstone_id", "item_id"])
const storedArtifact = Rows.decoder("artifact", Rows.StoredArtifactRow, ["artifact_id"])
const artifactDetail = Rows.decoder("artifact", Rows.ArtifactDetailRow, ["artifact_id"])
const verifiedArtifact = Rows.decoder("artifact", Rows.VerifiedArtifactRow, ["artifact_id"], {
  table: "item",
  columns: ["tombstone_id", "metadata"],
  idColumns: ["item_id"]
})
const listedItem = Rows.decoder("item", Rows.ItemRow, ["tombstone_id", "id"])
const itemDetail = Rows.decoder("item", Rows.ItemDetailRow, ["tombstone_id", "id"])
const eventRow = Rows.decoder("event", Rows.EventRow, ["id"])
const tagRow = Rows.decoder("tag", Rows.TagRow, ["item_id"])
const inlineRow = Rows.decoder("artifact", Rows.InlineRow, ["id"])
const chunkRow = Rows.decoder("artifact_chunk", Rows.ChunkRow, ["artifact_id"])
const countRow = Rows.decoder("item", Rows.CountRow, [])
const purgeEvent = Rows.decoder("event", Rows.PurgeEventRow, ["artifact_id"])
const orphanRow = Rows.decoder("artifact_chunk", Rows.OrphanRow, ["artifact_id"])

export const make = (options: {
  readonly dialect: Dialect
  readonly location: string
  readonly secrets?: ReadonlyArray<string> | undefined
  /** The backend's migrations: the schema version is read against them. */
  readonly migrations: ReadonlyArray<Migrations.Migration>
  /** An embedded database's file and driver module, when other threads may open it to read payloads. */
  readonly direct?: { readonly driver: string; readonly file: string } | undefined
  /** An embedded database's files (the database and its journals): never archived, never written over. */
  readonly files?: ReadonlyArray<Guarded> | undefined
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const policy = yield* Retry.RetryPolicy
    const { dialect } = options
    const { backend } = dialect

    const fail = (operation: string) => (error: SqlError.SqlError) =>
      new StoreError({
        operation,
        backend,
        detail: Redact.secrets(describeSqlError(error), options.secrets ?? []),
        transient: Retry.isTransientCause(error, dialect.transient)
      })

    /** One retried, error-mapped unit of work. */
    const isSqlError = (e: unknown): e is SqlError.SqlError => (e as { _tag?: string } | null)?._tag === "SqlError"
    /** A row the archive holds that is not what its schema promises: a permanent store fault, named. */
    const isBadRow = (e: unknown): e is Rows.BadRow => e instanceof Rows.BadRow
    const badRow = (operation: string) => (e: Rows.BadRow) =>
      new StoreError({ operation, backend, detail: e.message, transient: false, malformedRow: true })
    const unit = <A, E, R>(operation: string, effect: Effect.Effect<A, E | SqlError.SqlError | Rows.BadRow, R>) =>
      policy.retry(
        operation,
        Effect.catchIf(
          // @effect/sql dies when a rollback or commit fails (a server restart mid-transaction): that is a store fault too.
          Effect.catchSomeDefect(effect, (d) => (isSqlError(d) ? Option.some(Effect.fail(d)) : Option.none())),
          (e) => isSqlError(e) || isBadRow(e),
          (e) => Effect.fail(isBadRow(e) ? badRow(operation)(e) : fail(operation)(e as SqlError.SqlError))
        )
      ).pipe(Effect.withSpan(`ArchiveStore.${operation}`), Effect.annotateLogs("backend", backend)) as Effect.Effect<
        A,
        Exclude<E, SqlError.SqlError | Rows.BadRow> | StoreError,
        R
      >

    const ts = dialect.timestamp
    const itemOrder = sql.literal(dialect.insertionOrder)
    const json = (value: unknown) => sql`${canonicalJson(value)}${sql.literal(dialect.jsonCast)}`
    const lookupable = dialect.acceptsId
    const compressedOf = (t: string) => sql.literal(Chunking.compressedSizeSql(t))
    const writer = SqlWrite.make(sql, dialect)

    const archive = (entries: ReadonlyArray<ArchiveEntry>, options?: ArchiveOptions) =>
      unit(
        "archive",
        sql.withTransaction(
          Effect.tap(writer.archive(entries), (archived) => options?.beforeCommit?.(archived) ?? Effect.void)
        )
      )

    const withdraw = (itemIds: ReadonlyArray<string>) =>
      itemIds.length === 0 ? Effect.void : unit(
        "withdraw",
        sql.withTransaction(Effect.gen(function*() {
          for (let i = 0; i < itemIds.length; i += group) {
            const ids = sql.in(itemIds.slice(i, i + group))
            yield* sql`DELETE FROM tag WHERE item_id IN ${ids}`
            yield* sql`DELETE FROM event WHERE item_id IN ${ids}`
            yield* sql`DELETE FROM item WHERE id IN ${ids}`
          }
        }))
      )

    // ---- restore ----------------------------------------------------------------------------------------------------

    const locate = (tombstones: ReadonlyArray<string>) =>
      unit(
        "locate",
        Effect.gen(function*() {
          const found = new Map<string, Located>()
          for (let i = 0; i < tombstones.length; i += group) {
            const ids = tombstones.slice(i, i + group).filter(lookupable)
            if (ids.length === 0) continue
            const rows = yield* sql<
              Row
            >`SELECT i.id AS item_id, i.tombstone_id, i.repo, i.path, i.metadata, a.id AS artifact_id, a.content_sha256, a.size_bytes,
              a.compression, a.storage_driver, CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${
              compressedOf("a")
            }
            FROM item i JOIN artifact a ON a.id = i.artifact_id WHERE i.tombstone_id IN ${sql.in(ids)}`
            const items = yield* Rows.decodeAll(locatedItem, rows)
            const stored = yield* Rows.decodeAll(storedArtifact, rows)
            for (let k = 0; k < rows.length; k++) {
              const item = items[k]!
              const artifact = stored[k]!
              // Two rows for one tombstone (its unique constraint dropped): `show` read one, `restore` wrote the other.
              const twice = found.get(item.tombstone_id)
              if (twice !== undefined) {
                return yield* new StoreError({
                  operation: "locate",
                  backend,
                  detail:
                    `tombstone ${item.tombstone_id} names more than one item (${twice.itemId} and ${item.item_id}): ` +
                    "the archive's unique constraint on item.tombstone_id is gone",
                  transient: false,
                  malformedRow: true
                })
              }
              found.set(item.tombstone_id, {
                tombstone: item.tombstone_id,
                itemId: item.item_id,
                repo: item.repo,
                path: item.path,
                artifactId: artifact.artifact_id,
                sha256: artifact.content_sha256,
                sizeBytes: artifact.size_bytes,
                compressedSize: artifact.compressed_size,
                codec: codecOf(artifact.compression),
                layout: layoutOf(artifact),
                mode: modeOf(item.metadata),
                recordedSha256: recordedSha256(item.metadata)
              })
            }
          }
          return found as ReadonlyMap<string, Located>
        })
      )

    // The backend's own path for payload bytes, when it made this client and attached one; else SELECTs, below.
    const reader = PayloadReader.of(sql)
    // Payload bytes as the dialect sends them best (`Dialect.payloadsAsBase64`), back to bytes as rows arrive.
    const payloadBytes = sql.literal(
      dialect.payloadsAsBase64 === true ? "encode(blob_bytes, 'base64') AS blob_bytes" : "blob_bytes"
    )
    const fromWire = (raw: Row): Row => {
      if (dialect.payloadsAsBase64 === true && typeof raw.blob_bytes === "string") {
        raw.blob_bytes = Rows.fromBase64Lines(raw.blob_bytes)
      }
      return raw
    }

    const inlinePayloads = (artifactIds: ReadonlyArray<string>) =>
      unit(
        "fetch",
        Effect.gen(function*() {
          const out = new Map<string, Uint8Array>()
          const unique = [...new Set(artifactIds)]
          for (let i = 0; i < unique.length; i += group) {
            const ids = unique.slice(i, i + group)
            const rows = reader !== undefined
              ? yield* reader.inline(ids)
              : yield* sql<Row>`SELECT id, ${payloadBytes} FROM artifact WHERE id IN ${sql.in(ids)}
                  AND blob_bytes IS NOT NULL`
            for (const row of yield* Rows.decodeAll(inlineRow, rows.map(fromWire))) out.set(row.id, row.blob_bytes)
          }
          return out as ReadonlyMap<string, Uint8Array>
        })
      )

    const chunks = (artifactId: string): Stream.Stream<Uint8Array, StoreError> =>
      Stream.paginateChunkEffect(0, (from) =>
        unit(
          "fetch",
          // LIMIT, not `seq < from + window`: a window short of a row must show the row after the gap, not end the stream.
          reader !== undefined
            ? reader.chunks(artifactId, from, chunkWindow)
            : sql<Row>`SELECT seq, ${payloadBytes} FROM artifact_chunk WHERE artifact_id = ${artifactId}
                AND seq >= ${from} ORDER BY seq LIMIT ${chunkWindow}`
        ).pipe(Effect.flatMap((rows) =>
          Effect.suspend(() => {
            const out: Array<Uint8Array> = []
            for (const raw of rows) {
              const row = chunkRow(fromWire(raw), `${artifactId}#${String(raw.seq)}`)
              if (Either.isLeft(row)) return Effect.fail(badRow("fetch")(row.left))
              const wrong = Chunking.seqError(artifactId, from + out.length, row.right.seq)
              if (wrong !== undefined) {
                return Effect.fail(
                  new StoreError({ operation: "fetch", backend, detail: wrong, transient: false, malformedRow: true })
                )
              }
              out.push(row.right.blob_bytes)
            }
            return Effect.succeed(
              [
                Chunk.unsafeFromArray(out),
                rows.length === chunkWindow ? Option.some(from + chunkWindow) : Option.none()
              ] as const
            )
          })
        )))

    const recordRestores = (
      records: ReadonlyArray<{ readonly itemId: string; readonly actor: string; readonly at: string }>
    ) => {
      if (records.length === 0) return Effect.void
      // The event ids are made once, outside the retry: a retry of a write that committed but whose answer was lost (a
      // connection cut) finds them there and inserts nothing; made again, they recorded every restore twice, and sent
      // again without the clause, failed on their key while the archive held them.
      const rows = records.map((r) => ({
        id: Uuid.v7(),
        item_id: r.itemId,
        action: "RESTORE",
        actor: r.actor,
        context: "{}",
        created_at: ts(r.at)
      }))
      const ignoreDuplicate = sql.literal(dialect.ignoreDuplicateId)
      const at = records[0]!.at
      // Every try's answer lost (a connection cut each time): the write may still have committed. Its events there say
      // it did, and the unit is recorded; reported failed, its files were removed while the archive held their events.
      const orCommitted = <R>(write: Effect.Effect<void, StoreError, R>) =>
        Effect.catchIf(write, (e) => e.transient, (e) =>
          Effect.flatMap(
            eventsThere(rows.map((r) => r.id)),
            (there) => there ? Effect.logDebug("record_restore: its answer was lost; it committed") : Effect.fail(e)
          ))
      // A batch's unit (one time, one group) in one statement where BEGIN, UPDATE, INSERT and COMMIT took four round
      // trips: over half the statements of the large corpus's batch from PostgreSQL, each a socket write and a wakeup.
      if (dialect.modifyingCte === true && records.length <= group && records.every((r) => r.at === at)) {
        return orCommitted(unit(
          "record_restore",
          sql`WITH restored AS (UPDATE item SET restored_at = ${ts(at)} WHERE id IN ${
            sql.in(records.map((r) => r.itemId))
          }) INSERT INTO event ${sql.insert(rows)} ${ignoreDuplicate}`
        ))
      }
      return orCommitted(unit(
        "record_restore",
        sql.withTransaction(Effect.gen(function*() {
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
          for (let i = 0; i < rows.length; i += group) {
            yield* sql`INSERT INTO event ${sql.insert(rows.slice(i, i + group))} ${ignoreDuplicate}`
          }
        }))
      ))
    }

    /** Whether every one of these events is in the archive (one look, no retry: `false` when it cannot be asked). */
    const eventsThere = (ids: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        let found = 0
        for (let i = 0; i < ids.length; i += group) {
          const rows = yield* sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM event WHERE id IN ${
            sql.in(ids.slice(i, i + group))
          }`
          found += Number(rows[0]?.n ?? 0)
        }
        return found === ids.length
      }).pipe(Effect.orElseSucceed(() => false))

    // ---- queries and retention --------------------------------------------------------------------------------------

    const archivedAt = sql.literal(dialect.archivedAt)

    const listPage = (filter: ListFilter, after: string | undefined) =>
      unit(
        "list",
        Effect.gen(function*() {
          // An id no row can have (PostgreSQL refuses a non-UUID outright) follows nothing.
          if (after !== undefined && !lookupable(after)) return []
          // The cursor is the last row's own (archived_at, insertion order), read in SQL: no timestamp round trip.
          const where = [
            ...(filter.repo !== undefined ? [sql`repo = ${filter.repo}`] : []),
            ...(filter.since !== undefined ? [sql`${archivedAt} >= ${ts(filter.since)}`] : []),
            // The first bound alone lets an index on the order seek to the cursor instead of walking past it.
            ...(after !== undefined
              ? [
                sql`${archivedAt} <= (SELECT ${archivedAt} FROM item WHERE id = ${after})`,
                sql`(${archivedAt}, ${itemOrder}) < (SELECT ${archivedAt}, ${itemOrder} FROM item WHERE id = ${after})`
              ]
              : [])
          ]
          const rows = yield* sql<
            Row
          >`SELECT id, repo, path, commit_sha, reason, archived_by, archived_at, tombstone_id FROM item
          ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``}
          ORDER BY ${archivedAt} DESC, ${itemOrder} DESC LIMIT ${filter.limit}`
          // An empty page after an item no longer found by its id (SQLite keeps a blob id, read back as text) is not
          // the end of the list: said, not taken as the end with the rest left out.
          if (rows.length === 0 && after !== undefined) {
            const found = yield* sql<Row>`SELECT 1 AS n FROM item WHERE id = ${after}`
            if (found.length === 0) {
              return yield* new StoreError({
                operation: "list",
                backend,
                detail: `cannot page past item ${after}: no item has that id as text (a malformed row)`,
                transient: false
              })
            }
          }
          return (yield* Rows.decodeAll(listedItem, rows)) as ReadonlyArray<ListedItem>
        })
      )

    const list = (filter: ListFilter) => listPage(filter, undefined)

    const findItem = (tombstone: string) =>
      !lookupable(tombstone) ?
        Effect.fail(new TombstoneNotFound({ tombstone })) :
        Effect.flatMap(
          sql<Row>`SELECT * FROM item WHERE tombstone_id = ${tombstone}`,
          (rows): Effect.Effect<typeof Rows.ItemDetailRow.Type, TombstoneNotFound | Rows.BadRow> =>
            rows[0] === undefined
              ? Effect.fail(new TombstoneNotFound({ tombstone }))
              : Effect.map(Rows.decodeAll(itemDetail, [rows[0]]), ([item]) => item!)
        )

    const show = (tombstone: string) =>
      unit(
        "show",
        Effect.gen(function*() {
          const item = yield* findItem(tombstone)
          const artifacts = yield* sql<
            Row
          >`SELECT id AS artifact_id, content_sha256, size_bytes, compression, mime_type, storage_driver, object_url,
            CASE WHEN blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, ${compressedOf("artifact")}
          FROM artifact WHERE id = ${item.artifact_id}`
          const [artifact] = yield* Rows.decodeAll(artifactDetail, artifacts)
          const tags = yield* Rows.decodeAll(
            tagRow,
            yield* sql<Row>`SELECT item_id, tag FROM tag WHERE item_id = ${item.id} ORDER BY tag`
          )
          const events = yield* Rows.decodeAll(
            eventRow,
            yield* sql<Row>`SELECT id, action, actor, context, created_at FROM event WHERE item_id = ${item.id}
          ORDER BY created_at, ${itemOrder}`
          )
          return {
            id: item.id,
            repo: item.repo,
            path: item.path,
            commit_sha: item.commit_sha,
            language: item.language,
            kind: item.kind,
            reason: item.reason,
            artifact_id: item.artifact_id,
            metadata: item.metadata,
            archived_by: item.archived_by,
            archived_at: item.archived_at,
            tombstone_id: item.tombstone_id,
            legal_hold: item.legal_hold,
            delete_after: item.delete_after,
            restored_at: item.restored_at,
            tags: tags.map((t) => t.tag),
            artifact: artifact === undefined
              ? {
                content_sha256: "",
                size_bytes: 0,
                compressed_size: 0,
                compression: null,
                mime_type: "",
                storage_driver: "",
                object_url: null,
                layout: "purged"
              }
              : {
                content_sha256: artifact.content_sha256,
                size_bytes: artifact.size_bytes,
                compressed_size: artifact.compressed_size,
                compression: artifact.compression,
                mime_type: artifact.mime_type,
                storage_driver: artifact.storage_driver,
                object_url: artifact.object_url,
                layout: layoutOf(artifact)
              },
            events: events.map((e) => ({ ...e }))
          } satisfies ItemDetail
        })
      )

    const requestPrune = (tombstone: string, actor: string, reason: string) =>
      unit(
        "prune_request",
        sql.withTransaction(Effect.gen(function*() {
          const item = yield* findItem(tombstone)
          yield* sql`INSERT INTO event (id, item_id, action, actor, context, created_at)
          VALUES (${Uuid.v7()}, ${item.id}, 'PRUNE_REQUEST', ${actor}, ${json({ reason })}, ${
            ts(yield* Timestamp.now)
          })`
        }))
      )

    const approveDelete = (
      request: { tombstone: string; primary: string; secondary: string; reason: string; apply: boolean }
    ) =>
      sameApprover(request.primary, request.secondary)
        ? Effect.fail(new SameApprover({ actor: request.primary }))
        : unit(
          "purge",
          sql.withTransaction(Effect.gen(function*() {
            const item = yield* findItem(request.tombstone)
            // The metadata as stored, not as parsed: the hold rule reads repeated keys in the text itself.
            const [stored] = yield* sql<Row>`SELECT ${
              sql.literal(dialect.metadataText)
            } AS metadata FROM item WHERE id = ${item.id}`
            const refusal = legalHoldRefusal(request.tombstone, item.legal_hold, stored?.metadata)
            if (refusal !== undefined) return yield* refusal
            const [count] = yield* Rows.decodeAll(
              countRow,
              yield* sql<Row>`SELECT COUNT(*) AS n FROM item WHERE artifact_id = ${item.artifact_id}`
            )
            const refCount = count?.n ?? 0
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
              VALUES (${Uuid.v7()}, ${item.id}, 'DELETE_APPROVED', ${actor}, ${json(context)}, ${at})`
            }
            // The original's own statement: the schema's triggers remove (on SQLite, overwrite first) its chunk rows.
            if (blobScrubbed) {
              yield* sql`UPDATE artifact SET blob_bytes = NULL, storage_driver = 'object', object_url = COALESCE(object_url, 'purged://dual-control')
              WHERE id = ${item.artifact_id}`
            }
            return { blobScrubbed, refCount }
          }))
        )

    // How many chunk rows a chunked payload still has (none: its bytes are gone), and the purge marker (spec §1.6).
    const payloadFacts = sql.literal(
      "(SELECT COUNT(*) FROM artifact_chunk c WHERE c.artifact_id = a.id) AS chunk_rows, a.object_url, " +
        Chunking.compressedSizeSql("a")
    )
    const purgeMarked = (r: { readonly storage_driver: string; readonly object_url: string | null }) =>
      r.storage_driver === "object" && (r.object_url ?? "").startsWith("purged://")
    /**
     * The artifacts among `ids` whose bytes a purge removed: a DELETE_APPROVED event with `blob_scrubbed: true` on one
     * of their items. Bytes gone without one (nor the purge marker, which is all an archive of the original tool may
     * have) were lost or removed behind the archive's back, not purged.
     */
    const scrubbedByPurge = (ids: ReadonlyArray<string>) =>
      ids.length === 0 ? Effect.succeed(new Set<string>()) : Effect.map(
        Effect.flatMap(
          sql<Row>`SELECT p.artifact_id, e.context FROM event e JOIN item p ON p.id = e.item_id
          WHERE e.action = 'DELETE_APPROVED' AND p.artifact_id IN ${sql.in(ids)}`,
          (rows) => Rows.decodeAll(purgeEvent, rows)
        ),
        (rows) => {
          const scrubbed = rows.filter((r) => (r.context as { blob_scrubbed?: unknown } | null)?.blob_scrubbed === true)
          return new Set(scrubbed.map((r) => r.artifact_id))
        }
      )
    const artifacts = (requested?: ReadonlyArray<string>) =>
      unit(
        "artifacts",
        Effect.gen(function*() {
          const tombstones = requested?.filter(lookupable)
          const raw = tombstones === undefined
            ? yield* sql<
              Row
            >`SELECT a.id AS artifact_id, a.content_sha256, a.size_bytes, a.compression, a.storage_driver,
              CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob,
              i.id AS item_id, i.tombstone_id, i.metadata, ${payloadFacts}
              FROM artifact a LEFT JOIN item i ON i.artifact_id = a.id ORDER BY a.content_sha256`
            : tombstones.length === 0 ?
            [] :
            yield* sql<Row>`SELECT a.id AS artifact_id, a.content_sha256, a.size_bytes, a.compression, a.storage_driver,
              CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob,
              i.id AS item_id, i.tombstone_id, i.metadata, ${payloadFacts}
              FROM artifact a JOIN item i ON i.artifact_id = a.id WHERE i.tombstone_id IN ${
              sql.in(tombstones)
            } ORDER BY a.content_sha256`
          return yield* summarize(raw)
        })
      )
    // A page's artifacts chosen in a derived table, so LIMIT counts artifacts, not their items.
    const pageKey = sql.literal(dialect.artifactPageKey ?? "content_sha256")
    const artifactPage = (after: string | undefined, limit: number) =>
      unit(
        "artifact_page",
        Effect.gen(function*() {
          const from = dialect.artifactPageKey === "rowid" && after !== undefined ? Number(after) : after
          const page = sql`SELECT ${pageKey} AS k FROM artifact ${
            from === undefined ? sql`` : sql`WHERE ${pageKey} > ${from}`
          } ORDER BY ${pageKey} LIMIT ${limit}`
          return yield* summarize(
            yield* sql<Row>`SELECT a.id AS artifact_id, a.content_sha256, a.size_bytes, a.compression,
              a.storage_driver, CASE WHEN a.blob_bytes IS NULL THEN NULL ELSE 1 END AS has_blob, i.id AS item_id,
              i.tombstone_id, i.metadata, ${payloadFacts}, p.k AS page_key FROM (${page}) p JOIN artifact a ON a.${pageKey} = p.k
              LEFT JOIN item i ON i.artifact_id = a.id ORDER BY p.k`
          )
        })
      )
    /** A paged row's key, as the next page starts after it. */
    const pageKeyOf = (row: Row): { pageKey?: string } =>
      row.page_key === undefined || row.page_key === null ? {} : { pageKey: String(row.page_key) }
    /** Artifact rows (one per item, or one with no item) folded into summaries, purge records looked up. */
    const summarize = (raw: ReadonlyArray<Row>) =>
      Effect.gen(function*() {
        const byId = new Map<
          string,
          ArtifactSummary & { tombstones: Array<string>; itemDigests?: Array<{ tombstone: string; sha256: string }> }
        >()
        const marked = new Set<string>()
        for (const row of raw) {
          const decoded = verifiedArtifact(row)
          if (Either.isLeft(decoded)) {
            // Named by its raw id and digest (the keyset the next page starts after), its tombstones if readable.
            const id = String(row.artifact_id)
            const known = byId.get(id)
            byId.set(id, {
              artifactId: id,
              sha256: String(row.content_sha256),
              sizeBytes: 0,
              compressedSize: 0,
              codec: null,
              layout: "inline",
              tombstones: [
                ...(known?.tombstones ?? []),
                ...(typeof row.tombstone_id === "string" ? [row.tombstone_id] : [])
              ],
              malformed: known?.malformed ?? decoded.left.message,
              ...pageKeyOf(row)
            })
            continue
          }
          const r = decoded.right
          if (purgeMarked(r)) marked.add(r.artifact_id)
          const id = r.artifact_id
          const entry = byId.get(id) ?? {
            artifactId: id,
            sha256: r.content_sha256,
            sizeBytes: r.size_bytes,
            compressedSize: r.compressed_size,
            codec: codecOf(r.compression),
            layout: layoutOf(r) === "chunked" && r.chunk_rows === 0 ? "purged" : layoutOf(r),
            tombstones: [],
            itemDigests: [],
            ...pageKeyOf(row)
          }
          if (r.tombstone_id !== null) {
            entry.tombstones.push(r.tombstone_id)
            const sha256 = recordedSha256(r.metadata)
            if (sha256 !== undefined) entry.itemDigests?.push({ tombstone: r.tombstone_id, sha256 })
          }
          byId.set(id, entry)
        }
        const gone = [...byId.values()].filter((a) => a.layout === "purged")
        const scrubbed = yield* scrubbedByPurge(gone.map((a) => a.artifactId))
        for (const a of gone) {
          byId.set(a.artifactId, { ...a, purgeRecorded: scrubbed.has(a.artifactId) || marked.has(a.artifactId) })
        }
        // In one order whatever the query's: a page and the whole list agree on a shared artifact's items.
        for (const a of byId.values()) a.itemDigests?.sort((x, y) => (x.tombstone < y.tombstone ? -1 : 1))
        return [...byId.values()] as ReadonlyArray<ArtifactSummary>
      })

    // Chunk rows that no chunked artifact claims: left by another tool's purge or re-store before our triggers.
    // A negative seq is a row no reader asks for (a payload's rows are 0 to n-1), whatever its artifact: garbage too.
    const orphaned = sql.literal(
      "(artifact_chunk.seq < 0 OR NOT EXISTS (SELECT 1 FROM artifact a WHERE a.id = artifact_chunk.artifact_id AND " +
        "a.storage_driver = 'chunked'))"
    )
    // Orphaned artifacts' chunk figures, keyset by artifact id: all of them, or one group after `after`.
    const findOrphanPage = (after?: string, limit?: number) =>
      Effect.map(
        sql<Row>`SELECT artifact_id, COUNT(*) AS n, SUM(LENGTH(blob_bytes)) AS b FROM artifact_chunk WHERE ${orphaned}
          ${after === undefined ? sql`` : sql`AND artifact_id > ${after}`}
          GROUP BY artifact_id ORDER BY artifact_id ${limit === undefined ? sql`` : sql`LIMIT ${limit}`}`.pipe(
          Effect.flatMap((rows) => Rows.decodeAll(orphanRow, rows))
        ),
        (rows): OrphanChunks => ({
          rows: rows.reduce((n, r) => n + r.n, 0),
          bytes: rows.reduce((n, r) => n + r.b, 0),
          artifacts: rows.map((r) => r.artifact_id)
        })
      )
    const findOrphans = findOrphanPage()
    const orphanChunks = unit("orphan_chunks", findOrphans)
    const removeOrphansOf = (found: OrphanChunks) =>
      Effect.gen(function*() {
        for (let i = 0; i < found.artifacts.length; i += group) {
          const ids = sql.in(found.artifacts.slice(i, i + group))
          if (dialect.zeroBeforeDelete) {
            yield* sql`UPDATE artifact_chunk SET blob_bytes = zeroblob(LENGTH(blob_bytes)) WHERE artifact_id IN ${ids} AND ${orphaned}`
          }
          yield* sql`DELETE FROM artifact_chunk WHERE artifact_id IN ${ids} AND ${orphaned}`
        }
        return found
      })
    const removeOrphanChunks = unit("gc", sql.withTransaction(Effect.flatMap(findOrphans, removeOrphansOf)))
    const orphanChunkPage = (after: string | undefined, limit: number) =>
      unit("orphan_chunk_page", findOrphanPage(after, limit))
    const removeOrphanChunkPage = (after: string | undefined, limit: number) =>
      unit("gc_page", sql.withTransaction(Effect.flatMap(findOrphanPage(after, limit), removeOrphansOf)))

    const schemaVersion = unit(
      "schema_version",
      Effect.provideService(Migrations.version(options.migrations, dialect), SqlClient.SqlClient, sql)
    )

    const probe = unit("probe", Effect.map(sql<Row>`SELECT id FROM item LIMIT 1`, (rows) => rows.length))

    return ArchiveStore.of({
      backend,
      inlineCap: dialect.inlineCap,
      location: options.location,
      files: options.files,
      archive,
      withdraw,
      locate,
      inlinePayloads,
      chunks,
      recordRestores,
      directReads: options.direct && {
        ...options.direct,
        inline: "SELECT blob_bytes FROM artifact WHERE id = ?",
        chunks: Chunking.chunksQuery
      },
      list,
      listPage,
      show,
      requestPrune,
      approveDelete,
      artifacts,
      artifactPage,
      orphanChunks,
      removeOrphanChunks,
      orphanChunkPage,
      removeOrphanChunkPage,
      schemaVersion,
      probe
    })
  })

/** What a backend hands to `fromClient`: its dialect and migrations, and how to name the archive in messages. */
export interface ClientOptions {
  readonly dialect: Dialect
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
  /** An embedded database's files (the database and its journals): never archived, never written over. */
  readonly files?: ReadonlyArray<Guarded> | undefined
}

/** What a server backend (PostgreSQL, MariaDB) hands to `serve`: its own client besides. */
export interface ServeOptions extends ClientOptions {
  readonly secrets: ReadonlyArray<string>
  /** The dialect's client; `SqlError`s it fails with are mapped here (a missing database is `NotAnArchive`). */
  readonly client: Layer.Layer<SqlClient.SqlClient, unknown>
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

/**
 * A driver's failure as the archive's: one line, credentials scrubbed, the location named, transient or not by the
 * dialect's codes. Every backend's connect and open errors go through it.
 */
export const storeErrorOf =
  (options: Pick<ClientOptions, "dialect" | "location" | "secrets">) => (operation: string) => (error: unknown) =>
    new StoreError({
      operation,
      backend: options.dialect.backend,
      // One line, credentials scrubbed, the location named: the driver's words alone rarely say which server.
      detail: `${options.location}: ${
        Redact.secrets(describeUnknown(error), options.secrets ?? []).replace(/\s*\n\s*/g, " ")
      }`,
      transient: Retry.isTransientCause(error, options.dialect.transient)
    })

/** The tables named `item`/`artifact` the client sees, with their columns (lower case). */
const archiveTables = (sql: SqlClient.SqlClient, dialect: Dialect) =>
  Effect.map(
    sql.unsafe<Row>(dialect.archiveTablesQuery),
    (rows) => {
      const columns = new Map<string, Set<string>>()
      for (const r of rows) {
        // The catalogue's own rows (never an archive's): its names as text, whatever type the driver gives them.
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
export const fromClient = (
  options: ClientOptions
): Layer.Layer<ArchiveStore, NotAnArchive | StoreError, SqlClient.SqlClient | Retry.RetryPolicy> => {
  const { dialect, location } = options
  const setup = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // A named schema (PostgreSQL) must exist before the check can see its tables and the migrations can make them.
    if (options.schema !== undefined && options.create && !options.readOnly) {
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`
    }
    // Refused before the first write: tables named item/artifact without the archive's columns are someone else's.
    const reason = notAnArchiveReason(yield* archiveTables(sql, dialect), options.create && !options.readOnly)
    if (reason !== undefined) return yield* new NotAnArchive({ location, detail: reason })
    if (options.readOnly) return
    // MySQL DDL auto-commits and the Migrator records a migration before running it, so a run cut short would stay
    // half done: pending statements (each idempotent) run here first, and are recorded only once they all succeeded.
    if (dialect.ddlAutoCommits) {
      const applied = yield* Migrations.version(options.migrations, dialect)
      for (const m of options.migrations) {
        if (m.id > applied) { for (const statement of m.statements) yield* sql.unsafe(statement) }
      }
    }
    // Concurrent first runs race on creating the migrations table; the loser runs again and finds the work done.
    yield* Migrations.run(options.migrations, dialect).pipe(
      Effect.catchAllDefect(Effect.fail),
      Effect.retry(Schedule.recurs(2))
    )
  }).pipe(
    // Opening is under the retry policy like every query: a server still starting or a lock at open is waited out.
    (open) =>
      Effect.flatMap(Retry.RetryPolicy, (policy) => policy.retry("open", open, Retry.classifier(dialect.transient))),
    Effect.mapError((e): NotAnArchive | StoreError =>
      e instanceof NotAnArchive ? e : storeErrorOf(options)("migrate")(e)
    )
  )
  return Layer.effect(ArchiveStore, Effect.zipRight(setup, make(options)))
}

/** A server database's client, its failures to connect as the archive's: a missing database is `NotAnArchive`. */
export const connect = <A>(
  options: Pick<ClientOptions, "dialect" | "location" | "secrets">,
  client: Layer.Layer<A, unknown>
): Layer.Layer<A, NotAnArchive | StoreError> =>
  client.pipe(Layer.catchAll((error) =>
    Layer.fail<NotAnArchive | StoreError>(
      options.dialect.missingDatabase(error)
        ? new NotAnArchive({
          location: options.location,
          detail: "the database does not exist (create it on the server first)"
        })
        : storeErrorOf(options)("connect")(error)
    )
  ))

/** What every backend's `layerFromClient` takes: the host's client is theirs, the archive only names it. */
export interface FromClientOptions {
  /** Create the tables when missing; otherwise a database without them is `NotAnArchive`. */
  readonly create: boolean
  /** How the archive is named in messages and evidence (default: the backend's name, or the file); no credentials. */
  readonly location?: string | undefined
  /** Credentials to scrub from driver messages, should one quote them. */
  readonly secrets?: ReadonlyArray<string> | undefined
}

/**
 * A backend's `layerFromClient`: its dialect and migrations over the `SqlClient` in context, named `location` unless
 * the host says. The same open, checks, redaction, retry and error classification for every backend.
 */
export const fromClientOf = (
  backend: Pick<ClientOptions, "dialect" | "migrations" | "location">
) =>
<O extends FromClientOptions & Partial<Pick<ClientOptions, "schema" | "readOnly" | "direct" | "files">>>(
  options: O
): Layer.Layer<ArchiveStore, NotAnArchive | StoreError, SqlClient.SqlClient | Retry.RetryPolicy> =>
  fromClient({
    ...options,
    dialect: backend.dialect,
    migrations: backend.migrations,
    location: options.location ?? backend.location
  })

/**
 * A backend's `layerConfig`: its `layer` with the options read from Effect `Config` (a URL as `Redacted`), e.g.
 * `PgArchive.layerConfig({ url: Config.redacted("ARCHIVE_URL"), create: Config.succeed(true) })`.
 */
export const layerConfigOf = <Options, E, R>(layer: (options: Options) => Layer.Layer<ArchiveStore, E, R>) =>
(
  config: EffectConfig.Config.Wrap<Options>
): Layer.Layer<ArchiveStore, E | ConfigError.ConfigError, R> =>
  Layer.unwrapEffect(Effect.map(EffectConfig.unwrap(config), layer))

/** The migrated schema + `ArchiveStore` over a server database, on a client of its own. Needs the retry policy. */
export const serve = (options: ServeOptions): Layer.Layer<ArchiveStore, NotAnArchive | StoreError, Retry.RetryPolicy> =>
  fromClient(options).pipe(Layer.provide(connect(options, options.client)))

const describeUnknown = (error: unknown): string =>
  (error as { _tag?: string })?._tag === "SqlError"
    ? describeSqlError(error as SqlError.SqlError)
    : error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)

/** The driver's own words (the SqlError wrapper only says "Failed to execute statement"). */
const describeSqlError = (error: SqlError.SqlError): string => {
  const cause = error.cause as { message?: unknown; code?: unknown } | undefined
  const detail = cause && typeof cause.message === "string" && cause.message.length > 0 ? cause.message : error.message
  return typeof cause?.code === "string" && !detail.includes(cause.code) ? `${detail} (${cause.code})` : detail
}
