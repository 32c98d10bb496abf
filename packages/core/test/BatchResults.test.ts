/**
 * `--resume` reads an earlier run's results file (JSON or CSV), each record decoded by one Schema: what it restored is
 * found, and a malformed record is refused naming the file and its line.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { BatchResults } from "../src/index.js"

const t1 = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const t2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
const sha = "ab".repeat(32)

const folder = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-results-")))

const item = (i: number, over: Partial<BatchResults.Item> = {}): BatchResults.Item => ({
  tombstone: t1,
  output: `/restored/d${i % 7}/f${i}, "quoted"\nname.txt`,
  actor: "ann",
  status: i % 5 === 0 ? "FAILED" : "SUCCESS",
  duration_ms: 1.5,
  ...(i % 5 === 0 ? { error: "StoreError", detail: "down" } : { bytes: i, sha256: sha }),
  ...over
})

/** A results file written as a batch writes it. */
const written = (file: string, items: ReadonlyArray<BatchResults.Item>) =>
  Effect.gen(function*() {
    const writer = yield* BatchResults.open([file])
    for (const i of items) writer.append(i)
    yield* writer.flush(BatchResults.summarize(items, { durationMs: 10, inProgress: false, interrupted: false }))
    yield* writer.close
  })

describe("BatchResults.readDone", () => {
  for (const name of ["r.json", "r.csv"]) {
    it.scoped(`${name}: the done items of a batch, read streamed (quoted names across thousand-row pieces)`, () =>
      Effect.gen(function*() {
        const file = path.join(folder(), name)
        const items = Array.from({ length: 2500 }, (_, i) => item(i))
        yield* written(file, items)
        const done = yield* BatchResults.readDone(file)
        expect(done.size).toBe(2000)
        expect(done.get(t1, items[7]!.output)).toEqual({ bytes: 7, sha256: sha })
        expect(done.get(t1, items[10]!.output)).toBeUndefined()
      }))
  }

  /** A results file holding a good record and then `bad`, and the line the bad one stands on. */
  const hostile: ReadonlyArray<[string, Partial<Record<keyof BatchResults.Item, unknown>>, RegExp]> = [
    ["a bad tombstone", { tombstone: "../x" }, /tombstone: '\.\.\/x' is not a tombstone id/],
    ["an unknown status", { status: "DONE" }, /status: expected one of SUCCESS, UNCHANGED, FAILED, SKIPPED, NOT_RUN/],
    ["a bad sha256", { sha256: "00zz" }, /sha256: '00zz' is not a sha256/],
    ["negative bytes", { bytes: -3 }, /bytes: expected a whole number of bytes/],
    ["a missing output", { output: "" }, /missing output|output: an empty path/]
  ]
  for (const name of ["r.json", "r.csv"]) {
    for (const [what, bad, problem] of hostile) {
      it.scoped(`${name}: ${what} names the file and the line`, () =>
        Effect.gen(function*() {
          const file = path.join(folder(), name)
          yield* written(file, [item(1), { ...item(2), ...bad } as BatchResults.Item])
          const e = yield* Effect.flip(BatchResults.readDone(file))
          expect(e._tag).toBe("ResultsError")
          // JSON: two lines of heading, then one per item. CSV: the header, then two lines per item (a quoted newline);
          // a record is named by the line it ends on.
          const line = name === "r.json" ? 4 : typeof bad.output === "string" && !bad.output.includes("\n") ? 4 : 5
          expect(e.message).toContain(`results file ${file} (line ${line}): `)
          expect(e.message).toMatch(problem)
          expect(e.message).not.toContain("\n")
        }))
    }
  }

  it.scoped("a JSON record of the wrong type, and a torn line that is not the last, are refused", () =>
    Effect.gen(function*() {
      const dir = folder()
      const file = path.join(dir, "r.json")
      yield* written(file, [item(1), item(2), item(3)])
      const lines = fs.readFileSync(file, "utf8").split("\n")
      fs.writeFileSync(
        file,
        [...lines.slice(0, 3), `    {"tombstone": 7, "output": "x", "status": "SUCCESS"},`, ...lines.slice(4)].join(
          "\n"
        )
      )
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain(
        `(line 4): tombstone: Expected string, actual 7`
      )
      fs.writeFileSync(file, [...lines.slice(0, 3), `    {"tombstone": "${t2}", "out`, ...lines.slice(4)].join("\n"))
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain(
        `(line 4): not a JSON result (only the last may be cut short)`
      )
    }))

  it.scoped("a JSON results file cut inside a character of its last record reads as the records before it", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.json")
      yield* written(file, [item(1), item(2, { output: "/ü😀" })])
      const whole = fs.readFileSync(file)
      const at = whole.indexOf(Buffer.from("😀"))
      for (const cut of [at + 1, at + 2, at + 3]) {
        fs.writeFileSync(file, whole.subarray(0, cut))
        expect((yield* BatchResults.readDone(file)).get(t1, item(1).output), `cut at ${cut}`).toEqual({
          bytes: 1,
          sha256: sha
        })
      }
      // Anywhere else a byte that is not UTF-8 is refused at its line: read as U+FFFD, it named another output.
      fs.writeFileSync(file, Buffer.concat([whole.subarray(0, at), Buffer.from([0xff]), whole.subarray(at)]))
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain("not UTF-8 text: byte 0xff at line 4")
    }))

  it.scoped("a flush cut short by a full disk, after any number of its bytes, leaves a file --resume reads", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.json")
      // Short items after long totals: the old code wrote them over the old totals, then the new totals, and a failure
      // between the two left old totals after the items, which --resume refused.
      const short = (i: number): BatchResults.Item => ({
        tombstone: t2,
        output: `/o${i}`,
        actor: "a",
        status: "SKIPPED"
      })
      const totals = BatchResults.summarize([], { durationMs: 10, inProgress: true, interrupted: false })
      const cjsFs = createRequire(import.meta.url)("node:fs") as typeof fs
      const writeSync = cjsFs.writeSync
      for (let allowed = 0; allowed < 400; allowed += 7) {
        const writer = yield* BatchResults.open([file])
        writer.append(item(1))
        yield* writer.flush(totals)
        writer.append(short(2))
        writer.append(short(3))
        // The next write stops after `allowed` bytes: the disk is full.
        cjsFs.writeSync = ((fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
          if (length <= allowed) return writeSync(fd, buffer, offset, length, position)
          if (allowed > 0) writeSync(fd, buffer, offset, allowed, position)
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
        }) as typeof fs.writeSync
        syncBuiltinESMExports()
        const failed = yield* Effect.either(writer.flush(totals)).pipe(
          Effect.ensuring(Effect.sync(() => {
            cjsFs.writeSync = writeSync
            syncBuiltinESMExports()
          }))
        )
        yield* writer.close
        const done = yield* BatchResults.readDone(file)
        expect(done.get(t1, item(1).output), `${allowed} bytes written`).toEqual({ bytes: 1, sha256: sha })
        if (failed._tag === "Right") expect(done.get(t2, "/o3")).toEqual(undefined)
      }
    }))

  it.scoped("a CSV results file cut at any byte of its last records reads as the records before the cut", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.csv")
      // Past the thousand-line piece, each name holding a quoted newline, so some cuts leave a quote open.
      const items = Array.from({ length: 520 }, (_, i) => item(i))
      // Where the file of the first n items ends, for the last few n.
      const ends = new Map<number, number>()
      for (let n = items.length - 3; n <= items.length; n++) {
        yield* written(file, items.slice(0, n))
        ends.set(n, fs.statSync(file).size)
      }
      const whole = fs.readFileSync(file)
      for (let cut = ends.get(items.length - 3)!; cut <= whole.length; cut++) {
        const prefix = whole.subarray(0, cut)
        fs.writeFileSync(file, prefix)
        // Cut just after a newline inside a quoted name: as a stray quote would look, so refused, naming the file.
        const quotes = prefix.toString("latin1").split("\"").length - 1
        if (prefix.at(-1) === 10 && quotes % 2 === 1) {
          expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain(`results file ${file}`)
          continue
        }
        const done = yield* BatchResults.readDone(file)
        const n = Math.max(...[...ends].filter(([, end]) => end <= cut).map(([n]) => n))
        const complete = items.slice(0, n).filter((it) => it.status === "SUCCESS")
        expect(done.size, `cut at byte ${cut}`).toBe(complete.length)
      }
    }))

  it.scoped("a CSV results file with a quote left open before complete records is refused, not cut there", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.csv")
      const plain = (i: number) => item(i, { output: `/restored/plain${i}.txt` })
      yield* written(file, [item(1, { output: `/restored/a "b" c.txt` }), plain(2), plain(3), plain(4)])
      // The first record's name loses its closing quote; the records after it are whole and end in a newline.
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(`c.txt",`, `c.txt,`))
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toMatch(
        new RegExp(`^results file ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} \\(line \\d+\\): cannot parse`)
      )
    }))

  it.scoped("a pretty-printed results file (not this version's) is read whole; a bad record is named by its ordinal", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.json")
      const summary = BatchResults.summarize([item(1), { ...item(2), status: "BOGUS" as BatchResults.Status }], {
        durationMs: 1,
        inProgress: false,
        interrupted: false
      })
      fs.writeFileSync(file, JSON.stringify(summary, null, 2))
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain(`(result 2): status: expected one of`)
      fs.writeFileSync(file, JSON.stringify({ ...summary, results: [item(1)] }, null, 2))
      expect((yield* BatchResults.readDone(file)).size).toBe(1)
    }))

  it.scoped("a JSON results file saved with a byte-order mark is read as without one (as a manifest is)", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.json")
      const summary = BatchResults.summarize([item(1)], { durationMs: 1, inProgress: false, interrupted: false })
      fs.writeFileSync(file, "\ufeff" + JSON.stringify(summary, null, 2))
      expect((yield* BatchResults.readDone(file)).size).toBe(1)
    }))

  it.scoped("a FIFO is refused, not waited on", () =>
    Effect.gen(function*() {
      const file = path.join(folder(), "r.csv")
      execFileSync("mkfifo", [file])
      expect((yield* Effect.flip(BatchResults.readDone(file))).message).toContain("not a regular file")
    }))

  it.scoped("past one run, the done set goes through temporary files: every item found, the last record of a key kept, the files removed", () =>
    Effect.gen(function*() {
      const dir = folder()
      const file = path.join(dir, "r.json")
      const temp = path.join(dir, "temp")
      fs.mkdirSync(temp)
      const items = Array.from({ length: 3000 }, (_, i) =>
        item(i, {
          tombstone: i % 2 === 0 ? t1 : t2,
          ...(i % 5 === 0 ? {} : { sha256: (i % 256).toString(16).padStart(2, "0").repeat(32) })
        }))
      // The same key again, later in the file, with other content: the later record is the one that counts.
      const again = item(7, { tombstone: t2, bytes: 70, sha256: "cd".repeat(32) })
      yield* written(file, [...items, again])
      const saved = { ...BatchResults.doneTuning }
      Object.assign(BatchResults.doneTuning, { runRecords: 64, mergeBytes: 4096, tempRoot: temp })
      const done = yield* Effect.scoped(Effect.gen(function*() {
        const done = yield* BatchResults.readDone(file).pipe(
          Effect.ensuring(Effect.sync(() => Object.assign(BatchResults.doneTuning, saved)))
        )
        // The records and the payloads: one folder each while the set is open.
        expect(fs.readdirSync(temp)).toHaveLength(2)
        expect(done.size).toBe(items.filter((it) => it.status === "SUCCESS").length)
        for (const it of items) {
          const found = done.get(it.tombstone, it.output)
          if (it.status !== "SUCCESS") expect(found).toBeUndefined()
          else if (it === items[7]) expect(found).toEqual({ bytes: 70, sha256: "cd".repeat(32) })
          else expect(found).toEqual({ bytes: it.bytes, sha256: it.sha256 })
        }
        expect(done.get(t1, items[7]!.output)).toBeUndefined()
        expect(done.get(t1, "/restored/elsewhere")).toBeUndefined()
        return done
      }))
      expect(done.size).toBeGreaterThan(0)
      expect(fs.readdirSync(temp)).toEqual([])
    }))
})

describe("BatchResults.summarize", () => {
  it("gives p50, p95 and p99 within 0.5% of the durations' own nearest-rank percentiles, from a fixed histogram", () => {
    let x = 12345
    const random = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648
    // Log-normal-ish durations from 2 µs to minutes, and a few zeros.
    const durations = Array.from({ length: 20000 }, (_, i) => (i % 1000 === 0 ? 0 : Math.exp(random() * 18 - 6)))
    const items = durations.map((duration_ms, i) => item(i, { status: "SUCCESS", duration_ms }))
    const { latency_ms } = BatchResults.summarize(items, { durationMs: 1, inProgress: false, interrupted: false })
    const sorted = [...durations].sort((a, b) => a - b)
    for (const p of [50, 95, 99] as const) {
      const exact = BatchResults.percentile(sorted, p)
      expect(Math.abs(latency_ms![`p${p}`] - exact)).toBeLessThanOrEqual(exact * 0.005 + 0.001)
    }
    const tiny = BatchResults.summarize([item(1, { status: "SUCCESS", duration_ms: 0.0004 })], {
      durationMs: 1,
      inProgress: false,
      interrupted: false
    })
    expect(tiny.latency_ms).toEqual({ p50: 0, p95: 0, p99: 0 })
  })
})
