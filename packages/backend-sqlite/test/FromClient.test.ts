/**
 * The archive over a host's own `SqliteClient` (`layerFromClient`): the host's connection and migrations, its own
 * tables beside the archive's in one file, its `SqlClient` still its own; batches read payloads from the client's file.
 */
import { Archiver, ArchiveStore, Batch, CodexArchive, Restorer, Retry } from "@codex-archive/core"
import { Migrator, SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"
import { tempDir } from "./helpers.js"

const hostMigrations = Migrator.fromRecord({
  "0001_notes": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`
  ),
  "0002_tags": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE note_tags (note_id INTEGER NOT NULL, tag TEXT NOT NULL)`
  )
})

describe("SqliteArchive.layerFromClient", () => {
  it.live("runs on the host's connection beside the host's own migrations and tables; the host's SqlClient stays its own", () => {
    const dir = tempDir()
    const file = path.join(dir, "host.sqlite")
    fs.writeFileSync(path.join(dir, "a.txt"), "hello from the host\n")
    const host = SqliteClient.layer({ filename: file })
    const archive = CodexArchive.layer({
      store: SqliteArchive.layerFromClient({ create: true }),
      evidenceDir: path.join(dir, "evidence")
    })
    return Effect.gen(function*() {
      const applied = yield* Migrator.make({})({ loader: hostMigrations })
      const sql = yield* SqlClient.SqlClient
      expect(sql).toBe(yield* SqliteClient.SqliteClient)
      yield* sql`INSERT INTO notes (body) VALUES ('keep me')`
      const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "a.txt")], {
        repo: "acme/host",
        actor: "host",
        commit: "abc",
        reason: "dead",
        kind: "code",
        cwd: dir
      })
      const tombstone = report.stored[0]!.tombstone
      const outcome = yield* (yield* Restorer.Restorer).restore({
        tombstone,
        output: path.join(dir, "back.txt"),
        actor: "host"
      })
      expect(fs.readFileSync(outcome.output, "utf8")).toBe("hello from the host\n")
      // A batch's worker threads open the client's own file to read payloads.
      const store = yield* ArchiveStore.ArchiveStore
      expect(store.directReads?.file).toBe(file)
      const { summary } = yield* Batch.run([{ tombstone, output: path.join(dir, "batch/a.txt"), actor: "host" }], {
        actor: "host",
        workers: 1
      })
      expect(summary).toMatchObject({ total: 1, succeeded: 1 })
      expect(fs.readFileSync(path.join(dir, "batch/a.txt"), "utf8")).toBe("hello from the host\n")

      expect(applied.map(([id, name]) => `${id}_${name}`)).toEqual(["1_notes", "2_tags"])
      expect((yield* sql<{ body: string }>`SELECT body FROM notes`).map((r) => r.body)).toEqual(["keep me"])
      expect(
        (yield* sql<{ name: string }>`SELECT name FROM effect_sql_migrations ORDER BY migration_id`).map((r) => r.name)
      ).toEqual(["notes", "tags"])
      expect(
        (yield* sql<{ name: string }>`SELECT name FROM codex_archive_migrations ORDER BY migration_id`).map((r) =>
          r.name
        )
      )
        .toEqual(SqliteArchive.migrations.map((m) => m.name))
    }).pipe(
      Effect.provide(Layer.provideMerge(archive, host)),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

  it.live("a host database whose item table is not the archive's is refused before anything is written", () => {
    const dir = tempDir()
    const file = path.join(dir, "other.sqlite")
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE item (sku TEXT PRIMARY KEY)`
      const error = yield* Effect.flip(
        Layer.build(SqliteArchive.layerFromClient({ create: true }).pipe(Layer.provide(Retry.none)))
      )
      expect(error._tag).toBe("NotAnArchive")
      expect(error.message).toContain("is a database but not a codex archive (table item lacks id, tombstone_id")
      const tables = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .map((r) => r.name)
      expect(tables).toEqual(["item"])
    }).pipe(
      Effect.scoped,
      Effect.provide(SqliteClient.layer({ filename: file })),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

  it.live("a read-only host client opens an existing archive without migrating it", () => {
    const dir = tempDir()
    const file = path.join(dir, "archive.sqlite")
    fs.writeFileSync(path.join(dir, "b.txt"), "read me\n")
    return Effect.gen(function*() {
      // Made by the archive's own layer first, then opened through a host's read-only connection.
      const tombstone = yield* Effect.flatMap(
        Archiver.Archiver,
        (a) =>
          a.store([path.join(dir, "b.txt")], {
            repo: "r",
            actor: "host",
            commit: "abc",
            reason: "dead",
            kind: "code",
            cwd: dir
          })
      ).pipe(
        Effect.map((r) => r.stored[0]!.tombstone),
        Effect.provide(
          CodexArchive.layer({
            store: SqliteArchive.layer({ url: `sqlite:///${file}`, create: true }),
            evidenceDir: path.join(dir, "evidence")
          })
        )
      )
      const readOnly = SqliteArchive.layerFromClient({ create: false }).pipe(
        Layer.provide(Retry.none),
        Layer.provide(SqliteClient.layer({ filename: file, readonly: true }))
      )
      const shown = yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.show(tombstone)).pipe(
        Effect.provide(readOnly)
      )
      expect(shown.path).toBe("b.txt")
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })
})
