/** `codex archive init`: create (or bring up to date) the archive's schema on the configured backend. */
import { ArchiveStore } from "@codex-archive/core"
import { Command } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"

export const command = Command.make("init", { ...Runtime.shared }, (opts) =>
  Runtime.withArchive(opts, { create: true }, (config) =>
    Effect.gen(function*() {
      const store = yield* ArchiveStore.ArchiveStore
      const version = yield* store.schemaVersion
      yield* Runtime.printLine(`archive schema ensured for backend=${config.backend.backend} (schema version ${version}, ${store.location})`)
    }))
).pipe(Command.withDescription("Create the archive schema (safe to run again; never alters existing data)"))
