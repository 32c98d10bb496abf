/** `node dist/embed.mjs ROOT [URL]`: the bundled example; archives ROOT/docs and restores it into ROOT/restored. */
import { Effect } from "effect"
import * as path from "node:path"
import { run } from "./Embed.js"

const root = path.resolve(process.argv[2] ?? ".")
const url = process.argv[3] ?? `sqlite:///${path.join(root, ".codex/archive.sqlite")}`
Effect.runPromiseExit(run({ root, url }, (line) => process.stderr.write(`${line}\n`))).then((exit) => {
  if (exit._tag === "Success") process.stdout.write(`${JSON.stringify(exit.value)}\n`)
  else {
    process.stderr.write(`example: ${String(exit.cause._tag === "Fail" ? exit.cause.error : "failed")}\n`)
    process.exitCode = 1
  }
})
