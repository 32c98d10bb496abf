import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Evidence } from "../src/index.js"

describe("Evidence", () => {
  it("serialises like the original: sorted keys at every depth, compact, non-ASCII escaped", () => {
    expect(Evidence.serialize({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: "é" } })).toBe(
      "{\"a\":{\"c\":\"\\u00e9\",\"d\":[1,{\"y\":2,\"z\":1}]},\"b\":1}"
    )
  })

  it.effect("appends whole lines with ts, never rewriting what is there, and redacts credentials", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-ev-"))
    const file = Evidence.fileIn(dir)
    fs.writeFileSync(file, "seed line 1\nseed line 2\n")
    return Effect.gen(function*() {
      const evidence = yield* Evidence.Evidence
      yield* Effect.all([
        evidence.append({ action: "RESTORE", tombstone: "t1" }),
        evidence.append({ action: "RESTORE_FAIL", reason: "cannot reach postgres://bob:hunter2@db/x" }, {
          action: "RESTORE",
          tombstone: "t3"
        })
      ], { concurrency: "unbounded" })
      const lines = fs.readFileSync(file, "utf8").split("\n")
      expect(lines.slice(0, 2)).toEqual(["seed line 1", "seed line 2"])
      const records = lines.slice(2).filter(Boolean).map((l) => JSON.parse(l))
      expect(records).toHaveLength(3)
      for (const r of records) expect(r.ts).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
      expect(fs.readFileSync(file, "utf8")).not.toContain("hunter2")
      expect(fs.readFileSync(file, "utf8")).toContain("postgres://***@db/x")
    }).pipe(Effect.provide(Evidence.layer(dir)))
  })
})

describe("Evidence log behind a link", () => {
  it.effect("refuses to append through a symbolic link at the log's name (it could point anywhere)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-ev-link-"))
    const victim = path.join(dir, "victim.txt")
    fs.writeFileSync(victim, "victim\n")
    fs.symlinkSync(victim, Evidence.fileIn(dir))
    return Effect.gen(function*() {
      const evidence = yield* Evidence.Evidence
      const error = yield* Effect.flip(evidence.append({ action: "RESTORE", tombstone: "t1" }))
      expect(error._tag).toBe("EvidenceError")
      expect(error.message).toContain(Evidence.fileIn(dir))
      expect(error.message).toContain("symbolic link")
      expect(fs.readFileSync(victim, "utf8")).toBe("victim\n")
    }).pipe(Effect.provide(Evidence.layer(dir)))
  })

  it.effect("refuses a FIFO at the log's name: it would swallow every line while the append said success", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-ev-fifo-"))
    execFileSync("mkfifo", [Evidence.fileIn(dir)])
    return Effect.gen(function*() {
      const evidence = yield* Evidence.Evidence
      const error = yield* Effect.flip(evidence.append({ action: "RESTORE", tombstone: "t1" }))
      expect(error.message).toBe(
        `cannot append to evidence log ${Evidence.fileIn(dir)}: it is not a regular file; refusing to append to it`
      )
    }).pipe(Effect.provide(Evidence.layer(dir)))
  })
})
