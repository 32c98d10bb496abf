import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, tempDir } from "./support.js"

/** A private copy of the bundle and its launcher, so the test sees only the code caches its own runs write. */
const bundleCopy = () => {
  const dir = tempDir()
  for (const name of ["codex.mjs", "codex.cjs"]) fs.copyFileSync(path.join(path.dirname(bin), name), path.join(dir, name))
  const run = (...args: Array<string>) => {
    const r = spawnSync(process.execPath, [path.join(dir, "codex.mjs"), "archive", ...args, "--help"], { cwd: dir, encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
  }
  /** Each code cache's name and digest. */
  const caches = () =>
    Object.fromEntries(
      fs.readdirSync(dir).filter((f) => f.endsWith(".v8cache")).map((f) => [f, createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex")])
    )
  return { run, caches }
}

describe("launcher", () => {
  it("keeps a code cache for batch restores (their V8 flags differ), so alternating commands never recompile the bundle", () => {
    const { caches, run } = bundleCopy()
    run("list")
    run("batch-restore")
    const first = caches()
    expect(Object.keys(first).sort()).toEqual([`.codex.cjs.${process.version}.batch-restore.v8cache`, `.codex.cjs.${process.version}.v8cache`])
    // V8 rejects a cache made under other flags and the launcher then rewrites it: equal bytes mean both were accepted.
    run("list")
    run("batch-restore")
    expect(caches()).toEqual(first)
  })
})
