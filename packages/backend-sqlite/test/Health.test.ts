import { Archiver, ArchiveStore, Config, Evidence, Health, Migrations, Retry } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

const latest = Migrations.latest(SqliteArchive.migrations)
const tempDir = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-health-")))
const urlOf = (dir: string) => `sqlite:///${path.join(dir, "archive.sqlite")}`
const storeLayer = (dir: string, create = false) =>
  SqliteArchive.layer({ url: urlOf(dir), create }).pipe(Layer.provide(Retry.none))
/** The archive's connection on its own, for raw SQL. */
const sqlLayer = (dir: string) =>
  SqliteArchive.client({ url: urlOf(dir), create: false }).pipe(Layer.provide(Retry.none))

/** A SQLite archive in `dir` holding the given files (name → content). */
const archiveWith = (dir: string, files: Record<string, string | Buffer>) =>
  Effect.gen(function*() {
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
    if (Object.keys(files).length === 0) return
    yield* (yield* Archiver.Archiver).store(Object.keys(files).map((f) => path.join(dir, f)), {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      writeStub: false,
      cwd: dir
    })
  }).pipe(
    Effect.provide(Archiver.layer.pipe(Layer.provideMerge(Layer.mergeAll(
      storeLayer(dir, true),
      Evidence.layer(path.join(dir, "evidence")),
      Layer.effect(Config.ArchiveConfigTag, Config.defaults(dir))
    )))),
    Effect.orDie
  )

const health = (dir: string, over: Partial<Health.Options<unknown>> = {}) =>
  Health.run({
    backend: "sqlite",
    url: Redacted.make(urlOf(dir)),
    reveal: false,
    expectedSchemaVersion: latest,
    evidenceDir: path.join(dir, "evidence"),
    store: storeLayer(dir),
    ...over
  })

const byName = (report: Health.Report) => Object.fromEntries(report.checks.map((c) => [c.name, c]))

describe("Health", () => {
  it.live("a healthy archive: every check passes, with its latency, the schema version and one payload verified", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      yield* archiveWith(dir, { "a.txt": "hello health\n".repeat(50), "big.bin": Buffer.alloc(3 * 1024 * 1024, 7) })
      const report = yield* health(dir)
      expect(report.ok).toBe(true)
      expect(report.checks.map((c) => c.name)).toEqual([
        "connect",
        "probe",
        "schema",
        "sample",
        "orphan-chunks",
        "evidence",
        "evidence-chain"
      ])
      for (const check of report.checks) expect(check.ms).toBeGreaterThanOrEqual(0)
      expect(report.schema_version).toBe(latest)
      expect(report.items_retrievable).toBe(1)
      const checks = byName(report)
      expect(checks.sample!.detail).toMatch(
        /^tombstone [0-9a-f-]{36} \((inline|chunked), zstd, \d+ bytes\) decodes to its recorded sha256/
      )
      expect(checks.evidence!.detail).toBe(`${path.join(dir, "evidence")} is writable`)
      const text = Health.renderText(report)
      expect(text.split("\n").slice(0, 3)).toEqual([
        "=== Archive Health Check ===",
        "Backend: sqlite",
        `URL: ${urlOf(dir)}`
      ])
      expect(text).toContain("Status: ✓ OK (backend accessible, 1 items retrievable)")
    })
  })

  it.live("chunk rows no chunked artifact claims fail their check, with count and bytes, until gc removes them", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      yield* archiveWith(dir, { "a.txt": "kept inline\n" })
      yield* Effect.provide(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) SELECT id, 0, zeroblob(500) FROM artifact`
        }),
        Layer.orDie(sqlLayer(dir))
      )
      const before = byName(yield* health(dir))["orphan-chunks"]!
      expect([before.ok, before.detail]).toEqual([
        false,
        "1 orphaned chunk rows (500 bytes) of 1 artifacts: run `codex archive gc`"
      ])
      yield* Effect.provide(
        Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.removeOrphanChunks),
        Layer.orDie(storeLayer(dir))
      )
      const after = byName(yield* health(dir))["orphan-chunks"]!
      expect([after.ok, after.detail]).toEqual([true, "no orphaned chunk rows"])
    })
  })

  it.live("an empty archive is healthy; a missing evidence folder is fine when it can be created", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      yield* archiveWith(dir, {})
      const report = yield* health(dir, { evidenceDir: path.join(dir, "not/yet") })
      expect(report.ok).toBe(true)
      expect(byName(report).sample!.detail).toBe("the archive is empty: nothing to decode")
      expect(byName(report).evidence!.detail).toBe(`${path.join(dir, "not/yet")} will be created in writable ${dir}`)
    })
  })

  it.live("a missing archive: connect fails naming the file, the database checks are skipped, nothing is created", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const report = yield* health(dir)
      expect(report.ok).toBe(false)
      const checks = byName(report)
      expect(checks.connect!.ok).toBe(false)
      expect(checks.connect!.detail).toBe(
        `NotAnArchive: ${
          path.join(dir, "archive.sqlite")
        }: no archive database here (run \`codex archive init\` or set CODEX_ARCHIVE_URL)`
      )
      expect(checks.probe).toEqual({
        name: "probe",
        ok: false,
        detail: "skipped: the archive could not be opened",
        ms: 0
      })
      expect(checks.evidence!.ok).toBe(true)
      expect(fs.existsSync(path.join(dir, "archive.sqlite"))).toBe(false)
      expect(Health.renderText(report)).toContain("Status: ✗ FAILED (connect: NotAnArchive: ")
    })
  })

  it.live("a corrupt payload fails the sample check; an older schema and an unwritable evidence folder fail theirs", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      yield* archiveWith(dir, { "a.txt": "some content to corrupt\n".repeat(40) })
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE artifact SET blob_bytes = ${new Uint8Array([1, 2, 3, 4])}`
      }).pipe(Effect.provide(sqlLayer(dir)), Effect.orDie)
      fs.writeFileSync(path.join(dir, "plain-file"), "")
      const report = yield* health(dir, {
        expectedSchemaVersion: latest + 1,
        evidenceDir: path.join(dir, "plain-file/evidence")
      })
      const checks = byName(report)
      expect(report.ok).toBe(false)
      expect(checks.connect!.ok && checks.probe!.ok).toBe(true)
      expect(checks.sample!.ok).toBe(false)
      expect(checks.sample!.detail).toMatch(/payload cannot be decoded with codec 'zstd'/)
      expect(checks.schema!.detail).toBe(
        `version ${latest}, expected ${latest + 1}: run \`codex archive init\` to migrate`
      )
      expect(checks.evidence).toMatchObject({ ok: false, detail: `${path.join(dir, "plain-file")} is not a folder` })
    })
  })

  it.live("credentials never appear in the report unless revealed, even when the driver echoes them", () => {
    const dir = tempDir()
    const url = "postgres://u:s3cr3t-pass@127.0.0.1:1/db"
    const store = Layer.fail(
      new ArchiveStore.StoreError({
        operation: "connect",
        backend: "postgres",
        detail: `cannot reach ${url}: password s3cr3t-pass rejected`,
        transient: true
      })
    )
    return Effect.gen(function*() {
      const report = yield* health(dir, { backend: "postgres", url: Redacted.make(url), store })
      expect(report.url).toBe("postgres://***@127.0.0.1:1/db (credentials redacted)")
      expect(byName(report).connect!.detail).toBe(
        "StoreError: postgres archive: connect failed: cannot reach postgres://***@127.0.0.1:1/db: password *** rejected"
      )
      expect(JSON.stringify(report) + Health.renderText(report)).not.toContain("s3cr3t-pass")
      expect((yield* health(dir, { backend: "postgres", url: Redacted.make(url), store, reveal: true })).url).toBe(url)
    })
  })
})
