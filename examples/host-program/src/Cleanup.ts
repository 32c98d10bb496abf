/** A host program's feature: archive a repository's dead files, and bring one back when someone needs it. */
import { Archiver, Restorer } from "@codex-archive/core"
import { Effect } from "effect"

/** Archives `files` (relative to `root`) as dead code; the tombstone of each, by path. */
export const retire = (root: string, files: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const archiver = yield* Archiver.Archiver
    const report = yield* archiver.store(files, {
      repo: "acme/app",
      actor: "cleanup-bot",
      commit: "HEAD",
      reason: "dead",
      kind: "code",
      cwd: root
    })
    return new Map(report.stored.map((s) => [s.path, s.tombstone]))
  })

/** Restores one tombstone to `output`; a tombstone the archive lacks is a plain answer, not a failure. */
export const revive = (tombstone: string, output: string) =>
  Effect.flatMap(Restorer.Restorer, (r) => r.restore({ tombstone, output, actor: "cleanup-bot" })).pipe(
    Effect.as("restored" as const),
    Effect.catchTag("TombstoneNotFound", () => Effect.succeed("unknown" as const))
  )
