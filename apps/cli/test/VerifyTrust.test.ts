/** `verify` vouches only for what it checked (issue 14 defect 9), and output options never replace non-files (8). */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

const archived = (...contents: Array<string>) => {
  const cwd = tempDir()
  const tombstones = contents.map((content, i) => {
    write(path.join(cwd, `f${i}.txt`), content)
    const r = codex(cwd, ["store", "r", `f${i}.txt`, "--commit", "x"])
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout).tombstone as string
  })
  return { cwd, tombstones }
}

const sqlite = (cwd: string, statement: string, ...params: Array<unknown>) => {
  const db = new Database(path.join(cwd, ".codex/archive.sqlite"))
  db.prepare(statement).run(...params)
  db.close()
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("codex: error:"))

describe("verify vouches only for what it checked", () => {
  it("an unknown tombstone is an error naming it (exit 1); a malformed one is bad input (exit 2)", () => {
    const { cwd, tombstones } = archived("known\n")
    const unknown = "0f0f0f0f-0000-4000-8000-000000000000"
    const r = codex(cwd, ["verify", tombstones[0]!, unknown])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(errorLines(r.stderr)).toEqual([`codex: error: unknown tombstone ${unknown}: no such item in the archive`])
    const bad = codex(cwd, ["verify", "not-an-id"])
    expect(bad.code).toBe(2)
    expect(errorLines(bad.stderr)).toHaveLength(1)
    expect(bad.stderr).toContain("not-an-id")
    expect(codex(cwd, ["verify", tombstones[0]!]).code).toBe(0)
  })

  it("a payload deleted behind the archive's back is a problem; a real purge is counted as purged", () => {
    const { cwd, tombstones } = archived("kept\n", "purged properly\n", "deleted by hand\n")
    const purge = codex(cwd, ["purge", tombstones[1]!, "--by", "a", "--second", "b", "--reason", "gdpr", "--apply"])
    expect(purge.code, purge.stderr).toBe(0)
    sqlite(
      cwd,
      "UPDATE artifact SET blob_bytes = NULL WHERE id = (SELECT artifact_id FROM item WHERE tombstone_id = ?)",
      tombstones[2]
    )
    const r = codex(cwd, ["verify"])
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ checked: 2, ok: 1, purged: 1 })
    expect(report.problems).toEqual([
      expect.objectContaining({ tombstones: [tombstones[2]], problem: "payload missing without a purge record" })
    ])
    expect(errorLines(r.stderr)).toHaveLength(1)
  })

  it("a chunked payload whose chunk rows are gone is a problem, not a purge", () => {
    const cwd = tempDir()
    write(path.join(cwd, "big.bin"), Buffer.alloc(1024 * 1024 + 10, 7))
    const stored = codex(cwd, ["store", "r", "big.bin", "--commit", "x"], {
      CODEX_ARCHIVE_INLINE_LIMIT: String(1024 * 1024)
    })
    expect(stored.code, stored.stderr).toBe(0)
    sqlite(cwd, "DELETE FROM artifact_chunk")
    const r = codex(cwd, ["verify"])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).problems[0].problem).toBe("payload missing without a purge record")
    const health = codex(cwd, ["health-check"])
    expect(health.code).toBe(1)
    expect(errorLines(health.stderr)).toEqual([
      `codex: error: health-check failed: sample: tombstone ${
        JSON.parse(r.stdout).problems[0].tombstones[0]
      }: payload missing without a purge record`
    ])
  })
})

describe("output file options never replace a non-regular file", () => {
  it("--metrics-out, --results and --manifest-out refuse a symlink, a FIFO, a device and a folder (exit 2, untouched)", () => {
    const { cwd, tombstones } = archived("out\n")
    write(path.join(cwd, "manifest.json"), JSON.stringify([{ tombstone: tombstones[0], output: "out/f.txt" }]))
    write(path.join(cwd, "target.txt"), "precious\n")
    fs.symlinkSync(path.join(cwd, "target.txt"), path.join(cwd, "link"))
    fs.mkdirSync(path.join(cwd, "dir"))
    const fifo = spawnSync("mkfifo", [path.join(cwd, "fifo")]).status === 0
    const targets = ["link", "dir", "/dev/null", ...(fifo ? ["fifo"] : [])]
    const runs: Array<[string, ReadonlyArray<string>]> = targets.flatMap((t) =>
      [
        ["--metrics-out", ["restore", tombstones[0]!, "out/r.txt", "--metrics-out", t]],
        ["--results", ["batch-restore", "manifest.json", "--results", t]],
        ["--metrics-out", ["batch-restore", "manifest.json", "--metrics-out", t]],
        // A manifest outside the inputs' folder (/dev/null) is refused earlier, for that reason.
        ...(t.startsWith("/")
          ? []
          : [["--manifest-out", ["store", "r", "f0.txt", "--commit", "x", "--manifest-out", t]]])
      ] as Array<[string, ReadonlyArray<string>]>
    )
    for (const [option, args] of runs) {
      const r = codex(cwd, args)
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2)
      expect(errorLines(r.stderr), args.join(" ")).toHaveLength(1)
      expect(r.stderr).toMatch(
        new RegExp(`${option} \\S+: exists and is (a symbolic link|a directory|a device|a FIFO)`)
      )
    }
    expect(fs.lstatSync(path.join(cwd, "link")).isSymbolicLink()).toBe(true)
    expect(fs.readFileSync(path.join(cwd, "target.txt"), "utf8")).toBe("precious\n")
    expect(fs.statSync("/dev/null").isCharacterDevice()).toBe(true)
    if (fifo) expect(fs.lstatSync(path.join(cwd, "fifo")).isFIFO()).toBe(true)
    // Nothing was restored: the check comes before any work.
    expect(fs.existsSync(path.join(cwd, "out"))).toBe(false)
    // A regular file is still replaced as before.
    write(path.join(cwd, "m.prom"), "old\n")
    expect(codex(cwd, ["restore", tombstones[0]!, "out/r.txt", "--metrics-out", "m.prom"]).code).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "m.prom"), "utf8")).toContain("# TYPE")
  })
})
