import { Archiver, Batch, BatchResults, Evidence, FileOps, Manifest } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { services, tempDir } from "./helpers.js"

/** A tree of `count` small files of distinct content, archived; returns the entries restoring them under `out/`. */
const archived = (dir: string, count: number, options: { readonly stubs?: boolean } = {}) =>
  Effect.gen(function*() {
    const tree = path.join(dir, "tree")
    const originals = new Map<string, Buffer>()
    for (let i = 0; i < count; i++) {
      const rel = `d${i % 7}/f${i}.txt`
      const bytes = Buffer.from(`file ${i}\n`.repeat(1 + (i % 13)))
      fs.mkdirSync(path.join(tree, path.dirname(rel)), { recursive: true })
      fs.writeFileSync(path.join(tree, rel), bytes)
      originals.set(rel, bytes)
    }
    const report = yield* (yield* Archiver.Archiver).store([tree], {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: tree,
      writeStub: options.stubs ?? false
    })
    const entries: Array<Manifest.Entry> = report.stored.map((s) => ({
      tombstone: s.tombstone,
      output: path.join(dir, "out", s.path),
      actor: "bob"
    }))
    return { tree, originals, entries }
  })

const sha256 = (bytes: Uint8Array) => crypto.createHash("sha256").update(bytes).digest("hex")

const outputsEqual = (dir: string, originals: ReadonlyMap<string, Buffer>) => {
  for (const [rel, bytes] of originals) expect(fs.readFileSync(path.join(dir, "out", rel))).toEqual(bytes)
}

/** No temporary or partial file anywhere under the folder. */
const noTemp = (root: string) =>
  expect((fs.readdirSync(root, { recursive: true }) as Array<string>).filter((f) => f.includes(".codex-restore.tmp")))
    .toEqual([])

describe("Batch.run", () => {
  it.effect.each([0, 2])(
    "restores a shuffled manifest with concurrency, results in manifest order, evidence per item and per batch (%i worker threads)",
    (workers) => {
      const dir = tempDir()
      return Effect.gen(function*() {
        const { entries, originals } = yield* archived(dir, 40)
        const shuffled = entries.map((e, i) => ({ e, k: (i * 17) % 41 })).sort((a, b) => a.k - b.k).map(({ e }) => e)
        const seen: Array<number> = []
        const results = path.join(dir, "results.json")
        const { summary } = yield* Batch.run(shuffled, {
          concurrency: 8,
          actor: "bob",
          resultsFile: results,
          source: "m.json",
          workers,
          onProgress: (p) => Effect.sync(() => void seen.push(p.index))
        })
        expect(summary).toMatchObject({
          total: 40,
          succeeded: 40,
          failed: 0,
          not_run: 0,
          in_progress: false,
          interrupted: false
        })
        expect(summary.results.map((r) => r.tombstone)).toEqual(shuffled.map((e) => e.tombstone))
        expect(summary.latency_ms!.p50).toBeLessThanOrEqual(summary.latency_ms!.p99)
        expect(summary.throughput!.files_per_s).toBeGreaterThan(0)
        expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
        expect(Batch.exitCode(summary)).toBe(0)
        outputsEqual(dir, originals)
        const written = JSON.parse(fs.readFileSync(results, "utf8"))
        expect(written.results.map((r: { tombstone: string }) => r.tombstone)).toEqual(shuffled.map((e) => e.tombstone))
        const lines = Evidence.read(path.join(dir, "evidence"))
        expect(lines.filter((l) => l.action === "RESTORE").length).toBe(40)
        expect(lines.filter((l) => l.action === "RESTORE_BATCH")).toMatchObject([{
          total: 40,
          succeeded: 40,
          failed: 0,
          status: "SUCCESS",
          source: "m.json"
        }])
      }).pipe(Effect.provide(services(dir)))
    }
  )

  it.effect("reports failures, exits 1, and --resume after fixing them restores only what is missing", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { entries, originals } = yield* archived(dir, 12)
      const blocked = entries[5]!.output
      fs.mkdirSync(blocked, { recursive: true })
      const unknown = {
        tombstone: "00000000-0000-4000-8000-000000000000",
        output: path.join(dir, "out", "ghost"),
        actor: "bob"
      }
      const manifest = [...entries, unknown]
      const results = path.join(dir, "results.csv")
      const first = (yield* Batch.run(manifest, { concurrency: 3, actor: "bob", resultsFile: results })).summary
      expect(first).toMatchObject({ total: 13, succeeded: 11, failed: 2 })
      expect(first.results[5]).toMatchObject({ status: "FAILED", error: "OutputError" })
      expect(first.results[12]).toMatchObject({ status: "FAILED", error: "TombstoneNotFound" })
      expect(Batch.exitCode(first)).toBe(1)
      expect(Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "RESTORE_FAIL").length).toBe(2)
      fs.rmdirSync(blocked)
      const again =
        (yield* Batch.run(entries, { concurrency: 3, actor: "bob", resultsFile: results, resumeFrom: results })).summary
      expect(again).toMatchObject({ total: 12, succeeded: 1, skipped: 11, failed: 0 })
      expect(again.results[5]!.status).toBe("SUCCESS")
      expect(Batch.exitCode(again)).toBe(0)
      outputsEqual(dir, originals)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("--resume restores again an output changed since the earlier run", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { entries, originals } = yield* archived(dir, 5)
      const results = path.join(dir, "results.json")
      yield* Batch.run(entries, { actor: "bob", resultsFile: results })
      fs.rmSync(entries[1]!.output)
      const { summary } = yield* Batch.run(entries, { actor: "bob", resultsFile: results, resumeFrom: results })
      expect(summary).toMatchObject({ skipped: 4, succeeded: 1 })
      outputsEqual(dir, originals)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("fail-fast stops at the first failure in manifest order", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { entries } = yield* archived(dir, 10)
      fs.mkdirSync(entries[3]!.output, { recursive: true })
      const { summary } = yield* Batch.run(entries, { concurrency: 4, actor: "bob", failFast: true })
      expect(summary.results.map((r) => r.status)).toEqual([
        ...Array(3).fill("SUCCESS"),
        "FAILED",
        ...Array(6).fill("NOT_RUN")
      ])
      expect(fs.existsSync(entries[4]!.output)).toBe(false)
      expect(Batch.exitCode(summary)).toBe(1)
    }).pipe(Effect.provide(services(dir)))
  })

  // In worker threads, up to two units of 128 items per lane are being written when the stop comes: more items.
  it.effect.each([[0, 300], [2, 1500]])(
    "a stop signal ends the batch after the items in hand, results written, and resume finishes it (%i worker threads)",
    ([workers, count]) => {
      const dir = tempDir()
      return Effect.gen(function*() {
        const { entries, originals } = yield* archived(dir, count!)
        const results = path.join(dir, "results.json")
        const stop = yield* Deferred.make<void>()
        const first = (yield* Batch.run(entries, {
          actor: "bob",
          resultsFile: results,
          stop: Deferred.await(stop),
          window: 100,
          workers,
          onProgress: (p) => (p.index === 1 ? Deferred.succeed(stop, undefined) : Effect.void)
        })).summary
        expect(first.interrupted).toBe(true)
        expect(first.not_run).toBeGreaterThan(0)
        expect(first.succeeded + first.not_run).toBe(count)
        // Counted, not listed: a stop does not read the manifest past the window in hand (100 entries).
        expect(first.results.length).toBeLessThanOrEqual(first.succeeded + 100)
        expect(first.results.length).toBeLessThan(count!)
        expect(Batch.exitCode(first)).toBe(1)
        expect(JSON.parse(fs.readFileSync(results, "utf8"))).toMatchObject({
          interrupted: true,
          in_progress: false,
          not_run: first.not_run
        })
        for (const r of first.results) expect(fs.existsSync(r.output)).toBe(r.status === "SUCCESS")
        noTemp(dir)
        const second = (yield* Batch.run(entries, { actor: "bob", resultsFile: results, resumeFrom: results })).summary
        expect(second).toMatchObject({ skipped: first.succeeded, succeeded: first.not_run, failed: 0 })
        outputsEqual(dir, originals)
        const batches = Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "RESTORE_BATCH")
        expect(batches.map((b) => b.status)).toEqual(["INTERRUPTED", "SUCCESS"])
      }).pipe(Effect.provide(services(dir)))
    }
  )

  it.effect("worker threads restore deduplicated content on both sides of a large file, and refuse a corrupt payload", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const tree = path.join(dir, "tree")
      fs.mkdirSync(tree, { recursive: true })
      const same = Buffer.from("shared content\n".repeat(40))
      const files: Record<string, Buffer> = {
        "a.txt": same,
        "big.bin": crypto.randomBytes(3 * 1024 * 1024 + 5),
        "c.txt": same,
        "d.txt": Buffer.from("its own content\n"),
        "empty.txt": Buffer.alloc(0)
      }
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
      const entries = report.stored.map((s) => ({
        tombstone: s.tombstone,
        output: path.join(dir, "out", s.path),
        actor: "bob"
      }))
      const { summary } = yield* Batch.run(entries, { actor: "bob", workers: 2 })
      expect(summary).toMatchObject({ succeeded: 5, failed: 0 })
      // Digests, not bytes: vitest compares a 3 MiB buffer element by element (seconds).
      for (const [name, bytes] of Object.entries(files)) {
        expect(sha256(fs.readFileSync(path.join(dir, "out", name)))).toBe(sha256(bytes))
      }

      const sql = yield* SqlClient.SqlClient
      const victim = entries.find((e) => e.output.endsWith("d.txt"))!
      yield* sql`UPDATE artifact SET blob_bytes = ${
        Buffer.from("garbage")
      } WHERE id = (SELECT artifact_id FROM item WHERE tombstone_id = ${victim.tombstone})`
      fs.rmSync(path.join(dir, "out"), { recursive: true })
      const again = (yield* Batch.run(entries, { actor: "bob", workers: 2 })).summary
      expect(again).toMatchObject({ succeeded: 4, failed: 1 })
      expect(again.results.find((r) => r.tombstone === victim.tombstone)).toMatchObject({
        status: "FAILED",
        error: "CorruptPayload"
      })
      expect(fs.existsSync(victim.output)).toBe(false)
      noTemp(dir)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("an interrupted batch fiber still writes its results and evidence line", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { entries } = yield* archived(dir, 300)
      const results = path.join(dir, "results.json")
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(Batch.run(entries, {
        actor: "bob",
        resultsFile: results,
        onProgress: (p) => (p.index === 1 ? Deferred.succeed(started, undefined) : Effect.void)
      }))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const written = JSON.parse(fs.readFileSync(results, "utf8")) as BatchResults.Summary
      expect(written.interrupted).toBe(true)
      for (const r of written.results) expect(fs.existsSync(r.output)).toBe(r.status === "SUCCESS")
      expect(Evidence.read(path.join(dir, "evidence")).filter((l) => l.action === "RESTORE_BATCH")).toMatchObject([{
        status: "INTERRUPTED"
      }])
      noTemp(dir)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("restores a tree of stubs in place", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { originals, tree } = yield* archived(dir, 20, { stubs: true })
      const entries = yield* Manifest.fromStubs(tree, { defaultActor: "bob" })
      expect(entries.length).toBe(20)
      const { summary } = yield* Batch.run(entries, { actor: "bob" })
      expect(summary.succeeded).toBe(20)
      for (const [rel, bytes] of originals) expect(fs.readFileSync(path.join(tree, rel))).toEqual(bytes)
      const again = yield* Effect.flip(Manifest.fromStubs(tree, { defaultActor: "bob" }))
      // Named as the folder it is, not as a manifest.
      expect(again.message).toBe(`stub folder ${tree}: contains no tombstone stubs`)
    }).pipe(Effect.provide(services(dir)))
  })
})

describe("Batch.check (dry run)", () => {
  it.effect("finds unknown tombstones and blocked outputs and touches nothing", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const { entries } = yield* archived(dir, 6)
      fs.mkdirSync(path.join(dir, "out", "d0"), { recursive: true })
      fs.writeFileSync(entries[0]!.output, "something else")
      const unknown = {
        tombstone: "00000000-0000-4000-8000-000000000000",
        output: path.join(dir, "out", "ghost"),
        actor: "bob"
      }
      const evidenceBefore = Evidence.read(path.join(dir, "evidence")).length
      const report = yield* Batch.check([...entries, unknown])
      expect(report).toMatchObject({ dry_run: true, total: 7, restorable: 5, failed: 2 })
      expect(report.results[0]).toMatchObject({ status: "FAILED", error: "OutputError" })
      expect(report.results[6]).toMatchObject({ status: "FAILED", error: "TombstoneNotFound" })
      expect(fs.readFileSync(entries[0]!.output, "utf8")).toBe("something else")
      for (const e of entries.slice(1)) expect(fs.existsSync(e.output)).toBe(false)
      expect(Evidence.read(path.join(dir, "evidence")).length).toBe(evidenceBefore)
      expect(FileOps.inspect(path.join(dir, "out", "ghost"))._tag).toBe("Absent")
    }).pipe(Effect.provide(services(dir)))
  })
})
