/** How PostgreSQL differs, for the shared `SqlArchiveStore`. */
import { Dialect } from "@codex-archive/core"

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const dialect: Dialect.Dialect = {
  backend: "postgres",
  timestamp: (iso) => iso,
  bool: (b) => b,
  jsonCast: "::jsonb",
  metadataText: "metadata::text",
  insertionOrder: "seq",
  archivedAt: "archived_at",
  acceptsId: (id) => uuidShape.test(id),
  lockForUpdate: " FOR UPDATE",
  readLatest: "",
  ignoreDuplicateContent: "ON CONFLICT (content_sha256) DO NOTHING",
  ignoreDuplicateId: "ON CONFLICT (id) DO NOTHING",
  returning: true,
  modifyingCte: true,
  bulkInsert: { rows: 500, bytes: 16 * 1024 * 1024 },
  inlineCap: Number.MAX_SAFE_INTEGER,
  payloadsAsBase64: true,
  zeroBeforeDelete: false,
  archiveTablesQuery: "SELECT table_name AS t, column_name AS c FROM information_schema.columns " +
    "WHERE table_schema = current_schema() AND table_name IN ('item', 'artifact')",
  // to_regclass follows the search path, as the Migrator's own unqualified table name does.
  tableExistsQuery: "SELECT 1 AS e WHERE to_regclass($1) IS NOT NULL",
  ddlAutoCommits: false,
  // 3D000: the database named in the URL does not exist.
  missingDatabase: (error) => Dialect.causeField(error, "code") === "3D000",
  transient: {
    // SQLSTATE: serialization failure, deadlock, admin/crash shutdown, cannot connect now, connection exceptions.
    codes: new Set(["40001", "40P01", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"]),
    errnos: new Set()
  }
}
