/**
 * A tiny host program that embeds the core and the SQLite backend, for Bundled.test.ts to bundle with esbuild the ways
 * hosts do: it stores a folder of `count` files (enough for worker threads) and restores them all into another folder,
 * restores one more on its own, then prints one JSON line: how many came back and how many differ.
 */
import { Archiver, CodexArchive, Restorer } from "@codex-archive/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

const [cwd = ".", count = "300"] = process.argv.slice(2)
const source = path.join(cwd, "tree")
fs.mkdirSync(source, { recursive: true })
for (let i = 0; i < Number(count); i++) {
  fs.writeFileSync(path.join(source, `f${i}.txt`), `file ${i}\n`.repeat(i % 50 + 1))
}

const program = Effect.gen(function*() {
  const archiver = yield* Archiver.Archiver
  const restorer = yield* Restorer.Restorer
  const report = yield* archiver.store([source], {
    repo: "acme/shop",
    actor: "ci",
    commit: "4f9c2e1",
    reason: "legacy",
    kind: "doc",
    cwd,
    workers: 2
  })
  const results = yield* restorer.restoreAll(
    report.stored.map((file) => ({
      tombstone: file.tombstone,
      output: path.join(cwd, "out", path.basename(file.source)),
      actor: "ci"
    })),
    { concurrency: 4, workers: 2 }
  )
  // One restore on its own decodes in this thread (no workers): the shipped decoder runs here too.
  const first = report.stored[0]!
  const single = yield* restorer.restore({
    tombstone: first.tombstone,
    output: path.join(cwd, "single.txt"),
    actor: "ci"
  })
  if (!fs.readFileSync(single.output).equals(fs.readFileSync(first.source))) throw new Error("single restore differs")
  const failures = results.flatMap((r) => r._tag === "Failure" ? [String(r.error.message)] : [])
  const differ = report.stored.filter((file) =>
    !fs.readFileSync(path.join(cwd, "out", path.basename(file.source))).equals(fs.readFileSync(file.source))
  ).length
  process.stdout.write(
    `${
      JSON.stringify({
        stored: report.stored.length,
        restored: results.length - failures.length,
        differ,
        failures: failures.slice(0, 3)
      })
    }\n`
  )
})

const url = `sqlite:///${path.join(cwd, ".codex/archive.sqlite")}`
const services = CodexArchive.layer({
  store: SqliteArchive.layer({ url, create: true }),
  evidenceDir: path.join(cwd, ".codex/evidence")
})

Effect.runPromise(program.pipe(Effect.provide(services))).catch((e: unknown) => {
  process.stderr.write(`host: ${String(e)}\n`)
  process.exitCode = 1
})
