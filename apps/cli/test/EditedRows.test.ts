/** An archive edited behind the tool's back: rows pointed at other content, payloads of the wrong type. */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, evidence, tamper, tempDir, write } from "./support.js"

/** `t/one.txt` and `t/two.txt` stored with stubs and a manifest (`t/m.json`), as the attack review's setup. */
const archived = () => {
  const cwd = tempDir()
  write(path.join(cwd, "t/one.txt"), "file one\n")
  write(path.join(cwd, "t/two.txt"), "file two\n")
  const r = codex(cwd, ["store", "r", "t", "--commit", "a", "--write-stub", "--manifest-out", "t/m.json"])
  expect(r.code, r.stderr).toBe(0)
  const manifest = JSON.parse(fs.readFileSync(path.join(cwd, "t/m.json"), "utf8")) as Array<
    { tombstone: string; output: string; sha256: string }
  >
  const [one, two] = ["one.txt", "two.txt"].map((o) => manifest.find((e) => e.output === o)!)
  return { cwd, one: one!, two: two! }
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("codex: error:"))

/** Points one's item at two's artifact; with `forged`, its metadata records no digest (as an original's item). */
const repoint = (cwd: string, from: string, to: string, forged = false) =>
  tamper(
    cwd,
    `UPDATE item SET artifact_id = (SELECT artifact_id FROM item WHERE tombstone_id = ?)${
      forged ? ", metadata = '{}'" : ""
    } WHERE tombstone_id = ?`,
    to,
    from
  )

describe("an item row pointed at another item's content", () => {
  it("restore, batch-restore and verify refuse it, naming both digests and where each comes from", () => {
    const { cwd, one, two } = archived()
    repoint(cwd, one.tombstone, two.tombstone)
    const stub = fs.readFileSync(path.join(cwd, "t/one.txt"), "utf8")
    const single = codex(cwd, ["restore", one.tombstone, "t/one.txt"])
    expect(single.code).toBe(1)
    expect(errorLines(single.stderr)).toHaveLength(1)
    expect(errorLines(single.stderr)[0]).toMatch(
      new RegExp(
        `^codex: error: tombstone ${one.tombstone}: the item's metadata \\(metadata\\.sha256\\) gives sha256 ` +
          `${one.sha256}, but its artifact \\S+ holds content with sha256 ${two.sha256} \\(content_sha256\\)$`
      )
    )
    expect(fs.readFileSync(path.join(cwd, "t/one.txt"), "utf8")).toBe(stub)
    const fail = evidence(cwd).filter((l) => l.action === "RESTORE_FAIL").at(-1)!
    expect(fail.tombstone).toBe(one.tombstone)

    const batch = codex(cwd, ["batch-restore", "t/m.json", "--results", "r.json", "--force"])
    expect(batch.code).toBe(1)
    const results = JSON.parse(fs.readFileSync(path.join(cwd, "r.json"), "utf8")).results as Array<
      Record<string, string>
    >
    expect(results.map((r) => [r.tombstone, r.status])).toEqual([[one.tombstone, "FAILED"], [two.tombstone, "SUCCESS"]])
    expect(results[0]!.error).toBe("ContentMismatch")
    expect(results[0]!.detail).toContain(`gives sha256 ${one.sha256}`)
    expect(fs.readFileSync(path.join(cwd, "t/one.txt"), "utf8")).toBe(stub)

    const verify = codex(cwd, ["verify"])
    expect(verify.code).toBe(1)
    const report = JSON.parse(verify.stdout)
    expect(report.problems.map((p: { tombstones: Array<string> }) => p.tombstones)).toEqual([[one.tombstone]])
    expect(codex(cwd, ["verify", one.tombstone]).code).toBe(1)
    expect(codex(cwd, ["verify", two.tombstone]).code).toBe(0)
  })

  it("with its metadata forged too, the stub's and the manifest's SHA-256 still refuse it", () => {
    const { cwd, one, two } = archived()
    repoint(cwd, one.tombstone, two.tombstone, true)
    const stub = fs.readFileSync(path.join(cwd, "t/one.txt"), "utf8")
    const single = codex(cwd, ["restore", "t/one.txt"])
    expect(single.code).toBe(1)
    expect(errorLines(single.stderr)).toHaveLength(1)
    expect(errorLines(single.stderr)[0]).toMatch(
      new RegExp(
        `^codex: error: tombstone ${one.tombstone}: stub t/one.txt gives sha256 ${one.sha256}, but its artifact \\S+ ` +
          `holds content with sha256 ${two.sha256} \\(content_sha256\\)$`
      )
    )
    const describe = codex(cwd, ["restore", "t/one.txt", "--out", "-"])
    expect(describe.code).toBe(1)
    expect(describe.stderr).toContain(`stub t/one.txt gives sha256 ${one.sha256}`)
    for (const args of [["t/m.json"], ["--stubs", "t"]]) {
      const batch = codex(cwd, ["batch-restore", ...args, "--results", "r.json"])
      expect(batch.code).toBe(1)
      const [first] = JSON.parse(fs.readFileSync(path.join(cwd, "r.json"), "utf8")).results as Array<
        Record<string, string>
      >
      expect([first!.tombstone, first!.status, first!.error]).toEqual([one.tombstone, "FAILED", "ContentMismatch"])
      expect(first!.detail).toContain(
        args[0] === "--stubs" ? `stub ${path.join(fs.realpathSync(cwd), "t/one.txt")}` : "manifest"
      )
      const dry = codex(cwd, ["batch-restore", ...args, "--dry-run"])
      expect(dry.code).toBe(1)
      expect(dry.stdout).toContain("ContentMismatch")
    }
    expect(fs.readFileSync(path.join(cwd, "t/one.txt"), "utf8")).toBe(stub)
    // Without a stub or manifest, an item that records no digest is the original's: restored as its row says.
    expect(codex(cwd, ["restore", one.tombstone, "x.txt"]).code).toBe(0)
  })
})

describe("a payload stored as text", () => {
  it("fails restore and batch-restore without quoting it anywhere, and verify lists it and goes on", () => {
    const { cwd, one, two } = archived()
    tamper(
      cwd,
      "UPDATE artifact SET blob_bytes = CAST(blob_bytes AS TEXT) WHERE id = (SELECT artifact_id FROM item WHERE tombstone_id = ?)",
      one.tombstone
    )
    const single = codex(cwd, ["restore", one.tombstone, "out.txt"])
    expect(single.code).toBe(1)
    expect(errorLines(single.stderr)).toHaveLength(1)
    expect(errorLines(single.stderr)[0]).toMatch(/column blob_bytes: expected bytes, got text of \d+ bytes$/)
    const batch = codex(cwd, ["batch-restore", "t/m.json", "--results", "r.json", "--force"])
    expect(batch.code).toBe(1)
    const [first] = JSON.parse(fs.readFileSync(path.join(cwd, "r.json"), "utf8")).results as Array<
      Record<string, string>
    >
    expect([first!.tombstone, first!.status]).toEqual([one.tombstone, "FAILED"])
    const fails = evidence(cwd).filter((l) => l.action === "RESTORE_FAIL")
    expect(fails.length).toBeGreaterThan(0)
    for (const text of [single.stderr, batch.stdout, batch.stderr, JSON.stringify(first), JSON.stringify(fails)]) {
      expect(text).not.toContain("file one")
    }
    const verify = codex(cwd, ["verify"])
    expect(verify.code).toBe(1)
    const report = JSON.parse(verify.stdout)
    expect(report).toMatchObject({ checked: 2, ok: 1 })
    expect(report.problems).toEqual([expect.objectContaining({ tombstones: [one.tombstone] })])
    expect(report.problems[0].problem).toMatch(
      /^malformed row: table artifact, row \S+: column blob_bytes: expected bytes, got text of \d+ bytes$/
    )
    expect(codex(cwd, ["restore", two.tombstone, "two.out"]).code).toBe(0)
  })
})

describe("batch-restore --dry-run over rows a real run would refuse", () => {
  it("reports an unknown codec and a negative size as not restorable, naming each, and checks the rest", () => {
    const { cwd, one, two } = archived()
    const artifactOf = "(SELECT artifact_id FROM item WHERE tombstone_id = ?)"
    tamper(cwd, `UPDATE artifact SET compression = 'gzip' WHERE id = ${artifactOf}`, one.tombstone)
    tamper(cwd, `UPDATE artifact SET size_bytes = -1 WHERE id = ${artifactOf}`, two.tombstone)
    const dry = codex(cwd, ["batch-restore", "t/m.json", "--dry-run", "--force"])
    expect(dry.code).toBe(1)
    const report = JSON.parse(dry.stdout)
    expect(report).toMatchObject({ total: 2, restorable: 0, failed: 2 })
    expect(report.results.map((r: Record<string, string>) => [r.tombstone, r.status, r.error])).toEqual([
      [one.tombstone, "FAILED", "UnknownCodec"],
      [two.tombstone, "FAILED", "StoreError"]
    ])
    expect(report.results[0].detail).toBe("unsupported compression codec 'gzip' (this archive can read: zstd, zlib)")
    expect(report.results[1].detail).toMatch(/column size_bytes: expected a non-negative integer, got -1$/)
  })
})
