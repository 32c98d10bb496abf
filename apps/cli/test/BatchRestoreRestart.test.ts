/**
 * A database server restarted in the middle of a batch costs retries, not failed items. Each server is a private
 * PostgreSQL cluster or MariaDB instance this test starts on its own port (restarting the shared ones would break
 * everyone else's runs), and it is stopped whatever happens.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bin, listFiles, tempDir, write } from "./support.js"

const pgBin = (() => {
  const root = "/usr/lib/postgresql"
  const version = fs.existsSync(root) ? fs.readdirSync(root).sort().pop() : undefined
  return version === undefined ? undefined : path.join(root, version, "bin")
})()

const asPostgres = (args: ReadonlyArray<string>) => {
  // A timeout, so a server that kept our pipes open can never hang the test.
  const r = spawnSync("runuser", ["-u", "postgres", "--", ...args], { encoding: "utf8", timeout: 60_000 })
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr || r.stdout}`)
}

/** A throwaway PostgreSQL cluster on a free port, owned by this test. */
const privateCluster = () => {
  if (pgBin === undefined) {
    throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql: cannot run the restart test")
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-pg-"))
  fs.chownSync(dir, Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout), -1)
  const port = 20000 + Math.floor(Math.random() * 20000)
  const data = path.join(dir, "data")
  // `-l`: the server's output goes to a log file, never to our pipes (spawnSync would wait for them to close).
  const ctl = (...args: Array<string>) =>
    asPostgres([path.join(pgBin, "pg_ctl"), "-D", data, "-w", "-l", path.join(dir, "log"), ...args])
  asPostgres([path.join(pgBin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  ctl("-o", options, "start")
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: () => ctl("-o", options, "-m", "fast", "restart"),
    stop: () => {
      spawnSync(
        "runuser",
        ["-u", "postgres", "--", path.join(pgBin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
        { timeout: 60_000 }
      )
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A throwaway MariaDB server on a free port, owned by this test; a restart kills it outright and starts it again.
 * Commits reach the OS at once (flush_log_at_trx_commit=2, no fsync): a killed server keeps them, as a real one would.
 */
const privateMariadb = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-my-"))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const install = spawnSync("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${dir}/data`,
    "--user=root",
    "--auth-root-authentication-method=normal"
  ], { encoding: "utf8", timeout: 120_000 })
  if (install.status !== 0) throw new Error(`mariadb-install-db failed (is MariaDB installed?): ${install.stderr}`)
  const ping = () =>
    spawnSync("mysqladmin", ["-h", "127.0.0.1", "-P", String(port), "-uroot", "ping"], { timeout: 10_000 }).status === 0
  let server: ReturnType<typeof spawn> | undefined
  const start = () => {
    server = spawn("mariadbd", [
      "--no-defaults",
      `--datadir=${dir}/data`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${dir}/sock`,
      "--user=root",
      `--pid-file=${dir}/pid`,
      "--skip-grant-tables",
      "--innodb-flush-log-at-trx-commit=2",
      `--log-error=${dir}/err`
    ], { stdio: "ignore" })
    for (let i = 0; i < 300 && !ping(); i++) spawnSync("sleep", ["0.1"])
    if (!ping()) {
      throw new Error(
        `private MariaDB did not start on port ${port}: ${fs.readFileSync(`${dir}/err`, "utf8").slice(-500)}`
      )
    }
  }
  const kill = () => {
    if (server?.pid === undefined) return
    const pid = server.pid
    process.kill(pid, "SIGKILL")
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0)
        spawnSync("sleep", ["0.05"])
      } catch {
        return
      }
    }
  }
  start()
  const created = spawnSync("mysql", ["-h", "127.0.0.1", "-P", String(port), "-uroot", "-e", "CREATE DATABASE codex"], {
    encoding: "utf8",
    timeout: 10_000
  })
  if (created.status !== 0) throw new Error(`cannot create the test database: ${created.stderr}`)
  return {
    url: `mariadb://root@127.0.0.1:${port}/codex`,
    restart: () => {
      kill()
      start()
    },
    stop: () => {
      kill()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Stores 3,000 files, restores them with `restart` run once 300 are done, and checks every item came back. */
const restoreAcrossRestart = async (server: { readonly url: string; readonly restart: () => void }) => {
  const cwd = tempDir()
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_"))),
    CODEX_ACTOR: "tester",
    CODEX_ARCHIVE_URL: server.url,
    CODEX_ARCHIVE_RETRY_INITIAL: "0.2",
    CODEX_ARCHIVE_RETRY_MAX: "2",
    CODEX_ARCHIVE_RETRY_ATTEMPTS: "12",
    CODEX_ARCHIVE_BATCH_PROGRESS: "25"
  }
  const originals = new Map<string, Buffer>()
  for (let i = 0; i < 3000; i++) {
    const rel = `tree/d${i % 20}/f${i}.txt`
    const bytes = Buffer.from(`line ${i} of a file restored across a restart\n`.repeat(40 + (i % 50)))
    write(path.join(cwd, rel), bytes)
    originals.set(rel, bytes)
  }
  const run = (args: ReadonlyArray<string>) =>
    spawnSync(process.execPath, [bin, "archive", ...args], { cwd, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 })
  const init = run(["init"])
  expect(init.status, init.stderr).toBe(0)
  const stored = run(["store", "acme/demo", "tree", "--commit", "c0ffee", "--manifest-out", "manifest.json"])
  expect(stored.status, stored.stderr).toBe(0)
  fs.rmSync(path.join(cwd, "tree"), { recursive: true })

  const result = await new Promise<
    { code: number | null; stdout: string; stderr: string; restartedAt: number; closedBeforeRestartDone: boolean }
  >((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "archive", "batch-restore", "manifest.json", "--concurrency", "4"], {
      cwd,
      env
    })
    let stdout = ""
    let stderr = ""
    let restartedAt = -1
    let closed = false
    let closedBeforeRestartDone = false
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => {
      stderr += d
      const done = [...stderr.matchAll(/\[BATCH\] (\d+)\//g)].map((m) => Number(m[1]))
      if (restartedAt < 0 && done.length > 0 && done[done.length - 1]! >= 300) {
        restartedAt = done[done.length - 1]!
        server.restart()
        closedBeforeRestartDone = closed
      }
    })
    child.on("error", reject)
    child.on("close", (code) => {
      closed = true
      resolve({ code, stdout, stderr, restartedAt, closedBeforeRestartDone })
    })
  })
  expect(result.restartedAt).toBeGreaterThan(0)
  expect(result.closedBeforeRestartDone).toBe(false)
  expect(result.stdout, result.stderr.slice(-1500)).not.toBe("")
  const summary = JSON.parse(result.stdout)
  const failures = summary.results.filter((r: { status: string }) => r.status !== "SUCCESS").slice(0, 3)
  expect(result.code, JSON.stringify(failures) + result.stderr.slice(-1500)).toBe(0)
  expect(summary).toMatchObject({ total: 3000, succeeded: 3000, failed: 0 })
  expect(result.stderr).toMatch(/retrying .* after a transient failure/)
  for (const [rel, bytes] of originals) expect(fs.readFileSync(path.join(cwd, rel)).equals(bytes), rel).toBe(true)
  expect(listFiles(cwd).filter((f) => f.includes(".codex-restore.tmp"))).toEqual([])
}

describe("batch-restore across a server restart", () => {
  it("PostgreSQL restarted mid-batch: every item restored, the fault absorbed by retries", async () => {
    const cluster = privateCluster()
    try {
      await restoreAcrossRestart(cluster)
    } finally {
      cluster.stop()
    }
  }, 240_000)

  it("MariaDB killed and restarted mid-batch: every item restored, the fault absorbed by retries", async () => {
    const server = privateMariadb()
    try {
      await restoreAcrossRestart(server)
    } finally {
      server.stop()
    }
  }, 240_000)
})
