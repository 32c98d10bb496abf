/**
 * Decompression bombs in a real archive: a payload that decodes past its item's recorded size fails as a corrupt
 * payload naming the tombstone, through every decode path (restore, batch in this thread and in workers that read the
 * archive themselves, verify, health-check), with RESTORE_FAIL evidence and no file or temp file left.
 */
import { Archiver, Batch, Evidence, Health, type Manifest, Restorer, Retry, Verifier } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { MiB, zlibZeros, zstdFrames, zstdZeros } from "../../core/test/bombs.js"
import { SqliteArchive } from "../src/index.js"
import { services, tempDir } from "./helpers.js"

/** What each tampered item holds; `good.txt` is left alone. */
const files = {
  "zstd.txt": "hello",
  "zlib.txt": "howdy",
  "frames.txt": "hiya!",
  "claims.txt": "heyho",
  "good.txt": "fine\n"
}
const bombs = ["zstd.txt", "zlib.txt", "frames.txt", "claims.txt", "chunked.bin"]

/**
 * Stores the files (or only `only`; `chunked.bin` has 2 chunks), then swaps bombs into their payloads; returns each
 * file's tombstone.
 */
const bombed = (dir: string, only?: string) =>
  Effect.gen(function*() {
    const tree = path.join(dir, "tree")
    fs.mkdirSync(tree, { recursive: true })
    const contents = { ...files, "chunked.bin": crypto.randomBytes(MiB + 10) }
    for (const [name, bytes] of Object.entries(contents)) {
      if (only === undefined || only === name) fs.writeFileSync(path.join(tree, name), bytes)
    }
    const report = yield* (yield* Archiver.Archiver).store([tree], {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: tree,
      writeStub: false,
      inlineLimit: MiB
    })
    const ids = Object.fromEntries(report.stored.map((s) => [s.path, s.tombstone]))
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ artifact_id: string; tombstone_id: string }>`SELECT artifact_id, tombstone_id FROM item`
    const id = (name: string) => rows.find((r) => r.tombstone_id === ids[name])?.artifact_id ?? ""
    yield* sql`UPDATE artifact SET blob_bytes = ${zstdZeros(64 * MiB)} WHERE id = ${id("zstd.txt")}`
    const zlib = zlibZeros(64 * MiB)
    yield* sql`UPDATE artifact SET blob_bytes = ${zlib}, compression = 'zlib' WHERE id = ${id("zlib.txt")}`
    yield* sql`UPDATE artifact SET blob_bytes = ${zstdFrames(64, 4, "none")} WHERE id = ${id("frames.txt")}`
    yield* sql`UPDATE artifact SET blob_bytes = ${zstdZeros(5, 2 ** 40)} WHERE id = ${id("claims.txt")}`
    // The first chunk decodes to 2 MiB, twice the chunk size, and states no size.
    const chunk = zstdZeros(2 * MiB, "none")
    yield* sql`UPDATE artifact_chunk SET blob_bytes = ${chunk} WHERE artifact_id = ${id("chunked.bin")} AND seq = 0`
    return ids
  })

/** Nothing under `out/`: no restored file and no temp file. */
const nothingWritten = (dir: string) => {
  const out = path.join(dir, "out")
  expect(fs.existsSync(out) ? (fs.readdirSync(out, { recursive: true }) as Array<string>) : []).toEqual([])
}

const failLines = (dir: string) => Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "RESTORE_FAIL")

const named = (tombstone: string) =>
  new RegExp(`^payload of tombstone ${tombstone} cannot be decoded with codec 'z(std|lib)': `)
const undecodable = new RegExp(
  "cannot be decoded with codec 'z(std|lib)': " +
    ".*(decodes to more than|claims \\d+ bytes, more than) the \\d+ (bytes )?its record allows$"
)

describe("decompression bombs in a SQLite archive", () => {
  it.effect("a single restore of each bomb fails as a corrupt payload naming its tombstone, with evidence", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const ids = yield* bombed(dir)
      const restorer = yield* Restorer.Restorer
      for (const name of bombs) {
        const request = { tombstone: ids[name]!, output: path.join(dir, "out", name), actor: "bob" }
        const error = yield* Effect.flip(restorer.restore(request))
        expect(error._tag).toBe("CorruptPayload")
        expect(error.message).toMatch(named(ids[name]!))
        expect(error.message).toMatch(undecodable)
      }
      nothingWritten(dir)
      const lines = failLines(dir)
      expect(lines.map((l) => [l.tombstone, l.error])).toEqual(bombs.map((name) => [ids[name], "CorruptPayload"]))
      for (const line of lines) expect(line.reason).toMatch(named(line.tombstone as string))
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect.each([0, 2])("a batch fails each bomb and restores the rest (%i worker threads)", (workers) => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const ids = yield* bombed(dir)
      const entries: Array<Manifest.Entry> = [...bombs, "good.txt"].map((name) => ({
        tombstone: ids[name]!,
        output: path.join(dir, "out", name),
        actor: "bob"
      }))
      const { summary } = yield* Batch.run(entries, { actor: "bob", workers })
      expect(summary).toMatchObject({ succeeded: 1, failed: bombs.length })
      for (const r of summary.results.slice(0, bombs.length)) {
        expect(r).toMatchObject({ status: "FAILED", error: "CorruptPayload" })
        expect(r.detail).toMatch(named(r.tombstone))
      }
      expect(fs.readFileSync(path.join(dir, "out", "good.txt"), "utf8")).toBe(files["good.txt"])
      fs.rmSync(path.join(dir, "out", "good.txt"))
      nothingWritten(dir)
      expect(failLines(dir).map((l) => l.tombstone).sort()).toEqual(bombs.map((name) => ids[name]).sort())
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("verify reports every bomb as a problem beside its tombstone, and vouches for the rest", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const ids = yield* bombed(dir)
      const report = yield* Verifier.verify({ actor: "bob" })
      expect(report).toMatchObject({ checked: bombs.length + 1, ok: 1 })
      expect(report.problems.map((p) => p.tombstones[0]).sort()).toEqual(bombs.map((name) => ids[name]).sort())
      for (const p of report.problems) expect(p.problem).toMatch(undecodable)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect.each(["zstd.txt", "zlib.txt", "chunked.bin"])("health-check's sample fails on a bomb (%s)", (name) => {
    const dir = tempDir()
    return Effect.gen(function*() {
      // The bomb's item alone, so that it is the sample.
      const ids = yield* bombed(dir, name)
      const url = `sqlite:///${path.join(dir, "archive.sqlite")}`
      const report = yield* Health.run({
        backend: "sqlite",
        url: Redacted.make(url),
        reveal: false,
        expectedSchemaVersion: 0,
        evidenceDir: path.join(dir, "evidence"),
        store: SqliteArchive.layer({ url, create: false }).pipe(Layer.provide(Retry.none))
      })
      const sample = report.checks.find((c) => c.name === "sample")!
      expect(sample.ok).toBe(false)
      expect(sample.detail).toMatch(new RegExp(`^tombstone ${ids[name]} .*${undecodable.source}`))
    }).pipe(Effect.provide(services(dir)))
  })
})
