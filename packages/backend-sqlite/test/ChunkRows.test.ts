/**
 * Chunk rows on SQLite as the original tool meets them: its purge, run through a connection of its own (no
 * secure_delete), must leave none of the purged content in the database file.
 */
import { Archiver, Config, Evidence, Retention, Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

/** How many 64-byte slices (one per 64 KiB) of `content` appear in the database file or its WAL. */
const survivingSlices = (file: string, content: Buffer) => {
  const bytes = Buffer.concat(["", "-wal"].filter((s) => fs.existsSync(file + s)).map((s) => fs.readFileSync(file + s)))
  let found = 0
  for (let at = 0; at + 64 <= content.length; at += 65536) if (bytes.includes(content.subarray(at, at + 64))) found++
  return found
}

describe("chunk rows on SQLite", () => {
  it.live("the original's purge SQL through another connection leaves none of the chunked content in the file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chunkrows-"))
    const file = path.join(dir, "archive.sqlite")
    // Random bytes do not compress: the stored chunks hold the content verbatim, so a search of the file finds them.
    const content = randomBytes(3 * 1024 * 1024 + 5)
    fs.writeFileSync(path.join(dir, "big.bin"), content)
    return Effect.gen(function*() {
      yield* Effect.flatMap(Archiver.Archiver, (a) =>
        a.store([path.join(dir, "big.bin")], {
          repo: "acme/demo",
          actor: "alice",
          commit: "abc",
          reason: "dead",
          kind: "code",
          cwd: dir,
          inlineLimit: 1024 * 1024
        })).pipe(
          Effect.provide(Archiver.layer.pipe(Layer.provideMerge(Layer.mergeAll(
            SqliteArchive.layer({ url: `sqlite:///${file}`, create: true }).pipe(Layer.provide(Retry.none)),
            Evidence.layer(path.join(dir, "evidence")),
            Layer.effect(Config.ArchiveConfigTag, Config.defaults(dir))
          )))),
          Effect.orDie
        )
      const total = Math.floor(content.length / 65536)
      expect(survivingSlices(file, content)).toBe(total)
      // The original tool's connection: Python's sqlite3 sets no pragma; its purge statement, verbatim.
      const db = new Database(file)
      db.prepare(`UPDATE artifact
                    SET blob_bytes = NULL,
                        storage_driver = 'object',
                        object_url = COALESCE(object_url, 'purged://dual-control')
                    WHERE storage_driver = 'chunked'`).run()
      expect(db.prepare("SELECT COUNT(*) AS n FROM artifact_chunk").get()).toEqual({ n: 0 })
      db.close()
      expect(survivingSlices(file, content)).toBe(0)
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })

  it.live("our own purge (--apply) leaves none of the chunked content in the file either", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chunkrows-"))
    const file = path.join(dir, "archive.sqlite")
    const content = randomBytes(2 * 1024 * 1024 + 7)
    fs.writeFileSync(path.join(dir, "big.bin"), content)
    const layer = Archiver.layer.pipe(Layer.provideMerge(Layer.mergeAll(
      SqliteArchive.layer({ url: `sqlite:///${file}`, create: true }).pipe(Layer.provide(Retry.none)),
      Evidence.layer(path.join(dir, "evidence")),
      Layer.effect(Config.ArchiveConfigTag, Config.defaults(dir))
    )))
    return Effect.gen(function*() {
      const report = yield* Effect.flatMap(Archiver.Archiver, (a) =>
        a.store([path.join(dir, "big.bin")], {
          repo: "acme/demo",
          actor: "alice",
          commit: "abc",
          reason: "dead",
          kind: "code",
          cwd: dir,
          inlineLimit: 1024 * 1024
        }))
      expect(survivingSlices(file, content)).toBeGreaterThan(0)
      yield* Retention.purge({
        tombstone: report.stored[0]!.tombstone,
        primary: "p",
        secondary: "q",
        reason: "gone",
        apply: true
      })
    }).pipe(
      Effect.provide(layer),
      Effect.orDie,
      Effect.andThen(Effect.sync(() => expect(survivingSlices(file, content)).toBe(0))),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })
})
