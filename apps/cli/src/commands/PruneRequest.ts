/** `codex archive prune-request TOMBSTONE --by ACTOR --reason TEXT`: ask for deletion; nothing is deleted. */
import { Retention } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"
import { checkTombstone, tombstoneArg } from "./Show.js"

export const command = Command.make(
  "prune-request",
  {
    ...Runtime.shared,
    tombstone: tombstoneArg,
    actor: Runtime.actorOption,
    reason: Options.text("reason").pipe(
      Options.withPseudoName("TEXT"),
      Options.withDescription("Why it may be deleted")
    )
  },
  (opts) =>
    Runtime.withArchive(opts, { create: false }, () =>
      Effect.gen(function*() {
        const id = yield* checkTombstone(opts.tombstone)
        yield* Retention.requestPrune(id, Runtime.resolveActor(opts.actor), opts.reason)
        yield* Runtime.printDone("recorded prune request")
      }))
).pipe(Command.withDescription("Record a request to purge an item (the first half of dual control)"))
