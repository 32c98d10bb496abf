/**
 * The archive over a host's own MySQL client (`@effect/sql-mysql2`, `layerFromClient`): the host's pool and its own
 * migrations in the same database, each side with its own tables, the host's `SqlClient` still its own.
 */
import { Archiver, CodexArchive, Restorer } from "@codex-archive/core"
import { Migrator, SqlClient } from "@effect/sql"
import { MysqlClient } from "@effect/sql-mysql2"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MariadbArchive, MariadbSchema } from "../src/index.js"
import { fresh } from "./helpers.js"

const hostMigrations = Migrator.fromRecord({
  "0001_orders": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64) NOT NULL)`
  ),
  "0002_customers": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL)`
  )
})

describe("MariadbArchive.layerFromClient", () => {
  it.live("runs on the host's pool beside the host's own migrations and tables; the host's SqlClient stays its own", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-host-"))
      fs.writeFileSync(path.join(dir, "a.txt"), "hello from the host\n")
      const host = MysqlClient.layer({ url: Redacted.make(url), maxConnections: 2 })
      const archive = CodexArchive.layer({
        store: MariadbArchive.layerFromClient({ create: true }),
        evidenceDir: path.join(dir, "evidence")
      })
      const result = yield* Effect.gen(function*() {
        const applied = yield* Migrator.make({})({ loader: hostMigrations })
        const sql = yield* SqlClient.SqlClient
        expect(sql).toBe(yield* MysqlClient.MysqlClient)
        yield* sql`INSERT INTO orders (item) VALUES ('widget')`
        const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "a.txt")], {
          repo: "acme/host",
          actor: "host",
          commit: "abc",
          reason: "dead",
          kind: "code",
          cwd: dir
        })
        const outcome = yield* (yield* Restorer.Restorer).restore({
          tombstone: report.stored[0]!.tombstone,
          output: path.join(dir, "back.txt"),
          actor: "host"
        })
        return {
          applied: applied.map(([id, name]) => `${id}_${name}`),
          restored: fs.readFileSync(outcome.output, "utf8"),
          orders: (yield* sql<{ item: string }>`SELECT item FROM orders`).map((r) => r.item),
          host: (yield* sql<{ name: string }>`SELECT name FROM effect_sql_migrations ORDER BY migration_id`).map((r) =>
            r.name
          ),
          ours: (yield* sql<{ name: string }>`SELECT name FROM codex_archive_migrations ORDER BY migration_id`).map((
            r
          ) => r.name)
        }
      }).pipe(Effect.provide(Layer.provideMerge(archive, host)))
      expect(result).toEqual({
        applied: ["1_orders", "2_customers"],
        restored: "hello from the host\n",
        orders: ["widget"],
        host: ["orders", "customers"],
        ours: MariadbSchema.migrations.map((m) => m.name)
      })
      fs.rmSync(dir, { recursive: true, force: true })
    })))
})
