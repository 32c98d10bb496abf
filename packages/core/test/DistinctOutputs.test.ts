/**
 * The batch's duplicate-output check in bounded memory (issue 15): records sorted in runs, spilled to one temporary
 * file past the first run, candidates confirmed by reading the entries again. Run sizes are shrunk here so a few
 * hundred entries spill into many runs, and the hash is forced to collide.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Hash, Manifest, StubTree, Tombstone } from "../src/index.js"
import * as DistinctOutputs from "../src/internal/DistinctOutputs.js"

// Every folder a test makes is removed after it.
const made: Array<string> = []
const folder = (prefix: string) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
  made.push(dir)
  return dir
}
const tombstoneAt = (i: number) => `00000000-0000-4000-8000-${i.toString().padStart(12, "0")}`

const saved = { ...DistinctOutputs.tuning }
let tempRoot = ""
beforeEach(() => {
  tempRoot = folder("codex-distinct-test-")
  Object.assign(DistinctOutputs.tuning, { runRecords: 8, mergeBytes: 256, candidates: 3, tempRoot })
})
afterEach(() => {
  Object.assign(DistinctOutputs.tuning, saved)
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** Entries as plain outputs, each pass noting whether the temporary file existed while it ran. */
const entries = (outputs: ReadonlyArray<string>) => {
  const seenSpill: Array<boolean> = []
  const items = function*() {
    let first = true
    for (const output of outputs) {
      if (first) seenSpill.push(fs.readdirSync(tempRoot).length > 0)
      first = false
      yield { output }
    }
  }
  return { items, seenSpill }
}

const check = (items: () => Iterable<{ output: string }>) =>
  DistinctOutputs.check(items, {
    entryOf: (e) => (e.output === "refused" ? undefined : e),
    whereOf: (e) => `#${e.output}`,
    changed: () => new Error("changed")
  })

/** The check as it was: every key held, the first entry that repeats an earlier real path, then device and inode. */
const reference = (outputs: ReadonlyArray<string>) => {
  const reals = new Map<string, string>()
  const inodes = new Map<string, string>()
  let total = 0
  for (const output of outputs) {
    if (output === "refused") return { _tag: "Refused", output }
    const real = reals.get(output)
    if (real !== undefined) {
      return {
        _tag: "Duplicate",
        output,
        problem: `output ${output} is also the output of #${real}; two entries cannot restore to the same file`
      }
    }
    reals.set(output, output)
    const st = fs.lstatSync(output, { throwIfNoEntry: false })
    const id = st?.isFile() ? `${st.dev}:${st.ino}` : undefined
    if (id !== undefined) {
      const other = inodes.get(id)
      if (other !== undefined) {
        return {
          _tag: "Duplicate",
          output,
          problem:
            `output ${output} is the same file as ${other} (#${other}); two entries cannot restore to the same file`
        }
      }
      inodes.set(id, output)
    }
    total++
  }
  return { _tag: "Distinct", total }
}

const summary = (verdict: DistinctOutputs.Verdict<{ output: string }>) =>
  verdict._tag === "Distinct"
    ? verdict
    : verdict._tag === "Refused"
    ? { _tag: "Refused", output: verdict.item.output }
    : { _tag: "Duplicate", output: verdict.item.output, problem: verdict.problem }

describe("DistinctOutputs spilled to disk", () => {
  it("finds the earliest duplicate across runs, after a later pair that shares a run", () => {
    const outputs = Array.from({ length: 300 }, (_, i) => `/x/${i}`)
    outputs[290] = "/x/5"
    outputs[120] = "/x/100"
    outputs[121] = "/x/120"
    const { items, seenSpill } = entries(outputs)
    const verdict = check(items)
    expect(summary(verdict)).toEqual({
      _tag: "Duplicate",
      output: "/x/100",
      problem: "output /x/100 is also the output of #/x/100; two entries cannot restore to the same file"
    })
    expect(seenSpill.slice(1).every((s) => s)).toBe(true)
    expect(fs.readdirSync(tempRoot)).toEqual([])
  })

  it("finds hard links spilled to disk, naming the earlier file", () => {
    const dir = folder("codex-distinct-links-")
    const outputs = Array.from({ length: 200 }, (_, i) => path.join(dir, `f${i}`))
    for (const o of outputs) fs.writeFileSync(o, "x")
    fs.rmSync(outputs[150]!)
    fs.linkSync(outputs[40]!, outputs[150]!)
    const { items, seenSpill } = entries(outputs)
    expect(summary(check(items))).toEqual({
      _tag: "Duplicate",
      output: outputs[150],
      problem: `output ${outputs[150]} is the same file as ${outputs[40]} (#${
        outputs[40]
      }); two entries cannot restore to the same file`
    })
    expect(seenSpill.length).toBeGreaterThan(1)
    expect(seenSpill.slice(1).every((s) => s)).toBe(true)
    expect(fs.readdirSync(tempRoot)).toEqual([])
  })

  it("never reports different keys with one hash: every key hashed to one value, then to five", () => {
    const outputs = Array.from({ length: 200 }, (_, i) => `/x/${i}`)
    DistinctOutputs.tuning.hash = () => 7
    expect(summary(check(entries(outputs).items))).toEqual({ _tag: "Distinct", total: 200 })
    DistinctOutputs.tuning.hash = (key) => Hash.hash53(key) % 5
    expect(summary(check(entries(outputs).items))).toEqual({ _tag: "Distinct", total: 200 })
    outputs[180] = "/x/60"
    expect(summary(check(entries(outputs).items))).toMatchObject({ _tag: "Duplicate", output: "/x/60" })
    expect(fs.readdirSync(tempRoot)).toEqual([])
  })

  it("agrees with the check that held every key, on random batches with names, hard links and collisions", () => {
    const dir = folder("codex-distinct-random-")
    const files = Array.from({ length: 40 }, (_, i) => path.join(dir, `f${i}`))
    for (const f of files) fs.writeFileSync(f, "x")
    for (let i = 30; i < 40; i++) {
      fs.rmSync(files[i]!)
      fs.linkSync(files[i - 30]!, files[i]!)
    }
    let seed = 12345
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    for (let round = 0; round < 150; round++) {
      const modulus = [1, 3, 17, 1000, 2 ** 52][round % 5]!
      DistinctOutputs.tuning.hash = (key) => Hash.hash53(key) % modulus
      DistinctOutputs.tuning.runRecords = 1 + random(40)
      DistinctOutputs.tuning.candidates = 1 + random(6)
      const length = 1 + random(250)
      const outputs = Array.from({ length }, (_, i) => {
        const r = random(1000)
        if (r < 4) return files[random(files.length)]!
        if (r < 6) return `/y/${random(i + 1)}`
        if (r < 7) return "refused"
        return `/z/${round}/${i}`
      })
      expect(summary(check(entries(outputs).items)), `round ${round}`).toEqual(reference(outputs))
    }
    expect(fs.readdirSync(tempRoot)).toEqual([])
  })

  it("removes the temporary file when an entry throws, and throws the error when no duplicate came first", () => {
    const outputs = Array.from({ length: 100 }, (_, i) => `/x/${i}`)
    const throwing = (at: number, duplicateAt?: number) =>
      function*() {
        for (let i = 0; i < outputs.length; i++) {
          if (i === at) throw new Error(`unreadable at ${i}`)
          yield { output: i === duplicateAt ? "/x/3" : outputs[i]! }
        }
      }
    expect(() => check(throwing(90))).toThrow("unreadable at 90")
    expect(fs.readdirSync(tempRoot)).toEqual([])
    expect(summary(check(throwing(90, 80)))).toMatchObject({ _tag: "Duplicate", output: "/x/3" })
    expect(fs.readdirSync(tempRoot)).toEqual([])
    expect(() => check(throwing(50, 80))).toThrow("unreadable at 50")
    expect(fs.readdirSync(tempRoot)).toEqual([])
  })

  it("keeps a batch that fits one run off the disk", () => {
    DistinctOutputs.tuning.runRecords = 1000
    const outputs = Array.from({ length: 300 }, (_, i) => `/x/${i}`)
    outputs[299] = "/x/0"
    const { items, seenSpill } = entries(outputs)
    expect(summary(check(items))).toMatchObject({ _tag: "Duplicate", output: "/x/0" })
    expect(seenSpill).toEqual([false, false])
  })
})

describe("Manifests and stub trees checked through spilled runs", () => {
  const jsonl = (lines: ReadonlyArray<string>) => {
    const dir = folder("codex-distinct-manifest-")
    const file = path.join(dir, "m.jsonl")
    fs.writeFileSync(file, lines.join("\n") + "\n")
    return { dir, file }
  }
  const line = (i: number, output = `o/${i}`) => JSON.stringify({ tombstone: tombstoneAt(i), output })
  const lines = (n: number) => Array.from({ length: n }, (_, i) => line(i))

  it.effect("a duplicate before a malformed entry is the error, and a malformed entry before a duplicate is", () =>
    Effect.gen(function*() {
      const both = (malformedAt: number, malformed: string) => {
        const text = lines(300)
        text[199] = line(199, "o/9")
        text[malformedAt] = malformed
        return jsonl(text)
      }
      const missing = JSON.stringify({ tombstone: tombstoneAt(0) })
      const late = both(249, missing)
      const duplicate = yield* Effect.flip(Manifest.open(late.file, { defaultActor: "ops" }))
      expect(duplicate.message).toBe(
        `manifest ${late.file} (line 200): output ${late.dir}/o/9 is also the output of line 10; two entries cannot restore to the same file`
      )
      const early = both(99, missing)
      const malformed = yield* Effect.flip(Manifest.open(early.file, { defaultActor: "ops" }))
      expect(malformed.where).toBe("line 100")
      expect(malformed.problem).toContain("missing output")
      // A line that is not JSON ends the read itself: the same order holds.
      const broken = both(99, "{\"tombstone\":")
      expect((yield* Effect.flip(Manifest.open(broken.file, { defaultActor: "ops" }))).problem).toContain(
        "invalid JSON"
      )
      const after = both(249, "{\"tombstone\":")
      expect((yield* Effect.flip(Manifest.open(after.file, { defaultActor: "ops" }))).where).toBe("line 200")
      expect(fs.readdirSync(tempRoot)).toEqual([])
    }))

  it.effect("a check interrupted at one of its pauses stops there and removes its temporary file", () =>
    Effect.gen(function*() {
      const { file } = jsonl(lines(20000))
      // The first entry hashed after the first pause tells the test the check is under way and paused.
      const paused = yield* Deferred.make<void>()
      let hashed = 0
      DistinctOutputs.tuning.hash = (key) => {
        if (++hashed === 4097) Deferred.unsafeDone(paused, Exit.void)
        return Hash.hash53(key)
      }
      const opening = yield* Effect.fork(Manifest.open(file, { defaultActor: "ops" }))
      yield* Deferred.await(paused)
      expect(fs.readdirSync(tempRoot)).not.toEqual([])
      const exit = yield* Fiber.interrupt(opening)
      expect(Exit.isInterrupted(exit)).toBe(true)
      // Interrupted at the pause after 8,192 entries (of 20,000), not after the whole check.
      expect(hashed).toBe(8192)
      expect(fs.readdirSync(tempRoot)).toEqual([])
    }))

  it.effect("a spilled manifest of distinct outputs opens with its count and leaves no temporary file", () =>
    Effect.gen(function*() {
      const { file } = jsonl(lines(300))
      const source = yield* Manifest.open(file, { defaultActor: "ops" })
      expect(source.total).toBe(300)
      expect(Array.from(source.entries()).length).toBe(300)
      expect(fs.readdirSync(tempRoot)).toEqual([])
    }))

  it.effect("two stubs of a tree that are hard links of one file are refused, spilled", () =>
    Effect.gen(function*() {
      const dir = folder("codex-distinct-stubs-")
      const stub = (i: number) =>
        Tombstone.render({
          path: `s${i}.py`,
          archivedBy: "a",
          reason: "dead",
          tombstone: tombstoneAt(i),
          sha256: "a".repeat(64),
          archivedAt: "",
          commit: "c"
        })
      const names = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(3, "0")}.py`)
      names.forEach((name, i) => fs.writeFileSync(path.join(dir, name), stub(i)))
      const source = yield* StubTree.open(dir, { defaultActor: "ops" })
      expect(source.total).toBe(60)
      fs.rmSync(path.join(dir, names[45]!))
      fs.linkSync(path.join(dir, names[12]!), path.join(dir, names[45]!))
      const error = yield* Effect.flip(StubTree.open(dir, { defaultActor: "ops" }))
      expect(error.message).toContain(
        `output ${dir}/${names[45]} is the same file as ${dir}/${names[12]} (${dir}/${
          names[12]
        }); two entries cannot restore to the same file`
      )
      expect(fs.readdirSync(tempRoot)).toEqual([])
    }))
})
