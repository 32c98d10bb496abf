/**
 * Tests only a server backend needs, shared by PostgreSQL and MariaDB: a 100 MiB file through separate processes with
 * their peak memory measured, several processes writing overlapping content into one archive at once, and a wrong
 * credential that must fail on one line without the password anywhere.
 */
import { Archiver, ArchiveStore, Hash, Restorer, Retry } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Logger, LogLevel, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  type Backend,
  captureLogs,
  fastRetry,
  noise,
  retriesOf,
  services,
  storeText,
  tempDir,
  waitFor,
  withArchive,
  write
} from "./Fixtures.js"
import * as Processes from "./Processes.js"

export interface ServerOptions {
  /** The backend's worker entry (`test/worker.ts` calling `Worker.main`). */
  readonly worker: string
  /** A user name the server rejects together with a wrong password (default: the test URL's own user). */
  readonly rejectedUser?: string | undefined
  /**
   * Holds a lock on the database at `url` that lets readers through but makes inserts into `artifact` wait, so the
   * writers all pass their "is this content stored?" check before any of them inserts: the race happens for sure.
   * `waiting` counts sessions blocked on it; `release` lets them go.
   */
  readonly blockArtifactInserts: (
    url: string
  ) => Effect.Effect<
    { readonly waiting: Effect.Effect<number, unknown>; readonly release: Effect.Effect<void, unknown> },
    unknown,
    Scope.Scope
  >
  /**
   * A relay to the server at `url` that cuts the first connection (with `every`, each) once a unit's record of its
   * restores has committed, its answer swallowed (`Fixtures.cuttingRelay`, cut after the statement or the COMMIT that
   * records it).
   */
  readonly cutAfterRecord: (
    url: string,
    every?: boolean
  ) => Effect.Effect<{ readonly url: string; readonly cuts: () => number }, never, Scope.Scope>
}

const MiB = 1024 * 1024

/** Writes `size` bytes of noise in 1 MiB pieces, so the test process never holds the whole file either. */
const writeNoise = (file: string, size: number) => {
  const fd = fs.openSync(file, "w")
  for (let at = 0, i = 0; at < size; at += MiB, i++) fs.writeSync(fd, noise(Math.min(MiB, size - at), i + 1))
  fs.closeSync(fd)
  return file
}

const sha256File = (file: string) => {
  const hash = Hash.incremental()
  const fd = fs.openSync(file, "r")
  const buf = Buffer.alloc(MiB)
  for (let n = 0; (n = fs.readSync(fd, buf, 0, MiB, null)) > 0;) hash.update(buf.subarray(0, n))
  fs.closeSync(fd)
  return hash.digest()
}

const expectOk = (run: Processes.Run, what: string) => {
  if (run.code !== 0) throw new Error(`${what} exited ${run.code}: ${run.stderr.trim()}`)
  return run.result
}

export const serverSuite = (backend: Backend, options: ServerOptions) =>
  describe(`${backend.name} server behaviour`, () => {
    let script = ""
    beforeAll(async () => {
      script = await Processes.bundle(options.worker, tempDir("codex-worker-"))
    }, 120_000)

    /** Two stored files' restore records at `at`, and a check that each was recorded once, by bob, at `at`. */
    const twoToRecord = (dir: string, at: string) =>
      Effect.gen(function*() {
        const tombstones: Array<string> = []
        for (const name of ["a.txt", "b.txt"]) tombstones.push((yield* storeText(dir, name)).stored[0]!.tombstone)
        const direct = yield* ArchiveStore.ArchiveStore
        const located = yield* direct.locate(tombstones)
        const records = tombstones.map((t) => ({ itemId: located.get(t)!.itemId, actor: "bob", at }))
        const recordedOnce = Effect.forEach(tombstones, (t) =>
          Effect.map(direct.show(t), (shown) => {
            expect(shown.restored_at).toBe(at)
            expect(shown.events.filter((e) => e.action === "RESTORE").map((e) => e.actor)).toEqual(["bob"])
          }))
        return { records, recordedOnce }
      })

    // Found by an attack review: a retry sent the same event ids again and failed on their key (PostgreSQL), so a batch
    // reported the unit failed and removed its files while the archive held their events; with ids made again on each
    // try (MariaDB), every restore of the unit was recorded twice.
    it.live("a unit's record that committed, its answer lost, is retried as done: one event and restored_at each", () => {
      const logs = captureLogs()
      return withArchive(backend, (dir, url) =>
        Effect.gen(function*() {
          const { records, recordedOnce } = yield* twoToRecord(dir, "2026-12-07T21:00:00Z")
          const relay = yield* options.cutAfterRecord(url)
          yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.recordRestores(records)).pipe(
            Effect.provide(backend.layer({ url: relay.url, create: false }).pipe(Layer.provide(fastRetry)))
          )
          expect(relay.cuts()).toBe(1)
          expect(retriesOf(logs, "record_restore")).toHaveLength(1)
          yield* recordedOnce
        }).pipe(Effect.provide(logs.layer)))
    })

    // Found by an attack review: a proxy swallowing every answer to the record made the batch report 100 items failed
    // (RESTORE_FAIL lines, files removed) while the archive held their RESTORE events and restored_at.
    it.live("a unit's record whose every answer is lost, but which committed, is done once the retries run out", () =>
      withArchive(backend, (dir, url) =>
        Effect.gen(function*() {
          const { records, recordedOnce } = yield* twoToRecord(dir, "2026-12-07T23:00:00Z")
          const relay = yield* options.cutAfterRecord(url, true)
          const threeTries = Retry.layer({ ...Retry.defaults, max_attempts: 3, initial_delay: 0.01, max_delay: 0.05 })
          yield* Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.recordRestores(records)).pipe(
            Effect.provide(backend.layer({ url: relay.url, create: false }).pipe(Layer.provide(threeTries)))
          )
          expect(relay.cuts()).toBe(3)
          yield* recordedOnce
        })))

    it.live("a 100 MiB file round-trips through separate processes in bounded memory, no SQL value near 16 MiB", () =>
      Effect.scoped(Effect.gen(function*() {
        const url = yield* backend.fresh
        const dir = tempDir()
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const file = writeNoise(path.join(dir, "huge.bin"), 100 * MiB + 123)
        const expected = sha256File(file)
        const stored = expectOk(yield* Effect.promise(() => Processes.run(script, ["store", url, dir, file])), "store")
        expect(stored.stored[0].sha256).toBe(expected)
        const requests = path.join(dir, "requests.json")
        fs.writeFileSync(
          requests,
          JSON.stringify([{ tombstone: stored.stored[0].tombstone, output: path.join(dir, "out.bin"), actor: "ci" }])
        )
        const restored = expectOk(
          yield* Effect.promise(() => Processes.run(script, ["restore", url, dir, requests])),
          "restore"
        )
        expect(sha256File(path.join(dir, "out.bin"))).toBe(expected)
        console.log(
          `[${backend.name}] 100 MiB file: peak RSS store ${stored.maxRssMiB} MiB, restore ${restored.maxRssMiB} MiB`
        )
        // Holding the file whole (raw + compressed) would need well over 200 MiB.
        expect(stored.maxRssMiB).toBeLessThan(200)
        expect(restored.maxRssMiB).toBeLessThan(200)
        const largest = yield* Effect.provide(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ n: unknown }>`SELECT MAX(LENGTH(blob_bytes)) AS n FROM artifact_chunk`
          ),
          services(backend, url, dir)
        )
        expect(Number(largest[0]!.n)).toBeGreaterThan(MiB - 1)
        expect(Number(largest[0]!.n)).toBeLessThan(2 * MiB)
      })))

    it.live(
      "processes storing overlapping content at once leave one artifact per content; every tombstone restores",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const url = yield* backend.fresh
          const dir = tempDir()
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
          const contents = Array.from(
            { length: 24 },
            (_, i) => (i % 6 === 5 ? noise(MiB + 4096 * i, i + 1) : Buffer.from(`shared content ${i}\n`.repeat(i + 1)))
          )
          // The archive exists first (as after `init`), with items a restorer works on while the writers run.
          const base = yield* Effect.provide(
            Effect.gen(function*() {
              const store = yield* ArchiveStore.ArchiveStore
              const archiver = yield* Archiver.Archiver
              for (let i = 0; i < 10; i++) write(path.join(dir, "base", `b${i}.txt`), `base ${i}\n`.repeat(50))
              const report = yield* archiver.store([path.join(dir, "base")], {
                repo: "acme/base",
                actor: "init",
                commit: "c0ffee",
                reason: "dead",
                kind: "code",
                cwd: dir
              })
              expect(yield* store.probe).toBe(1)
              return report.stored
            }),
            services(backend, url, dir)
          )
          const writers = 4
          const inputs = Array.from({ length: writers }, (_, w) => {
            const picked = contents.map((c, i) => [c, i] as const).filter(([, i]) => (i + w) % 4 !== 0)
            return picked.map(([c, i]) => write(path.join(dir, `w${w}`, `f${i}.bin`), c))
          })
          const requests = path.join(dir, "base-requests.json")
          fs.writeFileSync(
            requests,
            JSON.stringify(
              [0, 1, 2].flatMap((round) =>
                base.map((s) => ({
                  tombstone: s.tombstone,
                  output: path.join(dir, `r${round}`, s.path),
                  actor: "reader"
                }))
              )
            )
          )
          const gate = yield* options.blockArtifactInserts(url)
          const running = yield* Effect.fork(Effect.promise(() =>
            Promise.all([
              ...inputs.map((files, w) => Processes.run(script, ["store", url, path.join(dir, `w${w}`), ...files])),
              Processes.run(script, ["restore", url, dir, requests])
            ])
          ))
          // Every writer has looked its content up and now waits to insert it; then they all go at once.
          yield* waitFor(gate.waiting, (n) => n >= writers)
          yield* gate.release
          const runs = yield* Fiber.join(running)
          const results = runs.map((r, i) => expectOk(r, i < writers ? `writer ${i}` : "restorer"))
          const retries = runs.map((r) => r.stdout.split("\n").filter((l) => l.includes("retrying")).length)
          const deduped = results.slice(0, writers).map((r) =>
            r.stored.filter((s: { deduplicated: boolean }) => s.deduplicated).length
          )
          console.log(
            `[${backend.name}] ${writers} writers + 1 restorer: retries per process ${
              retries.join("/")
            }, deduplicated per writer ${deduped.join("/")}`
          )
          const stored = results.slice(0, writers).flatMap((r) =>
            r.stored as Array<{ tombstone: string; sha256: string; path: string }>
          )
          expect(stored.length).toBe(inputs.flat().length)
          const reader = results[writers].restored as Array<{ sha256: string }>
          expect(reader.map((r) => r.sha256)).toEqual([0, 1, 2].flatMap(() => base.map((s) => s.sha256)))
          yield* Effect.provide(
            Effect.gen(function*() {
              const store = yield* ArchiveStore.ArchiveStore
              const artifacts = yield* store.artifacts()
              const distinct = new Set([...stored.map((s) => s.sha256), ...base.map((s) => s.sha256)])
              expect(artifacts.length).toBe(distinct.size)
              expect(new Set(artifacts.map((a) => a.sha256))).toEqual(distinct)
              const restorer = yield* Restorer.Restorer
              const outcomes = yield* restorer.restoreAll(
                stored.map((s) => ({
                  tombstone: s.tombstone,
                  output: path.join(dir, "check", s.tombstone),
                  actor: "ci"
                })),
                { concurrency: 4 }
              )
              expect(outcomes.filter((o) => o._tag === "Failure")).toEqual([])
              for (const s of stored) expect(sha256File(path.join(dir, "check", s.tombstone))).toBe(s.sha256)
            }),
            services(backend, url, dir)
          )
        })),
      300_000
    )

    it.live(
      "processes opening a new database at once all migrate it and store without error",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const url = yield* backend.fresh
          const dir = tempDir()
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
          const runs = yield* Effect.promise(() =>
            Promise.all(
              [0, 1, 2, 3].map((w) =>
                Processes.run(script, ["store", url, dir, write(path.join(dir, `n${w}.txt`), `first run ${w}\n`)])
              )
            )
          )
          runs.forEach((r, w) => expectOk(r, `process ${w}`))
          const listed = yield* Effect.provide(
            Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.list({ limit: 10 })),
            services(backend, url, dir)
          )
          expect(listed.length).toBe(4)
        })),
      120_000
    )

    it.live("rejected credentials fail on one line with the URL redacted; the password is in no message or log", () =>
      Effect.scoped(Effect.gen(function*() {
        const password = "s3cret-Pa55word"
        const rejected = new URL(yield* backend.fresh)
        if (options.rejectedUser !== undefined) rejected.username = options.rejectedUser
        rejected.password = password
        const url = rejected.toString()
        const logs: Array<string> = []
        const logger = Logger.make(({ message, annotations, cause }) => {
          logs.push(JSON.stringify({ message, annotations: [...annotations], cause: Cause.pretty(cause) }))
        })
        const exit = yield* Effect.exit(
          Layer.build(backend.layer({ url, create: true }).pipe(Layer.provide(Retry.none)))
        ).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isSuccess(exit)) return
        const error = Cause.squash(exit.cause) as ArchiveStore.StoreError
        console.log(`[${backend.name}] rejected credentials: ${error.message}`)
        expect(error._tag).toBe("StoreError")
        expect(error.message).not.toContain("\n")
        expect(error.message).toContain("***@")
        for (const text of [error.message, JSON.stringify(error), Cause.pretty(exit.cause), ...logs]) {
          expect(text).not.toContain(password)
        }
      })))
  })
