import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { bin, codex, evidence, listFiles, tempDir, write } from "./support.js"

/** An archive with one stored file; returns its folder and tombstone. */
const archived = (content = "payload\n") => {
  const cwd = tempDir()
  write(path.join(cwd, "f.txt"), content)
  const r = codex(cwd, ["store", "r", "f.txt", "--commit", "x"])
  expect(r.code, r.stderr).toBe(0)
  return { cwd, tombstone: JSON.parse(r.stdout).tombstone as string }
}

const tamper = (cwd: string, statement: string, ...params: Array<unknown>) => {
  const db = new Database(path.join(cwd, ".codex/archive.sqlite"))
  db.prepare(statement).run(...params)
  db.close()
}

/** One line on stderr, the exit code, a RESTORE_FAIL line, and no file (nor temp file) at the output. */
const expectCleanFailure = (
  cwd: string,
  args: ReadonlyArray<string>,
  code: number,
  pattern: RegExp,
  output?: string
) => {
  const before = evidence(cwd).filter((l) => l.action === "RESTORE_FAIL").length
  const r = codex(cwd, args)
  expect(r.code).toBe(code)
  expect(r.stderr.trim().split("\n")).toHaveLength(1)
  expect(r.stderr).toMatch(pattern)
  expect(r.stdout).toBe("")
  if (output !== undefined) {
    expect(fs.existsSync(path.join(cwd, output)) && fs.statSync(path.join(cwd, output)).isFile()).toBe(false)
    expect(listFiles(path.join(cwd, path.dirname(output))).filter((f) => f.includes("codex-restore"))).toEqual([])
  }
  return { r, fails: evidence(cwd).filter((l) => l.action === "RESTORE_FAIL").length - before }
}

describe("bad input and faults", () => {
  it("a working folder removed under the shell: one line that says so, exit 2, and --version still works", () => {
    const gone = path.join(tempDir(), "gone")
    // The shell enters the folder, removes it, then runs codex there: the state a user reaches after `rm -rf` of a
    // checkout they stand in.
    const run = (args: string) =>
      spawnSync("sh", [
        "-c",
        `mkdir "$0" && cd "$0" && rmdir "$0" && exec "$1" "$2" ${args}`,
        gone,
        process.execPath,
        bin
      ], {
        encoding: "utf8"
      })
    for (const args of ["archive list", "archive store r /etc/hostname --commit x"]) {
      const r = run(args)
      expect(r.status, args).toBe(2)
      expect(r.stderr.trim().split("\n"), args).toEqual([
        "codex: error: the current folder no longer exists (it was removed after this shell entered it): " +
        "cd to a folder that exists and run the command again"
      ])
      expect(fs.existsSync(gone)).toBe(false)
    }
    const version = run("--version")
    expect(version.status, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^codex /)
  })

  it("unknown tombstone: exit 1, named, RESTORE_FAIL", () => {
    const { cwd } = archived()
    const id = "0f0f0f0f-0000-4000-8000-000000000000"
    const { fails } = expectCleanFailure(
      cwd,
      ["restore", id, "out/x.txt"],
      1,
      new RegExp(`unknown tombstone ${id}`),
      "out/x.txt"
    )
    expect(fails).toBe(1)
  })

  it("a malformed tombstone id or stub is bad input: exit 2", () => {
    const { cwd } = archived()
    expectCleanFailure(cwd, ["restore", "not-a-uuid", "x"], 2, /'not-a-uuid' is not a tombstone id/)
    write(path.join(cwd, "stub.txt"), "# TOMBSTONE ARCHIVE STUB — DO NOT DELETE\n# File: a\n# Tombstone: zzz\n")
    expectCleanFailure(
      cwd,
      ["restore", "stub.txt"],
      2,
      /stub\.txt: not a valid tombstone stub: tombstone 'zzz' is not a UUID/
    )
    write(path.join(cwd, "plain.txt"), "hello\n")
    expectCleanFailure(cwd, ["restore", "plain.txt"], 2, /plain\.txt: not a valid tombstone stub: missing the/)
  })

  it("purged payload: exit 1, no file", () => {
    const { cwd, tombstone } = archived()
    expect(codex(cwd, ["purge", tombstone, "--by", "a", "--second", "b", "--reason", "gdpr", "--apply"]).stdout)
      .toContain("blob scrubbed")
    const { fails } = expectCleanFailure(cwd, ["restore", tombstone, "out/f.txt"], 1, /has been purged/, "out/f.txt")
    expect(fails).toBe(1)
  })

  it("corrupt payload (hash mismatch) is caught before the file becomes visible", () => {
    const { cwd, tombstone } = archived("original\n")
    // Same length: content that decodes past the recorded size is refused earlier, as undecodable.
    const other = archived("ORIGINAL\n")
    const blob = new Database(path.join(other.cwd, ".codex/archive.sqlite")).prepare("SELECT blob_bytes FROM artifact")
      .get() as { blob_bytes: Buffer }
    tamper(cwd, "UPDATE artifact SET blob_bytes = ?", blob.blob_bytes)
    expectCleanFailure(
      cwd,
      ["restore", tombstone, "out/f.txt"],
      1,
      new RegExp(`payload of tombstone ${tombstone} is corrupt: sha256`),
      "out/f.txt"
    )
    const v = codex(cwd, ["verify"])
    expect(v.code).toBe(1)
    expect(JSON.parse(v.stdout).problems).toHaveLength(1)
  })

  it("a recorded size that lies (the SHA-256 holds) is named as such, not as a SHA-256 that differs from itself", () => {
    const { cwd, tombstone } = archived("original\n")
    tamper(cwd, "UPDATE artifact SET size_bytes = size_bytes + 1")
    expectCleanFailure(
      cwd,
      ["restore", tombstone, "out/f.txt"],
      1,
      new RegExp(
        `^codex: error: payload of tombstone ${tombstone} .*: it decodes to 9 bytes, not the 10 its record says$`,
        "m"
      ),
      "out/f.txt"
    )
  })

  it("undecodable payload and unknown codec are named", () => {
    const { cwd, tombstone } = archived()
    tamper(cwd, "UPDATE artifact SET blob_bytes = ?", Buffer.from("garbage, not zstd"))
    expectCleanFailure(cwd, ["restore", tombstone, "out/f.txt"], 1, /cannot be decoded with codec 'zstd'/, "out/f.txt")
    tamper(cwd, "UPDATE artifact SET compression = 'lz4'")
    expectCleanFailure(cwd, ["restore", tombstone, "out/f.txt"], 1, /unsupported compression codec 'lz4'/, "out/f.txt")
  })

  it("output is a directory, or cannot be written", () => {
    const { cwd, tombstone } = archived()
    fs.mkdirSync(path.join(cwd, "adir"))
    expectCleanFailure(cwd, ["restore", tombstone, "adir"], 1, /adir: output is a directory/)
    write(path.join(cwd, "afile"), "x")
    // What is in the way is named: the file, however deep the output is under it, or a link whose target is gone.
    for (const output of ["afile/inside.txt", "afile/a/b/inside.txt"]) {
      expectCleanFailure(
        cwd,
        ["restore", tombstone, output],
        1,
        new RegExp(
          `${output.replaceAll(".", "\\.")}: cannot write output: ${path.join(cwd, "afile")} is not a folder$`,
          "m"
        )
      )
    }
    fs.symlinkSync(path.join(cwd, "gone"), path.join(cwd, "dangling"))
    expectCleanFailure(
      cwd,
      ["restore", tombstone, "dangling/sub/f.txt"],
      1,
      new RegExp(
        `: cannot write output: ${path.join(cwd, "dangling")} is a symbolic link to ${
          path.join(cwd, "gone")
        }, which does not exist$`,
        "m"
      )
    )
    expect(fs.existsSync(path.join(cwd, "gone"))).toBe(false)
  })

  it("missing database, a non-database file and a foreign SQLite file are named, and not created", () => {
    const cwd = tempDir()
    const id = "0f0f0f0f-0000-4000-8000-000000000000"
    const { fails } = expectCleanFailure(cwd, ["restore", id, "x"], 1, /archive\.sqlite: no archive database here/)
    expect(fails).toBe(1)
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(false)
    write(path.join(cwd, "notes.txt"), "just text, long enough to have a header of sixteen bytes\n")
    expectCleanFailure(
      cwd,
      ["restore", id, "x", "--url", "sqlite:///./notes.txt"],
      1,
      /notes\.txt: is not a SQLite database/
    )
    const other = new Database(path.join(cwd, "other.db"))
    other.exec("CREATE TABLE t (x)")
    other.close()
    expectCleanFailure(
      cwd,
      ["restore", id, "x", "--url", "sqlite:///./other.db"],
      1,
      /other\.db: is a SQLite database but not a codex archive/
    )
  })

  it("bad usage and bad config exit 2 naming the input", () => {
    const cwd = tempDir()
    const unknown = codex(cwd, ["list", "--no-such-flag"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).not.toContain("[object Object]")
    expect(codex(cwd, ["list", "--since", "yesterday"]).stderr).toMatch(/--since 'yesterday': expected an ISO date/)
    const env = codex(cwd, ["list"], { CODEX_ARCHIVE_LOG_FORMAT: "xml" })
    expect(env.code).toBe(2)
    expect(env.stderr).toMatch(
      /logging\.format \(env CODEX_ARCHIVE_LOG_FORMAT\): got 'xml', expected one of text, json/
    )
    write(path.join(cwd, "f.txt"), "x")
    const meta = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--metadata", "novalue"])
    expect(meta.code).toBe(2)
    expect(meta.stderr).toMatch(/--metadata 'novalue'/)
    fs.mkdirSync(path.join(cwd, "sub"))
    const outside = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--manifest-out", "sub/m.json"])
    expect(outside.code).toBe(2)
    expect(outside.stderr).toMatch(/--manifest-out sub\/m\.json: .*f\.txt is outside the manifest's folder/)
    expect(fs.existsSync(path.join(cwd, ".codex/archive.sqlite"))).toBe(false)
    const missing = codex(cwd, ["store", "r", "nope.txt", "--commit", "x"])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/nope\.txt: no such file or directory/)
  })

  it("every usage error and a --config-file that is no regular file are one `codex: error:` line, exit 2", () => {
    const cwd = tempDir()
    fs.mkdirSync(path.join(cwd, "dir"))
    const fifo = spawnSync("mkfifo", [path.join(cwd, "fifo")]).status === 0
    for (const file of ["dir", "/dev/zero", "/dev/null", "/dev/stdin", ...(fifo ? ["fifo"] : [])]) {
      const r = codex(cwd, ["config-show", "--config-file", file])
      expect(r.code, file).toBe(2)
      const full = path.resolve(cwd, file)
      const said = `codex: error: invalid configuration: config file (flag --config-file): ${full} cannot be read: `
      // A pipe's /dev/stdin is a socket here, which cannot even be opened (ENXIO): named all the same.
      if (file !== "/dev/stdin") expect(r.stderr, file).toBe(`${said}${full} is not a regular file\n`)
      expect(r.stderr.startsWith(said) && r.stderr.indexOf("\n") === r.stderr.length - 1, r.stderr).toBe(true)
    }
    const usage: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["restore"], "Missing argument <TOMBSTONE|STUB>"],
      [
        ["restore", "0f0f0f0f-0000-4000-8000-000000000000", "--bogus"],
        "codex: error: restore: OUTPUT '--bogus' looks like an option restore does not have; to name a file so, write " +
        "./--bogus"
      ],
      [["list", "--no-such-flag"], "--no-such-flag"],
      [["list", "--limit", "abc"], "codex: error: --limit 'abc': expected a whole number"],
      [["list", "--limit=1.5"], "codex: error: --limit '1.5': expected a whole number"],
      // What JavaScript's Number also reads (16, 1000, 3) is no whole number as written.
      [["list", "--limit", "0x10"], "codex: error: --limit '0x10': expected a whole number, in digits"],
      [["batch-restore", "m.json", "--concurrency=1e3"], "--concurrency '1e3': expected a whole number, in digits"],
      [["list", "--limit", " 3"], "codex: error: --limit ' 3': expected a whole number, in digits"],
      [["store", "r", "x", "--commit", "c", "--reason", "foo"], "--reason 'foo': expected one of dead, pruned, legacy"],
      [["list", "--log-format", "xml"], "codex: error: --log-format 'xml': expected one of text, json"],
      [
        ["store", "r", "x", "--commit", "c", "--metadata", "__proto__=1"],
        "codex: error: --metadata '__proto__=1': '__proto__' cannot be a metadata key"
      ],
      [
        ["purge", "0f0f0f0f-0000-4000-8000-000000000000", "--by", "a", "--second", " \u200b", "--reason", "r"],
        "codex: error: purge: --second names no approver; name the second one"
      ],
      [["batch-restore", "--stubs", "/etc/passwd"], "/etc/passwd"]
    ]
    for (const [args, names] of usage) {
      const r = codex(cwd, args)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1)
      expect(r.stderr, args.join(" ")).toMatch(/^codex: error: \S/)
      expect(r.stderr, args.join(" ")).toContain(names)
    }
    // A command's own logs go to stderr through the same console: they stay log lines, not errors.
    const logged = codex(cwd, ["schema", "--dialect", "sqlite", "--log-level", "debug"])
    const listed = codex(cwd, ["list", "--log-level", "debug", "--url", "sqlite:///./nope.sqlite"])
    for (const r of [logged, listed]) expect(r.stderr).not.toMatch(/codex: error: \[DEBUG\]/)
    expect(codex(cwd, ["init", "--log-level", "debug"]).stderr).toMatch(/^\[DEBUG\] /m)
  })

  it("an evidence lock planted as a link or FIFO fails the restore at once, naming the lock", () => {
    const { cwd, tombstone } = archived()
    const lock = path.join(cwd, ".codex/evidence/archive_ops.jsonl.lock")
    fs.symlinkSync("/dev/zero", lock)
    const started = Date.now()
    const r = codex(cwd, ["restore", tombstone, "out.txt"])
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      `codex: error: cannot append to evidence log ${path.join(cwd, ".codex/evidence/archive_ops.jsonl")}: ` +
        `lock file ${lock} is a symbolic link, not a lock this tool took; remove it\n`
    )
    expect(fs.existsSync(path.join(cwd, "out.txt"))).toBe(false)
  })

  it("a reader that closes stdout early (| head) ends nothing with a stack trace: exit 0, stderr empty", async () => {
    const { cwd, tombstone } = archived()
    tamper(cwd, "UPDATE item SET metadata = json_set(metadata, '$.note', ?)", "x".repeat(1 << 20))
    const child = spawn(process.execPath, [bin, "archive", "show", tombstone], { cwd })
    child.stdout.destroy()
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const code = await new Promise((resolve) => child.on("close", resolve))
    expect(stderr).toBe("")
    expect(code).toBe(0)
  })

  it("symlinks, FIFOs and existing stubs are skipped, not followed", () => {
    const cwd = tempDir()
    write(path.join(cwd, "t/real.txt"), "real\n")
    fs.symlinkSync("/etc/hostname", path.join(cwd, "t/link"))
    const r = codex(cwd, ["store", "r", "t", "--commit", "x", "--write-stub"])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.stored).toBe(1)
    expect(out.skipped).toEqual([{ path: "t/link", reason: "symbolic link (not followed)" }])
    const again = JSON.parse(codex(cwd, ["store", "r", "t", "--commit", "x"]).stdout)
    expect(again.stored).toBe(0)
    expect(again.skipped).toContainEqual({ path: "t/real.txt", reason: "already a tombstone stub" })
  })
})
