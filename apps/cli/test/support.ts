/** Runs the bundled CLI as a user would: a child process in a temporary folder, with a clean environment. */
import Database from "better-sqlite3"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const bin = path.resolve(__dirname, "../dist/codex.mjs")
export const fixture = path.resolve(__dirname, "../../../fixtures/codex-py-archive")

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-cli-"))

/** Only the variables the CLI reads from the test, never the developer's own CODEX_* settings. */
export const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_")))

export const codex = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Run => {
  if (!fs.existsSync(bin)) throw new Error(`CLI bundle missing at ${bin}: run the 'bundle' task first`)
  const r = spawnSync(process.execPath, [bin, "archive", ...args], {
    cwd,
    env: { ...baseEnv(), CODEX_ACTOR: "tester", ...env },
    encoding: "utf8"
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/**
 * Runs the CLI as a user whom permissions bind: as root (CI), as nobody, `cwd` and what is below it given to nobody
 * first, since root reads and writes any folder whatever its mode.
 */
export const codexUnprivileged = (cwd: string, args: ReadonlyArray<string>): Run => {
  const root = process.getuid?.() === 0
  if (root) {
    fs.chownSync(cwd, 65534, 65534)
    for (const f of fs.readdirSync(cwd, { recursive: true }) as Array<string>) {
      fs.lchownSync(path.join(cwd, f), 65534, 65534)
    }
  }
  const r = spawnSync(process.execPath, [bin, "archive", ...args], {
    cwd,
    env: { ...baseEnv(), CODEX_ACTOR: "tester" },
    encoding: "utf8",
    ...(root ? { uid: 65534, gid: 65534 } : {})
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

export const evidence = (cwd: string): Array<Record<string, unknown>> => {
  const file = path.join(cwd, ".codex/evidence/archive_ops.jsonl")
  return fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l))
    : []
}

/** Files under a folder, relative, sorted (to prove nothing half-written was left behind). */
export const listFiles = (dir: string): Array<string> =>
  fs.existsSync(dir)
    ? (fs.readdirSync(dir, { recursive: true }) as Array<string>).filter((f) => fs.statSync(path.join(dir, f)).isFile())
      .sort()
    : []

export const write = (file: string, content: string | Uint8Array, mode?: number) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, content, mode === undefined ? undefined : { mode })
}

/** Changes a folder's SQLite archive behind the tool's back, as anyone with write access to a shared archive could. */
export const tamper = (cwd: string, statement: string, ...params: Array<unknown>) => {
  const db = new Database(path.join(cwd, ".codex/archive.sqlite"))
  try {
    db.prepare(statement).run(...params)
  } finally {
    db.close()
  }
}

/** `codex` without blocking the test worker, so independent runs can overlap. */
export const codexAsync = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    if (!fs.existsSync(bin)) return reject(new Error(`CLI bundle missing at ${bin}: run the 'bundle' task first`))
    const child = spawn(process.execPath, [bin, "archive", ...args], {
      cwd,
      env: { ...baseEnv(), CODEX_ACTOR: "tester", ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
