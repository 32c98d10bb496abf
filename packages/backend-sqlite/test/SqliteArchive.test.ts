import { Archiver, ArchiveStore, Evidence, Hash, Restorer } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { services, tempDir } from "./helpers.js"

const fixture = path.resolve(__dirname, "../../../fixtures/codex-py-archive")

describe("SQLite archive", () => {
  it.effect("stores a tree with stubs and restores every file byte for byte", () => {
    const dir = tempDir()
    const tree = path.join(dir, "tree")
    fs.mkdirSync(path.join(tree, "a/b/c"), { recursive: true })
    fs.writeFileSync(path.join(tree, "a/one.txt"), "hello\n")
    fs.writeFileSync(path.join(tree, "a/b/dup.txt"), "hello\n")
    fs.writeFileSync(path.join(tree, "a/b/c/empty"), "")
    fs.writeFileSync(path.join(tree, "a/b/c/ünïcødé.bin"), Buffer.from([0, 1, 2, 255, 254]))
    fs.writeFileSync(path.join(tree, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 })
    const big = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24
    fs.writeFileSync(path.join(tree, "big.bin"), big)
    const originals = new Map<string, Buffer>()
    for (const f of fs.readdirSync(tree, { recursive: true }) as Array<string>) {
      const p = path.join(tree, f)
      if (fs.statSync(p).isFile()) originals.set(f, fs.readFileSync(p))
    }
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const restorer = yield* Restorer.Restorer
      const report = yield* archiver.store([tree], {
        repo: "acme/demo",
        actor: "alice",
        commit: "abc123",
        reason: "dead",
        kind: "code",
        writeStub: true,
        cwd: dir
      })
      expect(report.stored.length).toBe(originals.size)
      expect(report.stored.filter((s) => s.deduplicated).length).toBe(1)
      const store = yield* ArchiveStore.ArchiveStore
      for (const s of report.stored) {
        const stub = fs.readFileSync(s.source, "utf8")
        expect(stub).toContain("TOMBSTONE ARCHIVE STUB")
        expect(stub).toContain(s.tombstone)
        const out = yield* restorer.restore({ tombstone: s.tombstone, output: s.source, actor: "bob" })
        expect(out.status).toBe("restored")
      }
      for (const [f, bytes] of originals) {
        expect(Hash.sha256(fs.readFileSync(path.join(tree, f)))).toBe(Hash.sha256(bytes))
      }
      expect(fs.statSync(path.join(tree, "run.sh")).mode & 0o777).toBe(0o755)
      const again = yield* restorer.restore({
        tombstone: report.stored[0]!.tombstone,
        output: report.stored[0]!.source,
        actor: "bob"
      })
      expect(again.status).toBe("unchanged")
      const listed = yield* store.list({ limit: 100 })
      expect(listed.length).toBe(originals.size)
      const lines = Evidence.read(path.join(dir, "evidence"))
      expect(lines.filter((l) => l.action === "ARCHIVE").length).toBe(originals.size)
      expect(lines.filter((l) => l.action === "RESTORE").length).toBe(originals.size + 1)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("restores every tombstone of the original tool's archive, and fails cleanly on the purged one", () => {
    const dir = tempDir()
    fs.copyFileSync(path.join(fixture, "archive.sqlite"), path.join(dir, "archive.sqlite"))
    const expected = JSON.parse(fs.readFileSync(path.join(fixture, "expected.json"), "utf8")) as Record<
      string,
      { path: string; expect: string; sha256: string }
    >
    return Effect.gen(function*() {
      const restorer = yield* Restorer.Restorer
      for (const [tombstone, e] of Object.entries(expected)) {
        const output = path.join(dir, "out", e.path)
        const result = yield* Effect.either(restorer.restore({ tombstone, output, actor: "ci" }))
        if (e.expect === "restore") {
          expect(result._tag).toBe("Right")
          expect(fs.readFileSync(output)).toEqual(fs.readFileSync(path.join(fixture, "originals", e.path)))
        } else {
          expect(result._tag === "Left" && result.left._tag).toBe("PayloadPurged")
          expect(fs.existsSync(output)).toBe(false)
        }
      }
    }).pipe(Effect.provide(services(dir, { create: false })))
  })

  it.effect("creates a new archive with 16 KiB pages in WAL mode; an existing archive keeps its page size", () => {
    const dir = tempDir()
    const pragmas = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [size] = yield* sql<{ page_size: number }>`PRAGMA page_size`
      const [mode] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
      return [size!.page_size, mode!.journal_mode]
    })
    return Effect.gen(function*() {
      expect(yield* pragmas.pipe(Effect.provide(services(path.join(dir, "new"))))).toEqual([16384, "wal"])
      fs.mkdirSync(path.join(dir, "old"))
      fs.copyFileSync(path.join(fixture, "archive.sqlite"), path.join(dir, "old", "archive.sqlite"))
      const [size] = yield* pragmas.pipe(Effect.provide(services(path.join(dir, "old"), { create: false })))
      expect(size).toBe(
        new Database(path.join(fixture, "archive.sqlite"), { readonly: true }).pragma("page_size", { simple: true })
      )
    })
  })
  it.effect("inserts a store's items in the order it was given the files, with ids in that order", () => {
    const dir = tempDir()
    const tree = path.join(dir, "tree")
    fs.mkdirSync(tree)
    // Content hashes in another order than the names: the payloads are written in hash order, the items must not be.
    const names = Array.from({ length: 600 }, (_, i) => `f${String(i).padStart(4, "0")}.txt`)
    for (const [i, name] of names.entries()) fs.writeFileSync(path.join(tree, name), `file ${i}\n`)
    expect(
      [...names].sort((a, b) =>
        Hash.sha256(fs.readFileSync(path.join(tree, a))) < Hash.sha256(fs.readFileSync(path.join(tree, b))) ? -1 : 1
      )
    )
      .not.toEqual(names)
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const report = yield* archiver.store([tree], {
        repo: "acme/demo",
        actor: "alice",
        commit: "abc123",
        reason: "dead",
        kind: "code",
        writeStub: false,
        cwd: dir
      })
      expect(report.stored.map((s) => path.basename(s.source))).toEqual(names)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ id: string; path: string }>`SELECT id, path FROM item ORDER BY rowid`
      expect(rows.map((r) => path.basename(r.path))).toEqual(names)
      expect(rows.map((r) => r.id)).toEqual(rows.map((r) => r.id).sort())
    }).pipe(Effect.provide(services(dir)))
  })
})
