import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, evidence, tempDir, write } from "./support.js"

/** A folder with an archive holding one file; returns the folder and the tombstone. */
const archived = () => {
  const cwd = fs.realpathSync(tempDir())
  write(path.join(cwd, "f.txt"), "operations\n".repeat(20))
  const r = codex(cwd, ["store", "r", "f.txt", "--commit", "x"])
  expect(r.code, r.stderr).toBe(0)
  return { cwd, tombstone: JSON.parse(r.stdout).tombstone as string }
}

describe("config-show", () => {
  it("prints the composed configuration in spec §4.4's shape, from file, env and flags", () => {
    const cwd = fs.realpathSync(tempDir())
    write(
      path.join(cwd, ".codex/archive.toml"),
      "[retry]\nmax_attempts = 7\n[batch]\nresults_path = \"out/results.json\"\n"
    )
    const r = codex(cwd, ["config-show", "--log-format", "json"], { CODEX_ARCHIVE_RETRY_SEED: "42" })
    expect(r.code, r.stderr).toBe(0)
    // The original tool never reads .codex/archive.toml unasked: we do, and say so once.
    const discovered = `config file = '${path.join(cwd, ".codex/archive.toml")}' from the working folder`
    expect(r.stderr.split("\n").filter((l) => l.startsWith(`codex: warning: ${discovered}`))).toHaveLength(1)
    const shown = JSON.parse(r.stdout)
    expect(Object.keys(shown)).toEqual([
      "backend",
      "logging",
      "retry",
      "batch",
      "performance",
      "store",
      "evidence",
      "strict",
      "warnings"
    ])
    expect(Object.keys(shown.retry)).toEqual([
      "enabled",
      "max_attempts",
      "initial_delay",
      "max_delay",
      "multiplier",
      "jitter",
      "seed"
    ])
    expect(shown.retry).toMatchObject({ max_attempts: 7, seed: 42 })
    expect(shown.logging.format).toBe("json")
    expect(shown.batch.results_path).toBe(path.join(cwd, ".codex/out/results.json"))
    expect(r.stdout).toBe(JSON.stringify(shown, null, 2) + "\n")
  })

  it("--origin names where each value came from", () => {
    const cwd = fs.realpathSync(tempDir())
    write(path.join(cwd, "conf.toml"), "[logging]\nlevel = \"debug\"\n")
    const r = codex(cwd, ["config-show", "--origin", "--config-file", "conf.toml", "--url", "sqlite:///./a.sqlite"], {
      CODEX_ARCHIVE_RETRY_ATTEMPTS: "3"
    })
    expect(r.code, r.stderr).toBe(0)
    const shown = JSON.parse(r.stdout)
    expect(shown.logging.level).toEqual({ value: "debug", origin: `${path.join(cwd, "conf.toml")}:2` })
    expect(shown.retry.max_attempts).toEqual({ value: 3, origin: "env CODEX_ARCHIVE_RETRY_ATTEMPTS" })
    expect(shown.backend.url).toEqual({ value: "sqlite:///./a.sqlite", origin: "flag --url" })
    expect(shown.backend.path).toEqual({ value: `${cwd}/a.sqlite`, origin: "flag --url" })
    expect(shown.backend.backend).toEqual({ value: "sqlite", origin: "inferred from backend.url" })
    expect(shown.batch.concurrent).toEqual({ value: 4, origin: "default" })
  })

  it("an unknown key is a warning on stderr; an invalid value exits 2 naming key, source and expectation", () => {
    const cwd = fs.realpathSync(tempDir())
    write(path.join(cwd, "conf.toml"), "[retry]\nmax_atempts = 3\n")
    const warned = codex(cwd, ["config-show", "--config-file", "conf.toml"])
    expect(warned.code).toBe(0)
    expect(warned.stderr).toBe(
      `codex: warning: retry.max_atempts = 3 from ${path.join(cwd, "conf.toml")}:2: not a known key; ignored\n`
    )
    const bad = codex(cwd, ["config-show"], { CODEX_ARCHIVE_LOG_FORMAT: "xml" })
    expect(bad.code).toBe(2)
    expect(bad.stdout).toBe("")
    expect(bad.stderr).toContain("logging.format (env CODEX_ARCHIVE_LOG_FORMAT): got 'xml', expected one of text, json")
  })
})

describe("health-check", () => {
  it("a healthy archive: every check passes, exit 0, text or JSON, and a RESTORE_BATCH evidence line", () => {
    const { cwd } = archived()
    const text = codex(cwd, ["health-check"])
    expect(text.code, text.stderr).toBe(0)
    const lines = text.stdout.trim().split("\n")
    // The URL as configured, as the original prints it.
    expect(lines.slice(0, 3)).toEqual([
      "=== Archive Health Check ===",
      "Backend: sqlite",
      "URL: sqlite:///./.codex/archive.sqlite"
    ])
    for (const name of ["connect", "probe", "schema", "sample", "evidence"]) {
      expect(lines.some((l) => l.startsWith(`✓ ${name}`))).toBe(true)
    }
    expect(lines.at(-1)).toBe("Status: ✓ OK (backend accessible, 1 items retrievable)")
    const json = codex(cwd, ["health-check", "--json"])
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout)
    expect(report).toMatchObject({ ok: true, backend: "sqlite", items_retrievable: 1 })
    expect(report.schema_version).toBe(report.expected_schema_version)
    for (const check of report.checks) expect(Object.keys(check).sort()).toEqual(["detail", "ms", "name", "ok"])
    expect(evidence(cwd).filter((l) => l.action === "RESTORE_BATCH" && l.actor === "health-check").map((l) => l.status))
      .toEqual(["SUCCESS", "SUCCESS"])
  })

  it("a missing archive fails: exit 1, the failed check named, nothing created", () => {
    const cwd = tempDir()
    const r = codex(cwd, ["health-check", "--json"])
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.ok).toBe(false)
    expect(report.checks[0]).toMatchObject({ name: "connect", ok: false })
    expect(r.stderr).toContain(
      `health-check failed: connect: NotAnArchive: ${
        path.join(fs.realpathSync(cwd), ".codex/archive.sqlite")
      }: no archive database here`
    )
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(false)
  })

  it("performance.emit_to_evidence = false writes no RESTORE_BATCH line", () => {
    const { cwd } = archived()
    expect(codex(cwd, ["health-check"], { CODEX_ARCHIVE_PERF_EVIDENCE: "false" }).code).toBe(0)
    expect(evidence(cwd).filter((l) => l.action === "RESTORE_BATCH")).toEqual([])
  })
})

describe("logging and metrics on restore", () => {
  it("--log-format json --log-level debug (anywhere): JSON lines on stderr only; stdout is the result", () => {
    const { cwd, tombstone } = archived()
    const r = codex(cwd, ["restore", tombstone, "out.txt", "--log-format", "json", "--log-level", "debug"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`${path.join(cwd, "out.txt")}\n`)
    const logs = r.stderr.trim().split("\n").map((l) => JSON.parse(l))
    expect(logs.length).toBeGreaterThan(0)
    for (const log of logs) {
      expect(Object.keys(log)).toEqual(["component", "extra", "level", "message", "timestamp"])
      expect(log.component).toBe("codex.archive")
    }
    expect(logs.some((l) => l.level === "DEBUG")).toBe(true)
    const quiet = codex(cwd, ["restore", "--log-level=error", tombstone, "out2.txt"])
    expect(quiet.stderr).toBe("")
  })

  it("--metrics-out writes the final values in Prometheus text format, also when the restore fails", () => {
    const { cwd, tombstone } = archived()
    const ok = codex(cwd, ["restore", tombstone, "out.txt", "--metrics-out", "m/ok.prom"])
    expect(ok.code, ok.stderr).toBe(0)
    const text = fs.readFileSync(path.join(cwd, "m/ok.prom"), "utf8")
    expect(text).toContain("# TYPE codex_archive_restore_duration_ms histogram")
    expect(text).toContain("codex_archive_restores_total 1\n")
    expect(text).toContain("codex_archive_restored_bytes_total 220\n")
    expect(text).toContain("codex_archive_restore_fetch_ms_count 1\n")
    const failed = codex(cwd, [
      "restore",
      "0f0f0f0f-0000-4000-8000-000000000000",
      "x.txt",
      "--metrics-out",
      "m/fail.prom"
    ])
    expect(failed.code).toBe(1)
    expect(fs.readFileSync(path.join(cwd, "m/fail.prom"), "utf8")).toContain("codex_archive_restore_failures_total 1\n")
  })
})
