// A plain Node ESM program using the installed packages (no TypeScript, no bundler): stores a file, leaving its stub,
// then restores it from the tombstone; the CLI's command tree loads too. Prints one JSON line.
import { SqliteArchive } from "@codex-archive/backend-sqlite"
import * as Cli from "@codex-archive/cli"
import { Archiver, CodexArchive, Restorer } from "@codex-archive/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

const cwd = process.cwd()
fs.mkdirSync(path.join(cwd, "lib-tree"), { recursive: true })
fs.writeFileSync(path.join(cwd, "lib-tree/old.md"), "# old notes\n")

const program = Effect.gen(function*() {
  const archiver = yield* Archiver.Archiver
  const restorer = yield* Restorer.Restorer
  const report = yield* archiver.store(["lib-tree/old.md"], {
    repo: "acme/shop",
    actor: "ci",
    commit: "4f9c2e1",
    reason: "legacy",
    kind: "doc",
    writeStub: true,
    cwd
  })
  const stub = fs.readFileSync(path.join(cwd, "lib-tree/old.md"), "utf8")
  const outcome = yield* restorer.restore({
    tombstone: report.stored[0].tombstone,
    output: path.join(cwd, "lib-tree/back.md"),
    actor: "ci"
  })
  return {
    cli: typeof Cli.run === "function" ? Cli.version : "no command tree",
    stubbed: stub !== "# old notes\n",
    status: outcome.status,
    content: fs.readFileSync(outcome.output, "utf8")
  }
})

const url = `sqlite:///${path.join(cwd, ".codex/lib.sqlite")}`
// One layer gives every service over the backend's store; settings as values, no env or TOML.
const services = CodexArchive.layer({
  store: SqliteArchive.layer({ url, create: true }),
  evidenceDir: path.join(cwd, ".codex/evidence")
})

const result = await Effect.runPromise(program.pipe(Effect.provide(services)))
process.stdout.write(`${JSON.stringify(result)}\n`)
