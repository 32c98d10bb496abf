/**
 * The spec's portable schema (§2.1) for MariaDB (InnoDB, utf8mb4 with binary collation so comparisons match the other
 * backends), plus our additions. DDL auto-commits here, so every statement is idempotent on its own: tables, columns
 * and indexes use MariaDB's own `IF NOT EXISTS` (MariaDB ≥ 10.5; plain MySQL has no such form for indexes/columns).
 */
import { Chunking, type Migrations } from "@codex-archive/core"

const table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

export const migrations: ReadonlyArray<Migrations.Migration> = [
  {
    id: 1,
    name: "init",
    statements: [
      `CREATE TABLE IF NOT EXISTS artifact (
  id CHAR(36) PRIMARY KEY,
  content_sha256 CHAR(64) NOT NULL UNIQUE,
  size_bytes BIGINT NOT NULL,
  compression VARCHAR(16) NOT NULL DEFAULT 'zstd',
  mime_type VARCHAR(255) NOT NULL,
  storage_driver VARCHAR(16) NOT NULL DEFAULT 'db',
  blob_bytes LONGBLOB,
  object_url TEXT,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ${table}`,
      `CREATE TABLE IF NOT EXISTS item (
  id CHAR(36) PRIMARY KEY,
  repo VARCHAR(512) NOT NULL,
  path VARCHAR(2048) NOT NULL,
  commit_sha CHAR(40) NOT NULL,
  language VARCHAR(64),
  kind ENUM('code','doc','asset') NOT NULL,
  reason ENUM('dead','pruned','legacy','replaced') NOT NULL,
  artifact_id CHAR(36) NOT NULL,
  metadata JSON NOT NULL,
  archived_by VARCHAR(256) NOT NULL,
  archived_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  tombstone_id CHAR(36) NOT NULL UNIQUE,
  legal_hold BOOLEAN NOT NULL DEFAULT FALSE,
  delete_after TIMESTAMP NULL,
  restored_at TIMESTAMP NULL,
  CONSTRAINT fk_item_artifact FOREIGN KEY (artifact_id) REFERENCES artifact(id)
) ${table}`,
      `CREATE TABLE IF NOT EXISTS event (
  id CHAR(36) PRIMARY KEY,
  item_id CHAR(36) NOT NULL,
  action ENUM('ARCHIVE','RESTORE','PRUNE_REQUEST','DELETE_APPROVED') NOT NULL,
  actor VARCHAR(256) NOT NULL,
  context JSON NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT fk_event_item FOREIGN KEY (item_id) REFERENCES item(id)
) ${table}`,
      `CREATE TABLE IF NOT EXISTS tag (
  item_id CHAR(36) NOT NULL,
  tag VARCHAR(128) NOT NULL,
  PRIMARY KEY (item_id, tag),
  CONSTRAINT fk_tag_item FOREIGN KEY (item_id) REFERENCES item(id)
) ${table}`,
      `CREATE TABLE IF NOT EXISTS referent (
  item_id CHAR(36) NOT NULL,
  ref_type VARCHAR(32) NOT NULL,
  ref_value VARCHAR(512) NOT NULL,
  PRIMARY KEY (item_id, ref_type, ref_value),
  CONSTRAINT fk_referent_item FOREIGN KEY (item_id) REFERENCES item(id)
) ${table}`,
      `CREATE INDEX IF NOT EXISTS idx_item_repo_path ON item(repo(191), path(191))`,
      `CREATE INDEX IF NOT EXISTS idx_item_archived_at ON item(archived_at)`,
      `CREATE INDEX IF NOT EXISTS idx_event_item_time ON event(item_id, created_at)`
    ]
  },
  {
    id: 2,
    name: "artifact_chunk",
    statements: [
      // Content larger than one chunk: one row per compressed chunk (≈1 MiB), far below max_allowed_packet (16 MiB).
      // No foreign key: an `artifact` made by the original tool has the server's default collation, which a key from
      // this utf8mb4_bin column is refused against (errno 150); migration 3's triggers keep the rows with their artifact.
      `CREATE TABLE IF NOT EXISTS artifact_chunk (
  artifact_id CHAR(36) NOT NULL,
  seq INT NOT NULL,
  blob_bytes LONGBLOB NOT NULL,
  PRIMARY KEY (artifact_id, seq)
) ${table}`,
      `CREATE INDEX IF NOT EXISTS idx_item_artifact ON item(artifact_id)`,
      // Timestamps have second precision: `seq` breaks ties by insertion order (list, show), as SQLite's rowid does.
      `ALTER TABLE item ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL AUTO_INCREMENT, ADD UNIQUE KEY IF NOT EXISTS uq_item_seq (seq)`,
      `ALTER TABLE event ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL AUTO_INCREMENT, ADD UNIQUE KEY IF NOT EXISTS uq_event_seq (seq)`,
      `CREATE INDEX IF NOT EXISTS idx_item_archived_at_seq ON item(archived_at, seq)`
    ]
  },
  {
    id: 3,
    name: "chunk_rows_follow_artifact",
    statements: [
      // A chunked artifact gets a non-NULL marker and a `chunked:` codec: the original refuses it by name, never "purged".
      `UPDATE artifact SET blob_bytes = '${Chunking.chunkedMarker}', compression = CONCAT('chunked:', compression)
  WHERE storage_driver = 'chunked' AND blob_bytes IS NULL`,
      // Another tool's purge or re-store (an UPDATE of the artifact away from 'chunked') or a DELETE takes the chunk rows
      // with it; our own chunked rewrite (delete chunks, update to 'chunked', insert chunks) never matches it.
      `CREATE TRIGGER IF NOT EXISTS artifact_chunk_follow_update AFTER UPDATE ON artifact FOR EACH ROW
DELETE FROM artifact_chunk WHERE artifact_id = NEW.id AND NOT (NEW.storage_driver <=> 'chunked')`,
      `CREATE TRIGGER IF NOT EXISTS artifact_chunk_follow_delete BEFORE DELETE ON artifact FOR EACH ROW
DELETE FROM artifact_chunk WHERE artifact_id = OLD.id`
    ]
  }
]
