/**
 * The single restore's own behaviour beyond the conformance suite: `describe` (`restore ID --out -`) and timings taken
 * from the Effect clock, so a test controls them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, ArchiveStore, Evidence, Hash, Restorer, RestoreTarget, Tombstone } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-restorer-"))

/** Stores `a.txt` (`content`) from `dir`; returns its tombstone. */
const storeOne = (dir: string, content: string) =>
  Effect.gen(function*() {
    fs.writeFileSync(path.join(dir, "a.txt"), content)
    const report = yield* (yield* Archiver.Archiver).store(["a.txt"], {
      repo: "acme/demo",
      actor: "alice",
      commit: "abc",
      reason: "dead",
      kind: "code",
      cwd: dir
    })
    return report.stored[0]!.tombstone
  })

describe("Restorer.describe", () => {
  it.live("reports the recorded path, size and SHA-256 of content that checks out, writing nothing", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const tombstone = yield* storeOne(dir, "hello\n")
      const evidence = yield* Evidence.Evidence
      const before = fs.readFileSync(evidence.file, "utf8")
      expect(yield* Restorer.describe(tombstone)).toEqual({
        path: "a.txt",
        bytes: 6,
        sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
      })
      expect(fs.readFileSync(evidence.file, "utf8")).toBe(before)
      expect(fs.readdirSync(dir)).toEqual(["a.txt"])
    }).pipe(Effect.provide(InMemoryArchive.services()))
  })

  it.live("fails by tag: an unknown tombstone, purged content, content that fails its check", () => {
    const dir = tempDir()
    const state = InMemoryArchive.emptyState()
    return Effect.gen(function*() {
      const unknown = "00000000-0000-4000-8000-000000000000"
      const missing = yield* Effect.flip(Restorer.describe(unknown))
      expect(missing._tag).toBe("TombstoneNotFound")
      const tombstone = yield* storeOne(dir, "hello\n")
      const artifact = [...state.artifacts.values()][0]!
      artifact.blob = new Uint8Array([1, 2, 3])
      const bad = yield* Effect.flip(Restorer.describe(tombstone))
      expect(bad).toBeInstanceOf(Restorer.ContentCheckFailed)
      expect(bad.message).toMatch(new RegExp(`^tombstone ${tombstone}: stored content fails its check: `))
      artifact.blob = null
      const purged = yield* Effect.flip(Restorer.describe(tombstone))
      expect(purged).toBeInstanceOf(ArchiveStore.PayloadPurged)
    }).pipe(Effect.provide(InMemoryArchive.services({ state })))
  })
})

describe("Restorer timings", () => {
  it.live("come from the Effect clock: time spent fetching and recording is what the clock says", () => {
    const dir = tempDir()
    // A clock that moves only when the store does: 3 ms per payload fetch, 7 ms per recording.
    let now = 0n
    const real = Clock.make()
    const manual: Clock.Clock = Object.assign(Object.create(real), {
      unsafeCurrentTimeNanos: () => now,
      currentTimeNanos: Effect.sync(() => now)
    })
    const advance = (operation: string) => {
      if (operation === "fetch") now += 3_000_000n
      if (operation === "record_restore") now += 7_000_000n
      return undefined
    }
    return Effect.gen(function*() {
      const tombstone = yield* storeOne(dir, "timed\n")
      const outcome = yield* (yield* Restorer.Restorer).restore({
        tombstone,
        output: path.join(dir, "out.txt"),
        actor: "bob"
      }).pipe(Effect.withClock(manual))
      expect(outcome.timings.fetch_ms).toBe(3)
      expect(outcome.timings.record_ms).toBe(7)
      expect(outcome.timings.duration_ms).toBeGreaterThanOrEqual(10)
      const [line] = Evidence.read(path.dirname((yield* Evidence.Evidence).file)).filter((l) => l.action === "RESTORE")
      expect(line).toMatchObject({ fetch_ms: 3, record_ms: 7 })
    }).pipe(Effect.provide(InMemoryArchive.services({ fault: advance })))
  })
})

describe("a named output is kept on the way it had when it was named", () => {
  it.live("a stub's folder (or an OUTPUT's) swapped for a link while the archive is read: nothing written through it", () => {
    // A restore as root of a stub in a folder another user can write: that user swaps the folder for a link to
    // /etc/cron.d while the archive opens, and the restored file (root's, the stored content) landed there.
    const dir = fs.realpathSync(tempDir())
    const content = "* * * * * root echo owned\n"
    let swap: (() => void) | undefined
    const fault = (operation: string) => {
      if (operation === "fetch" && swap !== undefined) {
        swap()
        swap = undefined
      }
      return undefined
    }
    return Effect.gen(function*() {
      const tombstone = yield* storeOne(dir, content)
      const stubText = Tombstone.render({
        path: "d/job",
        archivedBy: "alice",
        reason: "dead",
        tombstone,
        sha256: Hash.sha256(content),
        archivedAt: "2026-01-01T00:00:00Z",
        commit: "abc"
      })
      for (const named of ["stub", "OUTPUT"] as const) {
        const shared = path.join(dir, named, "d")
        const victim = path.join(dir, named, "victim")
        fs.mkdirSync(shared, { recursive: true })
        fs.mkdirSync(victim)
        const stub = path.join(shared, "job")
        if (named === "stub") fs.writeFileSync(stub, stubText)
        const resolved = yield* RestoreTarget.fromArgument(
          named === "stub" ? stub : tombstone,
          named === "stub" ? undefined : stub
        )
        expect(resolved.contained, named).toEqual({ root: shared, path: stub })
        swap = () => {
          fs.renameSync(shared, `${shared}.real`)
          fs.symlinkSync(victim, shared)
        }
        const failed = yield* Effect.flip((yield* Restorer.Restorer).restore({
          tombstone,
          output: resolved.output!,
          actor: "root",
          contained: resolved.contained as { root: string; path: string },
          expected: resolved.expected
        }))
        expect(swap, named).toBeUndefined()
        expect(failed.message, named).toContain(`${shared} is a symbolic link; nothing written outside ${shared}`)
        expect(fs.readdirSync(victim), named).toEqual([])
        expect(fs.readdirSync(`${shared}.real`), named).toEqual(named === "stub" ? ["job"] : [])
      }
    }).pipe(Effect.provide(InMemoryArchive.services({ fault })))
  })
})
