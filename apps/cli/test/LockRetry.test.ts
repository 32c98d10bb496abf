import { describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as readline from "node:readline"
import { bin, codex, evidence, tempDir, write } from "./support.js"

const betterSqlite = createRequire(__filename).resolve("better-sqlite3")

/** Another process that takes the archive's write lock, says `locked`, and commits when told `release` on stdin. */
const holdLock = (file: string) => {
  const script = `
    const db = new (require(${JSON.stringify(betterSqlite)}))(${JSON.stringify(file)})
    db.exec("BEGIN EXCLUSIVE")
    process.stdout.write("locked\\n")
    process.stdin.once("data", () => { db.exec("COMMIT"); db.close(); process.stdout.write("released\\n"); process.exit(0) })`
  const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] })
  const lines = readline.createInterface({ input: child.stdout! })
  const next = () =>
    new Promise<string>((resolve, reject) => {
      lines.once("line", resolve)
      child.once("exit", (code) => reject(new Error(`lock holder exited (${code}) before saying anything`)))
    })
  const release = () => {
    const answer = next()
    child.stdin!.write("release\n")
    return answer
  }
  return { child, next, release }
}

/** The bundled CLI as a child process whose stderr lines we can watch while it runs. */
const codexLive = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_")))
  const child = spawn(process.execPath, [bin, "archive", ...args], {
    cwd,
    env: { ...clean, CODEX_ACTOR: "tester", ...env }
  })
  let stdout = ""
  child.stdout.on("data", (d) => (stdout += d))
  const stderr: Array<string> = []
  const lines = readline.createInterface({ input: child.stderr })
  lines.on("line", (line) => stderr.push(line))
  const done = new Promise<{ code: number | null; stdout: string; stderr: Array<string> }>((resolve) =>
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  )
  return { child, lines, done }
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((
    resolve
  ) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", resolve)))

/**
 * Takes the archive's write lock in another process, runs the CLI with small retry delays and many attempts, and
 * releases the lock once the CLI has logged its second retry: the retries, not one long wait, carry it past the lock.
 */
const runPastLock = async (cwd: string, args: ReadonlyArray<string>) => {
  const locker = holdLock(path.join(cwd, ".codex/archive.sqlite"))
  expect(await locker.next()).toBe("locked")
  const run = codexLive(cwd, args, {
    CODEX_ARCHIVE_RETRY_INITIAL: "0.1",
    CODEX_ARCHIVE_RETRY_MAX: "0.4",
    CODEX_ARCHIVE_RETRY_ATTEMPTS: "40",
    CODEX_ARCHIVE_RETRY_JITTER: "0"
  })
  let seen = 0
  let released: Promise<string> | undefined
  run.lines.on("line", (line) => {
    if (line.includes("retrying") && ++seen === 2) released = locker.release()
  })
  const r = await run.done
  if (released === undefined) locker.child.kill() // the run ended without two retries: fail, do not hang
  expect(await released).toBe("released")
  expect(await exited(locker.child)).toBe(0)
  return r
}

describe("a real fault: the SQLite archive locked by another process", () => {
  it("restore succeeds after logged, counted retries of the blocked write", async () => {
    const cwd = fs.realpathSync(tempDir())
    const content = "locked but not lost\n".repeat(100)
    write(path.join(cwd, "f.txt"), content)
    const stored = codex(cwd, ["store", "r", "f.txt", "--commit", "x"])
    expect(stored.code, stored.stderr).toBe(0)
    const tombstone = JSON.parse(stored.stdout).tombstone as string
    const r = await runPastLock(cwd, [
      "restore",
      tombstone,
      "out/f.txt",
      "--log-format",
      "json",
      "--metrics-out",
      "metrics.prom"
    ])

    expect(r.code, r.stderr.join("\n")).toBe(0)
    expect(r.stdout).toBe(`${path.join(cwd, "out/f.txt")}\n`)
    expect(fs.readFileSync(path.join(cwd, "out/f.txt"), "utf8")).toBe(content)
    const retries = r.stderr.map((l) => JSON.parse(l)).filter((l) => String(l.message).startsWith("retrying"))
    expect(retries.length).toBeGreaterThanOrEqual(2)
    retries.forEach((log, i) => {
      expect(log.level).toBe("WARNING")
      expect(log.extra).toMatchObject({
        attempt: i + 1,
        delay_ms: Math.min(100 * 2 ** i, 400),
        operation: "record_restore",
        tombstone
      })
      expect(log.extra.cause).toMatch(/database is locked.*SQLITE_BUSY/)
    })
    const metrics = fs.readFileSync(path.join(cwd, "metrics.prom"), "utf8")
    expect(metrics).toContain(`codex_archive_retries_total{operation="record_restore"} ${retries.length}\n`)
    expect(evidence(cwd).filter((l) => l.action === "RESTORE" && l.tombstone === tombstone)).toHaveLength(1)
  })

  it("a batch of 300 from SQLite (worker threads reading the archive) while another process holds the write lock: the records retry, every file arrives", async () => {
    const cwd = fs.realpathSync(tempDir())
    const files = Array.from(
      { length: 300 },
      (_, i) => [`tree/d${i % 9}/f${i}.txt`, `file ${i}\n`.repeat(1 + (i % 40))] as const
    )
    for (const [name, content] of files) write(path.join(cwd, name), content)
    const stored = codex(cwd, ["store", "r", "tree", "--commit", "x", "--manifest-out", "manifest.json"])
    expect(stored.code, stored.stderr).toBe(0)
    fs.rmSync(path.join(cwd, "tree"), { recursive: true })
    const r = await runPastLock(cwd, ["batch-restore", "manifest.json", "--log-format", "json"])

    expect(r.code, r.stderr.join("\n")).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 300, succeeded: 300, failed: 0 })
    for (const [name, content] of files) expect(fs.readFileSync(path.join(cwd, name), "utf8")).toBe(content)
    const retries = r.stderr.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) =>
      String(l.message).startsWith("retrying")
    )
    expect(retries.length).toBeGreaterThanOrEqual(2)
    for (const log of retries) expect(log.extra).toMatchObject({ operation: "record_restore" })
    expect(evidence(cwd).filter((l) => l.action === "RESTORE")).toHaveLength(300)
  })

  // The second Ctrl-C quits at once, as Node's default did; that default ended the process without a line.
  // SIGHUP (a closed terminal) counts as SIGTERM: its second quits as well.
  it.each([["SIGINT", 130], ["SIGHUP", 143]] as const)(
    "a batch waiting on the lock: the first %s waits for the unit in flight, the second quits, saying so",
    async (signal, code) => {
      const cwd = fs.realpathSync(tempDir())
      for (let i = 0; i < 3; i++) write(path.join(cwd, `tree/f${i}.txt`), `file ${i}\n`)
      const stored = codex(cwd, ["store", "r", "tree", "--commit", "x", "--manifest-out", "manifest.json"])
      expect(stored.code, stored.stderr).toBe(0)
      fs.rmSync(path.join(cwd, "tree"), { recursive: true })
      const locker = holdLock(path.join(cwd, ".codex/archive.sqlite"))
      expect(await locker.next()).toBe("locked")
      const run = codexLive(cwd, ["batch-restore", "manifest.json"], {
        CODEX_ARCHIVE_RETRY_INITIAL: "0.1",
        CODEX_ARCHIVE_RETRY_MAX: "0.2",
        CODEX_ARCHIVE_RETRY_ATTEMPTS: "1000"
      })
      let sent = 0
      run.lines.on("line", (line) => {
        // The unit's record retries on the lock: the first Ctrl-C lets it go on; once that is said, the second.
        if ((sent === 0 && line.includes("retrying record_restore")) || (sent === 1 && line.includes("interrupted;"))) {
          sent++
          run.child.kill(signal)
        }
      })
      const r = await run.done
      locker.child.kill()
      await exited(locker.child)
      expect(sent).toBe(2)
      expect(r.code).toBe(code)
      expect(r.stderr.at(-1)).toBe(
        "codex: error: interrupted again: quit at once, what was in flight left unfinished (its temporary " +
          ".codex-restore.tmp files, its evidence lines); --resume reads the results as last saved"
      )
    }
  )

  it("with retries disabled the same lock fails the restore at once, naming the cause", async () => {
    const cwd = fs.realpathSync(tempDir())
    write(path.join(cwd, "f.txt"), "x\n")
    const tombstone = JSON.parse(codex(cwd, ["store", "r", "f.txt", "--commit", "x"]).stdout).tombstone as string
    const locker = holdLock(path.join(cwd, ".codex/archive.sqlite"))
    expect(await locker.next()).toBe("locked")
    const r = codex(cwd, ["restore", tombstone, "out.txt"], { CODEX_ARCHIVE_RETRY_ENABLED: "false" })
    locker.child.kill()
    await exited(locker.child)
    expect(r.code).toBe(1)
    expect(r.stderr).not.toContain("retrying")
    expect(r.stderr).toMatch(/record_restore failed: database is locked/)
  })
})
