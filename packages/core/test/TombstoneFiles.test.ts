/** Stub detection on files a shared tree may have swapped: never through a link, never blocked by a FIFO. */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Tombstone } from "../src/index.js"

const tombstone = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const text = Tombstone.render({
  path: "s.py",
  archivedBy: "a",
  reason: "dead",
  tombstone,
  sha256: "a".repeat(64),
  archivedAt: "",
  commit: "c"
})

describe("stub files", () => {
  it("isStubFile and isStubOf follow no link and do not block on a FIFO (0 bytes: small enough to be a stub)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-stubfile-"))
    const real = path.join(dir, "real.py")
    fs.writeFileSync(real, text)
    const link = path.join(dir, "link.py")
    fs.symlinkSync(real, link)
    expect([Tombstone.isStubFile(real), Tombstone.isStubOf(real, tombstone)]).toEqual([true, true])
    expect([Tombstone.isStubFile(link, 0), Tombstone.isStubOf(link, tombstone, 0)]).toEqual([false, false])
    const fifo = path.join(dir, "fifo")
    execFileSync("mkfifo", [fifo])
    expect([Tombstone.isStubFile(fifo, 0), Tombstone.isStubOf(fifo, tombstone, 0)]).toEqual([false, false])
  })
})
