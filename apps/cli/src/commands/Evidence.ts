/** `codex archive evidence verify [FILE] [--json] [--key-file FILE]`: is the evidence log's hash chain intact? */
import { Evidence, EvidenceChain, Printable } from "@codex-archive/core"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as Runtime from "../Runtime.js"

export const verify = Command.make(
  "verify",
  {
    ...Runtime.shared,
    file: Args.text({ name: "FILE" }).pipe(
      Args.withDescription("The evidence log (default: archive_ops.jsonl in the configured evidence folder)"),
      Args.optional
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the report as JSON")),
    keyFile: Options.text("key-file").pipe(
      Options.withPseudoName("FILE"),
      Options.withDescription("HMAC key of the chain (default: evidence.hmac_key_file, $CODEX_EVIDENCE_HMAC_KEY)"),
      Options.optional
    )
  },
  (opts) =>
    Runtime.withConfig(opts, (loaded) =>
      Effect.gen(function*() {
        const file = Option.getOrElse(opts.file, () => Evidence.fileIn(loaded.config.evidence.dir))
        const report = yield* EvidenceChain.verify(file, { key: loaded.config.evidence.hmac_key }).pipe(
          Effect.mapError((e) => new Runtime.CliExit({ code: 2, message: e.message }))
        )
        // A break is reported once, on stderr (below); the JSON report goes to stdout either way.
        if (opts.json) yield* Runtime.printJson(report)
        else if (report.ok) yield* Runtime.printLine(Printable.escape(EvidenceChain.describe(report)))
        if (!report.ok) {
          const message = `evidence verify failed: ${EvidenceChain.describe(report)}`
          return yield* new Runtime.CliExit({ code: 1, message })
        }
      }), [["evidence.hmac_key_file", "--key-file", Option.getOrUndefined(opts.keyFile)]])
).pipe(Command.withDescription("Check the evidence log's hash chain; report the first broken line by number and kind"))

export const command = Command.make("evidence").pipe(
  Command.withDescription("The append-only evidence log"),
  Command.withSubcommands([verify])
)
