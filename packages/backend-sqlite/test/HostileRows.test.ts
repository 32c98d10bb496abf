/**
 * An archive is hostile input: rows written behind the archive's back (a lying size, a sha256 that is not one, a chunk
 * missing from the middle) are refused where they enter the store, as a StoreError naming table, column and row.
 */
import { Archiver, ArchiveStore, Evidence, Restorer, Verifier } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Either, Stream } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { services, tempDir } from "./helpers.js"

const storeOptions = (dir: string) =>
  ({ repo: "acme/demo", actor: "alice", commit: "abc", reason: "dead", kind: "code", cwd: dir }) as const

/** Stores a small file and a three-chunk one; returns their tombstones and artifact ids. */
const storeTwo = (dir: string) =>
  Effect.gen(function*() {
    fs.writeFileSync(path.join(dir, "small.txt"), "small content\n")
    fs.writeFileSync(path.join(dir, "big.bin"), randomBytes(2 * ArchiveStore.chunkSize + 11))
    const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "small.txt"), path.join(dir, "big.bin")], {
      ...storeOptions(dir),
      inlineLimit: ArchiveStore.chunkSize
    })
    const [small, big] = report.stored
    const located = yield* (yield* ArchiveStore.ArchiveStore).locate([small!.tombstone, big!.tombstone])
    return {
      small: { tombstone: small!.tombstone, artifactId: located.get(small!.tombstone)!.artifactId },
      big: { tombstone: big!.tombstone, artifactId: located.get(big!.tombstone)!.artifactId }
    }
  })

/** Runs SQL on the archive file through a connection of its own, as another tool would. */
const tamper = (dir: string, statement: string, ...params: ReadonlyArray<unknown>) => {
  const db = new Database(path.join(dir, "archive.sqlite"))
  try {
    db.prepare(statement).run(...params)
  } finally {
    db.close()
  }
}

/** A fresh archive in a temporary folder, removed afterwards, with the core services over it. */
const inArchive = <A, E>(
  body: (
    dir: string
  ) => Effect.Effect<A, E, Archiver.Archiver | Restorer.Restorer | ArchiveStore.ArchiveStore | Evidence.Evidence>
) => {
  const dir = tempDir("codex-hostile-")
  return body(dir).pipe(
    Effect.provide(services(dir)),
    Effect.scoped,
    Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  )
}

const storeError = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.either(effect), (r) => {
    expect(Either.isLeft(r)).toBe(true)
    const error = (r as Either.Left<E, A>).left as ArchiveStore.StoreError
    expect(error._tag).toBe("StoreError")
    expect(error.transient).toBe(false)
    return error
  })

describe("hostile rows in a SQLite archive", () => {
  it.live("a sha256 of the wrong length is refused by locate and show, and listed as malformed by verify's listing", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE artifact SET content_sha256 = 'abc123' WHERE id = ?", small.artifactId)
        const store = yield* ArchiveStore.ArchiveStore
        const listed = (yield* store.artifacts()).find((a) => a.artifactId === small.artifactId)
        for (
          const message of [
            (yield* storeError(store.locate([small.tombstone]))).message,
            (yield* storeError(store.show(small.tombstone))).message,
            listed?.malformed ?? "not listed as malformed"
          ]
        ) {
          expect(message).toContain(`table artifact, row ${small.artifactId}: column content_sha256:`)
          expect(message).toContain(`expected a sha256 (64 hex digits), got "abc123"`)
        }
        expect(listed?.tombstones).toEqual([small.tombstone])
        // The restore fails on it, and writes nothing.
        const restored = yield* Effect.either(
          (yield* Restorer.Restorer).restore({
            tombstone: small.tombstone,
            output: path.join(dir, "out.txt"),
            actor: "bob"
          })
        )
        expect(Either.isLeft(restored) && restored.left._tag).toBe("StoreError")
        expect(fs.existsSync(path.join(dir, "out.txt"))).toBe(false)
      })
    ))

  it.live("verify lists a malformed artifact row as a problem and still checks every other artifact", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { big, small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE artifact SET size_bytes = -1 WHERE id = ?", small.artifactId)
        // Pages of one: the malformed row ends a page, and the walk goes on after it.
        const report = yield* Verifier.verify({ actor: "bob", pageSize: 1 })
        expect(report.checked).toBe(2)
        expect(report.ok).toBe(1)
        expect(report.problems).toEqual([{
          artifact_id: small.artifactId,
          sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
          tombstones: [small.tombstone],
          problem: `malformed row: table artifact, row ${small.artifactId}: column size_bytes: ` +
            "expected a non-negative integer, got -1"
        }])
        expect(report.problems.map((p) => p.artifact_id)).not.toContain(big.artifactId)
      })
    ))

  it.live("verify names a malformed tombstone_id as the item's column, by the item's row", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE item SET tombstone_id = 'not-a-uuid' WHERE tombstone_id = ?", small.tombstone)
        const db = new Database(path.join(dir, "archive.sqlite"), { readonly: true })
        const item = db.prepare("SELECT id FROM item WHERE tombstone_id = 'not-a-uuid'").pluck().get() as string
        db.close()
        const report = yield* Verifier.verify({ actor: "bob" })
        expect(report.problems.map((p) => p.problem)).toEqual([
          `malformed row: table item, row ${item}: column tombstone_id: ` +
          `expected a tombstone id (a lowercase UUID) or NULL, got "not-a-uuid"`
        ])
      })
    ))

  it.live("verify pages past digests stored as blobs: every artifact once, each malformed one listed once", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const names = Array.from({ length: 7 }, (_, i) => `f${i}.txt`)
        for (const name of names) fs.writeFileSync(path.join(dir, name), `content of ${name}\n`)
        yield* (yield* Archiver.Archiver).store(names.map((n) => path.join(dir, n)), storeOptions(dir))
        // SQLite's untyped column takes a blob: read back as text it is another key, one that sorted before them all.
        const db = new Database(path.join(dir, "archive.sqlite"))
        const ids = db.prepare("SELECT id FROM artifact ORDER BY content_sha256 DESC LIMIT 3").pluck().all() as Array<
          string
        >
        ids.forEach((id, n) =>
          db.prepare("UPDATE artifact SET content_sha256 = ? WHERE id = ?").run(Buffer.from([0, n]), id)
        )
        db.close()
        const report = yield* Verifier.verify({ actor: "bob", pageSize: 2 })
        expect(report.checked).toBe(7)
        expect(report.ok).toBe(4)
        expect(report.problems.map((p) => p.artifact_id).sort()).toEqual([...ids].sort())
        for (const p of report.problems) expect(p.problem).toMatch(/^malformed row: .*column content_sha256/)
      })
    ))

  it.live("a negative size is refused, naming table, column and row", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE artifact SET size_bytes = -5 WHERE id = ?", small.artifactId)
        const error = yield* storeError((yield* ArchiveStore.ArchiveStore).locate([small.tombstone]))
        expect(error.operation).toBe("locate")
        expect(error.message).toBe(
          `sqlite archive: locate failed: table artifact, row ${small.artifactId}: column size_bytes: ` +
            "expected a non-negative integer, got -5"
        )
      })
    ))

  it.live("an archived_at SQLite cannot read as a date is listed last, on whatever page it falls, or named", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { big, small } = yield* storeTwo(dir)
        const store = yield* ArchiveStore.ArchiveStore
        tamper(dir, "UPDATE item SET archived_at = 'not a date' WHERE tombstone_id = ?", big.tombstone)
        // A page of one item at a time: the cursor passes from a readable date to the unreadable one.
        const seen: Array<string> = []
        let after: string | undefined
        for (let page = 0; page < 5; page++) {
          const items = yield* store.listPage({ limit: 1 }, after)
          if (items.length === 0) break
          seen.push(items[0]!.tombstone_id)
          after = items[0]!.id
        }
        expect(seen).toEqual([small.tombstone, big.tombstone])
        // Not text at all: the page that reaches it fails naming the row, never leaves it out.
        tamper(dir, "UPDATE item SET archived_at = ? WHERE tombstone_id = ?", Buffer.from("blob"), big.tombstone)
        const first = yield* store.listPage({ limit: 1 }, undefined)
        const error = yield* storeError(store.listPage({ limit: 1 }, first[0]!.id))
        expect(error.message).toContain("column archived_at: expected a timestamp, got 4 bytes")
      })
    ))

  it.live("a page ending on an item whose id is a blob fails the next page, naming it, never ends the list there", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        yield* storeTwo(dir)
        const store = yield* ArchiveStore.ArchiveStore
        const [first] = yield* store.listPage({ limit: 1 }, undefined)
        // The same text stored as a blob: SQLite's untyped key takes it, and reads it back as the text.
        const db = new Database(path.join(dir, "archive.sqlite"))
        db.pragma("foreign_keys = OFF")
        db.prepare("UPDATE item SET id = ? WHERE id = ?").run(Buffer.from(first!.id), first!.id)
        db.close()
        const [again] = yield* store.listPage({ limit: 1 }, undefined)
        expect(again!.tombstone_id).toBe(first!.tombstone_id)
        const error = yield* storeError(store.listPage({ limit: 1 }, again!.id))
        expect(error.message).toContain(`cannot page past item ${first!.id}: no item has that id as text`)
      })
    ))

  it.live("a tombstone id that is not a UUID is refused by list, naming the item", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE item SET tombstone_id = 'not-a-uuid' WHERE tombstone_id = ?", small.tombstone)
        const error = yield* storeError((yield* ArchiveStore.ArchiveStore).list({ limit: 10 }))
        expect(error.message).toContain("table item, row not-a-uuid: column tombstone_id: expected a tombstone id")
      })
    ))

  it.live("a payload of the wrong type is named by its type and size, never quoted", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        tamper(dir, "UPDATE artifact SET blob_bytes = CAST(blob_bytes AS TEXT) WHERE id = ?", small.artifactId)
        const output = path.join(dir, "out.txt")
        const restore = (yield* Restorer.Restorer).restore({ tombstone: small.tombstone, output, actor: "bob" })
        const text = yield* storeError(restore)
        expect(text.message).toMatch(
          new RegExp(
            `^sqlite archive: fetch failed: table artifact, row ${small.artifactId}: column blob_bytes: ` +
              "expected bytes, got text of \\d+ bytes$"
          )
        )
        expect(text.message).not.toContain("small content")
        tamper(dir, "UPDATE artifact SET blob_bytes = 123456789 WHERE id = ?", small.artifactId)
        expect((yield* storeError(restore)).message).toMatch(/column blob_bytes: expected bytes, got an integer$/)
        tamper(dir, "UPDATE artifact SET blob_bytes = 1.5 WHERE id = ?", small.artifactId)
        expect((yield* storeError(restore)).message).toMatch(/column blob_bytes: expected bytes, got a real number$/)
        expect(fs.existsSync(output)).toBe(false)
      })
    ))

  it.live("a batch fetching a payload of the wrong type fails that item only; the others fetched with it restore", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const names = ["a.txt", "b.txt", "c.txt"]
        for (const name of names) fs.writeFileSync(path.join(dir, name), `content of ${name}\n`)
        const report = yield* (yield* Archiver.Archiver).store(names.map((n) => path.join(dir, n)), storeOptions(dir))
        const tombstones = report.stored.map((s) => s.tombstone)
        const located = yield* (yield* ArchiveStore.ArchiveStore).locate(tombstones)
        const bad = located.get(tombstones[1]!)!.artifactId
        tamper(dir, "UPDATE artifact SET blob_bytes = CAST(blob_bytes AS TEXT) WHERE id = ?", bad)
        // No workers: this thread fetches the three payloads in one round trip, which the bad row refuses.
        const results = yield* (yield* Restorer.Restorer).restoreAll(
          tombstones.map((tombstone, i) => ({ tombstone, output: path.join(dir, "out", names[i]!), actor: "bob" })),
          { concurrency: 1, workers: 0 }
        )
        expect(results.map((r) => r._tag)).toEqual(["Success", "Failure", "Success"])
        expect(results[1]?._tag === "Failure" && results[1].error.message).toMatch(
          new RegExp(`table artifact, row ${bad}: column blob_bytes: expected bytes, got text of \\d+ bytes$`)
        )
        for (const name of ["a.txt", "c.txt"]) {
          expect(fs.readFileSync(path.join(dir, "out", name), "utf8")).toBe(`content of ${name}\n`)
        }
        expect(fs.existsSync(path.join(dir, "out", "b.txt"))).toBe(false)
      })
    ))

  it.live("verify lists a payload of the wrong type, a missing chunk and a fractional seq, and checks the rest", () =>
    Effect.forEach(
      [
        ["UPDATE artifact SET blob_bytes = CAST(blob_bytes AS TEXT) WHERE id = ?", "small", (a: string) =>
          new RegExp(
            `^malformed row: table artifact, row ${a}: column blob_bytes: expected bytes, got text of \\d+ bytes$`
          )],
        [
          "UPDATE artifact SET blob_bytes = 7 WHERE id = ?",
          "small",
          (a: string) =>
            new RegExp(`^malformed row: table artifact, row ${a}: column blob_bytes: expected bytes, got an integer$`)
        ],
        ["DELETE FROM artifact_chunk WHERE artifact_id = ? AND seq = 1", "big", (a: string) =>
          new RegExp(
            `^malformed row: table artifact_chunk, row ${a}#2: column seq: expected 1 \\(chunk 1 is missing\\)$`
          )],
        ["UPDATE artifact_chunk SET seq = 0.5 WHERE artifact_id = ? AND seq = 0", "big", (a: string) =>
          new RegExp(
            `^malformed row: table artifact_chunk, row ${a}#0.5: column seq: expected a non-negative integer, got 0.5$`
          )],
        [
          "UPDATE artifact_chunk SET blob_bytes = 'text' WHERE artifact_id = ? AND seq = 2",
          "big",
          (a: string) =>
            new RegExp(
              `^malformed row: table artifact_chunk, row ${a}#2: column blob_bytes: expected bytes, got text of 4 bytes$`
            )
        ]
      ] as const,
      ([statement, which, problem]) =>
        inArchive((dir) =>
          Effect.gen(function*() {
            const stored = yield* storeTwo(dir)
            const bad = stored[which]
            tamper(dir, statement, bad.artifactId)
            for (const tombstones of [undefined, [bad.tombstone]]) {
              const report = yield* Verifier.verify({ actor: "bob", tombstones })
              expect(report.problems.map((p) => [p.artifact_id, p.tombstones])).toEqual([[bad.artifactId, [
                bad.tombstone
              ]]])
              expect(report.problems[0]!.problem).toMatch(problem(bad.artifactId))
              expect(report.problems[0]!.problem).not.toContain("small content")
              expect(report.ok).toBe(tombstones === undefined ? 1 : 0)
            }
          })
        ),
      { discard: true }
    ))

  it.live("a chunk missing from the middle is refused by the chunk stream and by a batch's workers", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { big } = yield* storeTwo(dir)
        tamper(dir, "DELETE FROM artifact_chunk WHERE artifact_id = ? AND seq = 1", big.artifactId)
        const error = yield* storeError(Stream.runDrain((yield* ArchiveStore.ArchiveStore).chunks(big.artifactId)))
        expect(error.message).toBe(
          `sqlite archive: fetch failed: table artifact_chunk, row ${big.artifactId}#2: column seq: expected 1 ` +
            "(chunk 1 is missing)"
        )
        // Worker threads read the chunks themselves (direct reads): the same check, the item failed as corrupt.
        const [result] = yield* (yield* Restorer.Restorer).restoreAll(
          [{ tombstone: big.tombstone, output: path.join(dir, "out.bin"), actor: "bob" }],
          { concurrency: 1, workers: 1 }
        )
        expect(result?._tag).toBe("Failure")
        expect(result?._tag === "Failure" && result.error.message).toContain(
          `table artifact_chunk, row ${big.artifactId}#2: column seq: expected 1 (chunk 1 is missing)`
        )
        expect(fs.existsSync(path.join(dir, "out.bin"))).toBe(false)
      })
    ))
  it.live("a gap or a text seq past the first window of chunks is named, not read as the end of the payload", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { big } = yield* storeTwo(dir)
        const store = yield* ArchiveStore.ArchiveStore
        tamper(dir, "UPDATE artifact_chunk SET seq = 5 WHERE artifact_id = ? AND seq = 2", big.artifactId)
        expect((yield* storeError(Stream.runDrain(store.chunks(big.artifactId)))).message).toContain(
          `table artifact_chunk, row ${big.artifactId}#5: column seq: expected 2 (chunk 2 is missing)`
        )
        tamper(dir, "UPDATE artifact_chunk SET seq = 'x' WHERE artifact_id = ? AND seq = 5", big.artifactId)
        expect((yield* storeError(Stream.runDrain(store.chunks(big.artifactId)))).message).toContain(
          `table artifact_chunk, row ${big.artifactId}#x: column seq: expected a non-negative integer, got "x"`
        )
      })
    ))

  it.live("metadata and event context nested 100,000 deep are kept as text: show's result can still be printed", () =>
    inArchive((dir) =>
      Effect.gen(function*() {
        const { small } = yield* storeTwo(dir)
        const deep = "[".repeat(100_000) + "]".repeat(100_000)
        tamper(dir, "UPDATE item SET metadata = ? WHERE tombstone_id = ?", deep, small.tombstone)
        tamper(dir, "UPDATE event SET context = ?", deep)
        const detail = yield* (yield* ArchiveStore.ArchiveStore).show(small.tombstone)
        expect(detail.metadata).toBe(deep)
        expect(detail.events.map((e) => e.context)).toContain(deep)
        expect(JSON.stringify(detail)).toContain(deep)
      })
    ))
})
