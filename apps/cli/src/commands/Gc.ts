/**
 * `codex archive gc [--dry-run]`: remove chunk rows that no chunked artifact claims (left, with their bytes, by another
 * tool's purge or re-store); prints what it removed (or would remove) and writes a GC evidence line per group of ids.
 */
import { Retention } from "@codex-archive/core"
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
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
        // The ids go to a temporary file a group at a time, then out: memory holds one group, and a gc failing midway
        // prints no half-written JSON.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-gc-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const ids = path.join(dir, "artifacts.json")
        let listed = 0
        const found = yield* Retention.collectGarbage({
          actor: Runtime.resolveActor(opts.actor),
          dryRun: opts.dryRun,
          onGroup: (group) =>
            Effect.sync(() => {
              const lines = group.artifacts.map((id, i) =>
                (listed + i === 0 ? "" : ",") + `\n      ${JSON.stringify(id)}`
              )
              fs.appendFileSync(ids, lines.join(""))
              listed += group.artifacts.length
            })
        })
        const text = JSON.stringify(
          {
            dry_run: opts.dryRun,
            [opts.dryRun ? "would_remove" : "removed"]: { chunk_rows: found.rows, bytes: found.bytes, artifacts: [] }
          },
          null,
          2
        )
        if (listed === 0) return yield* Runtime.printLine(text)
        // The same document printJson would print, its id list streamed in from the file.
        const [head, tail] = text.split(`"artifacts": []`) as [string, string]
        yield* Runtime.printText(`${head}"artifacts": [`)
        yield* Runtime.printFile(ids)
        yield* Runtime.printText(`\n    ]${tail}\n`)
      }).pipe(Effect.scoped))
).pipe(Command.withDescription("Remove orphaned chunk rows (their artifact is gone or no longer chunked)"))
