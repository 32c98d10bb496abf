import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, codex, evidence, listFiles, tempDir, write } from "./support.js"

/** `count` files of distinct, barely compressible content under `cwd/tree`, stored with a manifest next to them. */
const storedTree = (count: number, size = 200, options: { readonly stubs?: boolean } = {}) => {
  const cwd = tempDir()
  const originals = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const rel = `tree/d${i % 9}/f${i}.bin`
    const bytes = Buffer.alloc(size + (i % 17))
    let x = (i + 1) * 2654435761
    for (let j = 0; j < bytes.length; j++) {
      x = (x ^ (x << 13) ^ (x >>> 17) ^ (x << 5)) >>> 0
      bytes[j] = x & 0xff
    }
    write(path.join(cwd, rel), bytes)
    originals.set(rel, bytes)
  }
  const r = codex(cwd, [
    "store",
    "acme/demo",
    "tree",
    "--commit",
    "c0ffee",
    "--manifest-out",
    "manifest.json",
    ...(options.stubs ? ["--write-stub"] : [])
  ])
  expect(r.code, r.stderr).toBe(0)
  if (!options.stubs) fs.rmSync(path.join(cwd, "tree"), { recursive: true })
  return {
    cwd,
    originals,
    manifest: JSON.parse(fs.readFileSync(path.join(cwd, "manifest.json"), "utf8")) as Array<
      { tombstone: string; output: string; sha256: string }
    >
  }
}

const sameBytes = (cwd: string, originals: ReadonlyMap<string, Buffer>) => {
  for (const [rel, bytes] of originals) expect(fs.readFileSync(path.join(cwd, rel)).equals(bytes), rel).toBe(true)
}

/** Every file at an output is either absent or exactly the original: never partial, never unverified. */
const nothingPartial = (cwd: string, originals: ReadonlyMap<string, Buffer>) => {
  let present = 0
  for (const [rel, bytes] of originals) {
    const file = path.join(cwd, rel)
    if (!fs.existsSync(file)) continue
    present++
    expect(createHash("sha256").update(fs.readFileSync(file)).digest("hex"), rel).toBe(
      createHash("sha256").update(bytes).digest("hex")
    )
  }
  return present
}

const temps = (cwd: string) => listFiles(cwd).filter((f) => f.includes(".codex-restore.tmp"))

describe("batch-restore", () => {
  it("restores a manifest written by store --manifest-out: exit 0, summary on stdout, results file, evidence", () => {
    const { cwd, originals } = storedTree(25)
    const r = codex(cwd, ["batch-restore", "manifest.json", "--results", "results.json", "--concurrency", "3"], {
      CODEX_ARCHIVE_BATCH_PROGRESS: "10"
    })
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout)
    expect(summary).toMatchObject({ total: 25, succeeded: 25, failed: 0 })
    expect(Object.keys(summary.latency_ms)).toEqual(["p50", "p95", "p99"])
    expect(summary.throughput.files_per_s).toBeGreaterThan(0)
    expect(r.stderr).toContain("[BATCH] 10/25 SUCCESS")
    expect(r.stderr).toContain("[BATCH] 25/25 SUCCESS")
    sameBytes(cwd, originals)
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "results.json"), "utf8")).results).toHaveLength(25)
    const lines = evidence(cwd)
    expect(lines.filter((l) => l.action === "RESTORE")).toHaveLength(25)
    expect(lines.filter((l) => l.action === "RESTORE_BATCH")).toMatchObject([{
      status: "SUCCESS",
      total: 25,
      actor: "tester"
    }])
  })

  it("CSV and JSON Lines manifests, CSV results; a second run finds everything unchanged", () => {
    const { cwd, manifest, originals } = storedTree(6)
    write(
      path.join(cwd, "m.csv"),
      "output,tombstone,actor\n" +
        manifest.map((m, i) => `"${m.output}",${m.tombstone},${i % 2 ? "carol" : ""}`).join("\n") + "\n"
    )
    const r = codex(cwd, ["batch-restore", "m.csv", "--results", "r.csv"])
    expect(r.code, r.stderr).toBe(0)
    sameBytes(cwd, originals)
    const csv = fs.readFileSync(path.join(cwd, "r.csv"), "utf8").trim().split("\n")
    expect(csv[0]).toBe("tombstone,output,actor,status,duration_ms,bytes,sha256,error,detail")
    expect(csv.slice(1).map((l) => l.split(",")[3])).toEqual(Array(6).fill("SUCCESS"))
    expect(csv[2]).toContain(",carol,")
    write(
      path.join(cwd, "m.jsonl"),
      manifest.map((m) => JSON.stringify({ tombstone: m.tombstone, output: m.output })).join("\n")
    )
    const again = codex(cwd, ["batch-restore", "m.jsonl"])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ total: 6, succeeded: 0, unchanged: 6 })
  })

  it("restores a tree of stubs in place", () => {
    const { cwd, originals } = storedTree(12, 100, { stubs: true })
    expect(fs.readFileSync(path.join(cwd, "tree/d0/f0.bin"), "utf8")).toContain("TOMBSTONE ARCHIVE STUB")
    const r = codex(cwd, ["batch-restore", "--stubs", "tree", "--by", "ops"])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 12, succeeded: 12 })
    sameBytes(cwd, originals)
  })

  it("a malformed manifest is bad input: exit 2, one line naming file and place, nothing restored", () => {
    const { cwd, manifest } = storedTree(3)
    const cases: ReadonlyArray<[string, string, RegExp]> = [
      [
        "bad.json",
        `[{"tombstone":"${manifest[0]!.tombstone}","output":"../escape"}]`,
        /bad\.json \(entry 1\): output '\.\.\/escape' is outside the manifest's folder/
      ],
      [
        "bad.jsonl",
        `{"tombstone":"${manifest[0]!.tombstone}","output":"a"}\n{oops\n`,
        /bad\.jsonl \(line 2\): invalid JSON/
      ],
      [
        "bad.csv",
        `tombstone,output\n${manifest[0]!.tombstone},a\n${manifest[1]!.tombstone},a\n`,
        /bad\.csv \(line 3\): output .* is also the output of line 2/
      ],
      ["missing.json", "", /missing\.json: no such file/]
    ]
    for (const [name, text, pattern] of cases) {
      if (text !== "") write(path.join(cwd, name), text)
      const r = codex(cwd, ["batch-restore", name])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
      expect(r.stderr).toMatch(pattern)
      expect(r.stdout).toBe("")
    }
    expect(codex(cwd, ["batch-restore"]).code).toBe(2)
    expect(listFiles(path.join(cwd, "tree"))).toEqual([])
    expect(evidence(cwd).filter((l) => String(l.action).startsWith("RESTORE"))).toEqual([])
  })

  it("a failed item: exit 1, summary still on stdout; --resume then restores only what is missing", () => {
    const { cwd, manifest, originals } = storedTree(10)
    fs.mkdirSync(path.join(cwd, manifest[4]!.output), { recursive: true })
    const r = codex(cwd, ["batch-restore", "manifest.json", "--results", "results.json"])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 10, succeeded: 9, failed: 1 })
    expect(r.stderr).toContain(`[BATCH] 5/10 FAILED ${manifest[4]!.tombstone}`)
    expect(evidence(cwd).filter((l) => l.action === "RESTORE_FAIL")).toHaveLength(1)
    fs.rmdirSync(path.join(cwd, manifest[4]!.output))
    const again = codex(cwd, [
      "batch-restore",
      "manifest.json",
      "--results",
      "results.json",
      "--resume",
      "results.json"
    ])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ total: 10, succeeded: 1, skipped: 9, failed: 0 })
    sameBytes(cwd, originals)
  })

  it("a hostile --resume results record is refused: one line naming the file, the line and the field, nothing restored", () => {
    const { cwd, manifest } = storedTree(4)
    const ok = codex(cwd, ["batch-restore", "manifest.json", "--results", "results.csv"])
    expect(ok.code, ok.stderr).toBe(0)
    for (const rel of manifest.map((e) => e.output)) fs.rmSync(path.join(cwd, rel))
    const csv = fs.readFileSync(path.join(cwd, "results.csv"), "utf8").split("\n")
    csv[2] = csv[2]!.replace(manifest[1]!.tombstone, "../../etc/passwd")
    write(path.join(cwd, "hostile.csv"), csv.join("\n"))
    const done = { tombstone: manifest[0]!.tombstone, output: "x", actor: "a", status: "SUCCESS", bytes: 1 }
    write(
      path.join(cwd, "hostile.json"),
      `{\n  "results": [\n    ${JSON.stringify(done)},\n    ${JSON.stringify({ ...done, status: "DONE" })}\n  ]\n}\n`
    )
    const json = fs.readFileSync(path.join(cwd, "manifest.json"), "utf8")
    const cases: ReadonlyArray<[string, RegExp]> = [
      [
        "hostile.csv",
        /results file \S*hostile\.csv \(line 3\): tombstone: '\.\.\/\.\.\/etc\/passwd' is not a tombstone id/
      ],
      ["hostile.json", /results file \S*hostile\.json \(line 4\): status: expected one of SUCCESS, UNCHANGED/]
    ]
    for (const [file, message] of cases) {
      const r = codex(cwd, ["batch-restore", "manifest.json", "--resume", file])
      expect(r.code).toBe(2)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
      expect(r.stderr).toMatch(message)
      expect(listFiles(path.join(cwd, "tree"))).toEqual([])
    }
    expect(fs.readFileSync(path.join(cwd, "manifest.json"), "utf8")).toBe(json)
  })

  it("an output that is a link to a file holding the content is no unchanged output: refused, or replaced with --force", () => {
    // Called unchanged before, even with --force: the output stayed a link out of the folder, to a file its owner
    // could change at any later time.
    const { cwd, manifest, originals } = storedTree(2)
    const outside = tempDir()
    const [first, second] = manifest
    const target = path.join(outside, "held.bin")
    write(target, originals.get(first!.output)!)
    fs.mkdirSync(path.dirname(path.join(cwd, first!.output)), { recursive: true })
    fs.symlinkSync(target, path.join(cwd, first!.output))
    write(path.join(cwd, "one.json"), JSON.stringify([first]))
    const refused = codex(cwd, ["batch-restore", "one.json"])
    expect(refused.code, refused.stderr).toBe(1)
    expect(JSON.parse(refused.stdout).results[0]).toMatchObject({
      status: "FAILED",
      detail: expect.stringContaining("output is a symbolic link (use --force to replace the link itself")
    })
    expect(fs.lstatSync(path.join(cwd, first!.output)).isSymbolicLink()).toBe(true)
    const forced = codex(cwd, ["batch-restore", "manifest.json", "--force"])
    expect(forced.code, forced.stderr).toBe(0)
    expect(JSON.parse(forced.stdout)).toMatchObject({ total: 2, succeeded: 2, unchanged: 0 })
    expect(fs.lstatSync(path.join(cwd, first!.output)).isFile()).toBe(true)
    sameBytes(cwd, originals)
    // What the link led to is left as it was.
    expect(fs.readFileSync(target).equals(originals.get(first!.output)!)).toBe(true)
    expect(second).toBeDefined()
  })

  it("--fail-fast stops at the first failure", () => {
    const { cwd, manifest } = storedTree(8)
    fs.mkdirSync(path.join(cwd, manifest[2]!.output), { recursive: true })
    const r = codex(cwd, ["batch-restore", "manifest.json", "--fail-fast"])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).results.map((x: { status: string }) => x.status)).toEqual([
      "SUCCESS",
      "SUCCESS",
      "FAILED",
      ...Array(5).fill("NOT_RUN")
    ])
  })

  it("--dry-run checks every tombstone and output and writes nothing", () => {
    const { cwd, manifest } = storedTree(5)
    const before = evidence(cwd).length
    const ok = codex(cwd, ["batch-restore", "manifest.json", "--dry-run", "--results", "results.json"])
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ dry_run: true, total: 5, restorable: 5, failed: 0 })
    write(
      path.join(cwd, "m.json"),
      JSON.stringify([...manifest, { tombstone: "0f0f0f0f-0000-4000-8000-000000000000", output: "ghost" }])
    )
    const bad = codex(cwd, ["batch-restore", "m.json", "--dry-run"])
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.stdout).results[5]).toMatchObject({ status: "FAILED", error: "TombstoneNotFound" })
    expect(listFiles(cwd).sort()).toEqual(
      [".codex/archive.sqlite", ".codex/evidence/archive_ops.jsonl", "m.json", "manifest.json"].sort().filter((f) =>
        fs.existsSync(path.join(cwd, f))
      )
    )
    expect(fs.existsSync(path.join(cwd, "tree"))).toBe(false)
    expect(evidence(cwd).length).toBe(before)
  })
})

const cleanEnv = () => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_"))),
  CODEX_ACTOR: "tester"
})

/** Like `codex`, for big batches: the summary of thousands of items is larger than spawnSync's default buffer. */
const codexBig = (cwd: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [bin, "archive", ...args], {
    cwd,
    env: cleanEnv(),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Spawns a batch and resolves once stderr reports `after` items done (and `ready` holds); then `signal` is sent. */
const interruptMidway = (
  cwd: string,
  args: ReadonlyArray<string>,
  after: number,
  signal: NodeJS.Signals,
  ready: () => boolean = () => true,
  stdoutTo?: number
) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; sentAt: number }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [bin, "archive", ...args], {
        cwd,
        env: { ...cleanEnv(), CODEX_ARCHIVE_BATCH_PROGRESS: "25" },
        stdio: ["pipe", stdoutTo ?? "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let sentAt = -1
      child.stdout?.on("data", (d) => (stdout += d))
      child.stderr!.on("data", (d) => {
        stderr += d
        const done = [...stderr.matchAll(/\[BATCH\] (\d+)\//g)].map((m) => Number(m[1]))
        if (sentAt < 0 && done.length > 0 && done[done.length - 1]! >= after && ready()) {
          sentAt = done[done.length - 1]!
          child.kill(signal)
        }
      })
      child.on("error", reject)
      child.on("close", (code, sig) => resolve({ code, signal: sig, stdout, stderr, sentAt }))
    }
  )

/** A batch that resumes from its own results file and writes them again there. */
const resumeInPlace = ["batch-restore", "manifest.json", "--results", "results.json", "--resume", "results.json"]

describe("batch-restore interrupted", () => {
  it("SIGKILL mid-batch leaves no partial or unverified output; --resume finishes the job", async () => {
    const { cwd, originals } = storedTree(2500, 6000)
    // The results file is rewritten every few hundred milliseconds or more: kill once it records some done items,
    // so resume has some to skip.
    const recorded = () => {
      try {
        return (JSON.parse(fs.readFileSync(path.join(cwd, "results.json"), "utf8")) as { succeeded: number })
          .succeeded > 0
      } catch {
        return false
      }
    }
    const killed = await interruptMidway(
      cwd,
      ["batch-restore", "manifest.json", "--results", "results.json"],
      300,
      "SIGKILL",
      recorded
    )
    expect(killed.signal).toBe("SIGKILL")
    expect(killed.sentAt).toBeGreaterThan(0)
    const present = nothingPartial(cwd, originals)
    expect(present).toBeGreaterThanOrEqual(300)
    expect(present).toBeLessThan(2500)
    const resumed = codexBig(cwd, resumeInPlace)
    expect(resumed.code, resumed.stderr).toBe(0)
    const summary = JSON.parse(resumed.stdout)
    expect(summary.failed).toBe(0)
    expect(summary.skipped + summary.succeeded + summary.unchanged).toBe(2500)
    expect(summary.skipped).toBeGreaterThan(0)
    sameBytes(cwd, originals)
    expect(temps(cwd)).toEqual([])
  }, 180_000)

  // Found by an attack review: interrupted with a full stdout, the batch said "codex: error:" twice (the summary it
  // could not print, then "interrupted"). One error line says why it stopped; the summary's fate is said above it.
  it("SIGTERM with stdout full: one error line (interrupted), the unprinted summary said above it, results saved", async () => {
    const { cwd } = storedTree(2500, 6000)
    const full = fs.openSync("/dev/full", "w")
    const stopped = await interruptMidway(
      cwd,
      ["batch-restore", "manifest.json", "--results", "results.json"],
      300,
      "SIGTERM",
      () => true,
      full
    ).finally(() => fs.closeSync(full))
    expect(stopped.code, stopped.stderr).toBe(130)
    const lines = stopped.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("[BATCH] "))
    expect(lines.filter((l) => l.startsWith("codex: error:")), stopped.stderr).toEqual(["codex: error: interrupted"])
    expect(lines.at(-1)).toBe("codex: error: interrupted")
    expect(lines.some((l) => /^batch-restore: \d+ restored, .* cannot write to stdout: ENOSPC/.test(l)), stopped.stderr)
      .toBe(true)
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "results.json"), "utf8"))).toMatchObject({ interrupted: true })
  })

  // SIGHUP (the terminal or SSH session gone) as SIGTERM: it ended the process at once (129), no reason line, temporary
  // files left and a results file far behind what was restored.
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    it(`${signal} stops launching, saves results and exits non-zero; --resume finishes the job`, async () => {
      const { cwd, originals } = storedTree(2500, 6000)
      const stopped = await interruptMidway(
        cwd,
        ["batch-restore", "manifest.json", "--results", "results.json"],
        300,
        signal
      )
      expect(stopped.code).not.toBe(0)
      expect(stopped.stderr).toContain("interrupted")
      expect(stopped.signal).toBe(null)
      expect(stopped.stderr.trimEnd().split("\n").at(-1)).toBe("codex: error: interrupted")
      const summary = JSON.parse(stopped.stdout)
      expect(summary).toMatchObject({ interrupted: true, in_progress: false, failed: 0 })
      expect(summary.not_run).toBeGreaterThan(0)
      expect(JSON.parse(fs.readFileSync(path.join(cwd, "results.json"), "utf8"))).toMatchObject({
        interrupted: true,
        succeeded: summary.succeeded
      })
      expect(nothingPartial(cwd, originals)).toBe(summary.succeeded)
      expect(temps(cwd)).toEqual([])
      expect(evidence(cwd).filter((l) => l.action === "RESTORE")).toHaveLength(summary.succeeded)
      expect(evidence(cwd).filter((l) => l.action === "RESTORE_BATCH")).toMatchObject([{ status: "INTERRUPTED" }])
      const resumed = codexBig(cwd, resumeInPlace)
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(JSON.parse(resumed.stdout)).toMatchObject({
        skipped: summary.succeeded,
        succeeded: 2500 - summary.succeeded
      })
      sameBytes(cwd, originals)
    }, 180_000)
  }
})
