/** How SQLite differs, for the shared `SqlArchiveStore`. */
import type { Dialect } from "@codex-archive/core"

export const dialect: Dialect.Dialect = {
  backend: "sqlite",
  timestamp: (iso) => iso,
  bool: (b) => (b ? 1 : 0),
  jsonCast: "",
  metadataText: "metadata",
  insertionOrder: "rowid",
  // Rows written by the original's legacy layer use `YYYY-MM-DD HH:MM:SS`; strftime reads both forms. What it cannot
  // read (another tool's text, a blob) is '', last in the list: a NULL compared with no page's cursor (migration 5).
  archivedAt: "COALESCE(strftime('%Y-%m-%dT%H:%M:%SZ', archived_at), '')",
  acceptsId: () => true,
  // One writer at a time: a write transaction already holds everything it reads.
  lockForUpdate: "",
  readLatest: "",
  ignoreDuplicateContent: "ON CONFLICT (content_sha256) DO NOTHING",
  ignoreDuplicateId: "ON CONFLICT (id) DO NOTHING",
  returning: true,
  bulkInsert: { rows: 500, bytes: 16 * 1024 * 1024 },
  inlineCap: Number.MAX_SAFE_INTEGER,
  // Our connection does not zero freed pages: overwritten in place first, the bytes leave the file.
  zeroBeforeDelete: true,
  artifactPageKey: "rowid",
  archiveTablesQuery: "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p " +
    "WHERE m.type = 'table' AND m.name IN ('item', 'artifact')",
  tableExistsQuery: "SELECT 1 AS e FROM sqlite_master WHERE type = 'table' AND name = ?",
  ddlAutoCommits: false,
  missingDatabase: () => false,
  transient: {
    codes: new Set([
      "SQLITE_BUSY",
      "SQLITE_BUSY_SNAPSHOT",
      "SQLITE_BUSY_RECOVERY",
      "SQLITE_LOCKED",
      "SQLITE_LOCKED_SHAREDCACHE"
    ]),
    errnos: new Set()
  }
}
