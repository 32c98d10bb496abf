import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FileOps, Hash } from "../src/index.js"

describe("FileOps.writeFileAtomic", () => {
  it("never writes through a link planted at its temporary name (results, metrics, manifests, stubs)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-fileops-"))
    const victim = path.join(dir, "victim.txt")
    fs.writeFileSync(victim, "victim\n")
    const output = path.join(dir, "results.json")
    fs.symlinkSync(victim, FileOps.tempFor(output))
    FileOps.writeFileAtomic(output, "results\n")
    expect(fs.readFileSync(victim, "utf8")).toBe("victim\n")
    expect(fs.lstatSync(output).isFile()).toBe(true)
    expect(fs.readFileSync(output, "utf8")).toBe("results\n")
    // The link planted there is not ours to remove either: only the one written went (no temporary left).
    expect(fs.readlinkSync(FileOps.tempFor(output))).toBe(victim)
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(FileOps.tempFor(output)), "results.json", "victim.txt"])
  })

  it("names its temporaries so that a walk knows them, short names and long ones", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-fileops-"))
    for (const name of ["a.txt", "é".repeat(120), "m.json"]) {
      for (const kind of ["file", "manifest"] as const) {
        const { fd, temp } = FileOps.createTemp(path.join(dir, name), kind, 0o600)
        fs.closeSync(fd)
        expect(FileOps.isTemporary(path.basename(temp)), temp).toBe(true)
      }
    }
    for (const name of ["a.txt", ".a.txt.codex-restore.tmp", ".a.txt.0123456789ab.codex.tmp.bak", ".x.codex.tmp"]) {
      expect(FileOps.isTemporary(name), name).toBe(false)
    }
  })

  it("never removes a file that was there under a temporary's name (a user's `.a.txt.codex-restore.tmp`)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-fileops-"))
    const output = path.join(dir, "a.txt")
    const precious = FileOps.tempFor(output)
    fs.writeFileSync(precious, "precious\n")
    for (let i = 0; i < 3; i++) FileOps.writeFileAtomic(output, `stub ${i}\n`)
    expect(fs.readFileSync(precious, "utf8")).toBe("precious\n")
    expect(fs.readFileSync(output, "utf8")).toBe("stub 2\n")
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(precious), "a.txt"])
  })
})

describe("FileOps.tempFor", () => {
  const bytes = (file: string) => Buffer.byteLength(path.basename(file))
  // 255 bytes, the longest name a file system takes: ASCII, two-byte and three-byte UTF-8, and a four-byte one cut short.
  const longNames = ["a".repeat(255), "é".repeat(127) + "x", "日".repeat(85), "😀".repeat(63) + "abc"]

  it("keeps a long name's temporary within 255 bytes, fixed, distinct, and named as a restore's temporary", () => {
    expect(FileOps.tempFor("/d/short.txt")).toBe("/d/.short.txt.codex-restore.tmp")
    for (const name of longNames) {
      expect(Buffer.byteLength(name)).toBe(255)
      const temp = FileOps.tempFor(path.join("/d", name))
      expect(bytes(temp), name).toBeLessThanOrEqual(255)
      expect(path.basename(temp).endsWith(".codex-restore.tmp~")).toBe(true)
      expect(path.basename(temp)).not.toContain("\uFFFD")
      expect(Buffer.from(path.basename(temp)).toString("utf8")).toBe(path.basename(temp))
      expect(FileOps.tempFor(path.join("/d", name))).toBe(temp)
      expect(FileOps.tempFor(path.join("/d", name.slice(0, -1) + "b"))).not.toBe(temp)
    }
  })

  it("never gives a long name the temporary of a short name, even one made to look like its hashed form", () => {
    for (const name of longNames) {
      const temp = path.basename(FileOps.tempFor(path.join("/d", name)))
      // The short name whose plain temporary would read the same as the long name's, without its last `~`.
      const lookalike = temp.slice(1, -".codex-restore.tmp~".length)
      expect(Buffer.byteLength(`.${lookalike}.codex-restore.tmp`)).toBeLessThanOrEqual(255)
      expect(path.basename(FileOps.tempFor(path.join("/d", lookalike)))).toBe(`.${lookalike}.codex-restore.tmp`)
      expect(path.basename(FileOps.tempFor(path.join("/d", lookalike)))).not.toBe(temp)
    }
  })

  it("writes a file whose name is 255 bytes atomically, leaving no temporary", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-longname-"))
    for (const name of longNames) {
      const output = path.join(dir, name)
      FileOps.writeFileAtomic(output, "long\n")
      expect(fs.readFileSync(output, "utf8")).toBe("long\n")
    }
    expect(fs.readdirSync(dir).sort()).toEqual([...longNames].sort())
  })
})

describe("FileOps.readBounded", () => {
  it("reads a small regular file; refuses devices, FIFOs (without blocking), links when asked, and files over the limit", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-bounded-"))
    const file = path.join(dir, "small.txt")
    fs.writeFileSync(file, "hello\n")
    expect(FileOps.readBounded(file, 6)).toBe("hello\n")
    expect(() => FileOps.readBounded(file, 5)).toThrow(`${file} is larger than 5 bytes`)
    expect(() => FileOps.readBounded("/dev/zero", 1024)).toThrow("/dev/zero is not a regular file")
    const fifo = path.join(dir, "fifo")
    execFileSync("mkfifo", [fifo])
    expect(() => FileOps.readBounded(fifo, 1024)).toThrow(`${fifo} is not a regular file`)
    const link = path.join(dir, "link")
    fs.symlinkSync(file, link)
    expect(FileOps.readBounded(link, 1024)).toBe("hello\n")
    expect(() => FileOps.readBounded(link, 1024, { noFollow: true })).toThrow()
  })
})

describe("FileOps.makeFolders", () => {
  it("creates missing folders, and names what is in the way when it cannot", () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-folders-")))
    try {
      FileOps.makeFolders(path.join(dir, "a/b/c"))
      expect(fs.statSync(path.join(dir, "a/b/c")).isDirectory()).toBe(true)
      fs.writeFileSync(path.join(dir, "file"), "x")
      expect(() => FileOps.makeFolders(path.join(dir, "file/x/y"))).toThrow(`${path.join(dir, "file")} is not a folder`)
      fs.symlinkSync(path.join(dir, "nowhere"), path.join(dir, "link"))
      expect(() => FileOps.makeFolders(path.join(dir, "link/x"))).toThrow(
        `${path.join(dir, "link")} is a symbolic link to ${path.join(dir, "nowhere")}, which does not exist`
      )
      expect(fs.existsSync(path.join(dir, "nowhere"))).toBe(false)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("FileOps.appendWhole", () => {
  it("appends everything, or cuts a write that failed partway back off", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-append-"))
    const file = path.join(dir, "log")
    fs.writeFileSync(file, "line 1\n")
    const fd = fs.openSync(file, "a")
    const other = fs.openSync(file, "a")
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
    // Half of it reaches the disk, then the disk is full.
    const halfThenFull = ((f: number, b: Uint8Array, offset = 0) => {
      if ((offset ?? 0) > 0) throw full
      return fs.writeSync(f, b, 0, b.length >> 1)
    }) as typeof fs.writeSync
    try {
      FileOps.appendWhole(fd, Buffer.from("line 2\n"))
      expect(() => FileOps.appendWhole(fd, Buffer.from("line 3 that does not fit\n"), halfThenFull)).toThrow(full)
      expect(fs.readFileSync(file, "utf8")).toBe("line 1\nline 2\n")
      // The part written cannot be cut back (a descriptor that cannot truncate): the error says so.
      const readOnly = fs.openSync(file, "r")
      const elsewhere = ((_: number, b: Uint8Array, offset = 0) => {
        if ((offset ?? 0) > 0) throw full
        return fs.writeSync(other, b, 0, 4)
      }) as typeof fs.writeSync
      expect(() => FileOps.appendWhole(readOnly, Buffer.from("line 4\n"), elsewhere)).toThrow(
        /^ENOSPC: no space left on device, write; the part written could not be cut back off: /
      )
      fs.closeSync(readOnly)
    } finally {
      fs.closeSync(fd)
      fs.closeSync(other)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("an output as it stands", () => {
  it("inspect sees a link as a link, and Hash.file reads no link nor anything but a regular file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-fileops-"))
    const file = path.join(dir, "f.txt")
    fs.writeFileSync(file, "content\n")
    fs.symlinkSync(file, path.join(dir, "link"))
    fs.symlinkSync("/dev/zero", path.join(dir, "zero"))
    expect(FileOps.inspect(path.join(dir, "link"))).toEqual({ _tag: "Link" })
    expect(FileOps.inspect(file)).toMatchObject({ _tag: "File", size: 8 })
    expect(Hash.file(file)).toBe(Hash.sha256("content\n"))
    // A link swapped in after the check (to /dev/zero, which reads without end) is not followed.
    expect(() => Hash.file(path.join(dir, "link"))).toThrow(/ELOOP/)
    expect(() => Hash.file(path.join(dir, "zero"))).toThrow(/ELOOP/)
    expect(() => Hash.file("/dev/null")).toThrow("/dev/null is not a regular file")
  })
})
