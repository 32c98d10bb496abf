import { describe, expect, it } from "@effect/vitest"
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
