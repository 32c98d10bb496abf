/** Test wiring: a temporary folder with a fresh SQLite archive, evidence log and the core services over it. */
import { Archiver, Config, Evidence, Restorer, Retry } from "@codex-archive/core"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

export const tempDir = (prefix = "codex-test-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

export const services = (dir: string, options: { readonly url?: string; readonly create?: boolean } = {}) => {
  const url = options.url ?? `sqlite:///${path.join(dir, "archive.sqlite")}`
  const config = Layer.effect(Config.ArchiveConfigTag, Effect.map(
    Config.compose([Config.fromFlags([["backend.url", "--url", url], ["evidence.dir", "--evidence", path.join(dir, "evidence")]], dir)], dir),
    (l) => l.config
  ))
  const store = SqliteArchive.layer({ url, create: options.create ?? true }).pipe(Layer.provide(Retry.none))
  const base = Layer.mergeAll(store, config, Evidence.layer(path.join(dir, "evidence")))
  return Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(Layer.provideMerge(base), Layer.orDie)
}
