/** Exit codes of a store stopped midway (attack review): 2 says nothing was attempted, so it must not follow a commit. */
import { describe, expect, it } from "@effect/vitest"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

describe("a store that fails midway", () => {
  it("exits 1, not 2 (nothing attempted), once earlier groups are archived", () => {
    const cwd = tempDir()
    for (let i = 0; i < 1000; i++) write(path.join(cwd, "t", `f${i}.txt`), `file ${i}\n`)
    // The second group's one file says it is empty and is not (procfs): it fails as changed once the first committed.
    const r = codex(cwd, ["store", "r", "t", "/proc/self/status", "--commit", "c"])
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines[0]).toMatch(/^store: stopped after finishing 1000 files \(archived\); /)
    expect(lines.at(-1)).toBe(
      "codex: error: /proc/self/status: file changed while it was being stored; nothing was archived"
    )
    // Alone, the same input is bad input: nothing was attempted.
    expect(codex(cwd, ["store", "r", "/proc/self/status", "--commit", "c"]).code).toBe(2)
  })
})
