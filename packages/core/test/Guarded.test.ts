import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Guarded from "../src/Guarded.js"

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-guarded-"))

describe("Guarded", () => {
  it("knows a file under any name: a hard link, a symbolic link to its folder, a relative path", () => {
    const d = dir()
    const db = path.join(d, "a.db")
    fs.writeFileSync(db, "x")
    fs.linkSync(db, path.join(d, "other.json"))
    fs.symlinkSync(d, path.join(d, "via"))
    const guarded = Guarded.embeddedDatabase(db)
    expect(Guarded.find(path.join(d, "other.json"), guarded)?.what).toBe("the archive database")
    expect(Guarded.find(path.join(d, "via", "a.db"), guarded)?.what).toBe("the archive database")
    expect(Guarded.find(path.relative(process.cwd(), db), guarded)?.what).toBe("the archive database")
    // A journal not there yet is still the journal's place.
    expect(Guarded.find(path.join(d, "via", "a.db-wal"), guarded)?.what).toBe("a journal of the archive database")
    expect(Guarded.find(path.join(d, "b.db"), guarded)).toBeUndefined()
  })

  it("for a file written by rename, only its own name can hit: a hard link elsewhere is not replaced", () => {
    const d = dir()
    const log = path.join(d, "archive_ops.jsonl")
    fs.writeFileSync(log, "{}\n")
    fs.linkSync(log, path.join(d, "out.txt"))
    const guarded = Guarded.evidenceLog(log)
    expect(Guarded.find(path.join(d, "out.txt"), guarded, true)).toBeUndefined()
    expect(Guarded.refusal(log, guarded, true)?.message).toBe(`${log}: is the evidence log; refusing to write over it`)
    expect(Guarded.refusal(`${log}.lock`, guarded, true)?.problem).toBe("guarded")
  })
})
