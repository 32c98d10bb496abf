/**
 * The spec's portable schema (§2.1) for SQLite, plus our additions (new tables and indexes only). Every statement is
 * `IF NOT EXISTS`, so an archive written by the original tool opens unchanged apart from what we add.
 */
import { Chunking, type Migrations } from "@codex-archive/core"

export const migrations: ReadonlyArray<Migrations.Migration> = [
  {
    id: 1,
    name: "init",
    statements: [
      `CREATE TABLE IF NOT EXISTS artifact (
  id TEXT PRIMARY KEY,
  content_sha256 TEXT NOT NULL UNIQUE,
  size_bytes INTEGER NOT NULL,
  compression TEXT NOT NULL DEFAULT 'zstd',
  mime_type TEXT NOT NULL,
  storage_driver TEXT NOT NULL DEFAULT 'db',
  blob_bytes BLOB,
  object_url TEXT,
  created_at TEXT NOT NULL DEFAULT (datetime('now'))
)`,
      `CREATE TABLE IF NOT EXISTS item (
  id TEXT PRIMARY KEY,
  repo TEXT NOT NULL,
  path TEXT NOT NULL,
  commit_sha TEXT NOT NULL,
  language TEXT,
  kind TEXT NOT NULL CHECK (kind IN ('code','doc','asset')),
  reason TEXT NOT NULL CHECK (reason IN ('dead','pruned','legacy','replaced')),
  artifact_id TEXT NOT NULL REFERENCES artifact(id),
  metadata TEXT NOT NULL DEFAULT '{}',
  archived_by TEXT NOT NULL,
  archived_at TEXT NOT NULL DEFAULT (datetime('now')),
  tombstone_id TEXT NOT NULL UNIQUE,
  legal_hold INTEGER NOT NULL DEFAULT 0,
  delete_after TEXT,
  restored_at TEXT
)`,
      `CREATE TABLE IF NOT EXISTS event (
  id TEXT PRIMARY KEY,
  item_id TEXT NOT NULL REFERENCES item(id),
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  context TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (datetime('now'))
)`,
      `CREATE TABLE IF NOT EXISTS tag (item_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (item_id, tag))`,
      `CREATE TABLE IF NOT EXISTS referent (
  item_id TEXT NOT NULL,
  ref_type TEXT NOT NULL,
  ref_value TEXT NOT NULL,
  PRIMARY KEY (item_id, ref_type, ref_value)
)`,
      `CREATE INDEX IF NOT EXISTS idx_item_repo_path ON item(repo, path)`,
      `CREATE INDEX IF NOT EXISTS idx_item_archived_at ON item(archived_at)`,
      `CREATE INDEX IF NOT EXISTS idx_event_item_time ON event(item_id, created_at)`
    ]
  },
  {
    id: 2,
    name: "artifact_chunk",
    statements: [
      // Content larger than one chunk: one row per compressed chunk, so no value is ever larger than a chunk.
      `CREATE TABLE IF NOT EXISTS artifact_chunk (
  artifact_id TEXT NOT NULL REFERENCES artifact(id),
  seq INTEGER NOT NULL,
  blob_bytes BLOB NOT NULL,
  PRIMARY KEY (artifact_id, seq)
)`,
      `CREATE INDEX IF NOT EXISTS idx_item_artifact ON item(artifact_id)`
    ]
  },
  {
    id: 3,
    name: "chunk_rows_follow_artifact",
    statements: [
      // A chunked artifact gets a non-NULL marker and a `chunked:` codec: the original refuses it by name, never "purged".
      `UPDATE artifact SET blob_bytes = CAST('${Chunking.chunkedMarker}' AS BLOB), compression = 'chunked:' || compression
  WHERE storage_driver = 'chunked' AND blob_bytes IS NULL`,
      // Another tool's purge or re-store (an UPDATE of the artifact away from 'chunked') or a DELETE takes the chunk rows
      // with it. A connection without secure_delete leaves freed pages as they were: zeroed in place first.
      `CREATE TRIGGER IF NOT EXISTS artifact_chunk_follow_update AFTER UPDATE ON artifact
WHEN NEW.storage_driver IS NOT 'chunked'
BEGIN
  UPDATE artifact_chunk SET blob_bytes = zeroblob(LENGTH(blob_bytes)) WHERE artifact_id = NEW.id;
  DELETE FROM artifact_chunk WHERE artifact_id = NEW.id;
END`,
      `CREATE TRIGGER IF NOT EXISTS artifact_chunk_follow_delete BEFORE DELETE ON artifact
BEGIN
  UPDATE artifact_chunk SET blob_bytes = zeroblob(LENGTH(blob_bytes)) WHERE artifact_id = OLD.id;
  DELETE FROM artifact_chunk WHERE artifact_id = OLD.id;
END`
    ]
  },
  {
    id: 4,
    name: "list_order",
    statements: [
      // `list` pages by its order, which is this expression (legacy rows differ as text): an index on it lets each page
      // seek to its cursor; without it every page sorts the whole table.
      `CREATE INDEX IF NOT EXISTS idx_item_list_order ON item(strftime('%Y-%m-%dT%H:%M:%SZ', archived_at))`
    ]
  },
  {
    id: 5,
    name: "list_order_total",
    statements: [
      // The list order as the dialect now reads it: a date strftime cannot parse sorts last instead of as NULL, which
      // no page's cursor compared with, so such an item was never listed after the first page.
      `CREATE INDEX IF NOT EXISTS idx_item_list_order_total ON item(COALESCE(strftime('%Y-%m-%dT%H:%M:%SZ', archived_at), ''))`,
      `DROP INDEX IF EXISTS idx_item_list_order`
    ]
  }
]
