import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FileOps } from "../src/index.js"

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
    expect(fs.existsSync(FileOps.tempFor(output))).toBe(false)
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
