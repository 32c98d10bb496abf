import { Archiver, Config, Evidence, Metrics, Restorer, Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqliteArchive } from "../src/index.js"

/** A fresh SQLite archive with the core services, configured by `flags` (`[key, flag, value]`) over the defaults. */
const services = (dir: string, flags: ReadonlyArray<readonly [string, string, unknown]> = []) => {
  const url = `sqlite:///${path.join(dir, "archive.sqlite")}`
  const config = Layer.effect(
    Config.ArchiveConfigTag,
    Effect.map(
      Config.compose([
        Config.fromFlags([
          ["backend.url", "--url", url],
          ["evidence.dir", "--evidence", path.join(dir, "evidence")],
          ...flags
        ], dir)
      ], dir),
      (loaded) => loaded.config
    )
  )
  const settings = Layer.effect(Restorer.RestoreSettings, Effect.map(Config.ArchiveConfigTag, Restorer.settingsOf))
    .pipe(Layer.provide(config))
  const base = Layer.mergeAll(
    SqliteArchive.layer({ url, create: true }).pipe(Layer.provide(Retry.none)),
    config,
    settings,
    Evidence.layer(path.join(dir, "evidence"))
  )
  return Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(Layer.provideMerge(base), Layer.orDie)
}

/** Stores one file and restores it elsewhere; returns the evidence lines. */
const storeAndRestore = (dir: string) =>
  Effect.gen(function*() {
    fs.writeFileSync(path.join(dir, "a.txt"), "hello metrics\n".repeat(100))
    const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "a.txt")], {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      writeStub: false,
      cwd: dir
    })
    yield* (yield* Restorer.Restorer).restore({
      tombstone: report.stored[0]!.tombstone,
      output: path.join(dir, "out/a.txt"),
      actor: "bob"
    })
    return Evidence.read(path.join(dir, "evidence"))
  })

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-metrics-"))
const timingKeys = ["duration_ms", "fetch_ms", "decompression_ms", "verify_ms", "write_ms", "record_ms"]

describe("Metrics", () => {
  it.effect("prometheus: every metric of the tool, counters and histograms with cumulative buckets, sum and count", () =>
    Effect.gen(function*() {
      yield* Metric.update(Metrics.fetchDuration, 0.05)
      yield* Metric.update(Metrics.fetchDuration, 3)
      yield* Metric.update(Metrics.fetchDuration, 1e9)
      yield* Metric.incrementBy(Metrics.restoredBytes, 1234)
      yield* Metric.increment(Metric.tagged(Metrics.retries, "operation", "fetch \"payload\""))
      const text = yield* Metrics.prometheus()
      const lines = text.trimEnd().split("\n")
      // Every metric appears, with its help and type, even those never touched.
      for (
        const name of [
          "codex_archive_restore_duration_ms",
          "codex_archive_restore_fetch_ms",
          "codex_archive_restore_decompress_ms",
          "codex_archive_restore_verify_ms",
          "codex_archive_restore_write_ms",
          "codex_archive_restore_record_ms",
          "codex_archive_store_duration_ms"
        ]
      ) {
        expect(lines).toContain(`# TYPE ${name} histogram`)
        expect(lines).toContain(`${name}_bucket{le="+Inf"} ${name === "codex_archive_restore_fetch_ms" ? 3 : 0}`)
      }
      for (
        const name of [
          "codex_archive_restores_total",
          "codex_archive_restore_failures_total",
          "codex_archive_stored_total",
          "codex_archive_stored_bytes_total"
        ]
      ) {
        expect(lines).toContain(`# TYPE ${name} counter`)
        expect(lines).toContain(`${name} 0`)
      }
      expect(lines).toContain("# HELP codex_archive_restored_bytes_total Bytes restored")
      expect(lines).toContain("codex_archive_restored_bytes_total 1234")
      expect(lines).toContain("codex_archive_retries_total 0")
      expect(lines).toContain("codex_archive_retries_total{operation=\"fetch \\\"payload\\\"\"} 1")
      expect(lines).toContain("codex_archive_restore_fetch_ms_bucket{le=\"0.1\"} 1")
      expect(lines).toContain("codex_archive_restore_fetch_ms_bucket{le=\"3.2\"} 2")
      expect(lines).toContain("codex_archive_restore_fetch_ms_sum 1000000003.05")
      expect(lines).toContain("codex_archive_restore_fetch_ms_count 3")
      // Buckets are cumulative and ascending.
      const buckets = lines.filter((l) => l.startsWith("codex_archive_restore_fetch_ms_bucket")).map((l) =>
        Number(l.split(" ")[1])
      )
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
      // Only well-formed sample lines: name{labels} value.
      for (const line of lines.filter((l) => !l.startsWith("#"))) {
        expect(line).toMatch(/^codex_archive_[a-z_]+(\{.*\})? [-+0-9.eInfNa]+$/)
      }
    }))

  it.effect("a restore records its phases and counts; performance.enabled puts the timings in the RESTORE evidence", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const before = (yield* Metric.value(Metrics.restores)).count
      const lines = yield* storeAndRestore(dir)
      const restore = lines.find((l) => l.action === "RESTORE")!
      for (const key of timingKeys) expect(typeof restore[key]).toBe("number")
      expect((yield* Metric.value(Metrics.restores)).count).toBe(before + 1)
      expect((yield* Metric.value(Metrics.restoreDuration)).count).toBeGreaterThan(0)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("a batch records every restored item once, under the fiber's metric labels", () => {
    const dir = tempDir()
    const contents = ["one\n", "two two\n".repeat(50), "three\n".repeat(700)]
    return Effect.gen(function*() {
      const files = contents.map((text, i) => {
        const file = path.join(dir, `f${i}.txt`)
        fs.writeFileSync(file, text)
        return file
      })
      const report = yield* (yield* Archiver.Archiver).store(files, {
        repo: "acme/demo",
        actor: "alice",
        commit: "abc",
        reason: "dead",
        kind: "code",
        writeStub: false,
        cwd: dir
      })
      const requests = report.stored.map((s, i) => ({
        tombstone: s.tombstone,
        output: path.join(dir, `out/f${i}.txt`),
        actor: "bob"
      }))
      const results = yield* (yield* Restorer.Restorer).restoreAll(requests, { concurrency: 2, workers: 0 }).pipe(
        Effect.tagMetrics("run", "batch-metrics")
      )
      expect(results.map((r) => r._tag)).toEqual(["Success", "Success", "Success"])
      const lines = (yield* Metrics.prometheus()).split("\n")
      expect(lines).toContain("codex_archive_restores_total{run=\"batch-metrics\"} 3")
      expect(lines).toContain(
        `codex_archive_restored_bytes_total{run="batch-metrics"} ${
          contents.reduce((n, t) => n + Buffer.byteLength(t), 0)
        }`
      )
      for (const name of ["duration_ms", "fetch_ms", "decompress_ms", "verify_ms", "write_ms", "record_ms"]) {
        expect(lines).toContain(`codex_archive_restore_${name}_count{run="batch-metrics"} 3`)
      }
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("a store records its duration", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const before = (yield* Metric.value(Metrics.storeDuration)).count
      yield* storeAndRestore(dir)
      expect((yield* Metric.value(Metrics.storeDuration)).count).toBe(before + 1)
    }).pipe(Effect.provide(services(dir)))
  })

  it.effect("performance.enabled = false: the RESTORE evidence has no timings", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const restore = (yield* storeAndRestore(dir)).find((l) => l.action === "RESTORE")!
      expect(restore.tombstone).toBeTypeOf("string")
      for (const key of timingKeys) expect(restore).not.toHaveProperty(key)
    }).pipe(Effect.provide(services(dir, [["performance.enabled", "--perf", false]])))
  })
})
