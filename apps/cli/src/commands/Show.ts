/** `codex archive show TOMBSTONE`: the full item, its artifact, tags and event history. */
import { ArchiveStore, Ids } from "@codex-archive/core"
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"

/** A tombstone argument, normalised and checked before any database work. */
export const tombstoneArg = Args.text({ name: "TOMBSTONE" }).pipe(Args.withDescription("The item's tombstone id"))

export const checkTombstone = (value: string) => Ids.decodeTombstoneId(value)

export const command = Command.make(
  "show",
  { ...Runtime.shared, tombstone: tombstoneArg },
  (opts) =>
    Runtime.withArchive(opts, { create: false, readOnly: true }, () =>
      Effect.gen(function*() {
        const id = yield* checkTombstone(opts.tombstone)
        yield* Runtime.printJson(yield* (yield* ArchiveStore.ArchiveStore).show(id))
      }))
).pipe(Command.withDescription("Show one archived item with its history"))
