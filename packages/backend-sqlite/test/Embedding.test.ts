/** The README's embedding example, run as written (in a temporary folder), so the documentation cannot rot. */
import { Archiver, CodexArchive, Restorer } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
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
        repo: "acme/shop",
        actor: "ci",
        commit: "4f9c2e1",
        reason: "legacy",
        kind: "doc",
        writeStub: true,
        cwd
      })
      for (const file of report.stored) {
        const outcome = yield* restorer.restore({ tombstone: file.tombstone, output: file.source, actor: "ci" })
        restored.push(outcome.status)
      }
    })
    const url = `sqlite:///${path.join(cwd, ".codex/archive.sqlite")}`
    return program.pipe(
      Effect.provide(
        CodexArchive.layer({
          store: SqliteArchive.layer({ url, create: true }),
          evidenceDir: path.join(cwd, ".codex/evidence")
        })
      ),
      Effect.map(() => {
        expect(restored).toEqual(["restored"])
        expect(fs.readFileSync(path.join(cwd, "docs/old/a.md"), "utf8")).toBe("# old\n")
      })
    )
  })
})
