/**
 * The one `ArchiveStore` conformance suite: every behaviour of the port, exercised through the Archiver and Restorer
 * and the store itself, run by each backend package against its own freshly created database.
 */
import {
  Archiver,
  ArchiveStore,
  Batch,
  Evidence,
  Hash,
  Migrations,
  Restorer,
  Retention,
  Retry,
  Verifier
} from "@codex-archive/core"
import { Migrator, SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
// The codec's own bomb fixtures: a few KB that decode to far more than an item's recorded size.
import { zlibZeros, zstdZeros } from "../../core/test/bombs.js"
import { type Backend, hasSql, noise, services, tempDir, withArchive, write } from "./Fixtures.js"

// Content above one chunk is chunked here, so the chunked paths are exercised on every backend (the default limit
// stores up to 8 MiB inline on SQLite and PostgreSQL; its own tests below set it explicitly).
const base = {
  actor: "alice",
  commit: "abc123",
  reason: "dead",
  kind: "code",
  inlineLimit: ArchiveStore.chunkSize
} as const

const store = (inputs: ReadonlyArray<string>, options: Partial<Archiver.StoreOptions> & { readonly cwd: string }) =>
  Effect.flatMap(Archiver.Archiver, (a) => a.store(inputs, { repo: "acme/demo", ...base, ...options }))

const restore = (tombstone: string, output: string, actor = "bob") =>
  Effect.flatMap(Restorer.Restorer, (r) => r.restore({ tombstone, output, actor }))

const archiveStore = ArchiveStore.ArchiveStore

export const suite = (backend: Backend) =>
  describe(`${backend.name} archive conformance`, () => {
    // Tests that read or change the database with raw SQL (tamper with rows, migrations, foreign tables): a backend
    // without SQL reports them as skipped under this name, never silently.
    const sqlTest = (name: string, self: Parameters<typeof it.live>[1]) =>
      it.live.skipIf(!hasSql(backend))(hasSql(backend) ? name : `${name} [needs SQL]`, self)
    it.live("stores files and restores each byte for byte, keeping the mode, with evidence lines", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const files = {
            "a/one.txt": "hello\n",
            "a/empty": "",
            "a/ünïcødé.bin": Buffer.from([0, 1, 2, 255, 254]),
            "run.sh": "#!/bin/sh\necho hi\n"
          }
          for (const [f, c] of Object.entries(files)) {
            write(path.join(dir, "tree", f), c, f === "run.sh" ? 0o755 : 0o644)
          }
          const report = yield* store([path.join(dir, "tree")], { cwd: dir })
          expect(report.stored.map((s) => s.path).sort()).toEqual(Object.keys(files).map((f) => `tree/${f}`).sort())
          for (const s of report.stored) {
            const out = path.join(dir, "out", s.path)
            const outcome = yield* restore(s.tombstone, out)
            expect(outcome.status).toBe("restored")
            expect(fs.readFileSync(out)).toEqual(Buffer.from(files[s.path.slice(5) as keyof typeof files]))
          }
          expect(fs.statSync(path.join(dir, "out/tree/run.sh")).mode & 0o777).toBe(0o755)
          const again = yield* restore(report.stored[0]!.tombstone, path.join(dir, "out", report.stored[0]!.path))
          expect(again.status).toBe("unchanged")
          const lines = Evidence.read(path.join(dir, "evidence"))
          expect(lines.filter((l) => l.action === "ARCHIVE").length).toBe(4)
          expect(lines.filter((l) => l.action === "RESTORE").length).toBe(5)
        })))

    it.live("dedupes identical content into one artifact and restores every tombstone of it", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          write(path.join(dir, "x/a.txt"), "same bytes\n")
          write(path.join(dir, "x/b.txt"), "same bytes\n")
          const first = yield* store([path.join(dir, "x")], { cwd: dir })
          const second = yield* store([path.join(dir, "x/a.txt")], { cwd: dir })
          const all = [...first.stored, ...second.stored]
          expect(all.filter((s) => s.deduplicated).length).toBe(2)
          expect(new Set(all.map((s) => s.tombstone)).size).toBe(3)
          const artifacts = yield* Effect.flatMap(archiveStore, (s) => s.artifacts())
          expect(artifacts.length).toBe(1)
          expect([...artifacts[0]!.tombstones].sort()).toEqual(all.map((s) => s.tombstone).sort())
          for (const s of all) {
            const out = path.join(dir, "out", s.tombstone)
            yield* restore(s.tombstone, out)
            expect(fs.readFileSync(out, "utf8")).toBe("same bytes\n")
          }
        })))

    it.live("lists newest first with ties in insertion order, and filters by repo, since and limit", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const tombstones: Array<string> = []
          for (let i = 0; i < 6; i++) {
            const file = write(path.join(dir, `f${i}.txt`), `content ${i}\n`)
            const report = yield* store([file], { cwd: dir, repo: i % 2 === 0 ? "acme/even" : "acme/odd" })
            tombstones.push(report.stored[0]!.tombstone)
          }
          const s = yield* archiveStore
          const listed = yield* s.list({ limit: 100 })
          expect(listed.map((l) => l.tombstone_id)).toEqual([...tombstones].reverse())
          expect(listed[0]!.archived_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
          expect(listed[0]!.commit_sha).toBe("abc123")
          const even = yield* s.list({ repo: "acme/even", limit: 100 })
          expect(even.map((l) => l.tombstone_id)).toEqual([tombstones[4], tombstones[2], tombstones[0]])
          expect((yield* s.list({ repo: "ACME/even", limit: 100 })).length).toBe(0)
          expect((yield* s.list({ limit: 2 })).map((l) => l.tombstone_id)).toEqual([tombstones[5], tombstones[4]])
          expect((yield* s.list({ since: "2001-01-01T00:00:00Z", limit: 100 })).length).toBe(6)
          expect((yield* s.list({ since: listed[0]!.archived_at, limit: 100 })).length).toBeGreaterThan(0)
          expect((yield* s.list({ since: "2037-01-01T00:00:00Z", limit: 100 })).length).toBe(0)
        })))

    it.live("pages a list by keyset: tiny pages over items of one second come whole, in the list's order", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          // One store, one timestamp: its seven items share a second; the next store's three come a second later.
          const files = (d: string, n: number) =>
            Array.from({ length: n }, (_, i) => write(path.join(dir, d, `f${i}.txt`), `${d} ${i}\n`))
          const first = yield* store(files("a", 7), { cwd: dir })
          yield* Effect.sleep("1 second")
          const second = yield* store(files("b", 3), { cwd: dir, repo: "acme/other" })
          const s = yield* archiveStore
          const all = yield* s.list({ limit: 100 })
          const ofFirst = all.filter((l) => l.repo === "acme/demo")
          expect(new Set(ofFirst.map((l) => l.archived_at)).size).toBe(1)
          expect(all.map((l) => l.tombstone_id).sort()).toEqual(
            [...first.stored, ...second.stored].map((x) => x.tombstone).sort()
          )
          const paged = (filter: { readonly repo?: string; readonly since?: string }, size: number) =>
            Effect.gen(function*() {
              const pages: Array<ReadonlyArray<ArchiveStore.ListedItem>> = []
              let after: string | undefined
              for (;;) {
                const page = yield* s.listPage({ ...filter, limit: size }, after)
                pages.push(page)
                if (page.length < size) return pages
                after = page.at(-1)!.id
              }
            })
          for (const size of [1, 2, 3]) {
            const pages = yield* paged({}, size)
            expect(pages.flat()).toEqual(all)
            expect(pages.map((p) => p.length)).toEqual([
              ...Array(Math.floor(10 / size)).fill(size),
              10 % size
            ])
          }
          expect((yield* paged({ repo: "acme/demo" }, 2)).flat()).toEqual(ofFirst)
          expect((yield* paged({ since: all[0]!.archived_at }, 2)).flat()).toEqual(
            all.filter((l) => l.archived_at >= all[0]!.archived_at)
          )
          // The cursor is a place in the order, not a member of the filter: an item another filter hides still works.
          const pivot = all.findIndex((l) => l.repo === "acme/other")
          expect(yield* s.listPage({ repo: "acme/demo", limit: 100 }, all[pivot]!.id)).toEqual(ofFirst)
          expect(yield* s.listPage({ limit: 2 }, all.at(-1)!.id)).toEqual([])
        })))

    sqlTest(
      "pages a list whose times disagree with insertion order (a legacy row's text too) as the list orders it",
      () =>
        withArchive(backend, (dir) =>
          Effect.gen(function*() {
            const files = Array.from({ length: 6 }, (_, i) => write(path.join(dir, `t/f${i}.txt`), `t ${i}\n`))
            const stored = (yield* store(files, { cwd: dir })).stored.map((x) => x.tombstone)
            // Two items moved to one older second, in the form SQLite's CURRENT_TIMESTAMP writes: paging by insertion
            // order alone, or by the time alone, would list them out of place or lose one.
            const sql = yield* SqlClient.SqlClient
            yield* sql`UPDATE item SET archived_at = '2020-01-01 00:00:00' WHERE tombstone_id IN ${
              sql.in(stored.slice(2, 4))
            }`
            const s = yield* archiveStore
            const all = yield* s.list({ limit: 100 })
            expect(all.slice(-2).map((l) => l.tombstone_id).sort()).toEqual(stored.slice(2, 4).sort())
            expect(all.at(-1)!.archived_at).toBe("2020-01-01T00:00:00Z")
            const pages: Array<ReadonlyArray<ArchiveStore.ListedItem>> = []
            let after: string | undefined
            for (;;) {
              const page = yield* s.listPage({ limit: 2 }, after)
              pages.push(page)
              if (page.length < 2) break
              after = page.at(-1)!.id
            }
            expect(pages.flat()).toEqual(all)
          }))
    )

    sqlTest(
      "a store whose evidence lines cannot be written takes its group back; the next store reuses the content",
      () =>
        withArchive(backend, (dir) =>
          Effect.gen(function*() {
            const log = Evidence.fileIn(path.join(dir, "evidence"))
            const kept = write(path.join(dir, "kept.txt"), "kept\n")
            yield* store([kept], { cwd: dir, tags: ["t"] })
            write(path.join(dir, "g/a.txt"), "group a\n")
            write(path.join(dir, "g/b.txt"), "group b\n")
            fs.renameSync(log, `${log}.aside`)
            fs.mkdirSync(log)
            const failed = yield* Effect.flip(store([path.join(dir, "g")], { cwd: dir, tags: ["t", "u"] }))
            expect(failed._tag).toBe("EvidenceError")
            fs.rmdirSync(log)
            fs.renameSync(`${log}.aside`, log)
            const s = yield* archiveStore
            expect((yield* s.list({ limit: 10 })).map((i) => i.path)).toEqual(["kept.txt"])
            // An empty transaction (how a store checks its connection after a failed commit) stores nothing.
            expect(yield* s.archive([])).toEqual([])
            const sql = yield* SqlClient.SqlClient
            const count = (table: string) =>
              Effect.map(sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql(table)}`, (r) => Number(r[0]!.n))
            expect([yield* count("item"), yield* count("event"), yield* count("tag")]).toEqual([1, 1, 1])
            // The group's content stays, unreferenced: storing it again reuses it.
            expect((yield* s.artifacts()).length).toBe(3)
            const again = yield* store([path.join(dir, "g")], { cwd: dir })
            expect(again.stored.map((x) => x.deduplicated)).toEqual([true, true])
            for (const [i, x] of again.stored.entries()) {
              yield* restore(x.tombstone, path.join(dir, "out", x.path))
              expect(fs.readFileSync(path.join(dir, "out", x.path), "utf8")).toBe(`group ${"ab"[i]}\n`)
            }
            const lines = Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "ARCHIVE")
            expect(lines.map((l) => l.path)).toEqual(["kept.txt", "g/a.txt", "g/b.txt"])
            expect(lines.slice(1).map((l) => l.tombstone)).toEqual(again.stored.map((x) => x.tombstone))
          }))
    )

    it.live("records a unit's restores all or nothing: one bad record leaves every item and event as it was", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const report = yield* store(
            [write(path.join(dir, "a.md"), "# a\n"), write(path.join(dir, "b.md"), "# b\n")],
            {
              cwd: dir
            }
          )
          const tombstones = report.stored.map((s) => s.tombstone)
          const s = yield* archiveStore
          const located = yield* s.locate(tombstones)
          const itemIds = tombstones.map((t) => located.get(t)!.itemId)
          const at = "2026-12-07T20:00:00Z"
          // The second record's event cannot be inserted (no actor): the first item's restored_at must not stay set.
          const bad = yield* Effect.exit(s.recordRestores([
            { itemId: itemIds[0]!, actor: "bob", at },
            { itemId: itemIds[1]!, actor: null as unknown as string, at }
          ]))
          expect(Exit.isFailure(bad)).toBe(true)
          for (const t of tombstones) {
            const shown = yield* s.show(t)
            expect(shown.restored_at).toBeNull()
            expect(shown.events.map((e) => e.action)).toEqual(["ARCHIVE"])
          }
          yield* s.recordRestores(itemIds.map((itemId) => ({ itemId, actor: "bob", at })))
          for (const t of tombstones) {
            const shown = yield* s.show(t)
            expect(shown.restored_at).toBe(at)
            // Events list in time order, and this restore's time is before the archive's.
            expect(shown.events.map((e) => `${e.action} ${e.actor}`).sort()).toEqual(["ARCHIVE alice", "RESTORE bob"])
          }
        })))

    it.live("shows an item with its metadata, tags and events in order", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const file = write(path.join(dir, "doc.md"), "# doc\n")
          const report = yield* store([file], {
            cwd: dir,
            tags: ["legacy", "docs", "docs"],
            metadata: { ticket: "OPS-1" },
            kind: "doc",
            reason: "pruned"
          })
          const tombstone = report.stored[0]!.tombstone
          yield* restore(tombstone, path.join(dir, "out/doc.md"), "carol")
          const s = yield* archiveStore
          yield* s.requestPrune(tombstone, "dave", "obsolete")
          const shown = yield* s.show(tombstone)
          expect(shown.tombstone_id).toBe(tombstone)
          expect(shown.path).toBe("doc.md")
          expect(shown.kind).toBe("doc")
          expect(shown.reason).toBe("pruned")
          expect(shown.tags).toEqual(["docs", "legacy"])
          expect(shown.legal_hold).toBe(false)
          expect(shown.restored_at).toMatch(/Z$/)
          expect(shown.metadata).toMatchObject({
            sha256: Hash.sha256(Buffer.from("# doc\n")),
            size_bytes: 6,
            ticket: "OPS-1"
          })
          expect(shown.artifact).toMatchObject({
            content_sha256: Hash.sha256(Buffer.from("# doc\n")),
            size_bytes: 6,
            layout: "inline",
            storage_driver: "db"
          })
          expect(shown.artifact.compressed_size).toBeGreaterThan(0)
          expect(shown.events.map((e) => [e.action, e.actor])).toEqual([["ARCHIVE", "alice"], ["RESTORE", "carol"], [
            "PRUNE_REQUEST",
            "dave"
          ]])
          expect(shown.events[2]!.context).toEqual({ reason: "obsolete" })
          expect(shown.events[0]!.context).toMatchObject({ commit: "abc123", path: "doc.md" })
          const missing = "00000000-0000-4000-8000-000000000000"
          expect((yield* Effect.flip(s.show(missing)))._tag).toBe("TombstoneNotFound")
          expect((yield* Effect.flip(s.show("not-a-uuid")))._tag).toBe("TombstoneNotFound")
          expect((yield* Effect.flip(s.requestPrune(missing, "dave", "x")))._tag).toBe("TombstoneNotFound")
          expect((yield* s.locate([missing, "not-a-uuid", tombstone])).size).toBe(1)
        })))

    it.live("stores content larger than a chunk in chunks and streams it back intact", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const big = noise(3 * ArchiveStore.chunkSize + 17)
          const report = yield* store([write(path.join(dir, "big.bin"), big)], { cwd: dir })
          const tombstone = report.stored[0]!.tombstone
          const s = yield* archiveStore
          const located = (yield* s.locate([tombstone])).get(tombstone)!
          expect(located.layout).toBe("chunked")
          expect(located.sizeBytes).toBe(big.length)
          expect((yield* s.show(tombstone)).artifact.compressed_size).toBe(report.stored[0]!.compressed_size)
          yield* restore(tombstone, path.join(dir, "out.bin"))
          expect(Hash.sha256(fs.readFileSync(path.join(dir, "out.bin")))).toBe(Hash.sha256(big))
          const dup = yield* store([write(path.join(dir, "copy.bin"), big)], { cwd: dir })
          expect(dup.stored[0]!.deduplicated).toBe(true)
        })))

    sqlTest("a payload that decodes past its recorded size (a bomb) fails restore, batch and verify as corrupt", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const chunk = ArchiveStore.chunkSize
          const report = yield* store([
            write(path.join(dir, "tree/zstd.txt"), "hello"),
            write(path.join(dir, "tree/zlib.txt"), "howdy"),
            write(path.join(dir, "tree/big.bin"), noise(chunk + 10, 5))
          ], { cwd: path.join(dir, "tree") })
          const ids = Object.fromEntries(report.stored.map((s) => [s.path, s.tombstone]))
          const located = yield* (yield* archiveStore).locate(Object.values(ids))
          const id = (name: string) =>
            located.get(ids[name]!)!.artifactId
          const sql = yield* SqlClient.SqlClient
          const [zstd, zlib, big] = [zstdZeros(64 * chunk, "none"), zlibZeros(16 * chunk), zstdZeros(2 * chunk)]
          yield* sql`UPDATE artifact SET blob_bytes = ${zstd} WHERE id = ${id("zstd.txt")}`
          yield* sql`UPDATE artifact SET blob_bytes = ${zlib}, compression = 'zlib' WHERE id = ${id("zlib.txt")}`
          yield* sql`UPDATE artifact_chunk SET blob_bytes = ${big} WHERE artifact_id = ${id("big.bin")} AND seq = 0`
          const names = ["zstd.txt", "zlib.txt", "big.bin"]
          const out = (name: string) => path.join(dir, "out", name)
          const corrupt = (tombstone: string) =>
            new RegExp(`^payload of tombstone ${tombstone} cannot be decoded with codec 'z(std|lib)': `)
          for (const name of names) {
            const error = yield* Effect.flip(restore(ids[name]!, out(name)))
            expect(error.message).toMatch(corrupt(ids[name]!))
          }
          const requests = names.map((name) => ({ tombstone: ids[name]!, output: out(name), actor: "ci" }))
          const restorer = yield* Restorer.Restorer
          for (const workers of [0, 2]) {
            const results = yield* restorer.restoreAll(requests, { concurrency: 2, workers })
            for (const r of results) {
              expect(r._tag === "Failure" && r.error.message).toMatch(corrupt(r.request.tombstone))
            }
          }
          expect(fs.existsSync(path.join(dir, "out"))).toBe(false)
          const verified = yield* Verifier.verify({ actor: "ci" })
          expect(verified.problems.map((p) => p.tombstones[0]).sort()).toEqual(names.map((name) => ids[name]).sort())
          for (const p of verified.problems) {
            expect(p.problem).toMatch(/^payload cannot be decoded with codec 'z(std|lib)': .*its record allows$/)
          }
        })))

    sqlTest("an item pointed at another item's artifact fails every restore path and verify, nothing written", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const tree = path.join(dir, "tree")
          const report = yield* store(
            ["one", "two", "three"].map((n) =>
              write(path.join(tree, `${n}.txt`), `file ${n}\n`)
            ),
            { cwd: tree }
          )
          const byPath = new Map(report.stored.map((x) => [x.path, { tombstone: x.tombstone, sha256: x.sha256 }]))
          const [one, two, three] = ["one.txt", "two.txt", "three.txt"].map((p) =>
            byPath.get(p)
          )
          const s = yield* archiveStore
          const artifactOf = (tombstone: string) =>
            Effect.map(s.locate([tombstone]), (found) => found.get(tombstone)!.artifactId)
          const twos = yield* artifactOf(two!.tombstone)
          const sql = yield* SqlClient.SqlClient
          // One's row edited to two's content; three's too, with metadata that records no digest (an original's item).
          yield* sql`UPDATE item SET artifact_id = ${twos} WHERE tombstone_id = ${one!.tombstone}`
          yield* sql`UPDATE item SET artifact_id = ${twos}, metadata = '{}' WHERE tombstone_id = ${three!.tombstone}`
          const out = (name: string) => path.join(dir, "out", name)
          const mismatch = (tombstone: string, expected: string, from: string) => (error: unknown) => {
            expect((error as { _tag?: string })._tag).toBe("ContentMismatch")
            expect((error as Error).message).toBe(
              `tombstone ${tombstone}: ${from} gives sha256 ${expected}, but its artifact ${twos} holds content with ` +
                `sha256 ${two!.sha256} (content_sha256)`
            )
          }
          const byMetadata = mismatch(one!.tombstone, one!.sha256, "the item's metadata (metadata.sha256)")
          const byStub = mismatch(three!.tombstone, three!.sha256, "stub three.txt")
          const restorer = yield* Restorer.Restorer
          byMetadata(yield* Effect.flip(restore(one!.tombstone, out("one"))))
          byMetadata(yield* Effect.flip(Restorer.describe(one!.tombstone)))
          const expected = { sha256: three!.sha256, from: "stub three.txt" }
          byStub(
            yield* Effect.flip(
              restorer.restore({ tombstone: three!.tombstone, output: out("three"), actor: "bob", expected })
            )
          )
          byStub(yield* Effect.flip(Restorer.describe(three!.tombstone, expected)))
          for (const workers of [0, 2]) {
            const results = yield* restorer.restoreAll([
              { tombstone: one!.tombstone, output: out(`one-${workers}`), actor: "ci" },
              { tombstone: two!.tombstone, output: out(`two-${workers}`), actor: "ci" },
              { tombstone: three!.tombstone, output: out(`three-${workers}`), actor: "ci", expected }
            ], { concurrency: 2, workers })
            expect(results.map((r) => r._tag)).toEqual(["Failure", "Success", "Failure"])
            byMetadata(results[0]!._tag === "Failure" && results[0]!.error)
            byStub(results[2]!._tag === "Failure" && results[2]!.error)
            expect(fs.readFileSync(out(`two-${workers}`), "utf8")).toBe("file two\n")
          }
          // Resumed from a results file that says the output holds the artifact's content: still refused.
          fs.writeFileSync(out("one-resumed"), "file two\n")
          const resumed = yield* restorer.restoreAll([{
            tombstone: one!.tombstone,
            output: out("one-resumed"),
            actor: "ci",
            resumed: { bytes: 9, sha256: two!.sha256 }
          }], { concurrency: 1 })
          byMetadata(resumed[0]!._tag === "Failure" && resumed[0]!.error)
          expect(fs.readdirSync(path.join(dir, "out")).sort()).toEqual(["one-resumed", "two-0", "two-2"])
          // A manifest entry's digest, as a dry run sees it; and the metadata's, without one.
          const checked = yield* Batch.check([
            { tombstone: one!.tombstone, output: out("one"), actor: "ci" },
            {
              tombstone: three!.tombstone,
              output: out("three"),
              actor: "ci",
              ...expected,
              sha256From: "stub three.txt"
            },
            { tombstone: two!.tombstone, output: out("two"), actor: "ci", sha256: two!.sha256 }
          ])
          expect(checked.results.map((r) => [r.status, r.error])).toEqual([
            ["FAILED", "ContentMismatch"],
            ["FAILED", "ContentMismatch"],
            ["RESTORABLE", undefined]
          ])
          // Verify lists the item whose metadata disagrees (three's records nothing to check), whole and per tombstone.
          for (const tombstones of [undefined, [one!.tombstone]]) {
            const verified = yield* Verifier.verify({ actor: "ci", tombstones })
            expect(verified.problems.map((p) => [p.tombstones, p.artifact_id, p.sha256])).toEqual([
              [[one!.tombstone], twos, two!.sha256]
            ])
            expect(verified.problems[0]!.problem).toBe(
              `tombstone ${one!.tombstone}: the item's metadata (metadata.sha256) gives sha256 ${one!.sha256}, but ` +
                `its artifact ${twos} holds content with sha256 ${two!.sha256} (content_sha256)`
            )
            expect(verified.ok).toBe(verified.checked - 1)
          }
        })))

    sqlTest("a dry run and a batch fail an unknown codec, a negative size or a bad digest, and go on", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const tree = path.join(dir, "tree")
          const names = ["codec", "size", "digest", "fine"]
          const report = yield* store(
            names.map((n) =>
              write(path.join(tree, `${n}.txt`), `${n}\n`)
            ),
            { cwd: tree }
          )
          const ids = Object.fromEntries(report.stored.map((x) => [x.path.replace(".txt", ""), x.tombstone]))
          const located = yield* (yield* archiveStore).locate(Object.values(ids))
          const artifact = (name: string) => located.get(ids[name]!)!.artifactId
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE artifact SET compression = 'gzip' WHERE id = ${artifact("codec")}`
          yield* sql`UPDATE artifact SET size_bytes = -1 WHERE id = ${artifact("size")}`
          yield* sql`UPDATE artifact SET content_sha256 = 'abc' WHERE id = ${artifact("digest")}`
          const entries = names.map((n) => ({ tombstone: ids[n]!, output: path.join(dir, "out", n), actor: "ci" }))
          const expected = [
            ["FAILED", "UnknownCodec", "unsupported compression codec 'gzip'"],
            ["FAILED", "StoreError", `row ${artifact("size")}: column size_bytes: expected a non-negative integer`],
            ["FAILED", "StoreError", `row ${artifact("digest")}: column content_sha256: expected a sha256`],
            ["RESTORABLE", undefined, undefined]
          ]
          const shown = (items: ReadonlyArray<Batch.CheckItem>) =>
            items.map((r, i) => [r.status, r.error, r.detail === undefined ? undefined : expected[i]![2]])
          const checked = yield* Batch.check(entries)
          expect(shown(checked.results)).toEqual(expected)
          for (const [i, item] of checked.results.entries()) {
            if (item.detail !== undefined) expect(item.detail).toContain(expected[i]![2])
          }
          expect(checked).toMatchObject({ total: 4, restorable: 1, failed: 3 })
          const streamed: Array<Batch.CheckItem> = []
          yield* Batch.checkSource({ total: 4, entries: () => entries }, {
            onItems: (items) => Effect.sync(() => void streamed.push(...items))
          })
          expect(shown(streamed)).toEqual(expected)
          // A real batch: the same three fail, the fine one in their group is restored.
          const results = yield* (yield* Restorer.Restorer).restoreAll(entries, { concurrency: 1 })
          expect(results.map((r) => r._tag)).toEqual(["Failure", "Failure", "Failure", "Success"])
          expect(results.map((r) => r._tag === "Failure" ? r.error._tag : undefined).slice(0, 3)).toEqual(
            ["UnknownCodec", "StoreError", "StoreError"]
          )
          expect(fs.readdirSync(path.join(dir, "out"))).toEqual(["fine"])
        })))

    sqlTest("stored bytes no encoding of the item's size could take are refused before they are fetched", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const report = yield* store([
            write(path.join(dir, "tree/small.txt"), "hello"),
            write(path.join(dir, "tree/fine.txt"), "untouched\n")
          ], { cwd: path.join(dir, "tree") })
          const ids = Object.fromEntries(report.stored.map((s) => [s.path, s.tombstone]))
          const located = yield* (yield* archiveStore).locate(Object.values(ids))
          const sql = yield* SqlClient.SqlClient
          // A hostile archive's row: 300 KiB for a 5-byte item (a gigabyte, on PostgreSQL, crashed the process).
          const huge = noise(300 * 1024, 9)
          yield* sql`UPDATE artifact SET blob_bytes = ${huge} WHERE id = ${located.get(ids["small.txt"]!)!.artifactId}`
          const refused = new RegExp(
            `^payload of tombstone ${ids["small.txt"]} cannot be decoded with codec 'zstd': its 307200 stored bytes ` +
              "are more than any encoding of the 5 bytes its record says; nothing was fetched$"
          )
          const out = (name: string) =>
            path.join(dir, "out", name)
          expect((yield* Effect.flip(restore(ids["small.txt"]!, out("small.txt")))).message).toMatch(refused)
          const restorer = yield* Restorer.Restorer
          for (const workers of [0, 2]) {
            const requests = ["small.txt", "fine.txt"].map((name) => ({
              tombstone: ids[name]!,
              output: out(`${workers}/${name}`),
              actor: "ci"
            }))
            const [bad, good] = yield* restorer.restoreAll(requests, { concurrency: 2, workers })
            expect(bad?._tag === "Failure" && bad.error.message).toMatch(refused)
            expect(good?._tag).toBe("Success")
            expect(fs.readFileSync(out(`${workers}/fine.txt`), "utf8")).toBe("untouched\n")
            expect(fs.existsSync(out(`${workers}/small.txt`))).toBe(false)
          }
          const verified = yield* Verifier.verify({ actor: "ci" })
          expect(verified.problems.map((p) => [p.tombstones, p.problem])).toEqual([[
            [ids["small.txt"]],
            "payload cannot be decoded with codec 'zstd': its 307200 stored bytes are more than any encoding of the 5 " +
            "bytes its record says; nothing was fetched"
          ]])
        })))

    sqlTest(
      "a tombstone two items share (the unique constraint dropped) fails by name; the rest of a batch restores",
      () =>
        withArchive(backend, (dir) =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const [a, b, c] = (yield* store([
              write(path.join(dir, "a.txt"), "a\n"),
              write(path.join(dir, "b.txt"), "b\n"),
              write(path.join(dir, "c.txt"), "c\n")
            ], { cwd: dir })).stored
            // SQLite's constraint is part of its table; the servers' can be dropped by whoever owns the schema.
            if (backend.name === "postgres") {
              yield* sql`ALTER TABLE item DROP CONSTRAINT item_tombstone_id_key`
            } else if (backend.name === "mariadb") {
              yield* sql`ALTER TABLE item DROP INDEX tombstone_id`
            } else return
            yield* sql`UPDATE item SET tombstone_id = ${a!.tombstone} WHERE tombstone_id = ${b!.tombstone}`
            const refused = yield* Effect.flip(restore(a!.tombstone, path.join(dir, "out/a.txt")))
            expect(refused.message).toContain(`tombstone ${a!.tombstone} names more than one item`)
            const restorer = yield* Restorer.Restorer
            const [one, other] = yield* restorer.restoreAll([
              { tombstone: a!.tombstone, output: path.join(dir, "out/one.txt"), actor: "ci" },
              { tombstone: c!.tombstone, output: path.join(dir, "out/c.txt"), actor: "ci" }
            ], { concurrency: 2 })
            expect(one?._tag === "Failure" && one.error.message).toContain("names more than one item")
            expect(other?._tag).toBe("Success")
            expect(fs.readFileSync(path.join(dir, "out/c.txt"), "utf8")).toBe("c\n")
            expect(fs.existsSync(path.join(dir, "out/one.txt"))).toBe(false)
          }))
    )

    sqlTest(
      "purge reads metadata as the text stored: a repeated legal_hold or a JSON null refuses on every backend",
      () =>
        withArchive(backend, (dir) =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const s = yield* archiveStore
            const [one, two] = (yield* store([
              write(path.join(dir, "one.txt"), "one\n"),
              write(path.join(dir, "two.txt"), "two\n")
            ], { cwd: dir })).stored
            // MariaDB's driver parsed the column and kept the last key (the hold said false, and purge scrubbed); jsonb
            // keeps only the last key itself, so there a repeated key is what the database stores, not a doubt.
            const repeated = `{"legal_hold":true,"legal_hold":false}`
            yield* sql`UPDATE item SET metadata = ${repeated} WHERE tombstone_id = ${one!.tombstone}`
            yield* sql`UPDATE item SET metadata = ${"null"} WHERE tombstone_id = ${two!.tombstone}`
            const purge = (tombstone: string) =>
              Effect.flip(s.approveDelete({ tombstone, primary: "p", secondary: "q", reason: "r", apply: true }))
            const stored = backend.name === "postgres" ? undefined : yield* purge(one!.tombstone)
            if (stored !== undefined) {
              expect(stored._tag).toBe("LegalHold")
              expect(stored.message).toContain("its metadata gives 'legal_hold' more than once")
            }
            const nothing = yield* purge(two!.tombstone)
            expect(nothing._tag).toBe("LegalHold")
            expect(nothing.message).toContain("its metadata is not a JSON object")
            // Refused, both still restore.
            for (const item of [one!, two!]) {
              yield* restore(item.tombstone, path.join(dir, "out", path.basename(item.path)))
            }
            expect(fs.readFileSync(path.join(dir, "out/two.txt"), "utf8")).toBe("two\n")
          }))
    )

    it.live("purges with dual control: legal hold refuses, shared artifacts keep their bytes, purged ones fail to restore", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const s = yield* archiveStore
          const held =
            (yield* store([write(path.join(dir, "held.txt"), "held\n")], { cwd: dir, metadata: { legal_hold: "yes" } }))
              .stored[0]!
          expect((yield* s.show(held.tombstone)).legal_hold).toBe(true)
          const refused = yield* Effect.flip(
            s.approveDelete({ tombstone: held.tombstone, primary: "p", secondary: "q", reason: "r", apply: true })
          )
          expect(refused._tag).toBe("LegalHold")
          const same = yield* Effect.flip(
            s.approveDelete({ tombstone: held.tombstone, primary: "p", secondary: "p", reason: "r", apply: true })
          )
          expect(same._tag).toBe("SameApprover")
          // Names that differ only in case, spacing, width or invisible characters are one approver.
          for (const secondary of ["P", " p ", "p\u200b", "\uff50"]) {
            const alike = yield* Effect.flip(
              s.approveDelete({ tombstone: held.tombstone, primary: "p", secondary, reason: "r", apply: true })
            )
            expect(alike._tag, JSON.stringify(secondary)).toBe("SameApprover")
          }
          const unknown = yield* Effect.flip(
            s.approveDelete({
              tombstone: "00000000-0000-4000-8000-000000000000",
              primary: "p",
              secondary: "q",
              reason: "r",
              apply: true
            })
          )
          expect(unknown._tag).toBe("TombstoneNotFound")

          write(path.join(dir, "shared/a.txt"), "shared\n")
          write(path.join(dir, "shared/b.txt"), "shared\n")
          const [a, b] = (yield* store([path.join(dir, "shared")], { cwd: dir })).stored
          const shared = yield* s.approveDelete({
            tombstone: a!.tombstone,
            primary: "p",
            secondary: "q",
            reason: "cleanup",
            apply: true
          })
          expect(shared).toEqual({ blobScrubbed: false, refCount: 2 })
          const events = (yield* s.show(a!.tombstone)).events.filter((e) =>
            e.action === "DELETE_APPROVED"
          )
          expect(events.map((e) => [e.actor, e.context])).toEqual([
            ["p", {
              role: "primary",
              reason: "cleanup",
              apply_requested: true,
              blob_scrubbed: false,
              shared_references: 1
            }],
            ["q", {
              role: "secondary",
              reason: "cleanup",
              apply_requested: true,
              blob_scrubbed: false,
              shared_references: 1
            }]
          ])
          yield* restore(b!.tombstone, path.join(dir, "out/b.txt"))

          const dry = yield* s.approveDelete({
            tombstone: b!.tombstone,
            primary: "p",
            secondary: "q",
            reason: "dry",
            apply: false
          })
          expect(dry.blobScrubbed).toBe(false)

          const solo =
            (yield* store([write(path.join(dir, "solo.bin"), noise(2 * ArchiveStore.chunkSize, 7))], { cwd: dir }))
              .stored[0]!
          const purged = yield* s.approveDelete({
            tombstone: solo.tombstone,
            primary: "p",
            secondary: "q",
            reason: "gone",
            apply: true
          })
          expect(purged).toEqual({ blobScrubbed: true, refCount: 1 })
          const shown = yield* s.show(solo.tombstone)
          expect(shown.artifact).toMatchObject({
            layout: "purged",
            storage_driver: "object",
            object_url: "purged://dual-control"
          })
          const failed = yield* Effect.exit(restore(solo.tombstone, path.join(dir, "out/solo.bin")))
          expect(Exit.isFailure(failed) && JSON.stringify(failed.cause)).toContain("PayloadPurged")
          expect(fs.existsSync(path.join(dir, "out/solo.bin"))).toBe(false)
          // Archiving the same content again re-hydrates the purged artifact, and the old tombstone restores again.
          const again = (yield* store([path.join(dir, "solo.bin")], { cwd: dir })).stored[0]!
          expect(again.deduplicated).toBe(false)
          yield* restore(solo.tombstone, path.join(dir, "out/solo.bin"))
          expect(Hash.sha256(fs.readFileSync(path.join(dir, "out/solo.bin")))).toBe(solo.sha256)
        })))

    it.live("two writers re-hydrating one purged artifact at once share it, and every tombstone restores", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const s = yield* archiveStore
          const content = noise(2 * ArchiveStore.chunkSize + 5, 11)
          const first = (yield* store([write(path.join(dir, "p.bin"), content)], { cwd: dir })).stored[0]!
          yield* s.approveDelete({
            tombstone: first.tombstone,
            primary: "p",
            secondary: "q",
            reason: "gone",
            apply: true
          })
          const again = yield* Effect.all(
            [0, 1].map((i) =>
              store([write(path.join(dir, `again${i}/p.bin`), content)], { cwd: dir })
            ),
            { concurrency: 2 }
          )
          expect(again.map((r) => r.stored[0]!.deduplicated).sort()).toEqual([false, true])
          expect((yield* s.artifacts()).map((a) => a.layout)).toEqual(["chunked"])
          for (const t of [first.tombstone, ...again.map((r) => r.stored[0]!.tombstone)]) {
            yield* restore(t, path.join(dir, "out", t))
            expect(Hash.sha256(fs.readFileSync(path.join(dir, "out", t)))).toBe(first.sha256)
          }
        })))

    it.live("lists artifacts for verify: all of them, or those of given tombstones, with their layouts", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const small = (yield* store([write(path.join(dir, "s.txt"), "small\n")], { cwd: dir })).stored[0]!
          const large =
            (yield* store([write(path.join(dir, "l.bin"), noise(ArchiveStore.chunkSize + 1, 3))], { cwd: dir }))
              .stored[0]!
          const s = yield* archiveStore
          const all = yield* s.artifacts()
          expect(all.map((a) => a.sha256).sort()).toEqual([small.sha256, large.sha256].sort())
          expect(Object.fromEntries(all.map((a) => [a.sha256, a.layout]))).toEqual({
            [small.sha256]: "inline",
            [large.sha256]: "chunked"
          })
          const one = yield* s.artifacts([large.tombstone, "not-a-uuid"])
          expect(one.map((a) => [a.sha256, a.sizeBytes, a.codec, a.tombstones])).toEqual([[
            large.sha256,
            ArchiveStore.chunkSize + 1,
            "zstd",
            [large.tombstone]
          ]])
          expect(yield* s.artifacts([])).toEqual([])
        })))

    it.live("pages artifacts for a whole-archive verify: every page after the last one's key, together the whole list", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          // 23 distinct contents, two of them shared by a second file: pages count artifacts, not items.
          const files = Array.from(
            { length: 25 },
            (_, i) => write(path.join(dir, "t", `f${i}.txt`), `page ${i % 23}\n`)
          )
          yield* store(files, { cwd: dir })
          const s = yield* archiveStore
          const all = yield* s.artifacts()
          expect(all.length).toBe(23)
          const pages: Array<ReadonlyArray<ArchiveStore.ArtifactSummary>> = []
          // An artifact's page key, as `Verifier` reads it: a store that gives none pages by digest.
          const keyOf = (a: ArchiveStore.ArtifactSummary) => a.pageKey ?? a.sha256
          let after: string | undefined
          for (let n = 0; n < 10; n++) {
            const page = yield* s.artifactPage(after, 4)
            pages.push(page)
            if (page.length < 4) break
            after = keyOf(page.at(-1)!)
          }
          expect(pages.map((p) => p.length)).toEqual([4, 4, 4, 4, 4, 3])
          const paged = pages.flat()
          // In the store's own order: by digest on the servers, by rowid on SQLite (whose keys read back as they sort).
          const keys = paged.map(keyOf)
          if (backend.name === "sqlite") {
            expect(keys.map(Number)).toEqual([...keys.map(Number)].sort((x, y) => x - y))
          } else {
            expect(keys).toEqual([...all.map((a) => a.sha256)].sort())
          }
          expect(new Set(keys).size).toBe(23)
          const sorted = (xs: ReadonlyArray<ArchiveStore.ArtifactSummary>) =>
            [...xs].map(({ pageKey: _, ...a }) => ({ ...a, tombstones: [...a.tombstones].sort() })).sort((x, y) =>
              x.sha256 < y.sha256 ? -1 : 1
            )
          expect(sorted(paged)).toEqual(sorted(all))
          expect(paged.filter((a) => a.tombstones.length === 2).length).toBe(2)
          expect(yield* s.artifactPage(keyOf(paged.at(-1)!), 4)).toEqual([])
          const report = yield* Verifier.verify({ actor: "ci", pageSize: 5 })
          expect([report.checked, report.ok, report.problems]).toEqual([23, 23, []])
        })))

    sqlTest(
      "stores inline up to the inline limit (MariaDB: up to one chunk) and chunks above it; both restore intact",
      () =>
        withArchive(backend, (dir) =>
          Effect.gen(function*() {
            const limit = 2 * ArchiveStore.chunkSize
            const at = noise(limit, 21)
            const above = noise(limit + 1, 22)
            const report = yield* store([
              write(path.join(dir, "t/at.bin"), at),
              write(path.join(dir, "t/above.bin"), above)
            ], {
              cwd: path.join(dir, "t"),
              inlineLimit: limit
            })
            const sql = yield* SqlClient.SqlClient
            const rowOf = (tombstone: string) =>
              Effect.map(
                sql<
                  { compression: string; storage_driver: string; blob_bytes: Uint8Array | null; chunks: unknown }
                >`SELECT a.compression,
                a.storage_driver, a.blob_bytes, (SELECT COUNT(*) FROM artifact_chunk c WHERE c.artifact_id = a.id) AS chunks
                FROM artifact a JOIN item i ON i.artifact_id = a.id WHERE i.tombstone_id = ${tombstone}`,
                (rows) => rows[0]!
              )
            const [atRow, aboveRow] = [
              yield* rowOf(report.stored[0]!.tombstone),
              yield* rowOf(report.stored[1]!.tombstone)
            ]
            const chunkedRow = {
              compression: "chunked:zstd",
              storage_driver: "chunked",
              marker: ArchiveStore.chunkedMarker,
              chunks: 3
            }
            const view = (r: typeof atRow) => ({
              compression: r.compression,
              storage_driver: r.storage_driver,
              marker: r.storage_driver === "chunked" ? Buffer.from(r.blob_bytes!).toString() : undefined,
              chunks: Number(r.chunks)
            })
            // The original's layout for inline content; MariaDB's packet limit keeps everything above one chunk chunked.
            expect(view(atRow)).toEqual(
              backend.name === "mariadb"
                ? { ...chunkedRow, chunks: 2 }
                : { compression: "zstd", storage_driver: "db", marker: undefined, chunks: 0 }
            )
            // Never NULL (the original would say "purged"), and a codec the original refuses by name.
            expect(view(aboveRow)).toEqual(chunkedRow)
            for (const [i, content] of [at, above].entries()) {
              const out = path.join(dir, "out", `${i}.bin`)
              yield* restore(report.stored[i]!.tombstone, out)
              expect(Hash.sha256(fs.readFileSync(out))).toBe(Hash.sha256(content))
            }
            const verified = yield* Verifier.verify({ actor: "ci" })
            expect([verified.ok, verified.problems, verified.orphan_chunks]).toEqual([2, [], {
              rows: 0,
              bytes: 0,
              artifacts: 0
            }])
            // Without a limit given, the default (8 MiB) keeps a 3 MiB file inline where the backend allows it.
            const plain = yield* Effect.flatMap(Archiver.Archiver, (a) =>
              a.store([write(path.join(dir, "d/three.bin"), noise(3 * ArchiveStore.chunkSize, 23))], {
                repo: "acme/demo",
                actor: "alice",
                commit: "abc123",
                reason: "dead",
                kind: "code",
                cwd: path.join(dir, "d")
              }))
            expect(view(yield* rowOf(plain.stored[0]!.tombstone)).storage_driver).toBe(
              backend.name === "mariadb" ? "chunked" : "db"
            )
          }))
    )

    sqlTest("the original's purge and re-store statements, run raw, take an artifact's chunk rows with them", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const s = yield* archiveStore
          const [purgedContent, restoredContent] = [
            noise(2 * ArchiveStore.chunkSize + 3, 31),
            noise(2 * ArchiveStore.chunkSize + 4, 32)
          ]
          const report = yield* store([
            write(path.join(dir, "t/p.bin"), purgedContent),
            write(path.join(dir, "t/r.bin"), restoredContent)
          ], { cwd: path.join(dir, "t") })
          const [p, r] = report.stored
          const located = yield* s.locate([p!.tombstone, r!.tombstone])
          const [pId, rId] = [located.get(p!.tombstone)!.artifactId, located.get(r!.tombstone)!.artifactId]
          const chunkRows = (id: string) =>
            Effect.map(
              sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM artifact_chunk WHERE artifact_id = ${id}`,
              (rows) =>
                Number(rows[0]!.n)
            )
          expect([yield* chunkRows(pId), yield* chunkRows(rId)]).toEqual([3, 3])
          // backend.py record_delete_approval, verbatim.
          yield* sql`UPDATE artifact
                    SET blob_bytes = NULL,
                        storage_driver = 'object',
                        object_url = COALESCE(object_url, 'purged://dual-control')
                    WHERE id = ${pId}`
          // backend.py record_archive's refresh of an existing artifact (its storage_driver differs from 'db').
          const blob = zlib.deflateSync(restoredContent)
          yield* sql`UPDATE artifact
                        SET size_bytes = ${restoredContent.length},
                            compression = ${"zlib"},
                            mime_type = ${"application/octet-stream"},
                            storage_driver = ${"db"},
                            blob_bytes = ${blob},
                            object_url = ${null}
                        WHERE id = ${rId}`
          expect([yield* chunkRows(pId), yield* chunkRows(rId)]).toEqual([0, 0])
          expect((yield* s.orphanChunks).rows).toBe(0)
          expect((yield* s.locate([p!.tombstone])).get(p!.tombstone)!.layout).toBe("purged")
          yield* restore(r!.tombstone, path.join(dir, "out/r.bin"))
          expect(Hash.sha256(fs.readFileSync(path.join(dir, "out/r.bin")))).toBe(r!.sha256)
          // Our own chunked write still works over the purged artifact: delete chunks, update to chunked, insert chunks.
          const again = (yield* store([path.join(dir, "t/p.bin")], { cwd: path.join(dir, "t") })).stored[0]!
          expect([again.deduplicated, yield* chunkRows(pId)]).toEqual([false, 3])
          yield* restore(p!.tombstone, path.join(dir, "out/p.bin"))
          expect(Hash.sha256(fs.readFileSync(path.join(dir, "out/p.bin")))).toBe(p!.sha256)
        })))

    sqlTest("reports chunk rows no chunked artifact claims, and gc removes them with one evidence line", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const s = yield* archiveStore
          const report = yield* store([
            write(path.join(dir, "t/i.txt"), "inline\n"),
            write(path.join(dir, "t/c.bin"), noise(ArchiveStore.chunkSize + 9, 41))
          ], { cwd: path.join(dir, "t") })
          const located = yield* s.locate(report.stored.map((x) =>
            x.tombstone
          ))
          const inlineId = located.get(report.stored[0]!.tombstone)!.artifactId
          const chunkedId = located.get(report.stored[1]!.tombstone)!.artifactId
          // What another tool's purge or re-store left before our triggers existed: chunks of an artifact now inline.
          yield* sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) VALUES (${inlineId}, ${0}, ${new Uint8Array(
            100
          )}), (${inlineId}, ${1}, ${new Uint8Array(23)})`
          // A row before a chunked artifact's first: no reader asks for it, so it is garbage too, not part of the payload.
          yield* sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) VALUES (${chunkedId}, ${-1}, ${new Uint8Array(
            7
          )})`
          const ids = [inlineId, chunkedId].sort()
          const expected = { rows: 3, bytes: 130, artifacts: ids }
          expect(yield* s.orphanChunks).toEqual(expected)
          expect((yield* Verifier.verify({ actor: "ci" })).orphan_chunks).toEqual({ rows: 3, bytes: 130, artifacts: 2 })
          // gc streams its ids (to the evidence, to `onGroup`) and returns counts: it never holds every id.
          const counted = { rows: 3, bytes: 130, artifacts: 2 }
          expect(yield* Retention.collectGarbage({ actor: "ci", dryRun: true })).toEqual(counted)
          expect((yield* s.orphanChunks).rows).toBe(3)
          expect(yield* Retention.collectGarbage({ actor: "ci", dryRun: false })).toEqual(counted)
          expect(yield* s.orphanChunks).toEqual({ rows: 0, bytes: 0, artifacts: [] })
          const lines = fs.readFileSync(path.join(dir, "evidence", "archive_ops.jsonl"), "utf8").trim().split("\n").map(
            (l) =>
              JSON.parse(l)
          )
          expect(
            lines.filter((l) => l.action === "GC").map((l) => [l.dry_run, l.orphan_chunk_rows, l.bytes, l.artifacts])
          ).toEqual([
            [true, 3, 130, ids],
            [false, 3, 130, ids]
          ])
          // The chunked artifact's own rows are no orphans: it still restores, and verify finds it whole.
          expect((yield* Verifier.verify({ actor: "ci" })).problems).toEqual([])
          yield* restore(report.stored[1]!.tombstone, path.join(dir, "out/c.bin"))
          expect(Hash.sha256(fs.readFileSync(path.join(dir, "out/c.bin")))).toBe(report.stored[1]!.sha256)
        })))

    sqlTest("gc goes a group of artifacts at a time: an evidence line per group, every id once, in id order", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const s = yield* archiveStore
          const files = Array.from({ length: 5 }, (_, i) =>
            write(path.join(dir, "t", `g${i}.txt`), `group ${i}\n`))
          const report = yield* store(files, { cwd: path.join(dir, "t") })
          const located = yield* s.locate(report.stored.map((x) =>
            x.tombstone
          ))
          const ids = [...located.values()].map((l) => l.artifactId).sort()
          for (const id of ids) {
            yield* sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) VALUES (${id}, ${0}, ${new Uint8Array(
              10
            )})`
          }
          const groups: Array<ReadonlyArray<string>> = []
          const onGroup = (g: ArchiveStore.OrphanChunks) => Effect.sync(() => void groups.push(g.artifacts))
          const dry = yield* Retention.collectGarbage({ actor: "ci", dryRun: true, groupSize: 2, onGroup })
          expect(dry).toEqual({ rows: 5, bytes: 50, artifacts: 5 })
          expect(groups).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)])
          groups.length = 0
          // A last group that is full ends the run without an empty line after it.
          expect(yield* Retention.collectGarbage({ actor: "ci", dryRun: false, groupSize: 5, onGroup })).toEqual(dry)
          expect(groups).toEqual([ids])
          expect(yield* s.orphanChunks).toEqual({ rows: 0, bytes: 0, artifacts: [] })
          expect(yield* Retention.collectGarbage({ actor: "ci", dryRun: false, groupSize: 2 })).toEqual({
            rows: 0,
            bytes: 0,
            artifacts: 0
          })
          const lines = Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "GC")
          expect(lines.map((l) => [l.dry_run, l.part, l.orphan_chunk_rows, l.artifacts])).toEqual([
            [true, 1, 2, ids.slice(0, 2)],
            [true, 2, 2, ids.slice(2, 4)],
            [true, 3, 1, ids.slice(4)],
            [false, 1, 5, ids],
            [false, 1, 0, []]
          ])
        })))

    it.live("restores many items at once in input order, reporting unknown tombstones as failures", () =>
      withArchive(backend, (dir) =>
        Effect.gen(function*() {
          for (let i = 0; i < 20; i++) {
            write(path.join(dir, "many", `f${i}.txt`), `file ${i}\n`.repeat(i))
          }
          const report = yield* store([path.join(dir, "many")], { cwd: dir })
          const requests = [
            ...report.stored.map((s) => ({
              tombstone: s.tombstone,
              output: path.join(dir, "out", s.path),
              actor: "ci"
            })),
            { tombstone: "00000000-0000-4000-8000-000000000000", output: path.join(dir, "out/none"), actor: "ci" }
          ]
          const results = yield* Effect.flatMap(Restorer.Restorer, (r) =>
            r.restoreAll(requests, { concurrency: 4 }))
          expect(results.map((r) => r._tag)).toEqual([...report.stored.map(() => "Success"), "Failure"])
          for (const s of report.stored) {
            expect(Hash.sha256(fs.readFileSync(path.join(dir, "out", s.path)))).toBe(s.sha256)
          }
        })))

    sqlTest(
      "reports its schema version and probes; migrations run again (whole and per statement) change nothing",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const url = yield* backend.fresh
          const dir = tempDir()
          const latest = Migrations.latest(backend.migrations)
          const first = yield* Effect.provide(
            Effect.gen(function*() {
              const s = yield* archiveStore
              expect(yield* s.schemaVersion).toBe(latest)
              expect(yield* s.probe).toBe(0)
              const report = yield* store([write(path.join(dir, "k.txt"), "kept\n")], { cwd: dir })
              expect(yield* s.probe).toBe(1)
              return report.stored[0]!.tombstone
            }),
            services(backend, url, dir)
          )
          // A second start on the same database (create: false) and every statement run again by hand.
          yield* Effect.provide(
            Effect.gen(function*() {
              const sql = yield* SqlClient.SqlClient
              for (const m of backend.migrations) for (const statement of m.statements) yield* sql.unsafe(statement)
              const s = yield* archiveStore
              expect(yield* s.schemaVersion).toBe(latest)
              yield* restore(first, path.join(dir, "out.txt"))
              expect(fs.readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("kept\n")
            }),
            services(backend, url, dir, { create: false })
          )
        }))
    )

    sqlTest("keeps its migrations in a table of its own and moves an earlier version's records over without loss", () =>
      Effect.scoped(Effect.gen(function*() {
        const url = yield* backend.fresh
        const dir = tempDir()
        const latest = Migrations.latest(backend.migrations)
        const applied = (sql: SqlClient.SqlClient, table: string) =>
          Effect.map(
            sql<{ id: unknown; name: unknown; at: unknown }>`SELECT migration_id AS id, name, created_at AS at FROM ${
              sql(table)
            } ORDER BY migration_id`,
            (rows) =>
              rows.map((r) => [Number(r.id), String(r.name), String(r.at)])
          )
        // An archive as an earlier version left it: its records only in @effect/sql's shared default table.
        const { legacy, tombstone } = yield* Effect.provide(
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const report = yield* store([write(path.join(dir, "old.txt"), "from before\n")], { cwd: dir })
            yield* sql.unsafe(`DROP TABLE ${Migrations.table}`)
            yield* Migrator.make({})({ loader: Migrations.loader(backend.migrations) })
            return { legacy: yield* applied(sql, Migrations.legacyTable), tombstone: report.stored[0]!.tombstone }
          }),
          services(backend, url, dir)
        )
        expect(legacy.map(([id]) =>
          id
        )).toEqual(backend.migrations.map((m) => m.id))
        yield* Effect.provide(
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            expect(yield* applied(sql, Migrations.table)).toEqual(legacy)
            expect(yield* applied(sql, Migrations.legacyTable)).toEqual(legacy)
            expect(yield* (yield* archiveStore).schemaVersion).toBe(latest)
            yield* restore(tombstone, path.join(dir, "out.txt"))
            expect(fs.readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("from before\n")
          }),
          services(backend, url, dir, { create: false })
        )
      })))

    sqlTest(
      "a host's own migrations 1 and 2 in the shared default table neither hide the archive's nor are touched (a SQLite file with only a host's tables is refused)",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const url = yield* backend.fresh
          const dir = tempDir()
          const hostTables = ["host_users", "host_orders"]
          const host = Migrator.fromRecord(Object.fromEntries(hostTables.map((t, i) => [
            `000${i + 1}_${t}`,
            Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY)`))
          ])))
          const hostRows = (sql: SqlClient.SqlClient) =>
            Effect.map(
              sql<
                { id: unknown; name: unknown }
              >`SELECT migration_id AS id, name FROM effect_sql_migrations ORDER BY migration_id`,
              (rows) => rows.map((r) => `${Number(r.id)}_${String(r.name)}`)
            )
          // The host's database, made before the archive's: a connection from an archive emptied of its tables.
          yield* Effect.provide(
            Effect.gen(function*() {
              const sql = yield* SqlClient.SqlClient
              for (
                const t of ["artifact_chunk", "tag", "referent", "event", "item", "artifact", Migrations.table]
              ) yield* Effect.ignore(sql.unsafe(`DROP TABLE ${t}`))
              yield* Migrator.make({})({ loader: host })
              expect(yield* hostRows(sql)).toEqual(["1_host_users", "2_host_orders"])
            }),
            Layer.orDie(backend.layer({ url, create: true }).pipe(Layer.provide(Retry.none)))
          )
          if (backend.name === "sqlite") {
            // A SQLite file is the archive's alone: one holding only someone else's tables is refused, never modified.
            const exit = yield* Effect.exit(
              Layer.build(backend.layer({ url, create: true }).pipe(Layer.provide(Retry.none)))
            )
            expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("not a codex archive")
            return
          }
          yield* Effect.provide(
            Effect.gen(function*() {
              const sql = yield* SqlClient.SqlClient
              expect(yield* (yield* archiveStore).schemaVersion).toBe(Migrations.latest(backend.migrations))
              const report = yield* store([write(path.join(dir, "a.txt"), "archived\n")], { cwd: dir })
              yield* restore(report.stored[0]!.tombstone, path.join(dir, "out.txt"))
              expect(fs.readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("archived\n")
              expect(yield* hostRows(sql)).toEqual(["1_host_users", "2_host_orders"])
              for (const t of hostTables) expect(yield* sql.unsafe(`SELECT COUNT(*) AS n FROM ${t}`)).toHaveLength(1)
            }),
            services(backend, url, dir)
          )
        }))
    )

    it.live("refuses a database without the archive's tables unless asked to create them", () =>
      Effect.scoped(Effect.gen(function*() {
        const url = yield* backend.fresh
        const exit = yield* Effect.exit(
          Layer.build(backend.layer({ url, create: false }).pipe(Layer.provide(Retry.none)))
        )
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("NotAnArchive")
      })))

    sqlTest("refuses tables named item/artifact without the archive's columns, even where it may create one", () =>
      Effect.scoped(Effect.gen(function*() {
        const url = yield* backend.fresh
        // Someone else's schema: made by emptying an archive and creating look-alike tables.
        const tablesOf = (sql: SqlClient.SqlClient) =>
          Effect.map(
            sql<{ t: string }>`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ${
              sql.onDialectOrElse({
                pg: () =>
                  sql`current_schema()`,
                orElse: () =>
                  sql`DATABASE()`
              })
            }`.pipe(Effect.orElse(() => sql<{ t: string }>`SELECT name AS t FROM sqlite_master WHERE type = 'table'`)),
            (rows) => rows.map((r) => String(r.t).toLowerCase()).sort()
          )
        const foreign = yield* Effect.provide(
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            // Referencing tables first: a few passes, each dropping what no remaining table still refers to.
            for (let pass = 0; pass < 8 && (yield* tablesOf(sql)).length > 0; pass++) {
              for (const t of yield* tablesOf(sql)) yield* Effect.ignore(sql.unsafe(`DROP TABLE ${t}`))
            }
            yield* sql.unsafe("CREATE TABLE item (name VARCHAR(20))")
            yield* sql.unsafe("CREATE TABLE artifact (blob_data VARCHAR(20))")
            return yield* tablesOf(sql)
          }),
          Layer.orDie(backend.layer({ url, create: true }).pipe(Layer.provide(Retry.none)))
        )
        expect(foreign).toEqual(["artifact", "item"])
        for (const create of [true, false]) {
          const exit = yield* Effect.exit(Layer.build(backend.layer({ url, create }).pipe(Layer.provide(Retry.none))))
          const cause = Exit.isFailure(exit) ? JSON.stringify(exit.cause) : "succeeded"
          expect(cause).toContain("NotAnArchive")
          expect(cause).toContain("table item lacks id, tombstone_id")
        }
      })))
  })
