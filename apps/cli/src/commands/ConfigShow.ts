/**
 * `codex archive config-show [--config-file] [--debug] [--origin] [--strict]`: the composed configuration as JSON
 * (spec §4.4), with the resolved SQLite file (`backend.path`), strict mode and the warnings applied.
 */
import { Config, Redact } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"

export const command = Command.make(
  "config-show",
  {
    ...Runtime.shared,
    debug: Options.boolean("debug").pipe(Options.withDescription("Show the archive URL with its credentials")),
    origin: Options.boolean("origin").pipe(
      Options.withDescription("Show, for each value, where it came from (default, file:line, env VAR, flag)")
    )
  },
  (opts) =>
    Runtime.withConfig(opts, (loaded) =>
      Effect.gen(function*() {
        // Beyond spec §4.4's shape: strict mode, and every warning applied (each also printed once on stderr).
        const strictOrigin = Config.showOrigin(loaded.origins.get("strict") ?? { _tag: "Default" })
        yield* Runtime.printJson({
          ...(opts.origin ? Config.explain(loaded, opts.debug) : Config.toJson(loaded.config, opts.debug)),
          strict: opts.origin ? { value: loaded.strict, origin: strictOrigin } : loaded.strict,
          // As on stderr: a warning may quote a planted file's secret (`client.password = '...'`).
          warnings: loaded.warnings.map((w) => Redact.text(w.message))
        })
      }))
).pipe(Command.withDescription("Print the composed configuration (credentials redacted unless --debug)"))
