/** `codex archive list [--repo R] [--since ISO] [--limit N]`: newest first, ties by insertion order. */
import { ArchiveStore } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as Runtime from "../Runtime.js"

/** Accepts a date or a date-time; compares in the spec's `YYYY-MM-DDTHH:MM:SSZ` form. */
export const parseSince = (value: string): Effect.Effect<string, Runtime.CliExit> => {
  const v = value.trim()
  const ok = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)
  const ms = ok
    ? Date.parse(
      /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /(Z|[+-]\d{2}:?\d{2})$/.test(v) ? v : `${v.replace(" ", "T")}Z`
    )
    : NaN
  return Number.isNaN(ms)
    ? Effect.fail(
      new Runtime.CliExit({
        code: 2,
        message: `--since '${value}': expected an ISO date such as 2026-01-31 or 2026-01-31T12:00:00Z`
      })
    )
    : Effect.succeed(new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"))
}

export const command = Command.make(
  "list",
  {
    ...Runtime.shared,
    repo: Options.text("repo").pipe(Options.withDescription("Only items of this repository"), Options.optional),
    since: Options.text("since").pipe(
      Options.withDescription("Only items archived at or after this time (ISO 8601)"),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(Options.withDefault(50), Options.withDescription("At most this many items"))
  },
  (opts) =>
    Effect.gen(function*() {
      // Input is checked before the archive is opened: bad usage never touches the database.
      // 0 is the original's "check the backend, list nothing" (it prints `[]`); a negative limit means nothing sure.
      if (opts.limit < 0) {
        return yield* new Runtime.CliExit({ code: 2, message: `--limit ${opts.limit}: expected a whole number >= 0` })
      }
      const since = Option.isSome(opts.since) ? yield* parseSince(opts.since.value) : undefined
      return yield* Runtime.withArchive(opts, { create: false, readOnly: true }, () =>
        Effect.gen(function*() {
          const items = yield* (yield* ArchiveStore.ArchiveStore).list({
            repo: Option.getOrUndefined(opts.repo),
            since,
            limit: opts.limit
          })
          yield* Runtime.printJson(items)
        }))
    })
).pipe(Command.withDescription("List archived items, newest first"))
