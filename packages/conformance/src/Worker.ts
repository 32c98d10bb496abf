/**
 * The child-process side of the multi-process tests: a real separate OS process with its own pool, storing or
 * restoring through the same Archiver/Restorer as the CLI, printing one JSON line with its results and peak RSS.
 *   node worker.mjs store <url> <cwd> <file>...        → {"stored":[{tombstone,sha256,path,deduplicated}],"maxRssMiB":n}
 *   node worker.mjs restore <url> <cwd> <requests.json> → {"restored":[{tombstone,status,sha256}],"maxRssMiB":n}
 */
import { Archiver, Restorer } from "@codex-archive/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Backend, fastRetry, services } from "./Fixtures.js"

const maxRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024)

export const main = (backend: Backend) => {
  const [command, url, cwd, ...rest] = process.argv.slice(2)
  const program = Effect.gen(function*() {
    if (command === "store") {
      const report = yield* Effect.flatMap(
        Archiver.Archiver,
        (a) =>
          a.store(rest, {
            repo: "acme/shared",
            actor: `worker-${process.pid}`,
            commit: "c0ffee",
            reason: "dead",
            kind: "code",
            cwd: cwd!
          })
      )
      return {
        stored: report.stored.map((s) => ({
          tombstone: s.tombstone,
          sha256: s.sha256,
          path: s.path,
          deduplicated: s.deduplicated
        }))
      }
    }
    if (command === "restore") {
      const requests = JSON.parse(fs.readFileSync(rest[0]!, "utf8")) as Array<Restorer.Request>
      const restorer = yield* Restorer.Restorer
      const restored = []
      for (const request of requests) {
        const outcome = yield* restorer.restore(request)
        restored.push({ tombstone: outcome.tombstone, status: outcome.status, sha256: outcome.sha256 })
      }
      return { restored }
    }
    return yield* Effect.dieMessage(`unknown command ${command}`)
  }).pipe(Effect.provide(services(backend, url!, path.resolve(cwd!), { retry: fastRetry })))
  Effect.runPromise(program).then(
    (result) => process.stdout.write(JSON.stringify({ ...result, maxRssMiB: maxRssMiB() }) + "\n"),
    (error) => {
      process.stderr.write(`${String((error as Error)?.message ?? error)}\n`)
      process.exitCode = 1
    }
  )
}
