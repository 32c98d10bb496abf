/**
 * A host that did not opt in keeps its process as it was: a store and a batch restore of 300 files from SQLite set no
 * global, no V8 flag, and start no worker thread. A host that asks gets both, which also shows the checks can see them.
 */
import { Archiver, Batch, CodexArchive, type Manifest } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as dc from "node:diagnostics_channel"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as vm from "node:vm"
import { SqliteArchive } from "../src/index.js"
import { tempDir } from "./helpers.js"

// The module object every CommonJS `require("node:v8")` returns, the one the workers' code would use too.
const v8 = createRequire(import.meta.url)("node:v8") as typeof import("node:v8")

/** What the process looks like from outside the archive: globals, V8 flags set, worker threads created. */
const watch = () => {
  const globals = Object.keys(globalThis).sort()
  const workers: Array<unknown> = []
  const onWorker = (message: unknown) => void workers.push(message)
  dc.subscribe("worker_threads", onWorker)
  const flags: Array<string> = []
  const setFlags = v8.setFlagsFromString
  v8.setFlagsFromString = (flag: string) => {
    flags.push(flag)
    setFlags(flag)
  }
  return () => {
    v8.setFlagsFromString = setFlags
    dc.unsubscribe("worker_threads", onWorker)
    return {
      newGlobals: Object.keys(globalThis).filter((k) => !globals.includes(k)),
      gc: typeof (globalThis as { gc?: unknown }).gc,
      // A new context has `gc` only while `--expose-gc` is on, whoever set it.
      gcFlag: vm.runInNewContext("typeof gc") as string,
      flags,
      workers: workers.length
    }
  }
}

/** Stores 300 files and batch-restores them all; the batch's summary. */
const storeAndBatch = (dir: string, options: { readonly workers?: number; readonly tuneV8?: boolean } = {}) =>
  Effect.gen(function*() {
    const tree = path.join(dir, "tree")
    for (let i = 0; i < 300; i++) {
      fs.mkdirSync(path.join(tree, `d${i % 9}`), { recursive: true })
      fs.writeFileSync(path.join(tree, `d${i % 9}/f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 40)))
    }
    const report = yield* (yield* Archiver.Archiver).store([tree], {
      repo: "acme/host",
      actor: "host",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: tree,
      workers: options.workers
    })
    const entries: Array<Manifest.Entry> = report.stored.map((s) => ({
      tombstone: s.tombstone,
      output: path.join(dir, "out", s.path),
      actor: "host"
    }))
    const { summary } = yield* Batch.run(entries, { actor: "host", workers: options.workers, tuneV8: options.tuneV8 })
    for (const s of report.stored) {
      expect(fs.readFileSync(path.join(dir, "out", s.path))).toEqual(fs.readFileSync(path.join(tree, s.path)))
    }
    return summary
  }).pipe(Effect.provide(CodexArchive.layer({
    store: SqliteArchive.layer({ url: `sqlite:///${path.join(dir, "archive.sqlite")}`, create: true }),
    evidenceDir: path.join(dir, "evidence")
  })))

describe("no hidden process-wide effects", () => {
  it.live("a batch of 300 files from SQLite, by a host that did not opt in: no new global, no V8 flag, no worker thread", () => {
    // Each test file runs in a process of its own: nothing before this test exposed the collector.
    expect(vm.runInNewContext("typeof gc"), "the collector was exposed before the test began").toBe("undefined")
    const dir = tempDir()
    const done = watch()
    return storeAndBatch(dir).pipe(Effect.map((summary) => {
      const after = done()
      expect(summary).toMatchObject({ total: 300, succeeded: 300, failed: 0 })
      expect(after).toEqual({ newGlobals: [], gc: "undefined", gcFlag: "undefined", flags: [], workers: 0 })
      fs.rmSync(dir, { recursive: true, force: true })
    }))
  })

  it.live("a host that asks (workers: 2, tuneV8) gets worker threads, and they expose the collector", () => {
    const dir = tempDir()
    const done = watch()
    return storeAndBatch(dir, { workers: 2, tuneV8: true }).pipe(Effect.map((summary) => {
      const after = done()
      expect(summary).toMatchObject({ total: 300, succeeded: 300, failed: 0 })
      // Two for the store, two for the batch; the flag set in a worker is the whole process's.
      expect(after.workers).toBe(4)
      expect(after.gcFlag).toBe("function")
      expect(after.newGlobals).toEqual([])
      fs.rmSync(dir, { recursive: true, force: true })
    }))
  })
})
