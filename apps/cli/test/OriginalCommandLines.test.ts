/**
 * The original tool's command lines (its `codex archive` CLI, `src/codex/archive/cli.py`, and the restore line its
 * stubs print) run here with the original's meaning: issue 16. Deliberate differences are in the README's table.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, evidence, fixture, tempDir, write } from "./support.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** The stub text exactly as the original's `stub.py` writes it (its misspelt header included). */
const originalStub = (
  p: { path: string; actor: string; reason: string; tombstone: string; sha256: string; commit: string }
) =>
  [
    "# TOMBSONE ARCHIVE STUB — DO NOT DELETE",
    `# File: ${p.path}`,
    `# ArchivedBy: ${p.actor}`,
    `# Reason: ${p.reason}`,
    `# Tombstone: ${p.tombstone}`,
    `# SHA256: ${p.sha256}`,
    "# ArchivedAt: 2025-10-01T12:00:00Z",
    `# Commit: ${p.commit}`,
    "#",
    "# To restore:",
    `#   python -m codex.cli archive restore ${p.tombstone} --out ${p.path}`,
    "#",
    "# NOTE: This stub intentionally contains no functional code.",
    ""
  ].join("\n")

/** The command a user copies out of a stub, as `codex archive ...` arguments (after `archive`). */
const restoreLineOf = (stubText: string): Array<string> => {
  const lines = stubText.split("\n")
  const line = lines[lines.indexOf("# To restore:") + 1]!
  const m = /^#\s+python -m codex\.cli archive (.*)$/.exec(line)
  if (!m) throw new Error(`no restore line in stub: ${line}`)
  return m[1]!.split(" ")
}

/** A folder holding a copy of the archive the original tool wrote (never the fixture itself). */
const originalArchive = () => {
  const cwd = tempDir()
  fs.mkdirSync(path.join(cwd, ".codex"), { recursive: true })
  fs.copyFileSync(path.join(fixture, "archive.sqlite"), path.join(cwd, ".codex/archive.sqlite"))
  const expected = JSON.parse(fs.readFileSync(path.join(fixture, "expected.json"), "utf8")) as Record<
    string,
    { path: string; sha256: string; size: number; expect: string }
  >
  return { cwd, expected }
}

const spellings = {
  sqlite: ["sqlite", "SQLite", "SQLITE"],
  postgres: ["postgres", "Postgres", "postgresql", "PostgreSQL", "POSTGRES"],
  mariadb: ["mariadb", "MariaDB", "mysql", "MySQL"]
} as const

describe("the restore line the original writes into its stubs", () => {
  it("restores the bytes over the stub, from an archive the original wrote", () => {
    const { cwd, expected } = originalArchive()
    const restorable = Object.entries(expected).filter(([, e]) => e.expect === "restore")
    expect(restorable.length).toBeGreaterThan(2)
    for (const [tombstone, e] of restorable) {
      // What the original's apply-plan leaves: the file replaced by its stub, at the path it was archived from.
      const stub = originalStub({
        path: e.path,
        actor: "codex",
        reason: "dead",
        tombstone,
        sha256: e.sha256,
        commit: "HEAD"
      })
      write(path.join(cwd, e.path), stub)
      const args = restoreLineOf(stub)
      expect(args).toEqual(["restore", tombstone, "--out", e.path])
      const r = codex(cwd, args)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim()).toBe(path.join(cwd, e.path))
      expect(fs.readFileSync(path.join(cwd, e.path))).toEqual(fs.readFileSync(path.join(fixture, "originals", e.path)))
    }
    const restores = evidence(cwd).filter((l) => l.action === "RESTORE")
    expect(restores.map((l) => l.tombstone).sort()).toEqual(restorable.map(([t]) => t).sort())
  })

  it("restores the bytes of a file stored here, to the stub's place or elsewhere, with `--out=PATH` too", () => {
    const cwd = tempDir()
    const content = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff))
    write(path.join(cwd, "src/old/tool.py"), content)
    const stored = codex(cwd, ["store", "acme/app", "src/old/tool.py", "--commit", "abc123", "--by", "alice"])
    expect(stored.code, stored.stderr).toBe(0)
    const { tombstone, sha256 } = JSON.parse(stored.stdout) as { tombstone: string; sha256: string }
    const stub = originalStub({
      path: "src/old/tool.py",
      actor: "alice",
      reason: "dead",
      tombstone,
      sha256,
      commit: "abc123"
    })
    write(path.join(cwd, "src/old/tool.py"), stub)

    const r = codex(cwd, restoreLineOf(stub))
    expect(r.code, r.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "src/old/tool.py"))).toEqual(content)

    const elsewhere = codex(cwd, ["restore", tombstone, "--out=copy/tool.py"])
    expect(elsewhere.code, elsewhere.stderr).toBe(0)
    expect(sha(fs.readFileSync(path.join(cwd, "copy/tool.py")))).toBe(sha256)
    // The stub itself names its restore too: `restore STUB` reads an original stub.
    write(path.join(cwd, "again/tool.py"), stub)
    const inPlace = codex(cwd, ["restore", "again/tool.py"])
    expect(inPlace.code, inPlace.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "again/tool.py"))).toEqual(content)
  })

  it("`--out -` prints {path, bytes_len, sha256} of the checked content and writes nothing", () => {
    const { cwd, expected } = originalArchive()
    const [tombstone, e] = Object.entries(expected).find(([, x]) => x.expect === "restore")!
    const before = fs.readdirSync(cwd).sort()
    const r = codex(cwd, ["restore", tombstone, "--out", "-"])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ path: e.path, bytes_len: e.size, sha256: e.sha256 })
    expect(r.stdout).toBe(JSON.stringify({ path: e.path, bytes_len: e.size, sha256: e.sha256 }, null, 2) + "\n")
    expect(fs.readdirSync(cwd).sort()).toEqual(before)
    expect(fs.existsSync(path.join(cwd, "-"))).toBe(false)

    const purged = Object.entries(expected).find(([, x]) => x.expect === "purged")![0]
    const gone = codex(cwd, ["restore", purged, "--out", "-"])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain(purged)
    expect(gone.stderr).toMatch(/purged/)
  })

  it("OUTPUT and --out together is bad usage naming both, and nothing is written", () => {
    const { cwd, expected } = originalArchive()
    const tombstone = Object.keys(expected)[0]!
    const r = codex(cwd, ["restore", tombstone, "a.txt", "--out", "b.txt"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("a.txt")
    expect(r.stderr).toContain("b.txt")
    expect(fs.existsSync(path.join(cwd, "a.txt")) || fs.existsSync(path.join(cwd, "b.txt"))).toBe(false)
  })

  it("an existing different file at --out is refused without --force (a listed difference), replaced with it", () => {
    const { cwd, expected } = originalArchive()
    const [tombstone, e] = Object.entries(expected).find(([, x]) => x.expect === "restore")!
    write(path.join(cwd, "edited.txt"), "someone's edits\n")
    const refused = codex(cwd, ["restore", tombstone, "--out", "edited.txt"])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("edited.txt")
    expect(fs.readFileSync(path.join(cwd, "edited.txt"), "utf8")).toBe("someone's edits\n")
    const forced = codex(cwd, ["restore", tombstone, "--out", "edited.txt", "--force"])
    expect(forced.code, forced.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "edited.txt"))).toEqual(
      fs.readFileSync(path.join(fixture, "originals", e.path))
    )
  })
})

describe("--dialect as the original spells it", () => {
  it("schema --dialect takes every spelling in any case and prints that dialect's DDL", () => {
    const cwd = tempDir()
    for (const [dialect, names] of Object.entries(spellings)) {
      const canonical = codex(cwd, ["schema", "--dialect", dialect])
      expect(canonical.code, canonical.stderr).toBe(0)
      expect(canonical.stdout).toMatch(/CREATE TABLE IF NOT EXISTS artifact/)
      for (const name of names) {
        const r = codex(cwd, ["schema", "--dialect", name])
        expect(r.code, `${name}: ${r.stderr}`).toBe(0)
        expect(r.stdout, name).toBe(canonical.stdout)
      }
    }
    // The dialects differ where their SQL does.
    expect(codex(cwd, ["schema", "--dialect", "SQLite"]).stdout).not.toBe(
      codex(cwd, ["schema", "--dialect", "PostgreSQL"]).stdout
    )
    expect(fs.existsSync(path.join(cwd, ".codex"))).toBe(false)
  })

  it("an unknown dialect is exit 2 naming the value and the accepted list, on schema and init", () => {
    const cwd = tempDir()
    for (const command of ["schema", "init"]) {
      const r = codex(cwd, [command, "--dialect", "Oracle"])
      expect(r.code, command).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain("\"Oracle\"")
      expect(r.stderr).toContain("sqlite, postgres, postgresql, mariadb, mysql")
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
    }
    expect(fs.existsSync(path.join(cwd, ".codex"))).toBe(false)
  })

  it("init --dialect sqlite (any case) ensures the schema; another backend than the configured one is refused", () => {
    const cwd = tempDir()
    for (const name of spellings.sqlite) {
      const r = codex(cwd, ["init", "--dialect", name])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^archive schema ensured for backend=sqlite /)
    }
    const other = tempDir()
    const refused = codex(other, ["init", "--dialect", "PostgreSQL"])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("PostgreSQL")
    expect(refused.stderr).toContain("configured backend is sqlite")
    expect(fs.existsSync(path.join(other, ".codex"))).toBe(false)
  })
})

/** A database of this test's own on a real server, dropped afterwards; an unreachable server fails naming it. */
const withPostgres = <A>(body: (url: string) => A): A => {
  const db = `codex_cli16_${process.pid}`
  const psql = (sql: string) => {
    const r = spawnSync("psql", ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-c", sql], { encoding: "utf8" })
    if (r.status !== 0) {
      throw new Error(
        `PostgreSQL at 127.0.0.1:5432 (user postgres) unreachable or refused '${sql}': ${r.stderr || r.error}`
      )
    }
  }
  psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
  psql(`CREATE DATABASE ${db}`)
  try {
    return body(`postgres://postgres@127.0.0.1:5432/${db}`)
  } finally {
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
  }
}

const withMariadb = <A>(body: (url: string) => A): A => {
  const db = `codex_cli16_${process.pid}`
  const mysql = (sql: string) => {
    const r = spawnSync("mysql", ["-h", "127.0.0.1", "-P", "3306", "-uroot", "-e", sql], { encoding: "utf8" })
    if (r.status !== 0) {
      throw new Error(`MariaDB at 127.0.0.1:3306 (user root) unreachable or refused '${sql}': ${r.stderr || r.error}`)
    }
  }
  mysql(`DROP DATABASE IF EXISTS ${db}`)
  mysql(`CREATE DATABASE ${db}`)
  try {
    return body(`mariadb://root@127.0.0.1:3306/${db}`)
  } finally {
    mysql(`DROP DATABASE IF EXISTS ${db}`)
  }
}

describe("init --dialect and list --limit 0 on the server backends", () => {
  it("PostgreSQL: init --dialect PostgreSQL/postgres, then list --limit 0 prints []", () => {
    withPostgres((url) => {
      const cwd = tempDir()
      const env = { CODEX_ARCHIVE_URL: url }
      for (const name of spellings.postgres) {
        const r = codex(cwd, ["init", "--dialect", name], env)
        expect(r.code, `${name}: ${r.stderr}`).toBe(0)
        expect(r.stdout).toMatch(/^archive schema ensured for backend=postgres /)
      }
      const wrong = codex(cwd, ["init", "--dialect", "mysql"], env)
      expect(wrong.code).toBe(2)
      expect(wrong.stderr).toContain("configured backend is postgres")
      write(path.join(cwd, "f.txt"), "x\n")
      expect(codex(cwd, ["store", "r", "f.txt", "--commit", "c"], env).code).toBe(0)
      const listed = codex(cwd, ["list", "--limit", "0"], env)
      expect(listed.code, listed.stderr).toBe(0)
      expect(listed.stdout).toBe("[]\n")
      expect(JSON.parse(codex(cwd, ["list"], env).stdout)).toHaveLength(1)
    })
  })

  it("MariaDB: init --dialect MySQL/mariadb, then list --limit 0 prints []", () => {
    withMariadb((url) => {
      const cwd = tempDir()
      const env = { CODEX_ARCHIVE_URL: url }
      for (const name of spellings.mariadb) {
        const r = codex(cwd, ["init", "--dialect", name], env)
        expect(r.code, `${name}: ${r.stderr}`).toBe(0)
        expect(r.stdout).toMatch(/^archive schema ensured for backend=mariadb /)
      }
      write(path.join(cwd, "f.txt"), "x\n")
      expect(codex(cwd, ["store", "r", "f.txt", "--commit", "c"], env).code).toBe(0)
      const listed = codex(cwd, ["list", "--limit=0"], env)
      expect(listed.code, listed.stderr).toBe(0)
      expect(listed.stdout).toBe("[]\n")
    })
  })
})

describe("list --limit as the original", () => {
  it("0 prints exactly [], the default is 50, a negative limit is exit 2 naming it", () => {
    const cwd = tempDir()
    for (let i = 0; i < 52; i++) write(path.join(cwd, "tree", `f${String(i).padStart(2, "0")}.txt`), `file ${i}\n`)
    expect(codex(cwd, ["store", "acme/app", "tree", "--commit", "c"]).code).toBe(0)
    for (const args of [["--limit", "0"], ["--limit=0"]]) {
      const r = codex(cwd, ["list", ...args])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe("[]\n")
    }
    expect(JSON.parse(codex(cwd, ["list"]).stdout)).toHaveLength(50)
    expect(JSON.parse(codex(cwd, ["list", "--limit", "51"]).stdout)).toHaveLength(51)
    const negative = codex(cwd, ["list", "--limit", "-1"])
    expect(negative.code).toBe(2)
    expect(negative.stdout).toBe("")
    expect(negative.stderr).toContain("--limit -1")
  })
})

describe("every other command line of the original's CLI", () => {
  it("runs with the original's flags, defaults and output shapes", () => {
    const cwd = tempDir()
    write(path.join(cwd, "cfg.toml"), "[batch]\nconcurrent = 2\n")
    write(path.join(cwd, "old.py"), "print('old')\n")
    write(path.join(cwd, "notes.md"), "# notes\n")

    const shown = codex(cwd, ["config-show", "--config-file", "cfg.toml"])
    expect(shown.code, shown.stderr).toBe(0)
    expect(JSON.parse(shown.stdout).batch.concurrent).toBe(2)

    expect(codex(cwd, ["init"]).stdout).toMatch(/^archive schema ensured for backend=sqlite/)
    const store = codex(cwd, [
      "store",
      "acme/app",
      "old.py",
      "--reason",
      "legacy",
      "--by",
      "alice",
      "--commit",
      "abc123",
      "--kind",
      "code",
      "--language",
      "python",
      "--mime",
      "text/x-python",
      "--tag",
      "a",
      "--tag",
      "b",
      "--metadata",
      "owner = team-a"
    ])
    expect(store.code, store.stderr).toBe(0)
    const stored = JSON.parse(store.stdout) as Record<string, unknown>
    expect(stored).toMatchObject({ repo: "acme/app", path: "old.py", size_bytes: 13 })
    for (const k of ["tombstone", "sha256", "size_bytes", "compressed_size", "repo", "path"]) {
      expect(stored).toHaveProperty(k)
    }
    const id = stored.tombstone as string
    const store2 = codex(cwd, [
      "store",
      "acme/docs",
      "notes.md",
      "--by=bob",
      "--commit=def456",
      "--kind=doc",
      "--reason=pruned"
    ])
    expect(store2.code, store2.stderr).toBe(0)
    const id2 = JSON.parse(store2.stdout).tombstone as string

    const listed = JSON.parse(
      codex(cwd, ["list", "--repo", "acme/app", "--since", "2000-01-01T00:00:00Z", "--limit", "5"]).stdout
    )
    expect(listed).toHaveLength(1)
    expect(Object.keys(listed[0]).sort()).toEqual([
      "archived_at",
      "archived_by",
      "commit_sha",
      "id",
      "path",
      "reason",
      "repo",
      "tombstone_id"
    ])

    const show = JSON.parse(codex(cwd, ["show", id]).stdout)
    expect(show.metadata.owner).toBe("team-a")
    expect(show.events.map((e: { action: string }) => e.action)).toEqual(["ARCHIVE"])

    const restored = codex(cwd, ["restore", id, "out/old.py", "--by", "carol", "--debug"])
    expect(restored.code, restored.stderr).toBe(0)
    expect(restored.stdout.trim()).toBe(path.join(cwd, "out/old.py"))
    expect(restored.stderr).toContain("[DEBUG] Archive backend: sqlite")
    expect(restored.stderr).toContain(`[DEBUG] Archive URL: sqlite://`)
    expect(fs.readFileSync(path.join(cwd, "out/old.py"), "utf8")).toBe("print('old')\n")
    expect(evidence(cwd).find((l) => l.action === "RESTORE")).toMatchObject({ actor: "carol", tombstone: id })

    write(
      path.join(cwd, "manifest.json"),
      JSON.stringify([{ tombstone: id, output: "b/old.py" }, { tombstone: id2, output: "b/notes.md" }])
    )
    const dry = codex(cwd, [
      "batch-restore",
      "manifest.json",
      "--actor",
      "dave",
      "--results",
      "r.json",
      "--dry-run",
      "--config-file",
      "cfg.toml"
    ])
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout).total).toBe(2)
    expect(fs.existsSync(path.join(cwd, "b"))).toBe(false)
    const batch = codex(cwd, [
      "batch-restore",
      "manifest.json",
      "--actor",
      "dave",
      "--results",
      "r.json",
      "--config-file",
      "cfg.toml"
    ])
    expect(batch.code, batch.stderr).toBe(0)
    expect(JSON.parse(batch.stdout)).toMatchObject({ total: 2, succeeded: 2, failed: 0 })
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "r.json"), "utf8"))).toMatchObject({ total: 2 })
    expect(fs.readFileSync(path.join(cwd, "b/notes.md"), "utf8")).toBe("# notes\n")

    const prune = codex(cwd, ["prune-request", id2, "--by", "erin", "--reason", "obsolete"])
    expect([prune.code, prune.stdout]).toEqual([0, "recorded prune request\n"])
    const approve = codex(cwd, ["purge", id2, "--by", "erin", "--second", "frank", "--reason", "obsolete"])
    expect([approve.code, approve.stdout]).toEqual([0, "purge approvals recorded\n"])
    const purge = codex(cwd, ["purge", id2, "--by", "erin", "--second", "frank", "--reason", "obsolete", "--apply"])
    expect([purge.code, purge.stdout]).toEqual([0, "purge approvals recorded and blob scrubbed\n"])

    const health = codex(cwd, ["health-check", "--debug"])
    expect(health.code, health.stderr).toBe(0)
    expect(health.stdout).toMatch(/^=== Archive Health Check ===\nBackend: sqlite\nURL: sqlite:/)
  })
})
