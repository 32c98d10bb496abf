/**
 * `codex archive gc [--dry-run]`: remove chunk rows that no chunked artifact claims (left, with their bytes, by another
 * tool's purge or re-store); prints what it removed (or would remove) and writes a GC evidence line per group of ids.
 */
import { Retention } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Runtime from "../Runtime.js"

export const command = Command.make(
  "gc",
  {
    ...Runtime.shared,
    actor: Runtime.actorOption,
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Only count the orphaned chunk rows; remove nothing")
    )
  },
  (opts) =>
    Runtime.withArchive(opts, { create: false }, () =>
      Effect.gen(function*() {
        // The ids go out a group at a time (the document is printed once the run succeeded).
        const ids = yield* Runtime.listFile("artifacts", 3)
        const found = yield* Retention.collectGarbage({
          actor: Runtime.resolveActor(opts.actor),
          dryRun: opts.dryRun,
          onGroup: (group) => ids.append(group.artifacts)
        })
        yield* ids.print({
          dry_run: opts.dryRun,
          [opts.dryRun ? "would_remove" : "removed"]: { chunk_rows: found.rows, bytes: found.bytes, artifacts: [] }
        }).pipe(
          Runtime.afterDone(() =>
            `gc: ${opts.dryRun ? "would remove" : "removed"} ${found.rows} orphaned chunk rows (${found.bytes} bytes)`
          )
        )
      }).pipe(Effect.scoped))
).pipe(Command.withDescription("Remove orphaned chunk rows (their artifact is gone or no longer chunked)"))
