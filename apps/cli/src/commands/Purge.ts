/** `codex archive purge TOMBSTONE --by A --second B --reason TEXT [--apply]`: dual-control deletion of a payload. */
import { ArchiveStore, Retention } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"
import { checkTombstone, tombstoneArg } from "./Show.js"

export const command = Command.make(
  "purge",
  {
    ...Runtime.shared,
    tombstone: tombstoneArg,
    actor: Runtime.actorOption,
    second: Options.text("second").pipe(
      Options.withPseudoName("NAME"),
      Options.withDescription("The second approver (must differ from --by)")
    ),
    reason: Options.text("reason").pipe(
      Options.withPseudoName("TEXT"),
      Options.withDescription("Why the payload may go, recorded with both approvals")
    ),
    apply: Options.boolean("apply").pipe(Options.withDescription("Scrub the payload (kept while other items share it)"))
  },
  (opts) =>
    // Dual control needs two people: an empty name was recorded as the second approver.
    ArchiveStore.approverKey(opts.second) === ""
      ? new Runtime.CliExit({ code: 2, message: "purge: --second names no approver; name the second one" })
      : Runtime.withArchive(opts, { create: false }, () =>
        Effect.gen(function*() {
          const id = yield* checkTombstone(opts.tombstone)
          const outcome = yield* Retention.purge({
            tombstone: id,
            primary: Runtime.resolveActor(opts.actor),
            secondary: opts.second,
            reason: opts.reason,
            apply: opts.apply
          })
          yield* Runtime.printDone(
            !opts.apply
              ? "purge approvals recorded"
              : outcome.blobScrubbed
              ? "purge approvals recorded and blob scrubbed"
              : "purge approvals recorded; blob retained (artifact still shared)"
          )
        }))
).pipe(Command.withDescription("Approve (and with --apply, carry out) the purge of an item's payload"))
