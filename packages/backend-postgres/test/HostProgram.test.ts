/**
 * A host program with its own `SqlClient` (a `PgClient` layer) and its own `@effect/sql` migrations, in the same
 * PostgreSQL database as the archive: both keep working with their own tables, the host's client stays the host's,
 * and `layerFromClient` runs the archive on the host's pool. Archives in two schemas of one database are independent.
 */
import { Archiver, ArchiveStore, CodexArchive, Restorer, Retry } from "@codex-archive/core"
import { Migrator, SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PgArchive } from "../src/index.js"
import { fresh } from "./helpers.js"

/** The host's own migrations, recorded in `@effect/sql`'s default table, as any Effect program's would be. */
const hostMigrations = Migrator.fromRecord({
  "0001_orders": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE orders (id SERIAL PRIMARY KEY, item TEXT NOT NULL)`
  ),
  "0002_customers": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE customers (id SERIAL PRIMARY KEY, name TEXT NOT NULL)`
  )
})

/** The host's client: its own pool, named so the server can tell its connections from the archive's. */
const hostClient = (url: string) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 2, applicationName: "host-app" })

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-host-"))

/** Stores one file and restores it elsewhere, through the archive's services; the restored text. */
const roundTrip = (dir: string, name: string) =>
  Effect.gen(function*() {
    fs.writeFileSync(path.join(dir, name), `content of ${name}\n`)
    const report = yield* (yield* Archiver.Archiver).store([path.join(dir, name)], {
      repo: "acme/host",
      actor: "host",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: dir
    })
    const outcome = yield* (yield* Restorer.Restorer).restore({
      tombstone: report.stored[0]!.tombstone,
      output: path.join(dir, `back-${name}`),
      actor: "host"
    })
    return fs.readFileSync(outcome.output, "utf8")
  })

/** The host's own work: its migrations, a row in its table, read back through its client. */
const hostWork = Effect.gen(function*() {
  const applied = yield* Migrator.make({})({ loader: hostMigrations })
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO orders (item) VALUES ('widget')`
  const orders = yield* sql<{ item: string }>`SELECT item FROM orders`
  const app = yield* sql<{ name: string }>`SELECT current_setting('application_name') AS name`
  return { applied: applied.map(([id, name]) => `${id}_${name}`), orders: orders.map((o) => o.item), app: app[0]!.name }
})

const tablesOf = (sql: SqlClient.SqlClient, schema: string) =>
  Effect.map(
    sql<
      { t: string }
    >`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`,
    (rows) => rows.map((r) => r.t)
  )

describe("a host program and the archive in one PostgreSQL database", () => {
  it.live("the archive on its own pool: the host's SqlClient and migrations stay the host's, both sides work", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const dir = tempDir()
      const archive = CodexArchive.layer({
        store: PgArchive.layer({ url, create: true, poolSize: 2 }),
        evidenceDir: path.join(dir, "evidence")
      })
      // The host provides its client and the archive side by side: the archive adds no `SqlClient` of its own.
      const program = Effect.gen(function*() {
        const before = yield* hostWork
        const restored = yield* roundTrip(dir, "a.txt")
        const host = yield* PgClient.PgClient
        const sql = yield* SqlClient.SqlClient
        expect(sql).toBe(host)
        // The host's migrations run again with the archive's tables beside them: nothing to apply.
        const again = yield* Migrator.make({})({ loader: hostMigrations })
        return { before, restored, again, public: yield* tablesOf(sql, "public") }
      })
      const result = yield* program.pipe(Effect.provide(Layer.merge(archive, hostClient(url))))
      expect(result.before).toEqual({ applied: ["1_orders", "2_customers"], orders: ["widget"], app: "host-app" })
      expect(result.again).toEqual([])
      expect(result.restored).toBe("content of a.txt\n")
      expect(result.public).toEqual(
        expect.arrayContaining([
          "orders",
          "customers",
          "effect_sql_migrations",
          "item",
          "artifact",
          "codex_archive_migrations"
        ])
      )

      // Each side's migrations in its own table.
      const check = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const host = yield* sql<{ n: string }>`SELECT name AS n FROM effect_sql_migrations ORDER BY migration_id`
        const ours = yield* sql<{ n: string }>`SELECT name AS n FROM codex_archive_migrations ORDER BY migration_id`
        return { host: host.map((r) => r.n), ours: ours.map((r) => r.n) }
      }).pipe(Effect.provide(hostClient(url)))
      expect(check.host).toEqual(["orders", "customers"])
      expect(check.ours).toEqual(["init", "artifact_chunk", "chunk_rows_follow_artifact"])
      fs.rmSync(dir, { recursive: true, force: true })
    })))

  it.live("the archive on the host's own pool (layerFromClient): no pool of its own, and the host's client still the host's", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const dir = tempDir()
      // The host's migrations first, as a host that already has its database would.
      const program = Effect.gen(function*() {
        const restored = yield* roundTrip(dir, "b.txt")
        const sql = yield* SqlClient.SqlClient
        expect(sql).toBe(yield* PgClient.PgClient)
        const host = yield* hostWork
        // Every connection to this database is the host's: the archive opened none of its own.
        const apps = yield* sql<
          { a: string }
        >`SELECT DISTINCT application_name AS a FROM pg_stat_activity WHERE datname = current_database()`
        const items = yield* sql<{ n: string }>`SELECT COUNT(*)::text AS n FROM item`
        return { restored, host, apps: apps.map((r) => r.a), items: items[0]!.n }
      })
      const archive = CodexArchive.layer({
        store: PgArchive.layerFromClient({ create: true }),
        evidenceDir: path.join(dir, "evidence")
      })
      const client = hostClient(url)
      const result = yield* program.pipe(Effect.provide(Layer.provideMerge(archive, client)))
      expect(result.restored).toBe("content of b.txt\n")
      expect(result.host).toEqual({ applied: ["1_orders", "2_customers"], orders: ["widget"], app: "host-app" })
      expect(result.apps).toEqual(["host-app"])
      expect(result.items).toBe("1")
      fs.rmSync(dir, { recursive: true, force: true })
    })))

  it.live("two archives in two schemas of one database are independent: tables, triggers and migrations each in its own", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const dir = tempDir()
      const services = (schema: string) =>
        CodexArchive.layer({
          store: PgArchive.layer({ url, create: true, poolSize: 2, schema }),
          evidenceDir: path.join(dir, `evidence-${schema}`)
        })
      const listed = Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.list({ limit: 10 }))
      const inA = yield* Effect.zip(roundTrip(dir, "in-a.txt"), listed).pipe(Effect.provide(services("archive_a")))
      const inB = yield* listed.pipe(Effect.provide(services("archive_b")))
      expect(inA[0]).toBe("content of in-a.txt\n")
      expect(inA[1].map((i) => i.path)).toEqual(["in-a.txt"])
      expect(inB).toEqual([])
      // A second open of the first schema sees its item again: it is where the archive lives, not a one-off.
      const again = yield* listed.pipe(Effect.provide(services("archive_a")))
      expect(again.map((i) => i.path)).toEqual(["in-a.txt"])

      const layout = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const triggers = (schema: string) =>
          Effect.map(
            sql<
              { t: string }
            >`SELECT DISTINCT trigger_name AS t FROM information_schema.triggers WHERE trigger_schema = ${schema} ORDER BY trigger_name`,
            (rows) => rows.map((r) => r.t)
          )
        const migrations = (schema: string) =>
          Effect.map(
            sql<{ n: string }>`SELECT COUNT(*)::text AS n FROM ${sql(schema)}.codex_archive_migrations`,
            (rows) => rows[0]!.n
          )
        return {
          a: yield* tablesOf(sql, "archive_a"),
          b: yield* tablesOf(sql, "archive_b"),
          public: yield* tablesOf(sql, "public"),
          triggersA: yield* triggers("archive_a"),
          triggersB: yield* triggers("archive_b"),
          migrationsA: yield* migrations("archive_a"),
          migrationsB: yield* migrations("archive_b")
        }
      }).pipe(Effect.provide(hostClient(url)))
      const tables = ["artifact", "artifact_chunk", "codex_archive_migrations", "event", "item", "referent", "tag"]
      expect(layout.a).toEqual(tables)
      expect(layout.b).toEqual(tables)
      expect(layout.public).toEqual([])
      expect(layout.triggersA).toEqual(["artifact_chunk_follow_delete", "artifact_chunk_follow_update"])
      expect(layout.triggersB).toEqual(["artifact_chunk_follow_delete", "artifact_chunk_follow_update"])
      expect([layout.migrationsA, layout.migrationsB]).toEqual(["3", "3"])
      fs.rmSync(dir, { recursive: true, force: true })
    })))

  it.live("a schema name that is not a plain lower-case identifier is refused, naming it", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const error = yield* Effect.flip(
        Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.probe).pipe(
          Effect.provide(PgArchive.layer({ url, create: true, schema: "Bad-Name" }).pipe(Layer.provide(Retry.none)))
        )
      )
      expect(error.message).toContain(`schema "Bad-Name": expected a lower-case name of letters, digits and _`)
    })))
})
