/**
 * SQLite's open errors go through the same mapper as every backend's: redacted, the file named, and classified by the
 * dialect's codes (a lock is transient, so a caller's retry policy may wait it out), not all marked permanent.
 */
import { ArchiveStore, Retry, SqlArchiveStore } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"
import { dialect } from "../src/SqliteDialect.js"
import { tempDir } from "./helpers.js"

describe("SQLite open errors", () => {
  it.live("a lock held while the connection switches to WAL: 'locked', naming the file, and transient", () => {
    const dir = tempDir("codex-open-")
    const file = path.join(dir, "archive.sqlite")
    const open = (create: boolean) =>
      Effect.either(
        Layer.build(SqliteArchive.layer({ url: `sqlite:///${file}`, create }).pipe(Layer.provide(Retry.none)))
      )
        .pipe(Effect.scoped)
    return Effect.gen(function*() {
      expect(Either.isRight(yield* open(true))).toBe(true)
      // Another tool switched the archive out of WAL and is writing: switching back needs the lock it holds.
      const other = new Database(file)
      other.pragma("journal_mode = DELETE")
      other.exec("BEGIN IMMEDIATE")
      other.exec("UPDATE item SET path = path")
      const opened = yield* open(false).pipe(Effect.ensuring(Effect.sync(() => other.close())))
      expect(Either.isLeft(opened)).toBe(true)
      const error = (opened as Either.Left<ArchiveStore.StoreError, unknown>).left
      expect(error._tag).toBe("StoreError")
      expect(error.operation).toBe("open")
      expect(error.detail).toMatch(
        new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is locked by another process`)
      )
      expect(error.transient).toBe(true)
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })

  it("the shared mapper scrubs credentials a driver message quotes and keeps the message on one line", () => {
    const error = SqlArchiveStore.storeErrorOf({ dialect, location: "/srv/a.sqlite", secrets: ["hunter22"] })("open")(
      new Error("cannot attach postgres://u:hunter22@db.example/x\n  at the second line")
    )
    expect(error.detail).not.toContain("hunter22")
    expect(error.detail).not.toContain("\n")
    expect(error.detail.startsWith("/srv/a.sqlite: ")).toBe(true)
    expect(error.transient).toBe(false)
  })
})
