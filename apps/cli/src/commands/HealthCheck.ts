/** `codex archive health-check [--json] [--debug]`: spec §10 and more; exit 0 only when every check passes. */
import { Health, Migrations, Retry } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect, Layer } from "effect"
import * as Runtime from "../Runtime.js"
import { migrationsOf } from "./Schema.js"

export const command = Command.make(
  "health-check",
  {
    ...Runtime.shared,
    json: Options.boolean("json").pipe(Options.withDescription("Print the report as JSON")),
    debug: Options.boolean("debug").pipe(Options.withDescription("Show the archive URL with its credentials"))
  },
  (opts) =>
    Runtime.withConfig(opts, (loaded) =>
      Effect.gen(function*() {
        const config = loaded.config
        const backend = yield* Runtime.backendLayer(config, false, true)
        const report = yield* Health.run({
          backend: config.backend.backend,
          url: config.backend.url,
          reveal: opts.debug,
          expectedSchemaVersion: Migrations.latest(yield* migrationsOf(config.backend.backend)),
          evidenceDir: config.evidence.dir,
          evidenceKey: config.evidence.hmac_key,
          store: backend.pipe(Layer.provide(Retry.layer(config.retry)))
        })
        if (opts.json) yield* Runtime.printJson(report)
        else yield* Runtime.printText(Health.renderText(report))
        yield* Health.record(report, config)
        if (!report.ok) {
          return yield* new Runtime.CliExit({ code: 1, message: `health-check failed: ${Health.summary(report)}` })
        }
      }))
).pipe(Command.withDescription(
  "Check the archive: connection and latency, schema version, one payload verified, evidence folder and chain"
))
