/** `codex archive schema [--dialect NAME]`: print the DDL of a dialect, each statement ended with `;`. */
import { Config, Migrations } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as Backends from "../Backends.js"
import * as Runtime from "../Runtime.js"

export const migrationsOf = (dialect: Config.BackendName) =>
  Effect.map(Backends.load(dialect), (backend) => backend.migrations)

/** `--dialect` as the original takes it: any letter case (`SQLite`), and the URL schemes' `postgresql`, `mysql`. */
export const dialectOption = (description: string) =>
  Options.text("dialect").pipe(
    Options.withPseudoName("DIALECT"),
    Options.withDescription(description),
    Options.optional
  )

/** The backend a `--dialect` value names; an unknown one is bad usage that names the value and the accepted list. */
export const parseDialect = (
  value: Option.Option<string>
): Effect.Effect<Config.BackendName | undefined, Runtime.CliExit> => {
  if (Option.isNone(value)) return Effect.succeed(undefined)
  const name = Config.backendNameOf(value.value)
  return name !== undefined ? Effect.succeed(name) : Effect.fail(
    new Runtime.CliExit({
      code: 2,
      message: `--dialect ${JSON.stringify(value.value)}: unknown dialect; ` +
        `expected one of ${Config.backendSpellings.join(", ")} (any letter case)`
    })
  )
}

export const command = Command.make(
  "schema",
  { ...Runtime.shared, dialect: dialectOption("Dialect to print (default: the configured backend)") },
  (opts) =>
    Effect.gen(function*() {
      // Checked before the configuration is read: bad usage is reported as such whatever the config says.
      const dialect = yield* parseDialect(opts.dialect)
      return yield* Runtime.withConfig(opts, (loaded) =>
        Effect.gen(function*() {
          const migrations = yield* migrationsOf(dialect ?? loaded.config.backend.backend)
          yield* Runtime.printText(Migrations.render(migrations))
        }))
    })
).pipe(Command.withDescription("Print the schema DDL of a dialect"))
