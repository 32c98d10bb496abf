/** The README's embedding example, run as written (in a temporary folder), so the documentation cannot rot. */
import { Archiver, Config, Evidence, Restorer, Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

describe("embedding", () => {
  it.effect("the README example stores a folder with stubs and restores it", () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "codex-embed-"))
    fs.mkdirSync(path.join(cwd, "docs/old"), { recursive: true })
    fs.writeFileSync(path.join(cwd, "docs/old/a.md"), "# old\n")
    const restored: Array<string> = []
    const program = Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const restorer = yield* Restorer.Restorer
      const report = yield* archiver.store([path.join(cwd, "docs/old")], {
        repo: "acme/shop", actor: "ci", commit: "4f9c2e1", reason: "legacy", kind: "doc", writeStub: true, cwd
      })
      for (const file of report.stored) {
        const outcome = yield* restorer.restore({ tombstone: file.tombstone, output: file.source, actor: "ci" })
        restored.push(outcome.status)
      }
    })
    const url = `sqlite:///${path.join(cwd, ".codex/archive.sqlite")}`
    const config = Layer.effect(Config.ArchiveConfigTag, Effect.map(Config.load({ cwd, env: {} }), (l) => l.config))
    const services = Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(
      Layer.provideMerge(Layer.mergeAll(
        SqliteArchive.layer({ url, create: true }).pipe(Layer.provide(Retry.layer({
          enabled: true, max_attempts: 5, initial_delay: 1, max_delay: 32, multiplier: 2, jitter: 0.1, seed: null
        }))),
        config,
        Evidence.layer(path.join(cwd, ".codex/evidence"))
      ))
    )
    return program.pipe(
      Effect.provide(services),
      Effect.map(() => {
        expect(restored).toEqual(["restored"])
        expect(fs.readFileSync(path.join(cwd, "docs/old/a.md"), "utf8")).toBe("# old\n")
      })
    )
  })
})
