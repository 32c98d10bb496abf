/**
 * Payloads by binary COPY (`PgCopy`): the format read from messages split anywhere, values quoted (COPY binds no
 * parameters), the server's errors kept whole for the retry policy, and a connection killed mid-COPY retried.
 */
import { Fixtures } from "@codex-archive/conformance"
import { ArchiveStore, Retry } from "@codex-archive/core"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import Pg from "pg"
import { PgArchive } from "../src/index.js"
import * as PgCopy from "../src/PgCopy.js"
import { backend, cuttingRelay, fresh, terminatedWhileLocked } from "./helpers.js"

/** Binary COPY bytes of `rows` (header, each row's fields, trailer), as PostgreSQL writes them. */
const copyBytes = (rows: ReadonlyArray<ReadonlyArray<Buffer | null>>, extension = Buffer.alloc(0)) => {
  const parts: Array<Buffer> = [
    Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"),
    Buffer.alloc(4),
    Buffer.alloc(4),
    extension
  ]
  parts[2]!.writeUInt32BE(extension.length)
  for (const row of rows) {
    const count = Buffer.alloc(2)
    count.writeInt16BE(row.length)
    parts.push(count)
    for (const field of row) {
      const size = Buffer.alloc(4)
      size.writeInt32BE(field === null ? -1 : field.length)
      parts.push(size, ...(field === null ? [] : [field]))
    }
  }
  parts.push(Buffer.from([0xff, 0xff]))
  return Buffer.concat(parts)
}

/** The rows `BinaryRows` reads from `pieces`, each field copied (views are valid only in the callback). */
const readAll = (pieces: ReadonlyArray<Buffer>) => {
  const rows: Array<Array<string | null>> = []
  const reader = new PgCopy.BinaryRows((fields) =>
    rows.push(fields.map((f) => (f === null ? null : f.toString("hex"))))
  )
  const errors = pieces.map((p) => reader.push(p)).filter((e) => e !== undefined)
  return { rows, errors, complete: reader.complete }
}

describe("binary COPY rows", () => {
  const rows = [[Buffer.from("a-id"), Fixtures.noise(300, 3)], [null, Buffer.alloc(0)], [Buffer.from("c"), null]]
  const bytes = copyBytes(rows, Buffer.from("ext"))
  const expected = rows.map((r) => r.map((f) => (f === null ? null : f.toString("hex"))))

  it("reads the same rows however the messages split them", () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const read = readAll([bytes.subarray(0, cut), bytes.subarray(cut)])
      expect(read).toEqual({ rows: expected, errors: [], complete: true })
    }
    const bytewise = readAll([...bytes].map((b) => Buffer.from([b])))
    expect(bytewise).toEqual({ rows: expected, errors: [], complete: true })
  })

  it("refuses what is not binary COPY data, and knows a stream cut short", () => {
    expect(readAll([Buffer.from("id\tbytes\n")]).errors).toEqual(["not binary COPY data (no PGCOPY signature)"])
    expect(readAll([bytes.subarray(0, bytes.length - 2)])).toMatchObject({ errors: [], complete: false })
    expect(readAll([bytes.subarray(0, bytes.length - 5)])).toMatchObject({ errors: [], complete: false })
    expect(readAll([Buffer.concat([bytes, Buffer.from([0, 1])])]).errors).toEqual([
      "bytes after the end of the COPY data"
    ])
    const lying = copyBytes([[Buffer.from("x")]])
    lying.writeInt32BE(-7, 21)
    expect(readAll([lying]).errors).toEqual(["a field of -7 bytes"])
  })
})

describe("payloads by COPY on a real server", () => {
  it.live("stored bytes come back exact; a quoted id stays one value; a server error keeps its code", () =>
    Fixtures.withArchive(backend, (dir, url) =>
      Effect.gen(function*() {
        const stored = yield* Fixtures.storeText(dir, "a.txt")
        const store = yield* ArchiveStore.ArchiveStore
        const located = (yield* store.locate([stored.stored[0]!.tombstone])).get(stored.stored[0]!.tombstone)!
        const pool = new Pg.Pool({ connectionString: url, max: 1 })
        yield* Effect.addFinalizer(() => Effect.promise(() => pool.end()))
        const reader = PgCopy.reader(pool)
        const viaCopy = yield* reader.inline([located.artifactId])
        const viaSelect = yield* store.inlinePayloads([located.artifactId])
        expect(viaCopy).toEqual([{
          id: located.artifactId,
          blob_bytes: Buffer.from(viaSelect.get(located.artifactId)!)
        }])
        // An id that tries to widen the query is one (invalid) uuid literal: the server refuses it, nothing is returned.
        const injected = yield* Effect.exit(reader.inline([`${located.artifactId}') OR ('1' = '1`]))
        const cause = Exit.isFailure(injected) ? Cause.squash(injected.cause) as { cause?: { code?: string } } : {}
        expect(cause.cause?.code).toBe("22P02")
        // The connection that saw the error is still good: the pool (of one) serves the next COPY.
        expect((yield* reader.chunks(located.artifactId, 0, 4)).length).toBe(0)
        expect((yield* reader.inline([located.artifactId])).length).toBe(1)
      })))

  it.live("a connection terminated mid-COPY is retried and the fetch succeeds", () => {
    const logs = Fixtures.captureLogs()
    return Fixtures.withArchive(backend, (dir, url) =>
      Effect.gen(function*() {
        const stored = yield* Fixtures.storeText(dir, "b.txt")
        const store = yield* ArchiveStore.ArchiveStore
        const located = (yield* store.locate([stored.stored[0]!.tombstone])).get(stored.stored[0]!.tombstone)!
        const fetched = yield* terminatedWhileLocked(
          url,
          "artifact",
          store.inlinePayloads([located.artifactId]),
          "COPY "
        )
        expect(fetched.get(located.artifactId)?.byteLength).toBeGreaterThan(0)
        const retries = Fixtures.retriesOf(logs, "fetch")
        expect(retries.length).toBe(1)
        expect(retries[0]).toMatch(/terminating connection due to administrator command/)
      }).pipe(Effect.provide(logs.layer)), { retry: Fixtures.fastRetry })
  })

  // Found by an attack review: pg tells a checked-out client's listeners of a dead socket before the COPY, and with
  // none listening the process ended with a stack trace (the SELECT path's driver layer listens while it holds one).
  it.live("a connection cut mid-COPY without a word from the server is retried and the fetch succeeds", () => {
    const logs = Fixtures.captureLogs()
    return Fixtures.withArchive(backend, (dir, url) =>
      Effect.gen(function*() {
        const report = yield* Fixtures.storeFile(dir, "big.bin", Fixtures.noise(3 * 1024 * 1024, 5))
        const tombstone = report.stored[0]!.tombstone
        const direct = yield* ArchiveStore.ArchiveStore
        const { artifactId } = (yield* direct.locate([tombstone])).get(tombstone)!
        const expected = (yield* direct.inlinePayloads([artifactId])).get(artifactId)!
        // The same archive through the relay: the COPY of its 3 MiB payload is cut after 1 MiB, once.
        const relay = yield* cuttingRelay(url, { serverBytes: 1024 * 1024 })
        const fetched = yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.inlinePayloads([artifactId])).pipe(
          Effect.provide(
            PgArchive.layer({ url: relay.url, create: false, poolSize: 2 }).pipe(
              Layer.provide(Fixtures.fastRetry)
            )
          )
        )
        expect(relay.cuts()).toBe(1)
        expect(Buffer.from(fetched.get(artifactId)!).equals(Buffer.from(expected))).toBe(true)
        const retries = Fixtures.retriesOf(logs, "fetch")
        expect(retries.length).toBe(1)
        expect(retries[0]).toMatch(/Connection terminated unexpectedly/)
      }).pipe(Effect.provide(logs.layer)))
  })

  // Found by an attack review: the reader was a context service, so a store over a host's own client took the
  // archive pool's reader from the same context and read another database's payloads.
  it.live("a store over a host's client reads only through that client, whatever archive pool is beside it", () =>
    Fixtures.withArchive(backend, (dir, url) =>
      Effect.gen(function*() {
        const stored = yield* Fixtures.storeText(dir, "a.txt")
        const tombstone = stored.stored[0]!.tombstone
        const { artifactId } = (yield* (yield* ArchiveStore.ArchiveStore).locate([tombstone])).get(tombstone)!
        // The host's own client on another, empty archive; the first archive's pool in the same context.
        const other = yield* fresh
        const hostStore = PgArchive.layerFromClient({ create: true, location: "host" }).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(other), maxConnections: 2 }))
        )
        const fetched = yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.inlinePayloads([artifactId])).pipe(
          Effect.provide(hostStore),
          Effect.provide(Layer.merge(PgArchive.client({ url, poolSize: 2 }), Retry.none))
        )
        expect(fetched.size).toBe(0)
      })))
})
