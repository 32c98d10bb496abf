/**
 * Store and batch restore hold a bounded window, never the whole set (issue 15): proved by counting what the
 * pipeline holds, not by timing. Also: a streamed results file is valid and complete, `--resume` reads one cut short
 * by a kill, and a store that fails midway leaves stubs only for the groups it committed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  Archiver,
  ArchiveStore,
  Batch,
  BatchResults,
  CodexArchive,
  Evidence,
  Manifest,
  StubTree,
  Tombstone
} from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

const folder = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-stream-")))

/** `count` small files under `dir/tree`, ten to a folder. */
const tree = (dir: string, count: number) => {
  const originals = new Map<string, string>()
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, "tree", `d${Math.floor(i / 10)}`, `f${i}.txt`)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const text = `file ${i}\n`.repeat(1 + (i % 7))
    fs.writeFileSync(file, text)
    originals.set(file, text)
  }
  return originals
}

const storeOptions = (dir: string) => ({
  repo: "acme/big",
  actor: "ann",
  commit: "c0ffee",
  reason: "dead" as const,
  kind: "code" as const,
  cwd: dir
})

/** Stores the tree with `--manifest-out`-like streaming into `dir/manifest.json`, then removes the originals. */
const storedManifest = (dir: string, count: number) =>
  Effect.gen(function*() {
    const originals = tree(dir, count)
    const manifest = yield* Manifest.writer(path.join(dir, "manifest.json"))
    const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "tree")], {
      ...storeOptions(dir),
      groupSize: 32,
      onStored: (group) =>
        manifest.append(group.map((s) => ({ tombstone: s.tombstone, output: s.source, sha256: s.sha256 })))
    })
    yield* manifest.commit
    expect(report.count).toBe(count)
    expect(report.stored).toEqual([])
    fs.rmSync(path.join(dir, "tree"), { recursive: true })
    return originals
  })

/** Stores `count` files of `dir/tree` leaving stubs, and opens that tree of stubs as a batch's source. */
const storedStubs = (dir: string, count: number) =>
  Effect.gen(function*() {
    const originals = tree(dir, count)
    yield* (yield* Archiver.Archiver).store([path.join(dir, "tree")], { ...storeOptions(dir), writeStub: true })
    const stubs = path.join(dir, "tree")
    const source = yield* StubTree.open(stubs, { defaultActor: "bob" })
    return { originals, stubs, source }
  })

/** A test in a folder of its own on the in-memory archive; the folder is removed after. */
const inFolder = <A, E, R>(body: (dir: string) => Effect.Effect<A, E, R>) => {
  const dir = folder()
  return body(dir).pipe(
    Effect.provide(InMemoryArchive.services()),
    Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  )
}

/** A batch of `dir/manifest.json` as bob, in this thread. */
const runBatch = (dir: string, options: Omit<Batch.Options, "actor">) =>
  Effect.flatMap(
    Manifest.open(path.join(dir, "manifest.json"), { defaultActor: "bob" }),
    (source) => Batch.run(source, { actor: "bob", workers: 0, ...options })
  )

describe("bounded batch restore", () => {
  it.effect("holds at most a window of entries; the streamed results file is valid, complete and in manifest order", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const originals = yield* storedManifest(dir, 300)
        const opened = yield* Manifest.open(path.join(dir, "manifest.json"), { defaultActor: "bob" })
        expect(opened.total).toBe(300)
        // A probe around the source: entries taken from the manifest and not yet reported done are what the batch holds.
        let pulled = 0
        let finished = 0
        let most = 0
        const order: Array<string> = []
        const source: Manifest.Source = {
          total: opened.total,
          entries: () => ({
            *[Symbol.iterator]() {
              for (const e of opened.entries()) {
                pulled++
                most = Math.max(most, pulled - finished)
                order.push(e.output)
                yield e
              }
            }
          })
        }
        const results = path.join(dir, "results.json")
        const { summary } = yield* Batch.run(source, {
          actor: "bob",
          resultsFile: results,
          window: 40,
          workers: 0,
          onProgress: () => Effect.sync(() => void finished++)
        })
        expect(most).toBeLessThanOrEqual(40)
        expect(pulled).toBe(300)
        expect(summary).toMatchObject({ total: 300, succeeded: 300, failed: 0, not_run: 0, in_progress: false })
        // Streamed: the report holds no items, the file holds them all.
        expect(summary.results).toEqual([])
        const written = JSON.parse(fs.readFileSync(results, "utf8")) as BatchResults.Summary
        expect(written).toMatchObject({ total: 300, succeeded: 300, in_progress: false, interrupted: false })
        expect(written.results.map((r) => r.output)).toEqual(order)
        expect(written.results.every((r) => r.status === "SUCCESS" && r.sha256 !== undefined)).toBe(true)
        for (const [file, text] of originals) expect(fs.readFileSync(file, "utf8")).toBe(text)
      })
    ))

  it.effect("a manifest rewritten in place while the batch runs stops it: no entry read after the edit, results and summary written", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const originals = yield* storedManifest(dir, 300)
        const manifest = path.join(dir, "manifest.json")
        const text = fs.readFileSync(manifest, "utf8")
        const order = (JSON.parse(text) as Array<{ output: string }>).map((e) => path.resolve(dir, e.output))
        const first = /"output":"([^"]+)"/.exec(text)![1]!
        const last = /"output":"([^"]+)"[^\n]*\n\]\s*$/.exec(text)![1]!
        // The last entry sent to the first one's file, the same length: valid, and past the check of every output.
        const edited = text.replace(
          `"output":"${last}"`,
          `"output":"${first}"${" ".repeat(last.length - first.length)}`
        )
        expect(edited.length).toBe(text.length)
        const results = path.join(dir, "results.json")
        let progressed = 0
        const failed = yield* Effect.flip(runBatch(dir, {
          resultsFile: results,
          window: 40,
          onProgress: () => Effect.sync(() => void (++progressed === 1 && fs.writeFileSync(manifest, edited)))
        }))
        expect(failed._tag).toBe("ManifestError")
        expect(failed.message).toContain("changed after it was checked")
        expect(failed.message).toContain(manifest)
        const written = JSON.parse(fs.readFileSync(results, "utf8")) as BatchResults.Summary
        expect(written).toMatchObject({ total: 300, in_progress: false, failed: 0 })
        expect(written.not_run).toBeGreaterThan(0)
        const done = written.results.filter((r) => r.status === "SUCCESS").map((r) => r.output)
        expect(done).toEqual(order.slice(0, done.length))
        expect(written.succeeded + written.not_run).toBe(300)
        // Every file restored holds its own content; the first is never overwritten by the last one's.
        for (const file of done) expect(fs.readFileSync(file, "utf8")).toBe(originals.get(file))
      })
    ))

  it.effect("a manifest deleted while the batch runs stops it the same way, naming it", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        yield* storedManifest(dir, 300)
        const manifest = path.join(dir, "manifest.json")
        const results = path.join(dir, "results.json")
        let progressed = 0
        const failed = yield* Effect.flip(runBatch(dir, {
          resultsFile: results,
          window: 40,
          onProgress: () => Effect.sync(() => void (++progressed === 1 && fs.rmSync(manifest)))
        }))
        expect(failed.message).toBe(`manifest ${manifest} (${failed.where}): changed after it was checked`)
        const written = JSON.parse(fs.readFileSync(results, "utf8")) as BatchResults.Summary
        expect(written).toMatchObject({ total: 300, in_progress: false, failed: 0 })
        expect(written.succeeded + written.not_run).toBe(300)
      })
    ))

  it.effect.each(["gone", "added", "renamed", "folder gone"] as const)(
    "a stub tree changed while the batch runs (a stub %s): every stub found is restored, then it fails saying so",
    (change) =>
      inFolder((dir) =>
        Effect.gen(function*() {
          const { originals, source, stubs } = yield* storedStubs(dir, 300)
          expect(source.total).toBe(300)
          const order = Array.from(source.entries(), (e) => e.output)
          const late = order[250]!
          const elsewhere = path.join(path.dirname(late), "zz-elsewhere.txt")
          const lateFolder = path.dirname(late)
          const inLateFolder = order.filter((o) => path.dirname(o) === lateFolder)
          const results = path.join(dir, "results.json")
          let progressed = 0
          const failed = yield* Effect.flip(Batch.run(source, {
            actor: "bob",
            workers: 0,
            window: 40,
            resultsFile: results,
            onProgress: () =>
              Effect.sync(() => {
                if (++progressed !== 1) return
                if (change === "gone") fs.rmSync(late)
                else if (change === "added") fs.copyFileSync(late, elsewhere)
                else if (change === "renamed") fs.renameSync(late, elsewhere)
                else fs.rmSync(lateFolder, { recursive: true })
              })
          }))
          const found = { gone: 299, added: 301, renamed: 300, "folder gone": 300 - inLateFolder.length }[change]
          expect(failed._tag).toBe("ManifestError")
          expect(failed.message).toBe(
            found === 300
              ? `stub folder ${stubs}: changed since its check: the 300 stubs found are not the ones checked (renamed, ` +
                "or as many added as removed)"
              : `stub folder ${stubs}: changed since its check: ${found} stubs found where 300 were checked (added, ` +
                "removed or renamed)"
          )
          const written = JSON.parse(fs.readFileSync(results, "utf8")) as BatchResults.Summary
          expect(written).toMatchObject({
            total: Math.max(300, found),
            succeeded: found,
            failed: 0,
            not_run: 300 - Math.min(300, found),
            in_progress: false
          })
          // Every stub found holds its own content in place (one elsewhere, the content its stub names).
          for (const r of written.results) {
            expect(r.status).toBe("SUCCESS")
            expect(fs.readFileSync(r.output, "utf8")).toBe(originals.get(r.output === elsewhere ? late : r.output))
          }
          expect(fs.existsSync(late)).toBe(change === "added")
        })
      )
  )

  it.effect("a dry run of a stub tree that changes while it is checked fails saying so", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const { source, stubs } = yield* storedStubs(dir, 120)
        const last = Array.from(source.entries(), (e) => e.output).at(-1)!
        let groups = 0
        const failed = yield* Effect.flip(Batch.checkSource(source, {
          groupSize: 50,
          onItems: () => Effect.sync(() => void (++groups === 1 && fs.rmSync(last)))
        }))
        expect(failed.message).toBe(
          `stub folder ${stubs}: changed since its check: 119 stubs found where 120 were checked (added, removed or ` +
            `renamed)`
        )
      })
    ))

  it.effect("finishes under windows smaller than a round trip's group, with skipped entries among the rest", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const originals = yield* storedManifest(dir, 60)
        const first = path.join(dir, "first.json")
        yield* runBatch(dir, {
          resultsFile: first
        })
        // Every third output is gone: a resume skips the other two of every three, held in the window all the while.
        const files = [...originals.keys()]
        const gone = files.filter((_, i) => i % 3 === 0)
        for (const file of gone) fs.rmSync(file)
        for (const window of [1, 2, 3, 7]) {
          const again = path.join(dir, `again-${window}.json`)
          const { summary } = yield* runBatch(dir, {
            resultsFile: again,
            resumeFrom: first,
            window
          })
          expect(summary).toMatchObject({ total: 60, skipped: 40, succeeded: 20, failed: 0, not_run: 0 })
          const written = JSON.parse(fs.readFileSync(again, "utf8")) as BatchResults.Summary
          expect(written.results.map((r) => r.output)).toEqual(files)
          expect(written.results.filter((r) => r.status === "SUCCESS").map((r) => r.output)).toEqual(gone)
          for (const [file, text] of originals) expect(fs.readFileSync(file, "utf8")).toBe(text)
          for (const file of gone) fs.rmSync(file)
        }
      })
    ))

  it.effect("a resume that skips every entry still writes its results as it goes, not all at the end", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const held = 50
        const count = 10 * held
        yield* storedManifest(dir, count)
        // Put the files back: every entry's output then holds its content, and the resume skips them all.
        fs.rmSync(path.join(dir, "tree"), { recursive: true, force: true })
        const first = path.join(dir, "first.json")
        yield* runBatch(dir, { resultsFile: first })
        const again = path.join(dir, "again.json")
        let seen = -1
        const saved = BatchResults.writerTuning.maxPending
        BatchResults.writerTuning.maxPending = held
        const { summary } = yield* runBatch(dir, {
          resultsFile: again,
          resumeFrom: first,
          window: held,
          onProgress: (p) =>
            Effect.sync(() => {
              // Near the end, the file already holds all but the last few windows' items.
              if (p.index === count - 1) seen = fs.readFileSync(again, "utf8").split("\n    {").length - 1
            })
        }).pipe(Effect.ensuring(Effect.sync(() => void (BatchResults.writerTuning.maxPending = saved))))
        expect(summary).toMatchObject({ total: count, skipped: count, succeeded: 0 })
        expect(seen).toBeGreaterThanOrEqual(count - 4 * held)
      })
    ))

  it.effect("--resume reads a streamed results file cut short by a kill, and skips only what it lists", () =>
    inFolder((dir) =>
      Effect.gen(function*() {
        const originals = yield* storedManifest(dir, 120)
        const results = path.join(dir, "results.json")
        yield* runBatch(dir, {
          resultsFile: results,
          window: 50
        })
        // A kill midway: the file ends inside its items, not valid JSON; outputs past the cut are gone.
        const lines = fs.readFileSync(results, "utf8").split("\n")
        const kept = lines.slice(0, 2 + 70)
        fs.writeFileSync(results, kept.join("\n").slice(0, -5))
        expect(() => JSON.parse(fs.readFileSync(results, "utf8"))).toThrow()
        const listed = kept.slice(2, -1).map((l) =>
          (JSON.parse(l.trim().replace(/,$/, "")) as { output: string }).output
        )
        expect(listed.length).toBe(69)
        for (const file of [...originals.keys()].filter((f) => !listed.includes(f))) fs.rmSync(file)
        const again = path.join(dir, "again.json")
        const { summary } = yield* runBatch(dir, {
          resultsFile: again,
          resumeFrom: results,
          window: 50
        })
        expect(summary).toMatchObject({ total: 120, skipped: 69, succeeded: 51, failed: 0 })
        for (const [file, text] of originals) expect(fs.readFileSync(file, "utf8")).toBe(text)
        const written = JSON.parse(fs.readFileSync(again, "utf8")) as BatchResults.Summary
        expect(written.results.filter((r) => r.status === "SKIPPED").map((r) => r.output)).toEqual(listed)
      })
    ))
})

describe("store in groups", () => {
  let archives = 0
  const layer = InMemoryArchive.services({
    fault: (operation) =>
      operation === "archive" && ++archives === 3
        ? new ArchiveStore.StoreError({ operation, backend: "memory", detail: "injected", transient: false })
        : undefined
  })

  it.effect("a store failing in its third group leaves stubs and items for the first two only; re-running finishes it", () => {
    const dir = folder()
    return Effect.gen(function*() {
      const originals = tree(dir, 50)
      const archiver = yield* Archiver.Archiver
      let committed = 0
      const failed = yield* Effect.flip(archiver.store([path.join(dir, "tree")], {
        ...storeOptions(dir),
        writeStub: true,
        groupSize: 10,
        onStored: (group) => Effect.sync(() => void (committed += group.length))
      }))
      expect(failed._tag).toBe("StoreError")
      expect(committed).toBe(20)
      const files = [...originals.keys()].sort()
      const stubs = files.filter((f) => Tombstone.isStubText(fs.readFileSync(f, "utf8")))
      // The walk is sorted: the first two groups are the first twenty files; nothing after them is a stub.
      expect(stubs).toEqual(files.slice(0, 20))
      for (const f of files.slice(20)) expect(fs.readFileSync(f, "utf8")).toBe(originals.get(f))
      const store = yield* ArchiveStore.ArchiveStore
      expect((yield* store.list({ limit: 1000 })).length).toBe(20)
      // Re-running stores the rest: stubs are skipped, the originals left are archived.
      const again = yield* archiver.store([path.join(dir, "tree")], {
        ...storeOptions(dir),
        writeStub: true,
        groupSize: 10
      })
      expect(again.count).toBe(30)
      expect(again.skipped.filter((s) => s.reason === "already a tombstone stub").length).toBe(20)
      expect((yield* store.list({ limit: 1000 })).length).toBe(50)
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })

  /** What a stopped store left: the archive's items, the log's ARCHIVE lines and the stubs, as sorted paths. */
  const leftBehind = (dir: string, files: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const items = (yield* (yield* ArchiveStore.ArchiveStore).list({ limit: 1000 })).map((i) => i.path).sort()
      const lines = Evidence.read(path.join(dir, "evidence"))
        .filter((l) => l.action === "ARCHIVE")
        .map((l) => String(l.path))
        .sort()
      const stubs = files.filter((f) => Tombstone.isStubText(fs.readFileSync(f, "utf8")))
      return { items, lines, stubs }
    })

  it.effect("an evidence log that fails after a group's commit takes that group back: no item without its line", () => {
    const dir = folder()
    const log = Evidence.fileIn(path.join(dir, "evidence"))
    return Effect.gen(function*() {
      const files = [...tree(dir, 30).keys()].sort()
      const failed = yield* Effect.flip((yield* Archiver.Archiver).store([path.join(dir, "tree")], {
        ...storeOptions(dir),
        writeStub: true,
        groupSize: 10,
        // After the first group, the log is swapped for a folder: the second group's lines cannot be appended.
        onStored: () =>
          Effect.sync(() => {
            fs.renameSync(log, `${log}.kept`)
            fs.mkdirSync(log)
          })
      }))
      expect(failed._tag).toBe("EvidenceError")
      fs.rmdirSync(log)
      fs.renameSync(`${log}.kept`, log)
      const left = yield* leftBehind(dir, files)
      const first = files.slice(0, 10).map((f) => path.relative(dir, f)).sort()
      expect(left.items).toEqual(first)
      expect(left.lines).toEqual(first)
      expect(left.stubs).toEqual(files.slice(0, 10))
    }).pipe(
      Effect.provide(InMemoryArchive.services({ evidenceDir: path.join(dir, "evidence") })),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

  /** The services over an in-memory archive whose `archive` is wrapped; evidence in `dir/evidence`. */
  const wrappedArchive = (
    dir: string,
    wrap: (archive: ArchiveStore.ArchiveStore["Type"]["archive"]) => ArchiveStore.ArchiveStore["Type"]["archive"]
  ) =>
    CodexArchive.layer({
      store: Layer.effect(
        ArchiveStore.ArchiveStore,
        Effect.map(ArchiveStore.ArchiveStore, (s) => ArchiveStore.ArchiveStore.of({ ...s, archive: wrap(s.archive) }))
      ).pipe(Layer.provide(InMemoryArchive.layerWith({}))),
      evidenceDir: path.join(dir, "evidence")
    })

  it.effect("a stop that lands as a group commits waits for its lines, stubs and onStored: the group is whole", () => {
    const dir = folder()
    return Effect.gen(function*() {
      const committed = yield* Deferred.make<void>()
      // The store's commit returns, then gives the stop its chance before the evidence lines are written.
      const services = wrappedArchive(dir, (archive) => (entries, options) =>
        Effect.tap(
          archive(entries, options),
          () => Effect.zipRight(Deferred.succeed(committed, void 0), Effect.yieldNow())
        ))
      const files = [...tree(dir, 30).keys()].sort()
      let finished = 0
      const left = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork((yield* Archiver.Archiver).store([path.join(dir, "tree")], {
          ...storeOptions(dir),
          writeStub: true,
          groupSize: 10,
          onStored: (group) => Effect.sync(() => void (finished += group.length))
        }))
        yield* Deferred.await(committed)
        yield* Fiber.interrupt(fiber)
        return yield* leftBehind(dir, files)
      }).pipe(Effect.provide(services))
      const first = files.slice(0, 10).map((f) => path.relative(dir, f)).sort()
      expect(finished).toBe(10)
      expect(left.items).toEqual(first)
      expect(left.lines).toEqual(first)
      expect(left.stubs).toEqual(files.slice(0, 10))
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })

  it.effect("a commit whose answer is lost (the group is in, the call failed) is found in the archive and finished", () => {
    const dir = folder()
    let calls = 0
    const services = wrappedArchive(
      dir,
      (archive) => (entries, options) =>
        Effect.flatMap(archive(entries, options), (archived) =>
          ++calls === 2
            ? Effect.fail(
              new ArchiveStore.StoreError({ operation: "archive", backend: "memory", detail: "lost", transient: false })
            )
            : Effect.succeed(archived))
    )
    return Effect.gen(function*() {
      const files = [...tree(dir, 30).keys()].sort()
      const report = yield* (yield* Archiver.Archiver).store([path.join(dir, "tree")], {
        ...storeOptions(dir),
        writeStub: true,
        groupSize: 10
      })
      expect(report.count).toBe(30)
      const left = yield* leftBehind(dir, files)
      const all = files.map((f) => path.relative(dir, f)).sort()
      expect(left).toEqual({ items: all, lines: all, stubs: files })
    }).pipe(
      Effect.provide(services),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

  it.effect("a failed commit whose rows the archive still shows, but which cannot start a new transaction, gets no stubs", () => {
    const dir = folder()
    let calls = 0
    // As SQLite's one connection after a failed COMMIT: the old transaction's rows are visible, and it is still open.
    const services = wrappedArchive(dir, (archive) => (entries, options) =>
      entries.length === 0
        ? Effect.fail(
          new ArchiveStore.StoreError({
            operation: "archive",
            backend: "memory",
            detail: "cannot start a transaction within a transaction",
            transient: false
          })
        )
        : Effect.flatMap(archive(entries, options), (archived) =>
          ++calls === 2
            ? Effect.fail(
              new ArchiveStore.StoreError({
                operation: "archive",
                backend: "memory",
                detail: "commit",
                transient: false
              })
            )
            : Effect.succeed(archived)))
    return Effect.gen(function*() {
      const files = [...tree(dir, 30).keys()].sort()
      const failed = yield* Effect.flip((yield* Archiver.Archiver).store([path.join(dir, "tree")], {
        ...storeOptions(dir),
        writeStub: true,
        groupSize: 10
      }))
      expect(failed._tag).toBe("StoreError")
      const left = yield* leftBehind(dir, files)
      // The first group only: the second's rows are there, but no line and no stub was written for them.
      expect(left.lines).toEqual(files.slice(0, 10).map((f) => path.relative(dir, f)).sort())
      expect(left.stubs).toEqual(files.slice(0, 10))
    }).pipe(
      Effect.provide(services),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })

  it.effect("a stop while a large file is read into its group's transaction is not held: the group is rolled back", () => {
    const dir = folder()
    return Effect.gen(function*() {
      const reading = yield* Deferred.make<void>()
      const services = wrappedArchive(
        dir,
        (archive) => (entries, options) => Effect.zipRight(Deferred.succeed(reading, void 0), archive(entries, options))
      )
      const big = path.join(dir, "big.bin")
      fs.writeFileSync(big, Buffer.alloc(64 * 1024 * 1024, 7))
      const exit = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork((yield* Archiver.Archiver).store([big], {
          ...storeOptions(dir),
          writeStub: true,
          inlineLimit: 1024
        }))
        yield* Deferred.await(reading)
        const exit = yield* Fiber.interrupt(fiber)
        expect((yield* (yield* ArchiveStore.ArchiveStore).list({ limit: 10 })).length).toBe(0)
        return exit
      }).pipe(Effect.provide(services))
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(fs.readFileSync(big).equals(Buffer.alloc(64 * 1024 * 1024, 7))).toBe(true)
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })

  it.effect("--manifest-out's writer leaves no manifest, whole or partial, when aborted", () => {
    const dir = folder()
    return Effect.gen(function*() {
      const file = path.join(dir, "m.json")
      const w = yield* Manifest.writer(file)
      yield* w.append([{
        tombstone: "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f",
        output: path.join(dir, "a"),
        sha256: "0".repeat(64)
      }])
      yield* w.abort
      expect(fs.readdirSync(dir)).toEqual([])
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })
})
