/**
 * Schema migrations as data: each backend lists its dialect's statements once, and the same list both migrates the
 * database (`run`) and prints the DDL (`codex archive schema`).
 *
 * The archive records its migrations in a table of its own, so a host program's migrations in the same database
 * (`@effect/sql`'s default `effect_sql_migrations`) neither hide ours nor are touched by them.
 */
import { Migrator, SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql"
import { Effect } from "effect"
import type { Dialect } from "./Dialect.js"

export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

/** Where the archive records its applied migrations. */
export const table = "codex_archive_migrations"

/** Where earlier versions recorded them: `@effect/sql`'s default, shared with any host program's migrations. */
export const legacyTable = "effect_sql_migrations"

export const loader = (migrations: ReadonlyArray<Migration>): Migrator.Loader =>
  Migrator.fromRecord(Object.fromEntries(migrations.map((m) => [
    `${String(m.id).padStart(4, "0")}_${m.name}`,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      for (const statement of m.statements) yield* sql.unsafe(statement)
    })
  ])))

interface Applied {
  readonly migration_id: number
  readonly name: string
  readonly created_at: unknown
}

/** What migrating takes from the backend's dialect. */
export type MigrationDialect = Pick<Dialect, "tableExistsQuery">

const exists = (
  sql: SqlClient.SqlClient,
  dialect: MigrationDialect,
  name: string
): Effect.Effect<boolean, SqlError.SqlError> =>
  Effect.map(sql.unsafe(dialect.tableExistsQuery, [name]), (rows) => rows.length > 0)

/** The legacy table's rows that are ours (same id and name); a host's own migrations there are not. */
const legacyRowsOf = (sql: SqlClient.SqlClient, dialect: MigrationDialect, migrations: ReadonlyArray<Migration>) =>
  Effect.gen(function*() {
    if (!(yield* exists(sql, dialect, legacyTable))) return []
    const ours = new Set(migrations.map((m) => `${m.id}_${m.name}`))
    const rows = yield* sql<Applied>`SELECT migration_id, name, created_at FROM ${sql(legacyTable)}`.withoutTransform
    return rows.filter((r) => ours.has(`${Number(r.migration_id)}_${String(r.name)}`))
  })

/**
 * The applied schema version: from the archive's table, else (an archive of an earlier version, not yet opened for
 * writing) from its rows in the legacy table; 0 when neither has any.
 */
export const version = (migrations: ReadonlyArray<Migration>, dialect: MigrationDialect) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (yield* exists(sql, dialect, table)) {
      const rows = yield* sql<{ v: unknown }>`SELECT MAX(migration_id) AS v FROM ${sql(table)}`.withoutTransform
      return Number(rows[0]?.v ?? 0)
    }
    return Math.max(0, ...(yield* legacyRowsOf(sql, dialect, migrations)).map((r) => Number(r.migration_id)))
  })

/**
 * Migrates the archive. An archive of an earlier version has its rows in the legacy table copied to the archive's
 * own (ids, names and times, the legacy table left as it is) before anything runs, so nothing is applied twice.
 */
export const run = (migrations: ReadonlyArray<Migration>, dialect: MigrationDialect) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (!(yield* exists(sql, dialect, table))) {
      const adopted = yield* legacyRowsOf(sql, dialect, migrations)
      // The Migrator makes its table in the dialect's own form; with nothing to load it applies nothing.
      yield* Migrator.make({})({ loader: Effect.succeed([]), table })
      if (adopted.length > 0) {
        yield* sql.withTransaction(Effect.gen(function*() {
          // A concurrent first open may have copied them already.
          if (
            (yield* sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(table)}`.withoutTransform).some((r) =>
              Number(r.n) > 0
            )
          ) return
          yield* sql`INSERT INTO ${sql(table)} ${
            sql.insert(
              adopted.map((r) => ({
                migration_id: Number(r.migration_id),
                name: String(r.name),
                created_at: r.created_at
              }))
            )
          }`.withoutTransform
        }))
      }
    }
    return yield* Migrator.make({})({ loader: loader(migrations), table })
  })

/** Each statement trimmed and ended with `;`, as the original `schema` command prints them. */
export const render = (migrations: ReadonlyArray<Migration>): string =>
  migrations.flatMap((m) => m.statements.map((s) => `${s.trim().replace(/;$/, "")};`)).join("\n\n") + "\n"

/** The highest migration id in the list (what `health-check` expects the database to report). */
export const latest = (migrations: ReadonlyArray<Migration>): number => Math.max(0, ...migrations.map((m) => m.id))
