import * as Fixtures from "@codex-archive/conformance/Fixtures"
import { Archiver, ArchiveStore, Codec, Retry } from "@codex-archive/core"
import * as SqlRows from "@codex-archive/core/internal/SqlRows"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Redacted, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { PgArchive } from "../src/index.js"
import { admin, backend, fresh } from "./helpers.js"

const open = (url: string | Redacted.Redacted<string>, create = true) =>
  Effect.exit(
    Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.probe).pipe(
      Effect.provide(PgArchive.layer({ url, create, poolSize: 2 }).pipe(Layer.provide(Retry.none)))
    )
  )

describe("PgArchive URLs", () => {
  it("parses credentials (percent-encoded), host, port and database", () => {
    const target = PgArchive.parseUrl("postgresql://us%40er:p%3Ass@db.example:6543/arch%2Dive?sslmode=disable")!
    expect(target).toMatchObject({ host: "db.example", port: 6543, database: "arch-ive", username: "us@er" })
    expect(Redacted.value(target.password!)).toBe("p:ss")
    expect(PgArchive.parseUrl("postgres://h/db")).toMatchObject({
      port: 5432,
      username: undefined,
      password: undefined
    })
    expect(PgArchive.parseUrl("mysql://h/db")).toBeUndefined()
    expect(PgArchive.parseUrl("postgres://u:p%ZZ@h/db")).toBeUndefined()
    expect(PgArchive.parseUrl("postgres://u:p@[::1]:5433/db")).toMatchObject({ host: "::1", port: 5433 })
  })

  it.live("opens postgres:// and postgresql:// forms, a Redacted URL and query parameters", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const long = url.replace(/^postgres:/, "postgresql:")
      for (const form of [url, long, Redacted.make(long), `${url}?application_name=codex-url-test&connect_timeout=5`]) {
        expect(Exit.isSuccess(yield* open(form))).toBe(true)
      }
    })))

  it.live("a missing database is NotAnArchive and a foreign scheme a one-line StoreError, both naming the URL redacted", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = new URL(yield* fresh)
      url.pathname = "/codex_test_no_such_db"
      url.password = "hunter22"
      const missing = yield* open(url.toString())
      const e1 = Exit.isFailure(missing) ? Cause.squash(missing.cause) as Error : undefined
      expect(e1?.message).toMatch(
        /^postgres:\/\/\*\*\*@127\.0\.0\.1:5432\/codex_test_no_such_db: the database does not exist/
      )
      const foreign = yield* open("mysql://root:hunter22@127.0.0.1/x")
      const e2 = Exit.isFailure(foreign) ? Cause.squash(foreign.cause) as ArchiveStore.StoreError : undefined
      expect(e2?._tag).toBe("StoreError")
      expect(e2?.message).toBe(
        "postgres archive: connect failed: mysql://***@127.0.0.1/x: not a PostgreSQL URL (expected postgres:// or postgresql://)"
      )
      const malformed = yield* open("postgres://root:hunter22%ZZ@127.0.0.1:99999/x")
      const e3 = Exit.isFailure(malformed) ? Cause.squash(malformed.cause) as ArchiveStore.StoreError : undefined
      expect(e3?.message).toBe(
        "postgres archive: connect failed: postgres://***@127.0.0.1:99999/x: port 99999 is out of range (expected 1-65535)"
      )
      for (const e of [e1, e2, e3]) expect(JSON.stringify(e) + e?.message).not.toContain("hunter22")
    })))
})

describe("PostgreSQL payload fetches", () => {
  // Sent as base64 with PostgreSQL's line breaks: each payload decodes to a buffer of its own, handed to a writer worker
  // as it is (a view into a larger buffer would be copied first), and byte for byte what was stored.
  it.live("inline payloads and chunk rows arrive exact, each on a buffer of its own", () =>
    Fixtures.withArchive(backend, (dir) =>
      Effect.gen(function*() {
        const small = Fixtures.write(path.join(dir, "tree/small.bin"), Fixtures.noise(40 * 1024, 7))
        const large = Fixtures.write(path.join(dir, "tree/large.bin"), Fixtures.noise(ArchiveStore.chunkSize + 5000, 8))
        const archiver = yield* Archiver.Archiver
        const report = yield* archiver.store([path.join(dir, "tree")], {
          repo: "acme/demo",
          actor: "alice",
          commit: "abc123",
          reason: "dead",
          kind: "code",
          inlineLimit: ArchiveStore.chunkSize,
          cwd: dir
        })
        const store = yield* ArchiveStore.ArchiveStore
        const located = yield* store.locate(report.stored.map((s) => s.tombstone))
        const of = (file: string) => located.get(report.stored.find((s) => s.path === `tree/${file}`)!.tombstone)!
        const fetched = yield* store.inlinePayloads([of("small.bin").artifactId])
        const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(store.chunks(of("large.bin").artifactId)))
        const payloads = [fetched.get(of("small.bin").artifactId)!, ...chunks]
        expect(chunks.length).toBe(2)
        for (const p of payloads) expect([p.byteOffset, p.buffer.byteLength]).toEqual([0, p.byteLength])
        const codec = yield* Codec.forName(of("small.bin").codec)
        expect(Buffer.from(yield* Codec.decompress(codec, payloads[0]!, 40 * 1024))).toEqual(fs.readFileSync(small))
        const raw = yield* Effect.forEach(chunks, (c) => Codec.decompress(codec, c, ArchiveStore.chunkSize))
        expect(Buffer.concat(raw)).toEqual(fs.readFileSync(large))
      })))

  it.scoped("base64 text decodes exactly at every line-break boundary, and text of another shape still decodes", () =>
    Effect.gen(function*() {
      const sql = yield* admin()
      // 57 bytes fill one 76-character line (a break after it); 114 two; 58 spills one character onto a second line.
      for (const size of [0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 171, 4096, 65_535, 1 << 20]) {
        const bytes = Fixtures.noise(size, size)
        const [row] = yield* sql<{ t: string }>`SELECT encode(${bytes}::bytea, 'base64') AS t`
        const decoded = SqlRows.fromBase64Lines(row!.t)
        expect([size, decoded.equals(bytes), decoded.byteOffset, decoded.buffer.byteLength]).toEqual([
          size,
          true,
          0,
          size
        ])
      }
      // Breaks missing, or misplaced: decoded as the text comes, never cut short to the size the breaks would give.
      const bytes = Fixtures.noise(500, 9)
      const unbroken = bytes.toString("base64")
      const misplaced = unbroken.slice(0, 70) + "\n" + unbroken.slice(70)
      for (const text of [unbroken, misplaced]) expect(SqlRows.fromBase64Lines(text).equals(bytes)).toBe(true)
    }))
})
