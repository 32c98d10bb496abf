/**
 * The fault table (issue 14): every command against every fault of the archive or the evidence log. Each row ends
 * either in success (the command does not touch the faulty part) or in a non-zero exit with exactly one
 * `codex: error:` line that names the file and the cause. Nothing exits silently; nothing foreign is modified.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as readline from "node:readline"
import { bin, codex as codexSync, type Run, tempDir, write } from "./support.js"

const betterSqlite = createRequire(__filename).resolve("better-sqlite3")

/** The CLI as a child process, awaited: a long synchronous run would starve the test worker's own messages. */
const codex = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_")))
    const child = spawn(process.execPath, [bin, "archive", ...args], {
      cwd,
      env: { ...clean, CODEX_ACTOR: "tester", ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })

/** A prepared folder: an archive holding one item, a manifest for it, and a file not yet stored. */
const prepare = () => {
  const cwd = fs.realpathSync(tempDir())
  write(path.join(cwd, "a.txt"), "fault table\n")
  write(path.join(cwd, "new.txt"), "not yet stored\n")
  const stored = codexSync(cwd, ["store", "r", "a.txt", "--commit", "x"])
  expect(stored.code, stored.stderr).toBe(0)
  const tombstone = JSON.parse(stored.stdout).tombstone as string
  write(path.join(cwd, "manifest.json"), JSON.stringify([{ tombstone, output: "out/b.txt" }]))
  return { cwd, tombstone, archive: path.join(cwd, ".codex/archive.sqlite") }
}

type Command = { readonly name: string; readonly args: (t: string) => ReadonlyArray<string> }

const commands: ReadonlyArray<Command> = [
  { name: "init", args: () => ["init"] },
  { name: "schema", args: () => ["schema"] },
  { name: "store", args: () => ["store", "r", "new.txt", "--commit", "x"] },
  { name: "list", args: () => ["list"] },
  { name: "show", args: (t) => ["show", t] },
  { name: "restore", args: (t) => ["restore", t, "out/r.txt"] },
  { name: "batch-restore", args: () => ["batch-restore", "manifest.json"] },
  { name: "verify", args: () => ["verify"] },
  { name: "prune-request", args: (t) => ["prune-request", t, "--reason", "x"] },
  { name: "purge", args: (t) => ["purge", t, "--by", "alice", "--second", "bob", "--reason", "x"] },
  { name: "health-check", args: () => ["health-check"] },
  { name: "config-show", args: () => ["config-show"] },
  // Added by the tamper-evident evidence work; walked when the bundle has it.
  { name: "evidence verify", args: () => ["evidence", "verify"] }
]

/** What a row expects: success, or one error line matching every pattern. */
type Expect = "ok" | ReadonlyArray<RegExp>

const errorLines = (r: Run) => r.stderr.split("\n").filter((l) => l.startsWith("codex: error:"))

const check = (label: string, r: Run, expected: Expect) => {
  const lines = errorLines(r)
  if (expected === "ok") {
    expect(r.code, `${label}: ${r.stderr}`).toBe(0)
    expect(lines, label).toEqual([])
    return
  }
  expect(r.code, `${label}: exit code (stderr: ${r.stderr})`).not.toBe(0)
  expect(lines.length, `${label}: one error line in ${JSON.stringify(r.stderr)}`).toBe(1)
  for (const re of expected) expect(lines[0], label).toMatch(re)
}

/** Runs each command's row, four at a time where the fault makes every command fail or only read. */
const eachCommand = async (parallel: boolean, row: (c: Command) => Promise<void>) => {
  const all = walked()
  const width = parallel ? 4 : 1
  for (let i = 0; i < all.length; i += width) await Promise.all(all.slice(i, i + width).map(row))
}

let hasEvidenceVerify = false
beforeAll(() => {
  hasEvidenceVerify = codexSync(tempDir(), ["evidence", "verify", "--help"]).code === 0
})
const walked = () => commands.filter((c) => c.name !== "evidence verify" || hasEvidenceVerify)

/** Another process switches the archive out of WAL and holds it exclusively until told to let go on stdin. */
const holdExclusive = async (file: string) => {
  const script = `
    const db = new (require(${JSON.stringify(betterSqlite)}))(${JSON.stringify(file)})
    db.pragma("journal_mode = DELETE")
    db.pragma("locking_mode = EXCLUSIVE")
    db.exec("BEGIN EXCLUSIVE")
    process.stdout.write("locked\\n")
    process.stdin.once("data", () => { db.exec("COMMIT"); db.close(); process.exit(0) })`
  const child: ChildProcess = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] })
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once("line", resolve)
    child.once("exit", (code) => reject(new Error(`lock holder exited (${code})`)))
  })
  expect(first).toBe("locked")
  return () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.stdin!.write("release\n")
    })
}

const quickRetry = {
  CODEX_ARCHIVE_RETRY_ATTEMPTS: "2",
  CODEX_ARCHIVE_RETRY_INITIAL: "0.05",
  CODEX_ARCHIVE_RETRY_JITTER: "0"
}

describe("fault table: the archive", () => {
  it(
    "locked at open by another process: every command that opens it fails with one line naming it and 'locked'",
    async () => {
      const { archive, cwd, tombstone } = prepare()
      const release = await holdExclusive(archive)
      try {
        await eachCommand(true, async (c) => {
          const r = await codex(cwd, c.args(tombstone), quickRetry)
          const untouched = c.name === "schema" || c.name === "config-show" || c.name === "evidence verify"
          // health-check reports the connection check as failed, naming the archive and the lock.
          const named = new RegExp(archive.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
          check(`locked/${c.name}`, r, untouched ? "ok" : [named, /locked/])
        })
      } finally {
        await release()
      }
      // The lock gone, the archive opens as before.
      check("after the lock", await codex(cwd, ["list"]), "ok")
    },
    120_000
  )

  it("a lock held at open is waited out by the retry policy", async () => {
    const { archive, cwd } = prepare()
    const release = await holdExclusive(archive)
    // Released when the CLI logs its first retry of the open: the retry, not a driver timeout, carries it past.
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_")))
    const child = spawn(process.execPath, [bin, "archive", "list"], {
      cwd,
      env: {
        ...clean,
        CODEX_ACTOR: "tester",
        CODEX_ARCHIVE_RETRY_ATTEMPTS: "50",
        CODEX_ARCHIVE_RETRY_INITIAL: "0.05",
        CODEX_ARCHIVE_RETRY_MAX: "0.1"
      }
    })
    let stdout = ""
    let stderr = ""
    let released: Promise<void> | undefined
    child.stdout.on("data", (d) => (stdout += d))
    readline.createInterface({ input: child.stderr }).on("line", (line) => {
      stderr += line + "\n"
      if (released === undefined && line.includes("retrying open")) released = release()
    })
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve))
    if (released === undefined) await release()
    expect(stderr).toContain("retrying open")
    expect(code, stderr).toBe(0)
    expect(JSON.parse(stdout)).toHaveLength(1)
  }, 60_000)

  it(
    "read-only (immutable) archive: reading commands work, writing ones fail with one line before writing",
    async () => {
      const { archive, cwd, tombstone } = prepare()
      if (spawnSync("chattr", ["+i", archive]).status !== 0) return // chattr needs root on a supporting file system
      const before = fs.readFileSync(archive)
      try {
        await eachCommand(true, async (c) => {
          const r = await codex(cwd, c.args(tombstone))
          const writes = ["init", "store", "restore", "batch-restore", "prune-request", "purge"].includes(c.name)
          check(`read-only/${c.name}`, r, writes ? [new RegExp(path.basename(archive)), /read-only/] : "ok")
        })
      } finally {
        spawnSync("chattr", ["-i", archive])
      }
      expect(fs.readFileSync(archive).equals(before)).toBe(true)
      expect(fs.existsSync(path.join(cwd, "out"))).toBe(false)
    },
    120_000
  )

  for (const kind of ["foreign", "empty", "missing"] as const) {
    it(`${kind} archive file: refused with one line naming it, and never modified`, async () => {
      const { cwd, tombstone } = prepare()
      const file = path.join(cwd, `${kind}.db`)
      if (kind === "foreign") {
        // A SQLite database of someone else's, whose tables happen to be called item and artifact.
        const script = `const db = new (require(${JSON.stringify(betterSqlite)}))(${JSON.stringify(file)})
          db.exec("CREATE TABLE item (name TEXT); CREATE TABLE artifact (blob BLOB); INSERT INTO item VALUES ('mine')")
          db.close()`
        expect(spawnSync(process.execPath, ["-e", script]).status).toBe(0)
      }
      if (kind === "empty") fs.writeFileSync(file, "")
      const before = kind === "missing" ? undefined : fs.readFileSync(file)
      const cause = { foreign: /not a codex archive/, empty: /empty file/, missing: /no archive database/ }[kind]
      // A missing file is created by init and store, then removed: those rows run one at a time.
      await eachCommand(kind !== "missing", async (c) => {
        const r = await codex(cwd, [...c.args(tombstone), "--url", `sqlite:///${file}`])
        const untouched = c.name === "schema" || c.name === "config-show" || c.name === "evidence verify"
        // A missing archive is created by the two commands that create one.
        const creates = kind === "missing" && (c.name === "init" || c.name === "store")
        // health-check names the problem in its report line.
        check(`${kind}/${c.name}`, r, untouched || creates ? "ok" : [new RegExp(`${kind}\\.db`), cause])
        if (before !== undefined) {
          expect(fs.readFileSync(file).equals(before), `${kind}/${c.name} modified the file`).toBe(true)
        }
        if (creates) fs.rmSync(file)
      })
    }, 120_000)
  }
})

describe("fault table: the evidence log", () => {
  const appends = new Set(["store", "restore", "batch-restore", "verify", "prune-request", "purge", "health-check"])

  /** The evidence folder is a regular file: no line can be appended. */
  it("unwritable evidence folder: every command that appends evidence fails with one line naming the log", async () => {
    const { cwd, tombstone } = prepare()
    const dir = path.join(cwd, ".codex/evidence")
    fs.rmSync(dir, { recursive: true })
    fs.writeFileSync(dir, "not a folder\n")
    for (const c of walked()) {
      if (c.name === "evidence verify") continue // reading a log that is not there is that command's own concern
      const r = await codex(cwd, c.args(tombstone))
      check(
        `unwritable-evidence/${c.name}`,
        r,
        appends.has(c.name) ? [/\.codex\/evidence/, /not a folder|file already exists|not a directory/i] : "ok"
      )
    }
  }, 120_000)

  describe("full disk", () => {
    const mount = path.join(tempDir(), "full")
    let mounted = false
    beforeAll(() => {
      fs.mkdirSync(mount)
      mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount]).status === 0
      if (mounted) {
        // Fill it: the log's first line no longer fits.
        fs.mkdirSync(path.join(mount, "evidence"))
        const fd = fs.openSync(path.join(mount, "filler"), "w")
        try {
          for (;;) fs.writeSync(fd, Buffer.alloc(4096))
        } catch {
          // ENOSPC: full
        } finally {
          fs.closeSync(fd)
        }
      }
    })
    afterAll(() => {
      if (mounted) spawnSync("umount", [mount])
    })

    it(
      "evidence on a full file system: every command that appends evidence fails with one line naming the log",
      async () => {
        if (!mounted) return // mounting a tmpfs needs root
        const { cwd, tombstone } = prepare()
        const env = { CODEX_EVIDENCE_DIR: path.join(mount, "evidence") }
        for (const c of walked()) {
          if (c.name === "evidence verify") continue
          const r = await codex(cwd, c.args(tombstone), env)
          check(`full-disk/${c.name}`, r, appends.has(c.name) ? [new RegExp(mount), /no space left/i] : "ok")
        }
      },
      120_000
    )
  })
})
