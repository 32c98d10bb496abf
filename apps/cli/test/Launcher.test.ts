import { RestoreWriter } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, tempDir } from "./support.js"

/** A private copy of the bundle and its launcher, so the test sees only the code caches its own runs write. */
const bundleCopy = () => {
  const dir = tempDir()
  for (const name of ["codex.mjs", "codex.cjs"]) {
    fs.copyFileSync(path.join(path.dirname(bin), name), path.join(dir, name))
  }
  // The bundle's native drivers stay outside it.
  fs.symlinkSync(path.resolve(path.dirname(bin), "../node_modules"), path.join(dir, "node_modules"))
  const run = (...args: Array<string>) => {
    const r = spawnSync(process.execPath, [path.join(dir, "codex.mjs"), "archive", ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, CODEX_ACTOR: "tester" },
      // A store's report of thousands of files is megabytes.
      maxBuffer: 64 * 1024 * 1024
    })
    expect(r.status, r.stderr).toBe(0)
  }
  /** Each code cache's name and digest. */
  const caches = () =>
    Object.fromEntries(
      fs.readdirSync(dir).filter((f) => f.endsWith(".v8cache")).map((
        f
      ) => [f, createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex")])
    )
  return { dir, run, caches }
}

describe("launcher", () => {
  it("keeps a code cache for batch restores and for stores (their V8 flags differ), so alternating commands never recompile the bundle", () => {
    const { caches, run } = bundleCopy()
    const commands = [["list", "--help"], ["batch-restore", "--help"], ["store", "--help"]]
    for (const args of commands) run(...args)
    const first = caches()
    expect(Object.keys(first).sort()).toEqual([
      `.codex.cjs.${process.version}.batch-restore.v8cache`,
      `.codex.cjs.${process.version}.store.v8cache`,
      `.codex.cjs.${process.version}.v8cache`
    ])
    // V8 rejects a cache made under other flags and the launcher then rewrites it: equal bytes mean all were accepted.
    for (const args of [...commands, ...commands.reverse()]) run(...args)
    expect(caches()).toEqual(first)
  })

  it("a store's code cache keeps the start-up code after a long first store, as after a short one", () => {
    // A long store's collections flushed the bytecode of code run only at start, so the cache it wrote lacked it (1.85
    // against 2.56 MB) and every later store compiled it again, peaking ~17 MiB higher.
    const { dir, run } = bundleCopy()
    const cacheFile = path.join(dir, `.codex.cjs.${process.version}.store.v8cache`)
    fs.mkdirSync(path.join(dir, "short"))
    fs.writeFileSync(path.join(dir, "short/a.txt"), "a\n")
    run("store", "r", "short", "--commit", "c")
    const short = fs.statSync(cacheFile).size
    fs.rmSync(cacheFile)
    // 5,000 files of 2.7-9.3 KB that barely compress: enough collections to age the start-up code.
    for (let d = 0; d < 50; d++) {
      fs.mkdirSync(path.join(dir, "long", `d${d}`), { recursive: true })
      for (let i = 0; i < 100; i++) {
        fs.writeFileSync(path.join(dir, "long", `d${d}`, `f${i}.txt`), randomBytes(2000 + i * 50).toString("base64"))
      }
    }
    run("store", "r", "long", "--commit", "c")
    expect(fs.statSync(cacheFile).size).toBeGreaterThanOrEqual(Math.floor(short * 0.97))
  })

  it("sets, before the bundle is compiled, every process-wide V8 flag a batch restore's workers set", () => {
    // Heap bounds (passed to workers) and the collector a worker reading the archive exposes: set first by a worker,
    // a flag changed V8's flags mid-run and the code cache written at exit was rejected at every later start.
    const launcher = fs.readFileSync(path.join(path.dirname(bin), "codex.mjs"), "utf8")
    const compiled = launcher.indexOf("new vm.Script(")
    expect(compiled).toBeGreaterThan(0)
    for (const flag of [...RestoreWriter.heapFlags, "--expose-gc"]) {
      const set = launcher.indexOf(`v8.setFlagsFromString("${flag}")`)
      expect(set, flag).toBeGreaterThan(0)
      expect(set, flag).toBeLessThan(compiled)
    }
    expect(fs.readFileSync(path.resolve(__dirname, "../../../packages/core/src/RestoreWriter.ts"), "utf8")).toContain(
      `setFlagsFromString("--expose-gc")`
    )
  })

  it("ships a bundle of one-byte characters, which V8 holds at half the size of a two-byte source", () => {
    const source = fs.readFileSync(path.join(path.dirname(bin), "codex.cjs"), "utf8")
    const wide = [...source].filter((c) => c.charCodeAt(0) > 0xff)
    expect(wide).toEqual([])
    // The escape kept the meaning of what it replaced (mysql2's test for characters it must substitute).
    expect(source).toContain("/[\\u0080-\\uffff]/")
  })
})
