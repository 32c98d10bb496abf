import { Archiver, ArchiveStore, FileOps, RestoreWriter } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as vm from "node:vm"
import { services, tempDir } from "./helpers.js"

const sha256 = (bytes: Uint8Array) => crypto.createHash("sha256").update(bytes).digest("hex")

/** Stores the files and returns, per name, what a `copy` op needs: the writer target and the artifact to read. */
const stored = (dir: string, files: Record<string, Buffer>) =>
  Effect.gen(function*() {
    const tree = path.join(dir, "tree")
    fs.mkdirSync(tree, { recursive: true })
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(tree, name), bytes)
    const report = yield* (yield* Archiver.Archiver).store([tree], {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: tree,
      writeStub: false
    })
    const store = yield* ArchiveStore.ArchiveStore
    const located = yield* store.locate(report.stored.map((s) => s.tombstone))
    return (name: string, id: number): RestoreWriter.Op => {
      const s = report.stored.find((x) => x.path === name)!
      const l = located.get(s.tombstone)!
      const output = path.join(dir, "out", name)
      return {
        op: "copy",
        id,
        output,
        temp: FileOps.tempFor(output),
        mode: 0o644,
        codec: "zstd",
        sha256: l.sha256,
        size: l.sizeBytes,
        artifactId: l.artifactId,
        chunked: l.layout === "chunked"
      }
    }
  })

describe("direct reads (worker threads read payloads from the SQLite file)", () => {
  it.effect("an archive file offers them, with the driver and the file; an in-memory one cannot", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const direct = (yield* ArchiveStore.ArchiveStore).directReads
      expect(direct?.file).toBe(path.join(dir, "archive.sqlite"))
      expect(fs.existsSync(direct!.driver)).toBe(true)
      const memory = yield* Effect.provide(
        Effect.map(ArchiveStore.ArchiveStore, (s) => s.directReads),
        services(dir, { url: "sqlite:///:memory:" }).pipe(Layer.fresh)
      )
      expect(memory).toBeUndefined()
    }).pipe(Effect.provide(services(dir)))
  })

  it.scoped("a host that opts in (exposeGc): every worker of a pool collects its read buffers, and the collector stays exposed", () => {
    const dir = tempDir()
    const bytes = { "a.bin": crypto.randomBytes(1536 * 1024), "b.bin": crypto.randomBytes(1536 * 1024) }
    return Effect.gen(function*() {
      const op = yield* stored(dir, bytes)
      // Over 1 MiB each, read at once: both workers expose and call V8's collector (a flag of the whole process).
      const writer = yield* RestoreWriter.workers(2, {
        direct: (yield* ArchiveStore.ArchiveStore).directReads,
        exposeGc: true
      })
      const replies = yield* Effect.all([writer.run(0, [op("a.bin", 1)]), writer.run(1, [op("b.bin", 2)])], {
        concurrency: 2
      })
      expect(replies.flat()).toMatchObject([{ id: 1, ok: true, bytes: 1536 * 1024 }, {
        id: 2,
        ok: true,
        bytes: 1536 * 1024
      }])
      // Digests, not bytes: vitest compares a buffer element by element (seconds per MiB).
      expect(sha256(fs.readFileSync(path.join(dir, "out/a.bin")))).toBe(sha256(bytes["a.bin"]))
      expect(sha256(fs.readFileSync(path.join(dir, "out/b.bin")))).toBe(sha256(bytes["b.bin"]))
      // A new context has `gc` while the flag is on. Turned off again once a worker held it, it raced with another
      // worker's turning it on and reading it ("gc is not defined").
      expect(vm.runInNewContext("typeof gc")).toBe("function")
    }).pipe(Effect.provide(services(dir)))
  })

  it.scoped("a worker copies inline and chunked payloads byte for byte, timing its reads", () => {
    const dir = tempDir()
    const small = Buffer.from("print('hello')\n".repeat(200))
    const big = crypto.randomBytes(3 * 1024 * 1024 + 9)
    return Effect.gen(function*() {
      const op = yield* stored(dir, { "small.py": small, "big.bin": big, "empty.txt": Buffer.alloc(0) })
      const writer = yield* RestoreWriter.workers(1, { direct: (yield* ArchiveStore.ArchiveStore).directReads })
      const replies = yield* writer.run(0, [op("small.py", 1), op("big.bin", 2), op("empty.txt", 3)])
      expect(replies.map((r) => [r.id, r.ok])).toEqual([[1, true], [2, true], [3, true]])
      expect(replies[1]).toMatchObject({ bytes: big.length })
      expect(replies.every((r) => r.ok && r.fetch >= 0)).toBe(true)
      expect(fs.readFileSync(path.join(dir, "out/small.py"))).toEqual(small)
      // Digests, not bytes: vitest compares a 3 MiB buffer element by element (seconds).
      expect(sha256(fs.readFileSync(path.join(dir, "out/big.bin")))).toBe(sha256(big))
      expect(fs.readFileSync(path.join(dir, "out/empty.txt")).length).toBe(0)
    }).pipe(Effect.provide(services(dir)))
  })

  it.scoped("content purged after it was located is missing, and nothing is written", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const op = yield* stored(dir, {
        "a.txt": Buffer.from("inline content\n"),
        "big.bin": crypto.randomBytes(2 * 1024 * 1024 + 1)
      })
      const sql = yield* SqlClient.SqlClient
      // What a purge leaves: no inline bytes, no chunk rows.
      yield* sql`UPDATE artifact SET blob_bytes = NULL`
      yield* sql`DELETE FROM artifact_chunk`
      const writer = yield* RestoreWriter.workers(1, { direct: (yield* ArchiveStore.ArchiveStore).directReads })
      const replies = yield* writer.run(0, [op("a.txt", 1), op("big.bin", 2)])
      expect(replies.map((r) => (r.ok ? "ok" : r.problem))).toEqual(["missing", "missing"])
      expect(fs.existsSync(path.join(dir, "out"))).toBe(false)
    }).pipe(Effect.provide(services(dir)))
  })

  it.scoped("an archive file the worker cannot read is unreadable, with the driver's reason", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const op = yield* stored(dir, { "a.txt": Buffer.from("inline content\n") })
      const direct = (yield* ArchiveStore.ArchiveStore).directReads!
      const writer = yield* RestoreWriter.workers(1, { direct: { ...direct, file: path.join(dir, "gone.sqlite") } })
      const [reply] = yield* writer.run(0, [op("a.txt", 1)])
      expect(reply).toMatchObject({ ok: false, problem: "unreadable" })
      expect(reply!.ok === false && reply!.detail).toMatch(/^cannot read .*gone\.sqlite: unable to open database file$/)
      expect(fs.existsSync(path.join(dir, "out"))).toBe(false)
    }).pipe(Effect.provide(services(dir)))
  })
})
