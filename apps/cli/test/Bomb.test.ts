/**
 * A 1 GiB decompression bomb (a 32 KB zstd frame) in a 5-byte item's payload: `restore`, `verify`, `health-check` and
 * `batch-restore` each fail cleanly, naming the tombstone, under 128 MiB peak RSS (the bundled CLI, measured by
 * /usr/bin/time, which reports the largest process of the tree).
 */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { zstdZeros } from "../../../packages/core/test/bombs.js"
import { bin, evidence, listFiles, type Run, tempDir, write } from "./support.js"

const GiB = 1024 * 1024 * 1024
const peakLimitKiB = 128 * 1024

/** The test's environment without the developer's own CODEX_* settings. */
const ownEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_")))

/** Runs the CLI under /usr/bin/time: the run, and its peak resident set in KiB (time's last line on stderr). */
const measured = (cwd: string, args: ReadonlyArray<string>): Run & { readonly peakKiB: number } => {
  const r = spawnSync("/usr/bin/time", ["-q", "-f", "peak-rss-kib %M", process.execPath, bin, "archive", ...args], {
    cwd,
    env: { ...ownEnv(), CODEX_ACTOR: "tester" },
    encoding: "utf8"
  })
  const lines = r.stderr.trimEnd().split("\n")
  const peak = /^peak-rss-kib (\d+)$/.exec(lines.pop() ?? "")
  expect(peak, r.stderr).not.toBeNull()
  return { code: r.status ?? -1, stdout: r.stdout, stderr: lines.join("\n"), peakKiB: Number(peak![1]) }
}

/** Stores `five.txt` (and `count` other small files), then makes its payload 1 GiB of zeros; returns its tombstone. */
const bombed = (bomb: Buffer, count = 0) => {
  const cwd = tempDir()
  write(path.join(cwd, "tree/five.txt"), "hello")
  for (let i = 0; i < count; i++) write(path.join(cwd, `tree/d${i % 7}/f${i}.txt`), `file ${i}\n`)
  const r = measured(cwd, ["store", "acme/demo", "tree", "--commit", "c0ffee", "--manifest-out", "manifest.json"])
  expect(r.code, r.stderr).toBe(0)
  fs.rmSync(path.join(cwd, "tree"), { recursive: true })
  if (count > 0) {
    // A clean run first: the launcher's code cache for batch restores is then written, as after any first use (a
    // run without it compiles the bundle: ~20 MiB more, whatever the payloads).
    expect(measured(cwd, ["batch-restore", "manifest.json"]).code).toBe(0)
    fs.rmSync(path.join(cwd, "tree"), { recursive: true })
  }
  const manifest: Array<{ tombstone: string; output: string }> = JSON.parse(
    fs.readFileSync(path.join(cwd, "manifest.json"), "utf8")
  )
  const tombstone = manifest.find((e) => e.output.endsWith("five.txt"))!.tombstone
  const db = new Database(path.join(cwd, ".codex/archive.sqlite"))
  const item = "(SELECT artifact_id FROM item WHERE tombstone_id = ?)"
  db.prepare(`UPDATE artifact SET blob_bytes = ? WHERE id = ${item}`).run(bomb, tombstone)
  db.close()
  return { cwd, tombstone }
}

const undecodable = /cannot be decoded with codec 'zstd': .*the 5 (bytes )?its record allows/
const named = (tombstone: string) => new RegExp(`payload of tombstone ${tombstone} ${undecodable.source}`)

// A frame that states its 1 GiB (refused on sight), and one that does not (streamed until the 6th byte).
const frames = [["states its size", zstdZeros(GiB)], ["states no size", zstdZeros(GiB, "none")]] as const
describe.each(frames)("a 1 GiB bomb whose frame %s", (name, bomb) => {
  it("restore, verify and health-check fail cleanly, naming the tombstone, under 128 MiB peak RSS", () => {
    expect(bomb.length).toBeLessThan(40 * 1024)
    const { cwd, tombstone } = bombed(bomb)

    const restore = measured(cwd, ["restore", tombstone, "out/five.txt"])
    expect(restore.code).toBe(1)
    expect(restore.stderr.trim().split("\n")).toHaveLength(1)
    expect(restore.stderr).toMatch(named(tombstone))
    expect(listFiles(path.join(cwd, "out"))).toEqual([])
    const fails = evidence(cwd).filter((l) => l.action === "RESTORE_FAIL")
    expect(fails).toMatchObject([{ tombstone, error: "CorruptPayload" }])

    const verify = measured(cwd, ["verify", tombstone])
    expect(verify.code).toBe(1)
    const problems = JSON.parse(verify.stdout).problems
    expect(problems).toMatchObject([{ tombstones: [tombstone], problem: expect.stringMatching(undecodable) }])

    const health = measured(cwd, ["health-check"])
    expect(health.code).toBe(1)
    expect(health.stderr).toMatch(new RegExp(`sample: tombstone ${tombstone} .*${undecodable.source}`))

    for (const run of [restore, verify, health]) expect(run.peakKiB).toBeLessThan(peakLimitKiB)
    const peaks = `restore ${restore.peakKiB} KiB, verify ${verify.peakKiB} KiB, health-check ${health.peakKiB} KiB`
    console.log(`peak RSS, 1 GiB bomb whose frame ${name}: ${peaks}`)
  })

  it("batch-restore (300 items: workers that read the archive) fails the bomb alone, under 128 MiB peak RSS", () => {
    const { cwd, tombstone } = bombed(bomb, 300)
    const batch = measured(cwd, ["batch-restore", "manifest.json", "--results", "results.json"])
    expect(batch.code).toBe(1)
    const summary = JSON.parse(batch.stdout)
    expect(summary).toMatchObject({ total: 301, succeeded: 300, failed: 1 })
    expect(summary.results.find((r: { tombstone: string }) => r.tombstone === tombstone)).toMatchObject({
      status: "FAILED",
      error: "CorruptPayload",
      detail: expect.stringMatching(named(tombstone))
    })
    expect(fs.existsSync(path.join(cwd, "tree/five.txt"))).toBe(false)
    expect(listFiles(path.join(cwd, "tree")).filter((f) => f.includes(".codex-restore.tmp"))).toEqual([])
    expect(batch.peakKiB).toBeLessThan(peakLimitKiB)
    console.log(`peak RSS, 1 GiB bomb whose frame ${name}: batch-restore of 301 items ${batch.peakKiB} KiB`)
  })
})
