import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, codexUnprivileged, evidence, fixture, listFiles, tamper, tempDir, write } from "./support.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** A tree with the awkward cases: binary, empty, non-ASCII, deep nesting, executables, duplicates, a large file. */
const makeTree = (root: string) => {
  write(path.join(root, "bin.dat"), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff)))
  write(path.join(root, "empty"), "")
  write(path.join(root, "ünïcødé/日本語.txt"), "こんにちは\n")
  write(path.join(root, "a/b/c/d/e/f/g/deep.py"), "print('deep')\n")
  write(path.join(root, "tool.sh"), "#!/bin/sh\necho ok\n", 0o755)
  write(path.join(root, "dup1.txt"), "same\n")
  write(path.join(root, "x/dup2.txt"), "same\n")
  const big = Buffer.alloc(5 * 1024 * 1024 + 123)
  for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i)
  write(path.join(root, "big.bin"), big)
}

const snapshot = (root: string) =>
  new Map(
    listFiles(root).map((
      f
    ) => [f, { sha: sha(fs.readFileSync(path.join(root, f))), mode: fs.statSync(path.join(root, f)).mode & 0o777 }])
  )

describe("store and restore", () => {
  it("round-trips a generated tree through stubs, byte for byte, modes kept, with evidence", () => {
    const cwd = tempDir()
    makeTree(path.join(cwd, "tree"))
    const before = snapshot(path.join(cwd, "tree"))
    const stored = codex(cwd, [
      "store",
      "acme/app",
      "tree",
      "--commit",
      "c0ffee",
      "--write-stub",
      "--manifest-out",
      "restore.json",
      "--tag",
      "t1"
    ])
    expect(stored.stderr).toBe("")
    expect(stored.code).toBe(0)
    const report = JSON.parse(stored.stdout)
    expect(report.stored).toBe(before.size)
    expect(report.deduplicated).toBe(1)
    for (const f of before.keys()) {
      expect(fs.readFileSync(path.join(cwd, "tree", f), "utf8")).toContain("TOMBSTONE ARCHIVE STUB")
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(cwd, "restore.json"), "utf8")) as Array<
      { tombstone: string; output: string }
    >
    for (const item of manifest) {
      // Restoring a stub in place, as an operator would from the stub's own instructions.
      const r = codex(cwd, ["restore", item.output])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim()).toBe(path.join(cwd, item.output))
    }
    expect(snapshot(path.join(cwd, "tree"))).toEqual(before)
    const lines = evidence(cwd)
    expect(lines.filter((l) => l.action === "ARCHIVE")).toHaveLength(before.size)
    const restores = lines.filter((l) => l.action === "RESTORE")
    expect(restores).toHaveLength(before.size)
    for (const r of restores) {
      for (const k of ["duration_ms", "fetch_ms", "decompression_ms", "write_ms", "ts", "actor", "tombstone"]) {
        expect(r).toHaveProperty(k)
      }
    }
    const raw = fs.readFileSync(path.join(cwd, ".codex/evidence/archive_ops.jsonl"), "utf8").trim().split("\n")
    for (const line of raw) expect(Object.keys(JSON.parse(line))).toEqual(Object.keys(JSON.parse(line)).sort())
  })

  it("store of a single file prints the original tool's JSON, and show/list find it", () => {
    const cwd = tempDir()
    write(path.join(cwd, "old.py"), "x = 1\n")
    const r = codex(cwd, [
      "store",
      "acme/app",
      "old.py",
      "--commit",
      "abc",
      "--by",
      "alice",
      "--metadata",
      "owner=team-a",
      "--reason",
      "legacy"
    ])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining(["tombstone", "sha256", "size_bytes", "compressed_size", "repo", "path"])
    )
    expect(out.path).toBe("old.py")
    const shown = JSON.parse(codex(cwd, ["show", out.tombstone]).stdout)
    expect(shown.archived_by).toBe("alice")
    expect(shown.metadata.owner).toBe("team-a")
    expect(shown.events.map((e: { action: string }) => e.action)).toEqual(["ARCHIVE"])
    const listed = JSON.parse(codex(cwd, ["list", "--repo", "acme/app"]).stdout)
    expect(listed[0].tombstone_id).toBe(out.tombstone)
    expect(JSON.parse(codex(cwd, ["list", "--repo", "other"]).stdout)).toEqual([])
  })

  it("an identical existing file is unchanged; a different one is refused without --force", () => {
    const cwd = tempDir()
    write(path.join(cwd, "f.txt"), "v1\n")
    const t = JSON.parse(codex(cwd, ["store", "r", "f.txt", "--commit", "x"]).stdout).tombstone
    const same = codex(cwd, ["restore", t, "f.txt"])
    expect(same.code).toBe(0)
    expect(same.stderr).toContain("nothing written")
    write(path.join(cwd, "f.txt"), "local edits\n")
    const refused = codex(cwd, ["restore", t, "f.txt"])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/f\.txt: output exists with different content \(use --force/)
    expect(fs.readFileSync(path.join(cwd, "f.txt"), "utf8")).toBe("local edits\n")
    expect(codex(cwd, ["restore", t, "f.txt", "--force"]).code).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "f.txt"), "utf8")).toBe("v1\n")
  })

  it("restores every tombstone of the original tool's archive; the purged one fails cleanly", () => {
    const cwd = tempDir()
    fs.mkdirSync(path.join(cwd, ".codex"))
    fs.copyFileSync(path.join(fixture, "archive.sqlite"), path.join(cwd, ".codex/archive.sqlite"))
    const expected = JSON.parse(fs.readFileSync(path.join(fixture, "expected.json"), "utf8")) as Record<
      string,
      { path: string; expect: string }
    >
    for (const [tombstone, e] of Object.entries(expected)) {
      const r = codex(cwd, ["restore", tombstone, path.join("out", e.path)])
      if (e.expect === "restore") {
        expect(r.code, r.stderr).toBe(0)
        expect(fs.readFileSync(path.join(cwd, "out", e.path))).toEqual(
          fs.readFileSync(path.join(fixture, "originals", e.path))
        )
      } else {
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(/purged/)
        expect(fs.existsSync(path.join(cwd, "out", e.path))).toBe(false)
      }
    }
    expect(codex(cwd, ["verify"]).code).toBe(0)
  })

  it("purge keeps shared artifacts, honours legal hold and needs two distinct approvers", () => {
    const cwd = tempDir()
    write(path.join(cwd, "a.txt"), "shared\n")
    write(path.join(cwd, "b.txt"), "shared\n")
    write(path.join(cwd, "held.txt"), "held\n")
    const a = JSON.parse(codex(cwd, ["store", "r", "a.txt", "--commit", "x"]).stdout).tombstone
    const b = JSON.parse(codex(cwd, ["store", "r", "b.txt", "--commit", "x"]).stdout).tombstone
    const h = JSON.parse(codex(cwd, ["store", "r", "held.txt", "--commit", "x", "--metadata", "legal_hold=yes"]).stdout)
      .tombstone
    expect(codex(cwd, ["prune-request", a, "--by", "alice", "--reason", "obsolete"]).stdout.trim()).toBe(
      "recorded prune request"
    )
    const same = codex(cwd, ["purge", a, "--by", "alice", "--second", "alice", "--reason", "x", "--apply"])
    expect(same.code).toBe(1)
    expect(same.stderr).toMatch(/distinct/)
    expect(codex(cwd, ["purge", h, "--by", "alice", "--second", "bob", "--reason", "x", "--apply"]).stderr).toMatch(
      /legal hold/
    )
    expect(codex(cwd, ["purge", a, "--by", "alice", "--second", "bob", "--reason", "x", "--apply"]).stdout.trim()).toBe(
      "purge approvals recorded; blob retained (artifact still shared)"
    )
    expect(codex(cwd, ["restore", a, "a2.txt"]).code).toBe(0)
    expect(codex(cwd, ["purge", b, "--by", "alice", "--second", "bob", "--reason", "x", "--apply"]).stdout.trim()).toBe(
      "purge approvals recorded; blob retained (artifact still shared)"
    )
    const lines = evidence(cwd).filter((l) => l.action === "DELETE_APPROVED")
    expect(lines.length).toBe(2)
    expect(lines[0]).toMatchObject({
      tombstone: a,
      primary: "alice",
      secondary: "bob",
      apply: true,
      blob_scrubbed: false
    })
  })
})

describe("store --manifest-out inside the stored folder", () => {
  it("lists exactly the stored files: neither the manifest nor its temporary, written while the walk runs, is archived", () => {
    const cwd = tempDir()
    for (let i = 0; i < 5; i++) write(path.join(cwd, `tree/d${i % 2}/f${i}.txt`), `file ${i}\n`)
    // A link planted at the temporary's old fixed name is neither written through nor removed: not ours.
    const victim = path.join(cwd, "victim.txt")
    fs.writeFileSync(victim, "keep me\n")
    const planted = path.join(cwd, "tree/.manifest.json.codex-manifest.tmp")
    fs.symlinkSync(victim, planted)
    const r = codex(cwd, ["store", "acme/demo", "tree", "--commit", "c0ffee", "--manifest-out", "tree/manifest.json"])
    expect(r.code, r.stderr).toBe(0)
    const manifest = JSON.parse(fs.readFileSync(path.join(cwd, "tree/manifest.json"), "utf8")) as Array<
      { output: string }
    >
    expect(manifest.map((e) => path.relative(path.join(cwd, "tree"), path.resolve(cwd, "tree", e.output))).sort())
      .toEqual(
        ["d0/f0.txt", "d0/f2.txt", "d0/f4.txt", "d1/f1.txt", "d1/f3.txt"]
      )
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me\n")
    expect(fs.readlinkSync(planted)).toBe(victim)
    expect(listFiles(path.join(cwd, "tree")).filter((f) => f.includes("codex-manifest"))).toEqual([
      path.basename(planted)
    ])
  })
})

describe("store --manifest-out must hold every input below its folder (Containment, as batch-restore checks)", () => {
  it("a manifest beside the tree or in it is written as before; one in a folder the inputs are not in is refused", () => {
    const cwd = tempDir()
    write(path.join(cwd, "tree/a.txt"), "a\n")
    write(path.join(cwd, "tree/sub/b.txt"), "b\n")
    const beside = codex(cwd, ["store", "r", "tree", "--commit", "x", "--manifest-out", "m.json"])
    expect(beside.code, beside.stderr).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "m.json"), "utf8")).map((e: { output: string }) => e.output))
      .toEqual(["tree/a.txt", "tree/sub/b.txt"])
    const outside = codex(cwd, ["store", "r", "tree", "--commit", "x", "--manifest-out", "tree/sub/m.json"])
    expect(outside.code).toBe(2)
    expect(outside.stderr).toMatch(/--manifest-out tree\/sub\/m\.json: tree is outside the manifest's folder/)
    expect(fs.existsSync(path.join(cwd, "tree/sub/m.json"))).toBe(false)
  })

  it("an input reached through a folder link leading out of the manifest's folder is refused up front (exit 2)", () => {
    const cwd = tempDir()
    const elsewhere = tempDir()
    write(path.join(elsewhere, "real/f.txt"), "f\n")
    fs.symlinkSync(path.join(elsewhere, "real"), path.join(cwd, "link"))
    const r = codex(cwd, ["store", "r", "link/f.txt", "--commit", "x", "--manifest-out", "m.json"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--manifest-out m\.json: link\/f\.txt is outside the manifest's folder/)
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(false)
    expect(fs.readFileSync(path.join(elsewhere, "real/f.txt"), "utf8")).toBe("f\n")
  })
})

describe("a store that fails midway", () => {
  it("says how many files it archived before the error line, and the same command finishes the job", () => {
    const cwd = tempDir()
    write(path.join(cwd, "seed.txt"), "creates the archive\n")
    expect(codex(cwd, ["store", "acme/x", "seed.txt", "--commit", "c0"]).code).toBe(0)
    // The archive refuses its 1,002nd item: the second group of 1,000 fails, the first is committed.
    tamper(
      cwd,
      `CREATE TRIGGER full BEFORE INSERT ON item WHEN (SELECT count(*) FROM item) >= 1001
       BEGIN SELECT RAISE(ABORT, 'archive full'); END`
    )
    for (let i = 0; i < 2500; i++) write(path.join(cwd, `tree/d${i % 10}/f${i}.txt`), `file ${i}\n`)
    const args = ["store", "acme/x", "tree", "--commit", "c0", "--write-stub", "--manifest-out", "m.json"]
    const failed = codex(cwd, args)
    expect(failed.code).toBe(1)
    const lines = failed.stderr.trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toBe(
      "store: stopped after finishing 1000 files (archived, stubs written); the files after them are as they were, " +
        "not archived; run the same command again to finish (its --manifest-out lists only the files it archives; " +
        "batch-restore --stubs restores all)"
    )
    expect(lines[1]).toMatch(/^codex: error: .*archive full/)
    const stubs = listFiles(path.join(cwd, "tree")).filter((f) =>
      /^# Tombstone: /m.test(fs.readFileSync(path.join(cwd, "tree", f), "utf8"))
    )
    expect(stubs).toHaveLength(1000)
    expect(fs.existsSync(path.join(cwd, "m.json"))).toBe(false)
    tamper(cwd, "DROP TRIGGER full")
    const again = codex(cwd, args)
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ stored: 1500 })
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "m.json"), "utf8"))).toHaveLength(1500)
  })
})

describe("a store whose stub cannot be written", () => {
  it("says the one file archived without its stub is archived (in the singular), then the error line", () => {
    const cwd = tempDir()
    write(path.join(cwd, "t/f.txt"), "f\n")
    // A folder its user cannot write to: the stub cannot be written there, though the file is read and archived.
    fs.chmodSync(path.join(cwd, "t"), 0o555)
    const r = codexUnprivileged(cwd, ["store", "r", "t/f.txt", "--commit", "x", "--write-stub"])
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/; the next 1 file is archived too, with stubs written before the file named below; /)
    expect(lines[1]).toMatch(/^codex: error: t\/f\.txt: archived, but the stub was not written: /)
  })
})

describe("a stub in a folder its user may write to but not read (0333)", () => {
  it("is written, as it was when stubs went by path: the folder is held without reading it (O_PATH)", () => {
    const cwd = tempDir()
    const folder = path.join(cwd, "noread")
    write(path.join(folder, "a.txt"), "s\n")
    fs.chmodSync(folder, 0o333)
    const r = codexUnprivileged(cwd, ["store", "r", "noread/a.txt", "--write-stub", "--commit", "c"])
    expect(r.code, r.stderr).toBe(0)
    fs.chmodSync(folder, 0o755)
    expect(fs.readFileSync(path.join(folder, "a.txt"), "utf8")).toContain("TOMBSTONE ARCHIVE STUB")
    expect(fs.readdirSync(folder)).toEqual(["a.txt"])
  })
})

describe("a stub that was edited after it was written", () => {
  it("is not replaced without --force, in place or in a batch; a stub that only ends differently is", () => {
    const cwd = tempDir()
    write(path.join(cwd, "t/one.txt"), "file one\n")
    write(path.join(cwd, "t/two.txt"), "file two\n")
    write(path.join(cwd, "t/three.txt"), "file three\n")
    const stored = codex(cwd, ["store", "r", "t", "--commit", "a", "--write-stub"])
    expect(stored.code, stored.stderr).toBe(0)
    const one = path.join(cwd, "t/one.txt")
    const edited = `${fs.readFileSync(one, "utf8")}def keep(): pass\n`
    fs.writeFileSync(one, edited)
    // Trailing blanks and a missing final newline are how stubs differ between writers: still the stub.
    const three = path.join(cwd, "t/three.txt")
    fs.writeFileSync(three, `${fs.readFileSync(three, "utf8").trimEnd().replace(/\n/g, " \n")}\n\n`)

    const r = codex(cwd, ["restore", "t/one.txt"])
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n")).toEqual([
      `codex: error: ${one}: output is this tombstone's stub but holds 1 line besides the stub (use --force to replace it)`
    ])
    expect(fs.readFileSync(one, "utf8")).toBe(edited)

    const batch = codex(cwd, ["batch-restore", "--stubs", "t"])
    expect(batch.code).toBe(1)
    const results = JSON.parse(batch.stdout)
    expect(results).toMatchObject({ total: 3, succeeded: 2, failed: 1 })
    expect(results.results.find((e: { status: string }) => e.status === "FAILED")).toMatchObject({
      output: one,
      detail: `${one}: output is this tombstone's stub but holds 1 line besides the stub (use --force to replace it)`
    })
    expect(fs.readFileSync(one, "utf8")).toBe(edited)
    expect(fs.readFileSync(path.join(cwd, "t/two.txt"), "utf8")).toBe("file two\n")
    expect(fs.readFileSync(three, "utf8")).toBe("file three\n")

    const forced = codex(cwd, ["restore", "t/one.txt", "--force"])
    expect(forced.code, forced.stderr).toBe(0)
    expect(fs.readFileSync(one, "utf8")).toBe("file one\n")
  })
})

describe("names as long as a file system takes (255 bytes)", () => {
  it("are stubbed, restored in place and restored to their recorded path", () => {
    const cwd = tempDir()
    const names = ["a".repeat(255), "日".repeat(85), "é".repeat(127) + "x"]
    names.forEach((name, i) => write(path.join(cwd, "t", name), `content ${i}\n`))
    // The manifest's own temporary is named the same way.
    const manifest = "m".repeat(250) + ".json"
    const stored = codex(cwd, ["store", "r", "t", "--commit", "a", "--write-stub", "--manifest-out", manifest])
    expect(stored.code, stored.stderr).toBe(0)
    expect(JSON.parse(fs.readFileSync(path.join(cwd, manifest), "utf8"))).toHaveLength(3)
    for (const name of names) {
      expect(fs.readFileSync(path.join(cwd, "t", name), "utf8")).toContain("TOMBSTONE ARCHIVE STUB")
    }
    const [first, ...rest] = names
    // In place from the stub, then by tombstone over the others' stubs (their recorded paths).
    const inPlace = codex(cwd, ["restore", path.join("t", first!)])
    expect(inPlace.code, inPlace.stderr).toBe(0)
    const tombstoneOf = (name: string) =>
      /^# Tombstone: (\S+)$/m.exec(fs.readFileSync(path.join(cwd, "t", name), "utf8"))![1]!
    for (const name of rest) {
      const r = codex(cwd, ["restore", tombstoneOf(name)])
      expect(r.code, r.stderr).toBe(0)
    }
    names.forEach((name, i) => expect(fs.readFileSync(path.join(cwd, "t", name), "utf8")).toBe(`content ${i}\n`))
    expect(listFiles(path.join(cwd, "t")).sort()).toEqual([...names].sort())
  })
})

describe("a store run again over a stubbed tree", () => {
  it("warns about the first 100 files it passes over and counts the rest; the summary lists every one", () => {
    const cwd = tempDir()
    for (let i = 0; i < 130; i++) write(path.join(cwd, `tree/f${String(i).padStart(3, "0")}.txt`), `file ${i}\n`)
    const args = ["store", "acme/x", "tree", "--commit", "c0", "--write-stub"]
    expect(codex(cwd, args).code).toBe(0)
    const again = codex(cwd, args)
    expect(again.code, again.stderr).toBe(0)
    const warnings = again.stderr.trim().split("\n")
    expect(warnings).toHaveLength(101)
    expect(warnings[0]).toMatch(/skipped tree\/f000\.txt: already a tombstone stub$/)
    expect(warnings[99]).toMatch(/skipped tree\/f099\.txt: already a tombstone stub$/)
    expect(warnings[100]).toMatch(/skipped 30 more files \(30 already a tombstone stub\): the summary lists each$/)
    const summary = JSON.parse(again.stdout) as { stored: number; skipped: Array<{ path: string; reason: string }> }
    expect(summary.stored).toBe(0)
    expect(summary.skipped.map((s) => s.path)).toEqual(
      Array.from({ length: 130 }, (_, i) => `tree/f${String(i).padStart(3, "0")}.txt`)
    )
  })
})
