import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Evidence, EvidenceChain } from "../src/index.js"

const key = Redacted.make("the chain key")

/** A fresh evidence folder holding `n` chained lines, one append each (actor a1..an); returns the log file. */
const chainedLog = (n: number, options: Evidence.Options = {}) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chain-"))
    const evidence = yield* Evidence.make(dir, options)
    for (let i = 1; i <= n; i++) yield* evidence.append({ action: "RESTORE", actor: `a${i}`, tombstone: `t${i}` })
    return evidence.file
  })

const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").slice(0, -1)
const rewrite = (file: string, next: ReadonlyArray<string>) =>
  fs.writeFileSync(file, next.map((l) => l + "\n").join(""))

/** Verifies and returns the break as `{line, kind}` (or null when intact). */
const brokenAt = (file: string, options: { key?: Redacted.Redacted<string> } = {}) =>
  Effect.map(EvidenceChain.verify(file, options), (r) => r.break && { line: r.break.line, kind: r.break.kind })

describe("EvidenceChain", () => {
  it.effect("each line carries prev (SHA-256 of the line before; zeros first) and seq; an intact log verifies", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(5)
      const [first, second] = lines(file).map((l) => JSON.parse(l))
      expect(first).toMatchObject({ action: "RESTORE", actor: "a1", seq: 1, prev: EvidenceChain.genesis })
      expect(second).toMatchObject({ seq: 2, prev: EvidenceChain.hashLine(lines(file)[0]!) })
      expect(first.mac).toBeUndefined()
      // Still the original format: sorted keys, compact, and the canonical bytes of the record.
      expect(lines(file)[0]).toBe(EvidenceChain.serialize(first))
      const report = yield* EvidenceChain.verify(file)
      expect(report).toEqual({ file, lines: 5, legacy: 0, chain_from: 1, keyed: false, ok: true, break: null })
    }))

  it.effect("a deleted line is reported at the line after the gap", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(6)
      rewrite(file, lines(file).filter((_, i) => i !== 2))
      expect(yield* brokenAt(file)).toEqual({ line: 3, kind: "deleted" })
      const head = yield* chainedLog(3)
      rewrite(head, lines(head).slice(1))
      expect(yield* brokenAt(head)).toEqual({ line: 1, kind: "deleted" })
    }))

  it.effect("an edited actor is reported at the edited line", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(6)
      rewrite(file, lines(file).map((l, i) => i === 2 ? l.replace("\"actor\":\"a3\"", "\"actor\":\"mallory\"") : l))
      expect(yield* brokenAt(file)).toEqual({ line: 3, kind: "edited" })
    }))

  it.effect("two swapped lines are reported as reordered, adjacent or not", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(6)
      const original = lines(file)
      rewrite(file, [original[0]!, original[1]!, original[3]!, original[2]!, original[4]!, original[5]!])
      expect(yield* brokenAt(file)).toEqual({ line: 3, kind: "reordered" })
      rewrite(file, [original[0]!, original[4]!, original[2]!, original[3]!, original[1]!, original[5]!])
      expect(yield* brokenAt(file)).toEqual({ line: 2, kind: "reordered" })
      rewrite(file, [...original.slice(0, 4), original[5]!, original[4]!])
      expect(yield* brokenAt(file)).toEqual({ line: 5, kind: "reordered" })
    }))

  it.effect("a first line made unreadable is reported as edited there, not as lines deleted before the second", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(4)
      const original = lines(file)
      for (const first of ["rm -rf / # oops", "{\"action\":\"STORE\",\"actor\":\"mallory\"}"]) {
        rewrite(file, [first, ...original.slice(1)])
        expect(yield* brokenAt(file), first).toEqual({ line: 1, kind: "edited" })
      }
      // The first line deleted: the second, now first, chains to a line that is not there.
      rewrite(file, original.slice(1))
      expect(yield* brokenAt(file)).toEqual({ line: 1, kind: "deleted" })
    }))

  it.effect("a truncated tail (half a line) is reported as truncated at that line", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(4)
      const size = fs.statSync(file).size
      fs.truncateSync(file, size - 40)
      expect(yield* brokenAt(file)).toEqual({ line: 4, kind: "truncated" })
      // Cut exactly at the newline: the record is whole, but its line is not.
      const whole = yield* chainedLog(4)
      fs.truncateSync(whole, fs.statSync(whole).size - 1)
      expect(yield* brokenAt(whole)).toEqual({ line: 4, kind: "truncated" })
    }))

  it.effect("appended garbage, or an appended record without a chain, is reported by line", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(4)
      fs.appendFileSync(file, "rm -rf / # oops\n")
      expect(yield* brokenAt(file)).toEqual({ line: 5, kind: "garbage" })
      const other = yield* chainedLog(4)
      fs.appendFileSync(other, "{\"action\":\"RESTORE\",\"actor\":\"mallory\",\"ts\":\"2026-01-01T00:00:00Z\"}\n")
      expect(yield* brokenAt(other)).toEqual({ line: 5, kind: "inserted" })
      // Raw bytes no writer leaves, in a line that starts as a record: garbage, not a line cut short by a crash.
      for (const raw of ["{\"action\":\"RESTORE\u0007\u001b[2J\"}", "{\"action\":\"RÉSTORE\"", "{\"a\":1\r"]) {
        const planted = yield* chainedLog(4)
        fs.appendFileSync(planted, raw + "\n")
        expect(yield* brokenAt(planted), JSON.stringify(raw)).toEqual({ line: 5, kind: "garbage" })
      }
    }))

  it.effect("an inserted line is reported at its own number, whether copied or given a recomputed chain", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(6)
      const original = lines(file)
      rewrite(file, [...original.slice(0, 4), original[1]!, ...original.slice(4)])
      expect(yield* brokenAt(file)).toEqual({ line: 5, kind: "inserted" })
      const forged = EvidenceChain.link([{ action: "RESTORE", actor: "mallory", ts: "2026-01-01T00:00:00Z" }], {
        prev: EvidenceChain.hashLine(original[3]!),
        seq: 5
      }, undefined)
      rewrite(file, [...original.slice(0, 4), ...forged, ...original.slice(4)])
      expect(yield* brokenAt(file)).toEqual({ line: 5, kind: "inserted" })
    }))

  it.effect("with an HMAC key, a forger who rewrites a line and recomputes every plain prev is caught", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(6, { hmac_key: key })
      const original = lines(file)
      expect(JSON.parse(original[0]!).mac).toMatch(/^[0-9a-f]{64}$/)
      expect(yield* brokenAt(file, { key })).toBeNull()
      // The forger edits line 3 and re-links lines 4-6 (keeping their macs: without the key he cannot renew them).
      const next = original.map((l) => JSON.parse(l))
      next[2].actor = "mallory"
      let prev = EvidenceChain.hashLine(EvidenceChain.serialize(next[2]))
      for (const record of next.slice(3)) {
        record.prev = prev
        prev = EvidenceChain.hashLine(EvidenceChain.serialize(record))
      }
      rewrite(file, next.map((r) => EvidenceChain.serialize(r)))
      expect(yield* brokenAt(file)).toBeNull()
      expect(yield* brokenAt(file, { key })).toEqual({ line: 3, kind: "forged" })
      expect(yield* brokenAt(file, { key: Redacted.make("another key") })).toEqual({ line: 1, kind: "forged" })
      // A line without a mac in a keyed check is forged too (macs cannot be stripped away).
      const unkeyed = yield* chainedLog(2)
      expect(yield* brokenAt(unkeyed, { key })).toEqual({ line: 1, kind: "forged" })
      // Stripping prev, seq and mac from every line (and editing one) is no escape from a keyed check.
      rewrite(file, next.map(({ mac: _m, prev: _p, seq: _s, ...rest }) => EvidenceChain.serialize(rest)))
      expect(yield* brokenAt(file)).toBeNull()
      expect(yield* brokenAt(file, { key })).toEqual({ line: 1, kind: "forged" })
    }))

  it.effect("a log that starts with lines of the original tool says where chaining starts, and is accepted", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chain-"))
      const file = Evidence.fileIn(dir)
      // Spec §3: the core's compact lines, and the legacy api.py's default separators.
      fs.writeFileSync(
        file,
        [
          "{\"action\":\"ARCHIVE\",\"actor\":\"alice\",\"path\":\"src/a.py\",\"repo\":\"acme/app\",\"sha256\":\"" +
          "a".repeat(64) +
          "\",\"size\":12,\"tombstone\":\"53ecc443-e163-4c65-a936-70ae8b593acf\",\"ts\":\"2025-01-02T03:04:05Z\"}",
          "{\"action\": \"RESTORE\", \"actor\": \"bob\", \"path\": \"src/a.py\", \"repo\": \"acme/app\", \"size\": 12, \"ts\": \"2025-01-03T00:00:00Z\"}",
          "{\"action\":\"SUMMARY\",\"count\":1,\"total_bytes\":12,\"ts\":\"2025-01-04T00:00:00Z\"}"
        ].join("\n") + "\n"
      )
      const evidence = yield* Evidence.make(dir)
      yield* evidence.append({ action: "RESTORE", actor: "carol", tombstone: "t" }, {
        action: "RESTORE",
        actor: "dave",
        tombstone: "u"
      })
      const chained = JSON.parse(lines(file)[3]!)
      expect(chained).toMatchObject({ seq: 1, prev: EvidenceChain.hashLine(lines(file)[2]!) })
      const report = yield* EvidenceChain.verify(file)
      expect(report).toMatchObject({ lines: 5, legacy: 3, chain_from: 4, ok: true, break: null })
      expect(EvidenceChain.describe(report)).toBe(
        `${file}: 5 lines, lines 1-3 predate chaining; chain from line 4: intact`
      )
    }))

  it.effect("appending after a torn tail ends that line and chains to its bytes: verify names the torn line", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(3)
      fs.appendFileSync(file, "{\"action\":\"RESTORE\",\"act")
      const evidence = yield* Evidence.make(path.dirname(file))
      yield* evidence.append({ action: "RESTORE", actor: "after", tombstone: "t" })
      const all = lines(file)
      expect(all).toHaveLength(5)
      expect(all[3]).toBe("{\"action\":\"RESTORE\",\"act")
      expect(JSON.parse(all[4]!)).toMatchObject({ actor: "after", seq: 1, prev: EvidenceChain.hashLine(all[3]!) })
      expect(yield* brokenAt(file)).toEqual({ line: 4, kind: "truncated" })
    }))

  it.effect("a lock left by a killed appender is broken; the append goes through and releases its lock", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(1)
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid
      fs.writeFileSync(`${file}.lock`, `${dead} ${os.hostname()} x\n`)
      const evidence = yield* Evidence.make(path.dirname(file))
      yield* evidence.append({ action: "RESTORE", actor: "next", tombstone: "t" })
      // A lock from another machine is broken once it is older than the staleness limit.
      fs.writeFileSync(`${file}.lock`, `${process.pid} elsewhere.example x\n`)
      fs.utimesSync(`${file}.lock`, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000))
      yield* evidence.append({ action: "RESTORE", actor: "later", tombstone: "u" })
      expect(fs.existsSync(`${file}.lock`)).toBe(false)
      expect(fs.readdirSync(path.dirname(file))).toEqual(["archive_ops.jsonl"])
      expect(yield* EvidenceChain.verify(file)).toMatchObject({ lines: 3, ok: true })
    }))

  it.effect("a lock file planted as a link, FIFO or folder is refused at once, naming it (no minute's wait)", () =>
    Effect.gen(function*() {
      const file = yield* chainedLog(1)
      const lock = `${file}.lock`
      const evidence = yield* Evidence.make(path.dirname(file))
      const plants: ReadonlyArray<[string, () => void]> = [
        ["a symbolic link", () => fs.symlinkSync("/dev/zero", lock)],
        ["a symbolic link", () => fs.symlinkSync(path.join(path.dirname(file), "nowhere"), lock)],
        ["a FIFO", () => spawnSync("mkfifo", [lock])],
        ["a directory", () => fs.mkdirSync(lock)]
      ]
      for (const [what, plant] of plants) {
        plant()
        const started = Date.now()
        const error = yield* Effect.flip(evidence.append({ action: "RESTORE", actor: "x", tombstone: "t" }))
        expect(Date.now() - started).toBeLessThan(2_000)
        expect(error.message).toContain(`lock file ${lock} is ${what}, not a lock this tool took; remove it`)
        expect(error.message).not.toContain("\n")
        fs.rmSync(lock, { recursive: true, force: true })
      }
      expect(lines(file)).toHaveLength(1)
    }))

  it.effect("an unwritable evidence folder is an EvidenceError naming the log", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chain-"))
      fs.writeFileSync(path.join(dir, "blocker"), "")
      const evidence = yield* Evidence.make(path.join(dir, "blocker", "evidence"))
      const error = yield* Effect.flip(evidence.append({ action: "RESTORE", actor: "x", tombstone: "t" }))
      expect(error.message).toContain(
        `cannot append to evidence log ${path.join(dir, "blocker", "evidence", "archive_ops.jsonl")}`
      )
    }))

  it.effect("a log that is a FIFO or a link to a device is an EvidenceReadError at once, not a hang", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-chain-"))
      const fifo = path.join(dir, "fifo.jsonl")
      spawnSync("mkfifo", [fifo])
      const zero = path.join(dir, "zero.jsonl")
      fs.symlinkSync("/dev/zero", zero)
      for (const file of [fifo, zero]) {
        const error = yield* Effect.flip(EvidenceChain.verify(file))
        expect(error.message).toBe(`cannot read evidence log ${file}: it is not a regular file`)
      }
    }))

  it.effect("a missing log is an EvidenceReadError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(EvidenceChain.verify("/nonexistent/archive_ops.jsonl"))
      expect(error.message).toBe("cannot read evidence log /nonexistent/archive_ops.jsonl: it does not exist")
    }))
})
