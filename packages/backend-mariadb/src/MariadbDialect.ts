/** How MariaDB / MySQL differs, for the shared `SqlArchiveStore`. */
import { Chunking, Dialect } from "@codex-archive/core"

/** TIMESTAMP columns take `YYYY-MM-DD HH:MM:SS` (the session is UTC). */
const timestamp = (iso: string) => iso.replace("T", " ").replace("Z", "")

export const dialect: Dialect.Dialect = {
  backend: "mariadb",
  timestamp,
  bool: (b) => (b ? 1 : 0),
  jsonCast: "",
  metadataText: "CAST(metadata AS CHAR)",
  insertionOrder: "seq",
  archivedAt: "archived_at",
  acceptsId: () => true,
  lockForUpdate: " FOR UPDATE",
  // InnoDB reads its snapshot; a shared lock sees (and waits for) rows other writers committed since.
  readLatest: " LOCK IN SHARE MODE",
  ignoreDuplicateContent: "ON DUPLICATE KEY UPDATE id = id",
  ignoreDuplicateId: "ON DUPLICATE KEY UPDATE id = id",
  returning: false,
  // One statement must fit `max_allowed_packet` (16 MiB by default), with room for the other columns.
  bulkInsert: { rows: 500, bytes: 8 * 1024 * 1024 },
  // One value must fit `max_allowed_packet` too: content above one chunk is chunked.
  inlineCap: Chunking.chunkSize,
  zeroBeforeDelete: false,
  archiveTablesQuery: "SELECT table_name AS t, column_name AS c FROM information_schema.columns " +
    "WHERE table_schema = DATABASE() AND table_name IN ('item', 'artifact')",
  tableExistsQuery: "SELECT 1 AS e FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
  ddlAutoCommits: true,
  // ER_BAD_DB_ERROR: the database named in the URL does not exist.
  missingDatabase: (error) => Dialect.causeField(error, "errno") === 1049,
  transient: {
    codes: new Set([
      "PROTOCOL_CONNECTION_LOST",
      "PROTOCOL_SEQUENCE_TIMEOUT",
      "ER_LOCK_DEADLOCK",
      "ER_LOCK_WAIT_TIMEOUT",
      "ER_CON_COUNT_ERROR",
      "ER_SERVER_SHUTDOWN",
      "ER_CONNECTION_KILLED",
      "ER_QUERY_INTERRUPTED",
      "ER_CLIENT_INTERACTION_TIMEOUT"
    ]),
    // Deadlock, lock wait timeout, cannot connect, gone away, lost, too many connections, shutdown, killed.
    errnos: new Set([1213, 1205, 2002, 2003, 2006, 2013, 1040, 1053, 1927, 4031])
  }
}
