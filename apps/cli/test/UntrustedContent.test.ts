/**
 * The archive's content is untrusted input (issue 14, defects 2, 4, 6, 10): recorded modes, recorded paths, metadata
 * and file names, each written the way an attacker with access to the archive or the tree would write them.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { baseEnv, bin, codex, codexAsync, evidence, tamper, tempDir, write } from "./support.js"

/** A new archive holding one file `name` (with `content` and `mode`); returns its folder and tombstone. */
const archivedFile = (name: string, content: string, mode?: number) => {
  const cwd = tempDir()
  write(path.join(cwd, name), content, mode)
  const stored = codex(cwd, ["store", "r", name, "--commit", "x"])
  expect(stored.code, stored.stderr).toBe(0)
  return { cwd, tombstone: JSON.parse(stored.stdout).tombstone as string }
}

/** The CLI run by bash: `before` runs first (a umask, variables), `words` follow the command as bash reads them. */
const codexInShell = (cwd: string, before: string, words: string) => {
  const r = spawnSync("bash", ["-c", `${before} exec '${process.execPath}' '${bin}' archive ${words}`], {
    cwd,
    env: { ...baseEnv(), CODEX_ACTOR: "t" },
    encoding: "utf8"
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** The CLI under a given umask (a shell sets it; the child inherits it). */
const codexWithUmask = (cwd: string, umask: string, args: ReadonlyArray<string>) =>
  codexInShell(cwd, `umask ${umask} &&`, args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" "))

const modeOf = (file: string) => fs.statSync(file).mode & 0o7777

describe("modes from the archive", () => {
  it("restores permission bits only, never setuid/setgid/sticky, and never beyond the umask", () => {
    const { cwd, tombstone } = archivedFile("tool.sh", "#!/bin/sh\n", 0o755)
    for (
      const [recorded, umask, expected] of [
        ["7777", "022", 0o755],
        ["04755", "022", 0o755],
        ["6777", "002", 0o775],
        ["4755", "077", 0o700],
        ["0777", "077", 0o700]
      ] as const
    ) {
      tamper(cwd, "UPDATE item SET metadata = json_set(metadata, '$.file_mode', ?)", recorded)
      const out = `out-${recorded}-${umask}.sh`
      const r = codexWithUmask(cwd, umask, ["restore", tombstone, out])
      expect(r.code, r.stderr).toBe(0)
      expect(modeOf(path.join(cwd, out)), `file_mode ${recorded} under umask ${umask}`).toBe(expected)
    }
  })

  it("store records permission bits only, even of a setuid file", () => {
    const cwd = tempDir()
    write(path.join(cwd, "suid.sh"), "#!/bin/sh\n")
    fs.chmodSync(path.join(cwd, "suid.sh"), 0o4755)
    const r = codex(cwd, ["store", "r", "suid.sh", "--commit", "x"])
    expect(r.code, r.stderr).toBe(0)
    const shown = JSON.parse(codex(cwd, ["show", JSON.parse(r.stdout).tombstone]).stdout)
    expect(shown.metadata.file_mode).toBe("0755")
  })
})

describe("metadata that changes behaviour", () => {
  it("refuses reserved keys and a legal_hold that is not a boolean, before the archive is created", () => {
    const cwd = tempDir()
    write(path.join(cwd, "f.txt"), "x\n")
    for (
      const [entry, message] of [
        ["legal_hold=maybe", "--metadata 'legal_hold=maybe': legal_hold 'maybe' is not a boolean"],
        ["sha256=" + "0".repeat(64), "'sha256' is reserved"],
        ["size_bytes=1", "'size_bytes' is reserved"],
        ["file_mode=4755", "'file_mode' is reserved"],
        ["mime_type=text/x", "'mime_type' is reserved: the archive records it itself (use --mime)"]
      ] as const
    ) {
      const r = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--metadata", entry])
      expect(r.code, entry).toBe(2)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
      expect(r.stderr).toContain(message)
      expect(fs.existsSync(path.join(cwd, ".codex")), entry).toBe(false)
    }
  })

  it("accepts the boolean words purge reads, case-insensitively; a held item is not purged", () => {
    const cwd = tempDir()
    write(path.join(cwd, "f.txt"), "x\n")
    const store = (hold: string) => {
      const r = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--metadata", `legal_hold=${hold}`])
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout).tombstone as string
    }
    const purge = (t: string) => codex(cwd, ["purge", t, "--by", "a", "--second", "b", "--reason", "r"])
    for (const hold of ["TRUE", "on"]) expect(purge(store(hold)).stderr).toMatch(/under legal hold/)
    for (const hold of ["No", "0"]) expect(purge(store(hold)).code).toBe(0)
  })

  it("purge fails closed on a legal_hold in the archive's metadata that is not a boolean, or that says held", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    tamper(cwd, "UPDATE item SET metadata = json_set(metadata, '$.legal_hold', 'maybe')")
    const r = codex(cwd, ["purge", tombstone, "--by", "a", "--second", "b", "--reason", "r", "--apply"])
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toBe(
      `codex: error: tombstone ${tombstone}: legal_hold 'maybe' in its metadata is not a boolean; ` +
        "refusing to purge an item that may be under legal hold"
    )
    tamper(cwd, "UPDATE item SET metadata = json_set(metadata, '$.legal_hold', json('true'))")
    const held = codex(cwd, ["purge", tombstone, "--by", "a", "--second", "b", "--reason", "r"])
    expect(held.stderr).toMatch(/under legal hold/)
    expect(evidence(cwd).filter((l) => l.action === "DELETE_APPROVED")).toEqual([])
    // Still restorable: nothing was scrubbed.
    expect(codex(cwd, ["restore", tombstone, "back.txt"]).code).toBe(0)
  })

  it("purge fails closed whenever the metadata cannot rule a hold out", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    const purge = () => codex(cwd, ["purge", tombstone, "--by", "a", "--second", "b", "--reason", "r", "--apply"])
    for (
      const [metadata, why] of [
        [`{"legal_hold":true`, "its metadata is not readable JSON"],
        [`{"legal_hold":true,"legal_hold":false}`, "its metadata gives 'legal_hold' more than once"],
        [`{"legal_hold":false,"legal\\u005fhold":true}`, "its metadata gives 'legal_hold' more than once"],
        [`{"Legal_Hold":true}`, "its metadata has 'Legal_Hold' (read as legal_hold) set to 'true'"],
        [`{"legal-hold":"yes"}`, "its metadata has 'legal-hold' (read as legal_hold) set to 'yes'"],
        [`{"legalHold":1}`, "its metadata has 'legalHold' (read as legal_hold) set to '1'"],
        [`{"legal_hold":null}`, "legal_hold 'null' in its metadata is not a boolean"],
        [JSON.stringify(JSON.stringify({ legal_hold: true })), "its metadata is not a JSON object"],
        [
          `{"note":${JSON.stringify(JSON.stringify({ legal_hold: true }))}}`,
          "its metadata has 'note.legal_hold' (read as legal_hold) set to 'true'"
        ],
        [
          `{"retention":{"legal_hold":true}}`,
          "its metadata has 'retention.legal_hold' (read as legal_hold) set to 'true'"
        ],
        [`[{"legal_hold":true}]`, "its metadata is not a JSON object"]
      ] as const
    ) {
      tamper(cwd, "UPDATE item SET metadata = ? WHERE tombstone_id = ?", metadata, tombstone)
      const r = purge()
      expect(r.code, metadata).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines, metadata).toHaveLength(1)
      expect(lines[0], metadata).toContain(`tombstone ${tombstone}`)
      expect(lines[0], metadata).toContain(why)
      expect(lines[0], metadata).toContain("refusing to purge an item that may be under legal hold")
    }
    expect(evidence(cwd).filter((l) => l.action === "DELETE_APPROVED")).toEqual([])
    expect(codex(cwd, ["restore", tombstone, "back.txt"]).code).toBe(0)
    // What the original tool writes still purges: its sorted, compact metadata, with delete_after kept in it, and
    // a legal_hold that is plainly false under any spelling.
    for (
      const metadata of [
        `{"compression":"zlib","delete_after":"2030-01-01T00:00:00Z","language":null,"mime_type":"text/plain"}`,
        `{"legal_hold":false,"legalHold":"no","note":"{\\"Legal-Hold\\":0}"}`
      ]
    ) {
      tamper(cwd, "UPDATE item SET metadata = ? WHERE tombstone_id = ?", metadata, tombstone)
      const r = codex(cwd, ["purge", tombstone, "--by", "a", "--second", "b", "--reason", "r"])
      expect(r.code, r.stderr).toBe(0)
    }
  })
})

describe("recorded paths", () => {
  it("restores a recorded path under the current folder, or under --root", () => {
    const { cwd, tombstone } = archivedFile("sub/f.txt", "inside\n")
    fs.rmSync(path.join(cwd, "sub"), { recursive: true })
    const r = codex(cwd, ["restore", tombstone])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "sub/f.txt"), "utf8")).toBe("inside\n")
    const root = tempDir()
    const rooted = codex(cwd, ["restore", tombstone, "--root", root])
    expect(rooted.code, rooted.stderr).toBe(0)
    expect(rooted.stdout.trim()).toBe(path.join(root, "sub/f.txt"))
    expect(fs.readFileSync(path.join(root, "sub/f.txt"), "utf8")).toBe("inside\n")
    const missing = codex(cwd, ["restore", tombstone, "--root", path.join(root, "nope")])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(`--root ${path.join(root, "nope")}: no such folder`)
  })

  it("refuses an absolute or escaping recorded path, or one through a symlinked folder, unless --allow-outside", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    const work = path.join(cwd, "work")
    const away = tempDir()
    fs.mkdirSync(work)
    fs.symlinkSync(away, path.join(work, "link"))
    const escaping = path.join(away, "escaped.txt")
    for (const recorded of ["../../" + path.relative("/", escaping), escaping, "link/escaped.txt", "a/../../x.txt"]) {
      tamper(cwd, "UPDATE item SET path = ?", recorded)
      const r = codex(cwd, ["restore", tombstone, "--root", "work"])
      expect(r.code, `${recorded}: ${r.stderr}`).toBe(2)
      const where = path.isAbsolute(recorded) ? "is absolute" : `leads outside ${work}`
      expect(r.stderr.trim()).toBe(
        `codex: error: tombstone ${tombstone}: recorded path ${JSON.stringify(recorded)} ${where}; ` +
          "give an OUTPUT, or --allow-outside to write it there"
      )
      expect(fs.readdirSync(away)).toEqual([])
      expect(fs.existsSync(path.join(cwd, "x.txt"))).toBe(false)
    }
    // Allowed explicitly: written where the archive says, with a warning and the usual evidence.
    tamper(cwd, "UPDATE item SET path = ?", "link/escaped.txt")
    const allowed = codex(cwd, ["restore", tombstone, "--root", "work", "--allow-outside"])
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.stderr).toContain(`restoring outside ${work} (--allow-outside): recorded path "link/escaped.txt"`)
    expect(fs.readFileSync(escaping, "utf8")).toBe("payload\n")
    const restored = evidence(cwd).filter((l) => l.action === "RESTORE").map((l) => l.path)
    expect(restored).toEqual([path.join(work, "link/escaped.txt")])
  })
})

describe("a recorded path whose bytes are not UTF-8", () => {
  it("is refused with exit 2, not restored under the U+FFFD name it reads back as; an OUTPUT still restores it", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    // SQLite keeps a text column's bytes as given: dir/x\xff.txt.
    tamper(cwd, "UPDATE item SET path = CAST(X'6469722F78FF2E747874' AS TEXT)")
    const r = codex(cwd, ["restore", tombstone])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr.trim()).toBe(
      `codex: error: tombstone ${tombstone}: recorded path "dir/x\uFFFD.txt" holds U+FFFD or half a surrogate pair, ` +
        "which may stand for bytes that are not UTF-8 (another name than the one stored); give an OUTPUT"
    )
    expect(fs.existsSync(path.join(cwd, "dir"))).toBe(false)
    const given = codex(cwd, ["restore", tombstone, "out.txt"])
    expect(given.code, given.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "out.txt"), "utf8")).toBe("payload\n")
  })
})

describe("a recorded path is kept under the root while it is written", () => {
  it("a folder on its way that is a link is refused at the write (exit 1), even one leading back inside", () => {
    const { cwd, tombstone } = archivedFile("real/f.txt", "payload\n")
    fs.symlinkSync("real", path.join(cwd, "inner"))
    tamper(cwd, "UPDATE item SET path = ?", "inner/g.txt")
    const r = codex(cwd, ["restore", tombstone])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr.trim()).toBe(
      `codex: error: ${path.join(cwd, "inner/g.txt")}: output escapes its folder: ${
        path.join(fs.realpathSync(cwd), "inner")
      } is a symbolic link; nothing written outside ${fs.realpathSync(cwd)}`
    )
    expect(fs.readdirSync(path.join(cwd, "real"))).toEqual(["f.txt"])
    // Folders not there yet are made, following no link, and the file lands in them.
    tamper(cwd, "UPDATE item SET path = ?", "new/sub/g.txt")
    expect(codex(cwd, ["restore", tombstone]).code).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "new/sub/g.txt"), "utf8")).toBe("payload\n")
  })

  it("a file where a folder should be is named as what is in the way, not as an escape (exit 1)", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    write(path.join(cwd, "blocker"), "a file, not a folder\n")
    tamper(cwd, "UPDATE item SET path = ?", "blocker/g.txt")
    const r = codex(cwd, ["restore", tombstone])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr.trim()).toBe(
      `codex: error: ${path.join(cwd, "blocker/g.txt")}: cannot write output: ${
        path.join(fs.realpathSync(cwd), "blocker")
      } is not a folder`
    )
    expect(fs.readFileSync(path.join(cwd, "blocker"), "utf8")).toBe("a file, not a folder\n")
  })
})

describe("a stub restored in place stays in the folder it was read from", () => {
  // Another user who can write the stub's folder swaps it for a link (to /etc/cron.d) the moment the stub is read, while
  // a restore as root opens the archive: the restored file landed through the link.
  const swapper = `
import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.inotify_init()
assert libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) >= 0  # IN_OPEN
print("watching", flush=True)
os.read(fd, 4096)
os.rename(sys.argv[2], sys.argv[2] + ".real")
os.symlink(sys.argv[3], sys.argv[2])
`
  it("its folder swapped for a link once the stub is read: nothing is written through the link", async () => {
    const { cwd } = archivedFile("job", "* * * * * root echo owned\n")
    expect(codex(cwd, ["store", "r", "job", "--commit", "x", "--write-stub"]).code).toBe(0)
    const shared = path.join(fs.realpathSync(cwd), "shared")
    const victim = path.join(fs.realpathSync(cwd), "victim")
    fs.mkdirSync(shared)
    fs.mkdirSync(victim)
    fs.renameSync(path.join(cwd, "job"), path.join(shared, "job"))
    const stubText = fs.readFileSync(path.join(shared, "job"), "utf8")
    const watch = spawn("python3", ["-c", swapper, path.join(shared, "job"), shared, victim], { stdio: "pipe" })
    const swapped = new Promise<number | null>((resolve) => watch.on("close", resolve))
    // Waits for the watch to be in place (its first line), then restores the stub in place.
    await new Promise<void>((resolve, reject) => {
      watch.on("error", reject)
      watch.stdout.once("data", () => resolve())
    })
    const r = await codexAsync(cwd, ["restore", "shared/job"])
    expect(await swapped).toBe(0)
    expect(fs.readdirSync(victim)).toEqual([])
    // Restored where the stub really was, or refused as an escape: never through the link.
    const left = fs.readFileSync(path.join(`${shared}.real`, "job"), "utf8")
    if (r.code === 0) expect(left).toBe("* * * * * root echo owned\n")
    else {
      expect(r.stderr).toContain(`is a symbolic link; nothing written outside ${shared}`)
      expect(left).toBe(stubText)
    }
  })
})

describe("control characters in recorded paths reach no terminal", () => {
  it("restore prints a path holding a newline or ESC escaped, on stdout and in its error line", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    tamper(cwd, "UPDATE item SET path = ?", "a\n[ERROR] forged\u001b[31m")
    const r = codex(cwd, ["restore", tombstone])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`${path.join(cwd, "a")}\\u000a[ERROR] forged\\u001b[31m\n`)
    const again = codex(cwd, ["restore", tombstone])
    expect(again.stderr).toBe(
      `${path.join(cwd, "a")}\\u000a[ERROR] forged\\u001b[31m: already has the archived content; nothing written\n`
    )
    write(path.join(cwd, "blocker"), "a file, not a folder\n")
    tamper(cwd, "UPDATE item SET path = ?", "blocker/x\u001b[31m")
    const failed = codex(cwd, ["restore", tombstone])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/^codex: error: .*blocker\/x\\u001b\[31m/)
    expect(failed.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/)
  })
})

describe("control characters in archive rows reach no terminal", () => {
  /** Any character a terminal acts on, but the line breaks that end lines of the output itself. */
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/

  it("health-check shows a hostile codec name and a hostile tombstone id escaped on stdout", () => {
    const { cwd } = archivedFile("f.txt", "payload\n")
    tamper(cwd, "UPDATE artifact SET compression = ?", "zs\u001b]0;PWN\u0007\u001b[2Jtd")
    const codec = codex(cwd, ["health-check"])
    expect(codec.code).toBe(1)
    expect(codec.stdout).not.toMatch(raw)
    expect(codec.stdout).toContain("unsupported compression codec 'zs\\u001b]0;PWN\\u0007\\u001b[2Jtd'")
    expect(codec.stdout).toMatch(/^Status: ✗ FAILED \(sample: tombstone .*zs\\u001b\]0;PWN\\u0007/m)
    tamper(cwd, "UPDATE item SET tombstone_id = ?", "t\u001b[2J\u009b2J")
    const id = codex(cwd, ["health-check"])
    expect(id.code).toBe(1)
    expect(id.stdout).not.toMatch(raw)
    expect(id.stdout).toContain("table item, row t\\u001b[2J\\u009b2J: column tombstone_id")
    expect(id.stderr).not.toMatch(raw)
  })

  it("list and show print a C1 control or U+2028 in a recorded path as a JSON escape, the same JSON value", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "payload\n")
    const hostile = "a\u009b2J\u009d0;T\u009c\u007f\u2028b"
    tamper(cwd, "UPDATE item SET path = ?", hostile)
    for (const args of [["list"], ["show", tombstone]]) {
      const r = codex(cwd, args)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).not.toMatch(raw)
      expect(r.stdout).toContain("a\\u009b2J\\u009d0;T\\u009c\\u007f\\u2028b")
      const parsed = JSON.parse(r.stdout)
      expect((Array.isArray(parsed) ? parsed[0] : parsed).path).toBe(hostile)
    }
  })

  it("store's warning about a symbolic link names it with its C1 controls escaped", () => {
    const cwd = tempDir()
    const name = "l\u009b2J\u009d0;T\u009cink"
    fs.mkdirSync(path.join(cwd, "t"))
    fs.symlinkSync("/x", path.join(cwd, "t", name))
    const r = codex(cwd, ["store", "acme", "t", "--commit", "a"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(raw)
    expect(r.stderr).toContain("[WARNING] skipped t/l\\u009b2J\\u009d0;T\\u009cink")
  })
})

describe("file names in stubs", () => {
  it("a newline in a file name cannot make its stub restore another item's content", () => {
    const { cwd, tombstone: other } = archivedFile("other.txt", "the other item\n")
    const name = `evil\n# Tombstone: ${other}\n# SHA256: ${"0".repeat(64)}`
    write(path.join(cwd, name), "the evil file's own content\n")
    const stored = codex(cwd, ["store", "r", name, "--commit", "x", "--write-stub"])
    expect(stored.code, stored.stderr).toBe(0)
    const own = JSON.parse(stored.stdout).tombstone as string
    const stub = fs.readFileSync(path.join(cwd, name), "utf8")
    expect(stub.split("\n")).toHaveLength(14)
    expect(stub).toContain(`# File: ${JSON.stringify(name)}\n`)
    const r = codex(cwd, ["restore", name])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, name), "utf8")).toBe("the evil file's own content\n")
    expect(evidence(cwd).filter((l) => l.action === "RESTORE").map((l) => l.tombstone)).toEqual([own])
  })

  it("refuses a stub whose Tombstone line repeats (as the old renderer wrote such names), touching nothing", () => {
    const { cwd, tombstone: other } = archivedFile("other.txt", "the other item\n")
    const own = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
    const forged = [
      "# TOMBSTONE ARCHIVE STUB — DO NOT DELETE",
      "# File: evil",
      `# Tombstone: ${other}`,
      "# ArchivedBy: m",
      "# Reason: dead",
      `# Tombstone: ${own}`,
      `# SHA256: ${"a".repeat(64)}`,
      "#",
      "# To restore:",
      `#   codex archive restore ${own} evil`,
      ""
    ].join("\n")
    write(path.join(cwd, "evil"), forged)
    const r = codex(cwd, ["restore", "evil"])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(
      "codex: error: evil: not a valid tombstone stub: field 'Tombstone' appears more than once"
    )
    expect(fs.readFileSync(path.join(cwd, "evil"), "utf8")).toBe(forged)
    // Nor does a mention of another id make the file "its stub", to be replaced without --force.
    const over = codex(cwd, ["restore", other, "evil"])
    expect(over.code).toBe(1)
    expect(over.stderr).toContain("output exists with different content (use --force to replace it)")
    expect(fs.readFileSync(path.join(cwd, "evil"), "utf8")).toBe(forged)
    const batch = codex(cwd, ["batch-restore", "--stubs", "."])
    expect(batch.code).toBe(2)
    expect(batch.stderr).toContain("field 'Tombstone' appears more than once")
    expect(fs.readFileSync(path.join(cwd, "evil"), "utf8")).toBe(forged)
  })
})

describe("a results file given to --resume", () => {
  it("skips an item only when the archive holds the content the results file names, not on its word alone", () => {
    const { cwd, tombstone } = archivedFile("f.txt", "archived content\n")
    write(path.join(cwd, "h/evil.txt"), "attacker content\n")
    write(path.join(cwd, "h/m.csv"), `tombstone,output\n${tombstone},evil.txt\n`)
    const digest = createHash("sha256").update("attacker content\n").digest("hex")
    const forged = `tombstone,output,status,bytes,sha256\n${tombstone},${
      path.join(cwd, "h/evil.txt")
    },SUCCESS,17,${digest}\n`
    write(path.join(cwd, "h/r.csv"), forged)
    const r = codex(cwd, ["batch-restore", "h/m.csv", "--resume", "h/r.csv"])
    expect(r.code, r.stderr).toBe(1)
    const item = JSON.parse(r.stdout).results[0]
    expect(item.status).toBe("FAILED")
    expect(item.detail).toContain("exists with different content")
    expect(fs.readFileSync(path.join(cwd, "h/evil.txt"), "utf8")).toBe("attacker content\n")
    // A true record is still honoured: the item is skipped, its content checked, nothing written or recorded again.
    const restored = codex(cwd, ["batch-restore", "h/m.csv", "--force", "--results", "h/r2.csv"])
    expect(restored.code, restored.stderr).toBe(0)
    const lines = evidence(cwd).length
    const resumed = codex(cwd, ["batch-restore", "h/m.csv", "--resume", "h/r2.csv"])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout).results[0]).toMatchObject({ status: "SKIPPED", bytes: 17 })
    expect(evidence(cwd).slice(lines).map((e) => e.action)).toEqual(["RESTORE_BATCH"])
  })
})

describe("names whose bytes are not UTF-8", () => {
  /** `$'\xff'` words reach the CLI as raw bytes, which Node cannot be given (its arguments are strings). */
  const codexBytes = (cwd: string, words: ReadonlyArray<string>, env = "") => codexInShell(cwd, env, words.join(" "))

  it("an argument or a CODEX_ variable that is not UTF-8 is refused (exit 2), where it was read as another name", () => {
    const { cwd, tombstone } = archivedFile("a.txt", "hi\n")
    // Read as `out\u{FFFD}.txt`, this restored to a file the user never named, and exited 0.
    const arg = codexBytes(cwd, ["restore", tombstone, `$'out\\xff.txt'`])
    expect(arg.code).toBe(2)
    expect(arg.stderr).toBe(
      "codex: error: argument 'out\\xff.txt' is not UTF-8, and Node.js would read it as another name; use a UTF-8 name\n"
    )
    const variable = codexBytes(cwd, ["restore", tombstone, "b.txt"], `CODEX_EVIDENCE_DIR=$'ev\\xfe'`)
    expect(variable.code).toBe(2)
    expect(variable.stderr).toBe(
      "codex: error: CODEX_EVIDENCE_DIR is not UTF-8, and Node.js would read it as another value; set it in UTF-8\n"
    )
    expect(fs.readdirSync(cwd).sort()).toEqual([".codex", "a.txt"])
    // U+FFFD itself, in UTF-8, is a name like any other.
    const literal = codexBytes(cwd, ["restore", tombstone, `$'out\\xef\\xbf\\xbd.txt'`])
    expect(literal.code, literal.stderr).toBe(0)
    expect(fs.readFileSync(path.join(cwd, "out\uFFFD.txt"), "utf8")).toBe("hi\n")
  })

  it("a working folder or TMPDIR that is not UTF-8 is refused (exit 2): relative paths would go to another folder", () => {
    const { cwd, tombstone } = archivedFile("a.txt", "hi\n")
    // Read as `cw\u{FFFD}`, this restored into a new folder of that name, and exited 0.
    const moved = codexInShell(cwd, `mkdir $'cw\\xff' && cd $'cw\\xff' &&`, `restore ${tombstone} o.txt`)
    expect(moved.code).toBe(2)
    expect(moved.stderr).toBe(
      `codex: error: the current folder '${
        fs.realpathSync(cwd)
      }/cw\\xff' is not UTF-8: relative paths would be read under another folder by Node.js; run from a folder whose ` +
        "path is UTF-8\n"
    )
    expect(fs.readdirSync(cwd, { encoding: "buffer" }).map((n) => n.toString("latin1")).sort()).toEqual([
      ".codex",
      "a.txt",
      "cw\xff"
    ])
    // Nothing written in it either (a Buffer path reaches the bytes a string cannot).
    expect(fs.readdirSync(Buffer.concat([Buffer.from(`${cwd}/`), Buffer.from("cw\xff", "latin1")]))).toEqual([])
    const tmp = codexInShell(cwd, `TMPDIR=$'/tmp/x\\xff'`, "list")
    expect(tmp.code).toBe(2)
    expect(tmp.stderr).toBe(
      "codex: error: TMPDIR is not UTF-8, and Node.js would read it as another value; set it in UTF-8\n"
    )
    // Node reads TMP when TMPDIR is unset.
    const fallback = codexInShell(cwd, `unset TMPDIR; TMP=$'/tmp/x\\xff'`, "list")
    expect(fallback.code).toBe(2)
    expect(fallback.stderr).toContain("codex: error: TMP is not UTF-8")
    // An OUTPUT naming a folder was written as a file `out2`, exit 0.
    for (const given of ["out2/", "out2/."]) {
      const folder = codex(cwd, ["restore", tombstone, given])
      expect(folder.code).toBe(2)
      expect(folder.stderr).toBe(
        `codex: error: restore: OUTPUT ${given} names no file (it ends in '/', '.' or '..'); give a file name\n`
      )
    }
    expect(fs.existsSync(path.join(cwd, "out2"))).toBe(false)
  })

  it("a manifest holding such a name is refused at its line, and nothing is restored", () => {
    const { cwd, tombstone } = archivedFile("a.txt", "hi\n")
    const bytes = Buffer.from(`[{"tombstone":"${tombstone}",\n"output":"x\xff.txt"}]`, "latin1")
    fs.writeFileSync(path.join(cwd, "m.json"), bytes)
    const r = codex(cwd, ["batch-restore", "m.json"])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(
      `codex: error: manifest ${fs.realpathSync(cwd)}/m.json: not UTF-8 text: byte 0xff at line 2 (offset ${
        bytes.indexOf(0xff)
      })`
    )
    expect(fs.readdirSync(cwd).sort()).toEqual([".codex", "a.txt", "m.json"])
  })
})
