/**
 * A stdout that refuses writes: found by an attack review, `codex archive list > /dev/full` ended with a stack trace
 * and no `codex: error:` line. A full or broken stdout is one line and exit 1 (saying what the command did before it);
 * a reader that stops early (`| head -1`) is no failure at all.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { baseEnv, bin, codex, evidence, type Run, tempDir, write } from "./support.js"

/** An archive of two stored files, and their tombstones. */
const setup = () => {
  const cwd = tempDir()
  write(path.join(cwd, "t/one.txt"), "file one\n")
  write(path.join(cwd, "t/two.txt"), "file two\n")
  expect(codex(cwd, ["init"]).code).toBe(0)
  const stored = codex(cwd, ["store", "r", "t", "--commit", "a", "--manifest-out", "m.json"])
  expect(stored.code, stored.stderr).toBe(0)
  const manifest = JSON.parse(fs.readFileSync(path.join(cwd, "m.json"), "utf8")) as Array<{ tombstone: string }>
  return { cwd, tombstones: manifest.map((e) => e.tombstone) }
}

/** `codex archive ...` with its stdout on /dev/full: every write fails with ENOSPC. */
const toFullDisk = (cwd: string, args: ReadonlyArray<string>): Run => {
  const full = fs.openSync("/dev/full", "w")
  try {
    const r = spawnSync(process.execPath, [bin, "archive", ...args], {
      cwd,
      env: { ...baseEnv(), CODEX_ACTOR: "tester" },
      stdio: ["ignore", full, "pipe"],
      encoding: "utf8"
    })
    return { code: r.status ?? -1, stdout: "", stderr: r.stderr }
  } finally {
    fs.closeSync(full)
  }
}

/** `codex archive ...` whose reader has gone before it writes anything: every write fails with EPIPE. */
const toClosedPipe = (cwd: string, args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "archive", ...args], {
      cwd,
      env: { ...baseEnv(), CODEX_ACTOR: "tester" }
    })
    child.stdout.destroy()
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code: code ?? (signal === null ? -1 : 128), stdout: "", stderr }))
  })

/** Exit 1 and one `codex: error:` line (after a batch's progress lines), no stack trace. */
const oneErrorLine = (r: Run) => {
  expect(r.code, r.stderr).toBe(1)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  const lines = r.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("[BATCH] "))
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^codex: error: .*cannot write to stdout: ENOSPC: no space left on device, write$/)
}

describe("a stdout that refuses writes", () => {
  it("a full stdout is one line and exit 1, for every command that prints", () => {
    const { cwd, tombstones } = setup()
    for (
      const args of [
        ["list"],
        ["verify"],
        ["show", tombstones[0]!],
        ["config-show"]
      ]
    ) {
      const r = toFullDisk(cwd, args)
      oneErrorLine(r)
      expect(r.stderr, args.join(" ")).toBe(
        `codex: error: cannot write to stdout: ENOSPC: no space left on device, write\n`
      )
    }
  })

  it("init, prune-request, purge and gc that did their work before stdout failed say what they did", () => {
    const { cwd, tombstones } = setup()
    const said = (args: ReadonlyArray<string>) => {
      const r = toFullDisk(cwd, args)
      oneErrorLine(r)
      return r.stderr.replace(/, but cannot write to stdout: ENOSPC: no space left on device, write\n$/, "")
    }
    expect(said(["init"])).toMatch(/^codex: error: archive schema ensured for backend=sqlite \(schema version \d+, /)
    const id = tombstones[0]!
    expect(said(["prune-request", id, "--reason", "old", "--actor", "alice"])).toBe(
      "codex: error: recorded prune request"
    )
    expect(said(["purge", id, "--second", "bob", "--reason", "old", "--actor", "alice", "--apply"])).toBe(
      "codex: error: purge approvals recorded and blob scrubbed"
    )
    expect(evidence(cwd).map((l) => l.action)).toEqual(expect.arrayContaining(["PRUNE_REQUEST", "DELETE_APPROVED"]))
    expect(said(["gc"])).toBe("codex: error: gc: removed 0 orphaned chunk rows (0 bytes)")
  })

  it("a restore that completed before stdout failed says so, and its file and evidence line stand", () => {
    const { cwd, tombstones } = setup()
    const r = toFullDisk(cwd, ["restore", tombstones[1]!, "o.txt"])
    oneErrorLine(r)
    expect(r.stderr).toMatch(/^codex: error: restored .*o\.txt \(recorded in the evidence log\), but cannot write/)
    expect(fs.readFileSync(path.join(cwd, "o.txt"), "utf8")).toBe("file two\n")
    expect(evidence(cwd).filter((l) => l.action === "RESTORE")).toHaveLength(1)
  })

  it("a batch restore that completed before stdout failed says so, with its results", () => {
    const { cwd } = setup()
    fs.rmSync(path.join(cwd, "t"), { recursive: true })
    const r = toFullDisk(cwd, ["batch-restore", "m.json", "--results", "res.json"])
    oneErrorLine(r)
    expect(r.stderr).toMatch(/batch-restore: 2 restored.*res\.json/)
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "res.json"), "utf8"))).toMatchObject({ succeeded: 2 })
    expect(fs.readFileSync(path.join(cwd, "t/two.txt"), "utf8")).toBe("file two\n")
  })

  it("a reader that closed its end (EPIPE) ends nothing: the command finishes quietly with its own exit code", async () => {
    const { cwd, tombstones } = setup()
    for (const args of [["list"], ["show", tombstones[0]!], ["restore", tombstones[0]!, "p.txt"]]) {
      const r = await toClosedPipe(cwd, args)
      expect(r.stderr, args.join(" ")).toBe("")
      expect(r.code, args.join(" ")).toBe(0)
    }
    expect(fs.readFileSync(path.join(cwd, "p.txt"), "utf8")).toBe("file one\n")
    fs.rmSync(path.join(cwd, "t"), { recursive: true })
    const batch = await toClosedPipe(cwd, ["batch-restore", "m.json"])
    // Only its progress lines.
    expect(batch.stderr).toMatch(/^(\[BATCH\] .*\n)*$/)
    expect(batch.code).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "t/two.txt"), "utf8")).toBe("file two\n")
  })
})
