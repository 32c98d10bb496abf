/** `codex archive config-show [--config-file] [--debug] [--origin]`: the composed configuration as JSON (spec §4.4). */
import { Config } from "@codex-archive/core"
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
        for (const warning of loaded.warnings) yield* Effect.logWarning(warning)
        yield* Runtime.printJson(opts.origin ? Config.explain(loaded, opts.debug) : Config.toJson(loaded.config, opts.debug))
      }))
).pipe(Command.withDescription("Print the composed configuration (credentials redacted unless --debug)"))
