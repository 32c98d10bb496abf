/**
 * What one SQL backend does differently, as a value its package supplies: `SqlArchiveStore` is written once over it
 * and holds no backend branches of its own.
 */
import type { BackendName } from "./Config.js"

/** A driver's codes and errnos of passing faults (a lock, a deadlock, a server restarting); see `Retry`. */
export interface TransientCodes {
  readonly codes: ReadonlySet<string>
  readonly errnos: ReadonlySet<number>
}

export interface Dialect {
  readonly backend: BackendName
  /** The text a timestamp column takes, from the spec's `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly timestamp: (iso: string) => string
  /** A boolean as the column takes it. */
  readonly bool: (b: boolean) => boolean | number
  /** Appended to a JSON text parameter's placeholder (`::jsonb` on PostgreSQL), or "". */
  readonly jsonCast: string
  /**
   * `item.metadata` as the text stored, for the legal-hold rule, which reads repeated keys in the text itself: a driver
   * that parses the column (mysql2 with MariaDB's JSON) keeps the last of two `legal_hold`s, and jsonb's `null` read
   * as SQL NULL looked like no metadata at all.
   */
  readonly metadataText: string
  /** The column that breaks ties between rows of one second, in insertion order (spec §2.3). */
  readonly insertionOrder: string
  /** `archived_at` as an expression that compares and sorts as the spec's text (legacy SQLite rows differ). */
  readonly archivedAt: string
  /** Whether a text can name a row: PostgreSQL's UUID columns reject other text outright. */
  readonly acceptsId: (id: string) => boolean
  /** Appended to a SELECT that must hold the rows it read until commit, and to one that must see the latest commit. */
  readonly lockForUpdate: string
  readonly readLatest: string
  /** Appended to an artifact INSERT so content another writer stored first is left alone. */
  readonly ignoreDuplicateContent: string
  /**
   * Appended to an event INSERT whose ids were made before a retry: a retry of a write that committed, its answer lost
   * on the way, inserts nothing twice.
   */
  readonly ignoreDuplicateId: string
  /** Whether that INSERT can say which rows it inserted (`RETURNING`); otherwise the store looks. */
  readonly returning: boolean
  /** A `WITH` may hold an UPDATE that the statement's INSERT follows (PostgreSQL): two writes, one round trip. */
  readonly modifyingCte?: boolean | undefined
  /** Bounds of one multi-row INSERT: rows, and bytes of content (MariaDB's `max_allowed_packet`). */
  readonly bulkInsert: { readonly rows: number; readonly bytes: number }
  /** The largest content kept in one row; above it content is chunked. */
  readonly inlineCap: number
  /**
   * Payloads (inline and chunk rows) are fetched base64-encoded (`encode(blob_bytes, 'base64')`): PostgreSQL sends
   * `bytea` as hex text, twice the bytes, and a 100 MiB restore's garbage of hex strings held its peak near 200 MiB;
   * base64 is 4/3 of the bytes. Only over a host's client: the backend's own pool reads them by COPY (`PayloadReader`).
   */
  readonly payloadsAsBase64?: boolean | undefined
  /** Freed pages keep their bytes (SQLite): overwrite content before deleting it. */
  readonly zeroBeforeDelete: boolean
  /**
   * The column a whole-archive verify pages artifacts by (default `content_sha256`, indexed). SQLite's is `rowid`: its
   * untyped columns can hold a digest as a blob, which read back as text is another key, and paging by it repeated or
   * skipped artifacts, or never ended.
   */
  readonly artifactPageKey?: "rowid" | undefined
  /** Lists the tables named `item`/`artifact` with their columns, as rows of `t` (table) and `c` (column). */
  readonly archiveTablesQuery: string
  /**
   * One parameter (in the driver's placeholder form), a table name: a row when that table exists where unqualified
   * names resolve (the migrations table is found so).
   */
  readonly tableExistsQuery: string
  /** DDL commits on its own (MySQL): pending migrations run statement by statement before they are recorded. */
  readonly ddlAutoCommits: boolean
  /** Whether a connect error says the database named in the URL does not exist. */
  readonly missingDatabase: (error: unknown) => boolean
  readonly transient: TransientCodes
}

/** The driver code of an error or of its first cause that has one. */
export const causeField = (error: unknown, field: "code" | "errno"): unknown => {
  let current = error as { cause?: unknown } | undefined
  for (let depth = 0; depth < 4 && current !== null && typeof current === "object"; depth++) {
    const value = (current as Record<string, unknown>)[field]
    if (value !== undefined) return value
    current = current.cause as { cause?: unknown } | undefined
  }
  return undefined
}
