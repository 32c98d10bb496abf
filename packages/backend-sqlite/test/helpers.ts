/** Test wiring: a temporary folder with a fresh SQLite archive, evidence log and the core services over it. */
import { Archiver, ArchiveStore, Config, Evidence, Restorer, Retry } from "@codex-archive/core"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

/** The archive over its own connection, that connection shared with the test (as a host may share its client). */
export const withSql = (options: SqliteArchive.Options) =>
  Layer.provideMerge(SqliteArchive.layerFromClient({ create: options.create }), SqliteArchive.client(options))

export const tempDir = (prefix = "codex-test-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

export const services = (
  dir: string,
  options: {
    readonly url?: string
    readonly create?: boolean
    /** Replaces methods of the real store (a fault to inject). */
    readonly storeWith?: (store: ArchiveStore.ArchiveStore["Type"]) => Partial<ArchiveStore.ArchiveStore["Type"]>
    /** The evidence folder (default `dir/evidence`). */
    readonly evidenceDir?: string
  } = {}
) => {
  const url = options.url ?? `sqlite:///${path.join(dir, "archive.sqlite")}`
  const config = Layer.effect(
    Config.ArchiveConfigTag,
    Effect.map(
      Config.compose([
        Config.fromFlags(
          [["backend.url", "--url", url], ["evidence.dir", "--evidence", path.join(dir, "evidence")]],
          dir
        )
      ], dir),
      (l) => l.config
    )
  )
  const real = withSql({ url, create: options.create ?? true }).pipe(Layer.provide(Retry.none))
  const wrap = options.storeWith
  const store = wrap === undefined ? real : Layer.effect(
    ArchiveStore.ArchiveStore,
    Effect.map(ArchiveStore.ArchiveStore, (s) => ArchiveStore.ArchiveStore.of({ ...s, ...wrap(s) }))
  ).pipe(Layer.provideMerge(real))
  const base = Layer.mergeAll(
    store,
    config,
    Evidence.layer(options.evidenceDir ?? path.join(dir, "evidence")),
    Restorer.settingsLayer()
  )
  return Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(Layer.provideMerge(base), Layer.orDie)
}
