/**
 * A host can handle every failure of store, restore, batch restore and verify by its tag: after `catchTags` over
 * all of them the error channel is `never` (checked by the compiler), and each handler really receives its failure.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, ArchiveStore, Batch, Restorer, Verifier } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

const tagged = (e: { readonly _tag: string; readonly message: string }) => Effect.succeed(`${e._tag}: ${e.message}`)

// Each helper's declared error type is `never`: it compiles only while catchTags names every failure of the operation.
const store = (inputs: ReadonlyArray<string>, cwd: string): Effect.Effect<string, never, Archiver.Archiver> =>
  Effect.flatMap(
    Archiver.Archiver,
    (a) => a.store(inputs, { repo: "acme/host", actor: "host", commit: "c0ffee", reason: "dead", kind: "code", cwd })
  ).pipe(
    Effect.map(() => "stored"),
    Effect.catchTags({
      InputError: tagged,
      StoreError: tagged,
      PayloadSourceError: tagged,
      EvidenceError: tagged,
      StubError: tagged,
      WorkerFailed: tagged
    })
  )

const restore = (tombstone: string, output: string): Effect.Effect<string, never, Restorer.Restorer> =>
  Effect.flatMap(Restorer.Restorer, (r) => r.restore({ tombstone, output, actor: "host" })).pipe(
    Effect.map(() => "restored"),
    Effect.catchTags({
      InvalidTombstone: tagged,
      TombstoneNotFound: tagged,
      PayloadPurged: tagged,
      StoreError: tagged,
      UnknownCodec: tagged,
      CorruptPayload: tagged,
      IntegrityError: tagged,
      ContentMismatch: tagged,
      OutputError: tagged,
      EvidenceError: tagged,
      WorkerFailed: tagged
    })
  )

const batch = (
  tombstone: string,
  output: string,
  resumeFrom?: string
): Effect.Effect<string, never, Effect.Effect.Context<ReturnType<typeof Batch.run>>> =>
  Batch.run([{ tombstone, output, actor: "host" }], { actor: "host", resumeFrom }).pipe(
    Effect.map((report) => `batch: ${report.summary.failed} failed`),
    Effect.catchTags({ ResultsError: tagged, ManifestError: tagged })
  )

const verify = (
  tombstones?: ReadonlyArray<string>
): Effect.Effect<string, never, Effect.Effect.Context<ReturnType<typeof Verifier.verify>>> =>
  Verifier.verify({ actor: "host", tombstones }).pipe(
    Effect.map((report) => `verified ${report.ok}`),
    Effect.catchTags({ StoreError: tagged, TombstoneNotFound: tagged, EvidenceError: tagged })
  )

describe("typed failures", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-typed-"))
  let faulty = false
  const layer = InMemoryArchive.services({
    fault: (operation) =>
      faulty
        ? new ArchiveStore.StoreError({ operation, backend: "memory", detail: "injected", transient: false })
        : undefined
  })

  it.live("every failure of store, restore, batch restore and verify reaches the host's handler by its tag", () =>
    Effect.gen(function*() {
      fs.writeFileSync(path.join(dir, "a.txt"), "hello\n")
      expect(yield* store(["missing.txt"], dir)).toBe("InputError: missing.txt: no such file or directory")
      expect(yield* store(["a.txt"], dir)).toBe("stored")
      const [item] = yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.list({ limit: 1 }))
      const tombstone = item!.tombstone_id
      expect(yield* restore("nope", path.join(dir, "out.txt"))).toMatch(
        /^InvalidTombstone: 'nope' is not a tombstone id/
      )
      expect(yield* restore("00000000-0000-4000-8000-000000000000", path.join(dir, "out.txt"))).toMatch(
        /^TombstoneNotFound: /
      )
      expect(yield* restore(tombstone, dir)).toBe(`OutputError: ${dir}: output is a directory`)
      expect(yield* restore(tombstone, path.join(dir, "out.txt"))).toBe("restored")
      expect(fs.readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("hello\n")
      expect(yield* batch(tombstone, path.join(dir, "b.txt"), path.join(dir, "no-results.json"))).toMatch(
        /^ResultsError: .*no-results\.json/
      )
      expect(yield* batch(tombstone, path.join(dir, "b.txt"))).toBe("batch: 0 failed")
      expect(yield* verify(["00000000-0000-4000-8000-000000000000"])).toMatch(/^TombstoneNotFound: /)
      expect(yield* verify()).toBe("verified 1")
      faulty = true
      expect(yield* store(["a.txt"], dir)).toBe("StoreError: memory archive: archive failed: injected")
      expect(yield* restore(tombstone, path.join(dir, "c.txt"))).toBe(
        "StoreError: memory archive: locate failed: injected"
      )
      // A whole-archive verify reads page by page; one of given tombstones reads their artifacts at once.
      expect(yield* verify()).toBe("StoreError: memory archive: artifact_page failed: injected")
      expect(yield* verify([tombstone])).toBe("StoreError: memory archive: artifacts failed: injected")
    }).pipe(
      Effect.provide(layer),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    ))
})
