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

/** Items read per query. */
const pageSize = 500

export const command = Command.make(
  "list",
  {
    ...Runtime.shared,
    repo: Options.text("repo").pipe(
      Options.withPseudoName("REPO"),
      Options.withDescription("Only items of this repository"),
      Options.optional
    ),
    since: Options.text("since").pipe(
      Options.withPseudoName("TIME"),
      Options.withDescription("Only items archived at or after this time (ISO 8601)"),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(
      Options.withPseudoName("N"),
      Options.withDefault(50),
      Options.withDescription("At most this many items (default: 50)")
    )
  },
  (opts) =>
    Effect.gen(function*() {
      // Input is checked before the archive is opened: bad usage never touches the database.
      // 0 is the original's "check the backend, list nothing" (it prints `[]`); a negative limit means nothing sure.
      if (opts.limit < 0) {
        return yield* new Runtime.CliExit({ code: 2, message: `--limit ${opts.limit}: expected a whole number >= 0` })
      }
      const since = Option.isSome(opts.since) ? yield* parseSince(opts.since.value) : undefined
      const filter = { repo: Option.getOrUndefined(opts.repo), since }
      return yield* Runtime.withArchive(opts, { create: false, readOnly: true }, () =>
        Effect.gen(function*() {
          const store = yield* ArchiveStore.ArchiveStore
          // A page at a time, each printed as it comes: memory holds one page, whatever the limit or the archive.
          let printed = 0
          let after: string | undefined
          for (;;) {
            const want = Math.min(pageSize, opts.limit - printed)
            const page = yield* store.listPage({ ...filter, limit: want }, after)
            if (page.length > 0) {
              yield* Runtime.printText((printed === 0 ? "[" : "") + Runtime.jsonElements(page, printed === 0, 1))
            }
            printed += page.length
            if (page.length < want || want === 0) break
            after = page.at(-1)!.id
          }
          // Byte for byte what printing the whole list at once prints (`[]` when empty).
          yield* Runtime.printLine(printed === 0 ? "[]" : "\n]")
        }))
    })
).pipe(Command.withDescription("List archived items, newest first"))
