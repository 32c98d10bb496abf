/** Issue 14, defect 8b: a restore the evidence log cannot record leaves no visible file, and says so in one line. */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, listFiles, tempDir, write } from "./support.js"

/** Files stored with a manifest, the originals removed; the evidence folder then made impossible (a regular file). */
const blockedEvidence = (count: number) => {
  const cwd = tempDir()
  for (let i = 0; i < count; i++) write(path.join(cwd, `tree/d${i % 3}/f${i}.txt`), `file ${i}\n`.repeat(1 + i))
  // Two files above 1 MiB: chunked payloads take the streamed path.
  for (const name of ["big1.bin", "big2.bin"]) write(path.join(cwd, "tree", name), Buffer.alloc(1536 * 1024, name))
  const stored = codex(cwd, [
    "store",
    "acme/demo",
    "tree",
    "--commit",
    "c0ffee",
    "--manifest-out",
    "tree/manifest.json"
  ], {
    CODEX_ARCHIVE_INLINE_LIMIT: String(1024 * 1024)
  })
  expect(stored.code, stored.stderr).toBe(0)
  for (const f of listFiles(path.join(cwd, "tree"))) if (f !== "manifest.json") fs.rmSync(path.join(cwd, "tree", f))
  const blocked = path.join(cwd, "evidence-is-a-file")
  fs.writeFileSync(blocked, "")
  const manifest = JSON.parse(fs.readFileSync(path.join(cwd, "tree/manifest.json"), "utf8")) as Array<
    { tombstone: string }
  >
  return { cwd, blocked, env: { CODEX_EVIDENCE_DIR: blocked }, tombstone: manifest[0]!.tombstone }
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("codex: error:"))

describe("a restore whose evidence log cannot be written", () => {
  it("restore: exit 1, one line naming the evidence file and cause, no file", () => {
    const { blocked, cwd, env, tombstone } = blockedEvidence(1)
    const r = codex(cwd, ["restore", tombstone, "out/restored.txt"], env)
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n")).toEqual([
      `codex: error: cannot append to evidence log ${blocked}/archive_ops.jsonl: ${blocked} is not a folder`
    ])
    expect(listFiles(path.join(cwd, "out"))).toEqual([])
  })

  // Below 256 files the batch writes in this thread; above, in worker threads.
  it.each([3, 300])(
    "batch-restore of %i files: items FAILED with the cause, exit 1, one error line, no file",
    (count) => {
      const { blocked, cwd, env } = blockedEvidence(count)
      const r = codex(cwd, ["batch-restore", "tree/manifest.json", "--results", "r.json"], env)
      expect(r.code).toBe(1)
      expect(errorLines(r.stderr)).toEqual([
        `codex: error: cannot append to evidence log ${blocked}/archive_ops.jsonl: ${blocked} is not a folder`
      ])
      const results = JSON.parse(fs.readFileSync(path.join(cwd, "r.json"), "utf8"))
      expect(results).toMatchObject({ total: count + 2, failed: count + 2, not_run: 0 })
      expect(new Set(results.results.map((x: { error: string }) => x.error))).toEqual(new Set(["EvidenceError"]))
      expect(listFiles(path.join(cwd, "tree"))).toEqual(["manifest.json"])
    }
  )
})
