/** `codex archive verify [TOMBSTONE...]`: re-hash stored content; every mismatch is reported; exit 1 on any. */
import { Verifier } from "@codex-archive/core"
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"
import { checkTombstone } from "./Show.js"

export const command = Command.make(
  "verify",
  {
    ...Runtime.shared,
    tombstones: Args.text({ name: "TOMBSTONE" }).pipe(
      Args.withDescription("Tombstone ids of the items to verify (default: the whole archive)"),
      Args.repeated
    ),
    actor: Runtime.actorOption
  },
  (opts) =>
    Runtime.withArchive(opts, { create: false, readOnly: true }, () =>
      Effect.gen(function*() {
        const ids = yield* Effect.forEach(opts.tombstones, checkTombstone)
        const report = yield* Verifier.verify({
          tombstones: ids.length > 0 ? ids : undefined,
          actor: Runtime.resolveActor(opts.actor)
        })
        yield* Runtime.printJson(report)
        if (report.problems.length > 0) {
          return yield* new Runtime.CliExit({
            code: 1,
            message: `verify: ${report.problems.length} of ${report.checked} artifacts failed (${
              report.problems.map((p) => p.sha256.slice(0, 12)).join(", ")
            })`
          })
        }
      }))
).pipe(Command.withDescription("Re-read, decompress and re-hash stored content"))
