/**
 * Issue 16: a config file, URL and environment shared with the original tool open the same archive here, and what
 * the original tolerates is a warning (one stderr line naming key, source and value used), an error in strict mode.
 * Expected paths are what the original's `ArchiveDatabase._sqlite_path` computes (urlparse: host + path; a leading
 * `/./` made relative; `Path(...).expanduser().resolve()` against the working folder).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

const folder = () => fs.realpathSync(tempDir())
const warnings = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("codex: warning: "))

describe("values the original tool tolerates", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly toml?: string
    readonly env?: Record<string, string>
    readonly key: string
    readonly source: (cwd: string) => string
    readonly value: string
    readonly using: unknown
  }> = [
    {
      name: "logging.level = \"verbose\"",
      toml: "[logging]\nlevel = \"verbose\"\n",
      key: "logging.level",
      source: (c) => `${c}/c.toml:2`,
      value: "'verbose'",
      using: "info"
    },
    {
      name: "retry.max_attempts = 0",
      toml: "[retry]\nmax_attempts = 0\n",
      key: "retry.max_attempts",
      source: (c) => `${c}/c.toml:2`,
      value: "0",
      using: 1
    },
    {
      name: "retry.max_attempts = \"many\"",
      toml: "[retry]\nmax_attempts = \"many\"\n",
      key: "retry.max_attempts",
      source: (c) => `${c}/c.toml:2`,
      value: "'many'",
      using: 5
    },
    {
      name: "retry.jitter = true",
      toml: "[retry]\njitter = true\n",
      key: "retry.jitter",
      source: (c) => `${c}/c.toml:2`,
      value: "true",
      using: 1
    },
    {
      name: "retry.jitter = 1.5",
      toml: "[retry]\njitter = 1.5\n",
      key: "retry.jitter",
      source: (c) => `${c}/c.toml:2`,
      value: "1.5",
      using: 1.5
    },
    {
      name: "batch.concurrent = 0",
      toml: "[batch]\nconcurrent = 0\n",
      key: "batch.concurrent",
      source: (c) => `${c}/c.toml:2`,
      value: "0",
      using: 1
    },
    {
      name: "CODEX_ARCHIVE_BATCH_CONCURRENT=0",
      env: { CODEX_ARCHIVE_BATCH_CONCURRENT: "0" },
      key: "batch.concurrent",
      source: () => "env CODEX_ARCHIVE_BATCH_CONCURRENT",
      value: "'0'",
      using: 1
    }
  ]
  for (const c of cases) {
    it(`${c.name}: one warning naming key, source and value used, exit 0; --strict, CODEX_ARCHIVE_STRICT, strict = true: exit 2`, () => {
      const cwd = folder()
      if (c.toml !== undefined) write(path.join(cwd, "c.toml"), c.toml)
      const args = c.toml !== undefined ? ["config-show", "--config-file", "c.toml"] : ["config-show"]
      const env = c.env ?? {}
      const r = codex(cwd, args, env)
      expect(r.code, r.stderr).toBe(0)
      const lines = warnings(r.stderr)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        new RegExp(
          `^codex: warning: ${c.key.replace(".", "\\.")} = ${c.value.replace(".", "\\.")} from ${
            c.source(cwd)
          }: .+; using `
        )
      )
      const [section, name] = c.key.split(".") as [string, string]
      expect(JSON.parse(r.stdout)[section][name]).toEqual(c.using)
      expect(JSON.parse(r.stdout).warnings).toEqual([lines[0]!.slice("codex: warning: ".length)])

      const expected = `codex: error: invalid configuration: ${c.key} (${c.source(cwd)}): got ${c.value}: `
      const byFlag = codex(cwd, [...args, "--strict"], env)
      expect(byFlag.code).toBe(2)
      expect(byFlag.stdout).toBe("")
      expect(byFlag.stderr.trim().split("\n")).toHaveLength(1)
      expect(byFlag.stderr.startsWith(expected), byFlag.stderr).toBe(true)
      const byEnv = codex(cwd, args, { ...env, CODEX_ARCHIVE_STRICT: "1" })
      expect(byEnv.code).toBe(2)
      expect(byEnv.stderr.startsWith(expected), byEnv.stderr).toBe(true)
      write(path.join(cwd, "strict.toml"), `strict = true\n${c.toml ?? ""}`)
      const byFile = codex(cwd, ["config-show", "--config-file", "strict.toml"], env)
      expect(byFile.code).toBe(2)
      expect(byFile.stderr).toContain(`invalid configuration: ${c.key} (`)
    })
  }

  it("a command that opens the archive prints each warning once and runs with the value used", () => {
    const cwd = folder()
    write(path.join(cwd, "f.txt"), "interop\n")
    const r = codex(cwd, ["store", "r", "f.txt", "--commit", "x"], {
      CODEX_ARCHIVE_BATCH_CONCURRENT: "0",
      CODEX_ARCHIVE_RETRY_ATTEMPTS: "many"
    })
    expect(r.code, r.stderr).toBe(0)
    expect(warnings(r.stderr)).toEqual([
      "codex: warning: retry.max_attempts = 'many' from env CODEX_ARCHIVE_RETRY_ATTEMPTS: not a whole number >= 1, the original tool falls back to the default; using 5",
      "codex: warning: batch.concurrent = '0' from env CODEX_ARCHIVE_BATCH_CONCURRENT: below 1, the original tool runs as with 1; using 1"
    ])
    const strict = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--strict"], {
      CODEX_ARCHIVE_BATCH_CONCURRENT: "0"
    })
    expect(strict.code).toBe(2)
    expect(strict.stdout).toBe("")
  })
})

describe("the archive a config file, URL or environment opens is the original tool's", () => {
  it("sqlite:///./.codex/archive.sqlite in a file elsewhere: the working folder's .codex/archive.sqlite", () => {
    const cwd = folder()
    write(path.join(cwd, "etc/c.toml"), "[backend]\nurl = \"sqlite:///./.codex/archive.sqlite\"\n")
    const shown = codex(cwd, ["config-show", "--config-file", "etc/c.toml"])
    expect(JSON.parse(shown.stdout).backend.path).toBe(path.join(cwd, ".codex/archive.sqlite"))
    const r = codex(cwd, ["init", "--config-file", "etc/c.toml"])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(true)
    expect(fs.existsSync(path.join(cwd, "etc/.codex/archive.sqlite"))).toBe(false)
  })

  it("sqlite:///fx.sqlite is the absolute /fx.sqlite; sqlite:// + an absolute path is that path, not a folder below", () => {
    const cwd = folder()
    expect(JSON.parse(codex(cwd, ["config-show", "--url", "sqlite:///fx.sqlite"]).stdout).backend.path).toBe(
      "/fx.sqlite"
    )
    const r = codex(cwd, ["init", "--url", `sqlite://${cwd}/fx.sqlite`])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.existsSync(path.join(cwd, "fx.sqlite"))).toBe(true)
    expect(fs.existsSync(path.join(cwd, cwd.slice(1)))).toBe(false)
  })

  it("a bare path as the URL: a SQLite file relative to the working folder, from a file or with CODEX_ARCHIVE_BACKEND", () => {
    const cwd = folder()
    write(path.join(cwd, "etc/c.toml"), "[backend]\nurl = \"data/fx.sqlite\"\n")
    const r = codex(cwd, ["init", "--config-file", "etc/c.toml"])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.existsSync(path.join(cwd, "data/fx.sqlite"))).toBe(true)
    const env = codex(cwd, ["config-show"], { CODEX_ARCHIVE_URL: "./data/fx.sqlite", CODEX_ARCHIVE_BACKEND: "sqlite" })
    expect(JSON.parse(env.stdout).backend.path).toBe(path.join(cwd, "data/fx.sqlite"))
    // The original cannot infer a backend from a bare path in the environment either.
    const bare = codex(cwd, ["config-show"], { CODEX_ARCHIVE_URL: "./data/fx.sqlite" })
    expect(bare.code).toBe(2)
    expect(bare.stderr).toContain("backend.url (env CODEX_ARCHIVE_URL): got './data/fx.sqlite'")
  })

  it(".codex/archive.toml found in the working folder never chooses the archive: warned, and refused in strict mode", () => {
    const cwd = folder()
    write(
      path.join(cwd, ".codex/archive.toml"),
      "[backend]\nurl = \"sqlite:///./elsewhere.sqlite\"\n[retry]\nmax_attempts = 2\n"
    )
    const r = codex(cwd, ["init"])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(true)
    expect(fs.existsSync(path.join(cwd, "elsewhere.sqlite"))).toBe(false)
    expect(warnings(r.stderr)).toEqual([
      `codex: warning: config file = '${
        path.join(cwd, ".codex/archive.toml")
      }' from the working folder: read without being named, which the original tool never does (name it with --config-file or CODEX_ARCHIVE_CONFIG); using it, but not to choose the archive`,
      `codex: warning: backend.url = 'sqlite:///./elsewhere.sqlite' from ${
        path.join(cwd, ".codex/archive.toml")
      }:2: would open another archive than the original tool, which does not read this file; using 'sqlite:///./.codex/archive.sqlite'`
    ])
    const shown = JSON.parse(codex(cwd, ["config-show"]).stdout)
    expect(shown.retry.max_attempts).toBe(2)
    expect(shown.backend.path).toBe(path.join(cwd, ".codex/archive.sqlite"))
    expect(codex(cwd, ["config-show", "--strict"]).code).toBe(2)
  })
})
