/**
 * Real transient faults from a real PostgreSQL: a connection terminated by `pg_terminate_backend` and a deadlock the
 * server detects. Each store call fails once, is classified transient, retried (logged), and succeeds.
 */
import { Fixtures } from "@codex-archive/conformance"
import { ArchiveStore } from "@codex-archive/core"
import { expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { admin, backend, terminatedWhileLocked, waiting } from "./helpers.js"

it.live("a connection terminated by pg_terminate_backend mid-query is retried and the call succeeds", () => {
  const logs = Fixtures.captureLogs()
  return Fixtures.withArchive(backend, (dir, url) =>
    Effect.gen(function*() {
      const stored = yield* Fixtures.storeText(dir, "a.txt")
      const store = yield* ArchiveStore.ArchiveStore
      const listed = yield* terminatedWhileLocked(url, "item", store.list({ limit: 10 }))
      expect(listed.map((l) => l.tombstone_id)).toEqual([stored.stored[0]!.tombstone])
      const retries = Fixtures.retriesOf(logs, "list")
      expect(retries.length).toBe(1)
      expect(retries[0]).toMatch(/terminating connection due to administrator command/)
    }).pipe(Effect.provide(logs.layer)), { retry: Fixtures.fastRetry })
})

it.live("a deadlock detected by the server is retried as a whole transaction and the purge succeeds", () => {
  const logs = Fixtures.captureLogs()
  return Fixtures.withArchive(backend, (dir, url) =>
    Effect.gen(function*() {
      const stored = (yield* Fixtures.storeText(dir, "b.txt")).stored[0]!
      const store = yield* ArchiveStore.ArchiveStore
      const item = yield* store.show(stored.tombstone)
      const sql = yield* admin(url)
      const other = yield* sql.reserve
      yield* other.executeRaw("BEGIN", [])
      // Our store's session is the one that detects the cycle (after its 1 s deadlock_timeout) and is aborted.
      yield* other.executeRaw("SET LOCAL deadlock_timeout = '30s'", [])
      yield* other.executeRaw("SELECT 1 FROM artifact WHERE id = $1 FOR UPDATE", [item.artifact_id])
      // The purge inserts its events (a key-share lock on the item row), then waits for the artifact row.
      const purge = yield* Effect.fork(
        store.approveDelete({ tombstone: stored.tombstone, primary: "p", secondary: "q", reason: "r", apply: true })
      )
      yield* Fixtures.waitFor(waiting(sql, url), (rows) => rows.length > 0)
      // Now the other transaction wants the item row: a cycle.
      yield* other.executeRaw("SELECT 1 FROM item WHERE id = $1 FOR UPDATE", [item.id])
      yield* other.executeRaw("ROLLBACK", [])
      expect(yield* Fiber.join(purge)).toEqual({ blobScrubbed: true, refCount: 1 })
      const retries = Fixtures.retriesOf(logs, "purge")
      expect(retries.length).toBe(1)
      expect(retries[0]).toMatch(/deadlock detected/)
      expect((yield* store.show(stored.tombstone)).events.filter((e) => e.action === "DELETE_APPROVED").length).toBe(2)
    }).pipe(Effect.provide(logs.layer)), { retry: Fixtures.fastRetry })
})
