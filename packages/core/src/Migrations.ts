/**
 * Schema migrations as data: each backend lists its dialect's statements once, and the same list both migrates the
 * database (`Migrator.fromRecord`) and prints the DDL (`codex archive schema`).
 */
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

export const loader = (migrations: ReadonlyArray<Migration>): Migrator.Loader =>
  Migrator.fromRecord(Object.fromEntries(migrations.map((m) => [
    `${String(m.id).padStart(4, "0")}_${m.name}`,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      for (const statement of m.statements) yield* sql.unsafe(statement)
    })
  ])))

/** Each statement trimmed and ended with `;`, as the original `schema` command prints them. */
export const render = (migrations: ReadonlyArray<Migration>): string =>
  migrations.flatMap((m) => m.statements.map((s) => `${s.trim().replace(/;$/, "")};`)).join("\n\n") + "\n"

/** The highest migration id in the list (what `health-check` expects the database to report). */
export const latest = (migrations: ReadonlyArray<Migration>): number => Math.max(0, ...migrations.map((m) => m.id))
