/**
 * The files the tool keeps while it runs (the SQLite archive and its journals, the evidence log and its lock, the
 * manifest being read) are never archived nor written over: found by an attack review, `--results a.db` replaced the
 * archive, a store of the folder holding the database stubbed it, `--results` over the evidence log emptied it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

/** An archive kept inside the tree it stores (`t/a.db`), its evidence log there too, and one stored file. */
const setup = () => {
  const cwd = tempDir()
  const env = {
    CODEX_ARCHIVE_URL: `sqlite:///${path.join(cwd, "t/a.db")}`,
    CODEX_EVIDENCE_DIR: path.join(cwd, "t/ev")
  }
  write(path.join(cwd, "t/a.txt"), "precious\n")
  expect(codex(cwd, ["init"], env).code).toBe(0)
  const stored = codex(cwd, ["store", "r", "t", "--commit", "c", "--manifest-out", "t/m.json"], env)
  expect(stored.code, stored.stderr).toBe(0)
  return { cwd, env, stored }
}

const sqliteHeader = (file: string) => fs.readFileSync(file).subarray(0, 15).toString("latin1")

describe("files the tool keeps", () => {
  it("a store of the folder holding the archive skips the database, its journals and the evidence log", () => {
    const { cwd, env, stored } = setup()
    const report = JSON.parse(stored.stdout)
    expect(report.skipped).toContainEqual({ path: "t/a.db", reason: "the archive database; never archived" })
    expect(report.items.map((f: { path: string }) => f.path)).toEqual(["t/a.txt"])
    // Again, with stubs: the evidence log now exists, and nothing the archive keeps becomes a stub.
    const again = codex(cwd, ["store", "r", "t", "--commit", "c", "--write-stub"], env)
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).skipped).toContainEqual({
      path: "t/ev/archive_ops.jsonl",
      reason: "the evidence log; never archived"
    })
    expect(sqliteHeader(path.join(cwd, "t/a.db"))).toBe("SQLite format 3")
    expect(fs.readFileSync(path.join(cwd, "t/ev/archive_ops.jsonl"), "utf8")).toContain("\"action\":\"ARCHIVE\"")
    expect(codex(cwd, ["verify"], env).code).toBe(0)
  })

  it("refuses an output option naming the archive, a journal, the evidence log or the manifest, and keeps it", () => {
    const { cwd, env } = setup()
    fs.linkSync(path.join(cwd, "t/a.db"), path.join(cwd, "t/hard-link.json"))
    const log = path.join(cwd, "t/ev/archive_ops.jsonl")
    const logBefore = fs.readFileSync(log)
    const manifestBefore = fs.readFileSync(path.join(cwd, "t/m.json"))
    for (
      const [args, message] of [
        [["batch-restore", "t/m.json", "--results", "t/a.db"], "is the archive database"],
        [["batch-restore", "t/m.json", "--results", "t/a.db-wal"], "is a journal of the archive database"],
        [["batch-restore", "t/m.json", "--results", "t/hard-link.json"], "is the archive database"],
        [["batch-restore", "t/m.json", "--results", "t/ev/archive_ops.jsonl"], "is the evidence log"],
        [["batch-restore", "t/m.json", "--results", "t/m.json"], "is the manifest being restored"],
        [["batch-restore", "t/m.json", "--metrics-out", "t/a.db"], "is the archive database"],
        [["batch-restore", "t/m.json", "--results", "r.json", "--metrics-out", "r.json"], "is the --results file"],
        [["store", "r", "t/a.txt", "--commit", "c", "--manifest-out", "t/a.db"], "is the archive database"]
      ] as const
    ) {
      const r = codex(cwd, args, env)
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2)
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(new RegExp(`^codex: error: --\\S+ \\S+: ${message};`))
      expect(sqliteHeader(path.join(cwd, "t/a.db")), args.join(" ")).toBe("SQLite format 3")
    }
    expect(fs.readFileSync(log)).toEqual(logBefore)
    expect(fs.readFileSync(path.join(cwd, "t/m.json"))).toEqual(manifestBefore)
    expect(fs.existsSync(path.join(cwd, "r.json"))).toBe(false)
    expect(codex(cwd, ["verify"], env).code).toBe(0)
  })

  it("never restores over the archive or its log, even with --force", () => {
    const { cwd, env, stored } = setup()
    const tombstone = JSON.parse(stored.stdout).items[0].tombstone as string
    write(path.join(cwd, "t/evil.json"), JSON.stringify([{ tombstone, output: "a.db" }]))
    const batch = codex(cwd, ["batch-restore", "t/evil.json", "--force"], env)
    expect(batch.code).toBe(1)
    expect(JSON.parse(batch.stdout).results[0].detail).toBe(
      `${path.join(cwd, "t/a.db")}: is the archive database; refusing to write over it`
    )
    const dry = codex(cwd, ["batch-restore", "t/evil.json", "--force", "--dry-run"], env)
    expect(dry.code).toBe(1)
    expect(dry.stdout).toContain("is the archive database")
    write(path.join(cwd, "t/evil-log.json"), JSON.stringify([{ tombstone, output: "ev/archive_ops.jsonl" }]))
    const dryLog = codex(cwd, ["batch-restore", "t/evil-log.json", "--force", "--dry-run"], env)
    expect(dryLog.code).toBe(1)
    expect(dryLog.stdout).toContain("is the evidence log; refusing to write over it")
    for (const output of ["t/a.db", "t/ev/archive_ops.jsonl"]) {
      const r = codex(cwd, ["restore", tombstone, output, "--force"], env)
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/: is the (archive database|evidence log); refusing to write over it\n$/)
    }
    expect(sqliteHeader(path.join(cwd, "t/a.db"))).toBe("SQLite format 3")
    expect(codex(cwd, ["verify"], env).code).toBe(0)
  })

  it("a restore whose output is the --metrics-out file is refused before any work, by name or through a link", () => {
    const { cwd, env, stored } = setup()
    const tombstone = JSON.parse(stored.stdout).items[0].tombstone as string
    write(path.join(cwd, "kept.txt"), "kept\n")
    fs.linkSync(path.join(cwd, "kept.txt"), path.join(cwd, "hard.txt"))
    fs.symlinkSync(cwd, path.join(cwd, "via"))
    for (
      const args of [
        ["out.txt", "--metrics-out", "out.txt"],
        ["out.txt", "--metrics-out", "via/out.txt"],
        ["kept.txt", "--force", "--metrics-out", "hard.txt"],
        // The recorded path under --root (t/a.txt) is known only once the archive is open: still before any work.
        ["--root", "r", "--metrics-out", "r/t/a.txt"]
      ]
    ) {
      fs.mkdirSync(path.join(cwd, "r"), { recursive: true })
      const r = codex(cwd, ["restore", tombstone, ...args], env)
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2)
      expect(r.stderr, args.join(" ")).toMatch(
        /^codex: error: --metrics-out \S+: is the output of this restore; refusing to write over it\n$/
      )
    }
    expect(fs.existsSync(path.join(cwd, "out.txt"))).toBe(false)
    expect(fs.existsSync(path.join(cwd, "r/t"))).toBe(false)
    expect(fs.readFileSync(path.join(cwd, "kept.txt"), "utf8")).toBe("kept\n")
    const log = fs.readFileSync(path.join(cwd, "t/ev/archive_ops.jsonl"), "utf8")
    expect(log).not.toContain("\"RESTORE")
  })

  it("a batch entry whose output is the --metrics-out file fails, the others restored and the metrics written", () => {
    const { cwd, env, stored } = setup()
    const tombstone = JSON.parse(stored.stdout).items[0].tombstone as string
    write(
      path.join(cwd, "m2.json"),
      JSON.stringify([{ tombstone, output: "x/a.txt" }, { tombstone, output: "x/b.txt" }])
    )
    const r = codex(cwd, ["batch-restore", "m2.json", "--metrics-out", "x/b.txt"], env)
    expect(r.code, r.stderr).toBe(1)
    expect(JSON.parse(r.stdout).results.map((i: { status: string; detail?: string }) => [i.status, i.detail]))
      .toEqual([
        ["SUCCESS", undefined],
        ["FAILED", `${path.join(cwd, "x/b.txt")}: is the --metrics-out file; refusing to write over it`]
      ])
    expect(fs.readFileSync(path.join(cwd, "x/a.txt"), "utf8")).toBe("precious\n")
    expect(fs.readFileSync(path.join(cwd, "x/b.txt"), "utf8")).toContain("# TYPE")
    const dry = codex(cwd, ["batch-restore", "m2.json", "--metrics-out", "x/b.txt", "--dry-run", "--force"], env)
    expect(dry.code, dry.stderr).toBe(1)
    expect(JSON.parse(dry.stdout).failed).toBe(1)
  })

  it("an output option naming a tombstone stub is refused before any work: the metrics were written over it", () => {
    const { cwd, env } = setup()
    fs.mkdirSync(path.join(cwd, "s"))
    write(path.join(cwd, "s/keep.txt"), "keep\n")
    expect(codex(cwd, ["store", "r", "s", "--commit", "c", "--write-stub"], env).code).toBe(0)
    const stub = fs.readFileSync(path.join(cwd, "s/keep.txt"), "utf8")
    expect(stub).toContain("# Tombstone: ")
    for (const option of ["--metrics-out", "--results"]) {
      const r = codex(cwd, ["batch-restore", "t/m.json", option, "s/keep.txt"], env)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toBe(
        `codex: error: ${option} ${path.join(cwd, "s/keep.txt")}: is a tombstone stub; refusing to write over it\n`
      )
    }
    expect(fs.readFileSync(path.join(cwd, "s/keep.txt"), "utf8")).toBe(stub)
  })

  it("a refused --metrics-out is the one error line, no warning in another format before it", () => {
    const { cwd, env, stored } = setup()
    const tombstone = JSON.parse(stored.stdout).items[0].tombstone as string
    for (
      const args of [
        ["restore", tombstone, "o.txt", "--metrics-out", "t/ev/archive_ops.jsonl"],
        ["batch-restore", "t/m.json", "--metrics-out", "t/a.db"]
      ]
    ) {
      const r = codex(cwd, args, env)
      expect(r.code, r.stderr).toBe(2)
      // The warning went to stdout, through Effect's default logger.
      expect(r.stdout, args.join(" ")).toBe("")
      expect(r.stderr, args.join(" ")).toMatch(
        /^codex: error: --metrics-out \S+: is the (evidence log|archive database); refusing to write over it\n$/
      )
    }
  })

  it("a batch entry never restores over the manifest or the results file, even with --force", () => {
    const { cwd, env, stored } = setup()
    const tombstone = JSON.parse(stored.stdout).items[0].tombstone as string
    for (
      const [output, extra, what] of [
        ["self.json", [], "the manifest being restored"],
        ["res.json", ["--results", "t/res.json"], "a results file of this batch"]
      ] as const
    ) {
      const manifest = path.join(cwd, "t/self.json")
      write(manifest, JSON.stringify([{ tombstone, output }]))
      const before = fs.readFileSync(manifest)
      const r = codex(cwd, ["batch-restore", "t/self.json", "--force", ...extra], env)
      expect(r.code, r.stderr).toBe(1)
      expect(JSON.parse(r.stdout).results[0].detail).toBe(
        `${path.join(cwd, "t", output)}: is ${what}; refusing to write over it`
      )
      expect(fs.readFileSync(manifest)).toEqual(before)
    }
    expect(JSON.parse(fs.readFileSync(path.join(cwd, "t/res.json"), "utf8")).failed).toBe(1)
  })

  it("a store skips the configuration file, the evidence key file and a hard link to the database", () => {
    const cwd = tempDir()
    write(path.join(cwd, "q/code.py"), "print(1)\n")
    write(path.join(cwd, "q/secrets/hmac.key"), "k1")
    write(
      path.join(cwd, "q/codex.toml"),
      `[backend]\nurl = "sqlite:///${path.join(cwd, "a.db")}"\n[evidence]\ndir = "${path.join(cwd, "ev")}"\n` +
        `hmac_key_file = "${path.join(cwd, "q/secrets/hmac.key")}"\n`
    )
    const args = ["--config-file", "q/codex.toml"]
    expect(codex(cwd, ["init", ...args]).code).toBe(0)
    fs.linkSync(path.join(cwd, "a.db"), path.join(cwd, "q/copy.db"))
    const r = codex(cwd, ["store", "r", "q", "--commit", "c", "--write-stub", ...args])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.items.map((i: { path: string }) => i.path)).toEqual(["q/code.py"])
    expect(report.skipped).toEqual(expect.arrayContaining([
      { path: "q/codex.toml", reason: "the configuration file; never archived" },
      { path: "q/secrets/hmac.key", reason: "the evidence key file; never archived" },
      { path: "q/copy.db", reason: "the archive database; never archived" }
    ]))
    expect(fs.readFileSync(path.join(cwd, "q/secrets/hmac.key"), "utf8")).toBe("k1")
    expect(codex(cwd, ["evidence", "verify", ...args]).code).toBe(0)
    // Nor does a restore write over them, one or a batch, even with --force; a dry run says so, as about its results.
    const tombstone = report.items[0].tombstone as string
    const single = codex(cwd, ["restore", tombstone, "q/secrets/hmac.key", "--force", ...args])
    expect(single.code).toBe(1)
    expect(single.stderr).toContain("q/secrets/hmac.key: is the evidence key file; refusing to write over it")
    write(
      path.join(cwd, "q/m.json"),
      JSON.stringify([{ tombstone, output: "codex.toml" }, { tombstone, output: "res.json" }])
    )
    const batch = codex(cwd, ["batch-restore", "q/m.json", "--force", "--results", "q/res.json", ...args])
    expect(batch.code).toBe(1)
    expect(JSON.parse(batch.stdout).results.map((i: { detail: string }) => i.detail)).toEqual([
      `${path.join(cwd, "q/codex.toml")}: is the configuration file; refusing to write over it`,
      `${path.join(cwd, "q/res.json")}: is a results file of this batch; refusing to write over it`
    ])
    const dry = codex(cwd, ["batch-restore", "q/m.json", "--force", "--results", "q/res.json", "--dry-run", ...args])
    expect(dry.code).toBe(1)
    expect(JSON.parse(dry.stdout).failed).toBe(2)
    expect(fs.readFileSync(path.join(cwd, "q/secrets/hmac.key"), "utf8")).toBe("k1")
    expect(codex(cwd, ["evidence", "verify", ...args]).code).toBe(0)
  })

  it("--manifest-out naming an existing file among the inputs is refused, the file kept", () => {
    const cwd = tempDir()
    write(path.join(cwd, "s/keep.txt"), "precious\n")
    const r = codex(cwd, ["store", "r", "s", "--commit", "c", "--manifest-out", "s/keep.txt"])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      "codex: error: --manifest-out s/keep.txt: is one of the files being stored; name a file that does not exist yet\n"
    )
    expect(fs.readFileSync(path.join(cwd, "s/keep.txt"), "utf8")).toBe("precious\n")
  })
})
