/** `codex archive schema [--dialect NAME]`: print the DDL of a dialect, each statement ended with `;`. */
import { Config, Migrations } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as Runtime from "../Runtime.js"

export const migrationsOf = (dialect: Config.BackendName) => {
  switch (dialect) {
    case "sqlite":
      return Effect.promise(() => import("@codex-archive/backend-sqlite")).pipe(Effect.map((m) => m.SqliteSchema.migrations))
    case "postgres":
      return Effect.promise(() => import("@codex-archive/backend-postgres")).pipe(Effect.map((m) => m.PgSchema.migrations))
    case "mariadb":
      return Effect.promise(() => import("@codex-archive/backend-mariadb")).pipe(Effect.map((m) => m.MariadbSchema.migrations))
  }
}

export const command = Command.make(
  "schema",
  {
    ...Runtime.shared,
    dialect: Options.choice("dialect", ["sqlite", "postgres", "postgresql", "mariadb", "mysql"]).pipe(
      Options.withDescription("Dialect to print (default: the configured backend)"),
      Options.optional
    )
  },
  (opts) =>
    Runtime.withConfig(opts, (loaded) =>
      Effect.gen(function*() {
        const chosen = Option.getOrElse(opts.dialect, () => loaded.config.backend.backend)
        const dialect: Config.BackendName = chosen === "postgresql" ? "postgres" : chosen === "mysql" ? "mariadb" : chosen
        const migrations = yield* migrationsOf(dialect)
        yield* Effect.sync(() => process.stdout.write(Migrations.render(migrations)))
      }))
).pipe(Command.withDescription("Print the schema DDL of a dialect"))
