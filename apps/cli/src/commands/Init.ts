/** `codex archive init`: create (or bring up to date) the archive's schema on the configured backend. */
import { ArchiveStore } from "@codex-archive/core"
import { Command } from "@effect/cli"
import { Effect, Option } from "effect"
import * as Runtime from "../Runtime.js"
import { dialectOption, parseDialect } from "./Schema.js"

export const command = Command.make(
  "init",
  {
    ...Runtime.shared,
    dialect: dialectOption(
      "The configured backend, named as a check (sqlite, postgres, postgresql, mariadb, mysql; any case)"
    )
  },
  (opts) =>
    Effect.gen(function*() {
      const dialect = yield* parseDialect(opts.dialect)
      return yield* Runtime.withArchive(opts, {
        create: true,
        // The original only relabels its output with --dialect; a schema made on another backend than named is refused.
        check: (config) =>
          dialect === undefined || dialect === config.backend.backend ? Effect.void : Effect.fail(
            new Runtime.CliExit({
              code: 2,
              message: `--dialect ${Option.getOrElse(opts.dialect, () => dialect)}: the configured backend is ` +
                `${config.backend.backend}; init works on the configured archive (set --url or CODEX_ARCHIVE_URL)`
            })
          )
      }, (config) =>
        Effect.gen(function*() {
          const store = yield* ArchiveStore.ArchiveStore
          const version = yield* store.schemaVersion
          yield* Runtime.printDone(
            `archive schema ensured for backend=${config.backend.backend} (schema version ${version}, ${store.location})`
          )
        }))
    })
).pipe(Command.withDescription("Create the archive schema (safe to run again; never alters existing data)"))
