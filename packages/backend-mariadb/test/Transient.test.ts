/**
 * Real transient faults from a real MariaDB: a connection ended by `KILL` mid-query and a deadlock InnoDB detects.
 * Each store call fails once, is classified transient, retried (logged), and succeeds.
 */
import { Fixtures } from "@codex-archive/conformance"
import { ArchiveStore } from "@codex-archive/core"
import { expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { admin, backend } from "./helpers.js"

it.live("a connection ended by KILL mid-query is retried and the call succeeds", () => {
  const logs = Fixtures.captureLogs()
  return Fixtures.withArchive(backend, (dir, url) =>
    Effect.gen(function*() {
      const stored = yield* Fixtures.storeText(dir, "a.txt")
      const sql = yield* admin(url)
      const holder = yield* sql.reserve
      yield* holder.executeUnprepared("LOCK TABLES item WRITE", [], undefined)
      const store = yield* ArchiveStore.ArchiveStore
      const listing = yield* Effect.fork(store.list({ limit: 10 }))
      const [victim] = yield* Fixtures.waitFor(
        sql<{ id: number }>`SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ${
          new URL(url).pathname.slice(1)
        } AND STATE LIKE 'Waiting for table%'`,
        (rows) => rows.length > 0
      )
      yield* sql.unsafe(`KILL ${Number(victim!.id)}`)
      yield* holder.executeUnprepared("UNLOCK TABLES", [], undefined)
      const listed = yield* Fiber.join(listing)
      expect(listed.map((l) => l.tombstone_id)).toEqual([stored.stored[0]!.tombstone])
      const retries = Fixtures.retriesOf(logs, "list")
      expect(retries.length).toBe(1)
      expect(retries[0]).toMatch(/Connection lost|connection was killed/i)
    }).pipe(Effect.provide(logs.layer)), { retry: Fixtures.fastRetry })
})

it.live("a deadlock detected by InnoDB is retried as a whole transaction and the purge succeeds", () => {
  const logs = Fixtures.captureLogs()
  return Fixtures.withArchive(backend, (dir, url) =>
    Effect.gen(function*() {
      const stored = (yield* Fixtures.storeText(dir, "b.txt")).stored[0]!
      const store = yield* ArchiveStore.ArchiveStore
      const item = yield* store.show(stored.tombstone)
      const sql = yield* admin(url)
      yield* sql.unsafe("CREATE TABLE ballast (n INT NOT NULL) ENGINE=InnoDB")
      const other = yield* sql.reserve
      yield* other.executeUnprepared("START TRANSACTION", [], undefined)
      // InnoDB rolls back the lighter transaction of a cycle: this one is made heavier so that ours is the victim.
      yield* other.executeUnprepared("INSERT INTO ballast (n) SELECT seq FROM seq_1_to_2000", [], undefined)
      yield* other.executeUnprepared("SELECT id FROM artifact WHERE id = ? FOR UPDATE", [item.artifact_id], undefined)
      // The purge inserts its events (a shared lock on the item row), then waits for the artifact row.
      const purge = yield* Effect.fork(
        store.approveDelete({ tombstone: stored.tombstone, primary: "p", secondary: "q", reason: "r", apply: true })
      )
      yield* Fixtures.waitFor(
        sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ${
          new URL(url).pathname.slice(1)
        } AND INFO LIKE 'UPDATE artifact%'`,
        (rows) => Number(rows[0]!.n) > 0
      )
      // Now the other transaction wants the item row: a cycle.
      yield* other.executeUnprepared("SELECT id FROM item WHERE id = ? FOR UPDATE", [item.id], undefined)
      yield* other.executeUnprepared("ROLLBACK", [], undefined)
      expect(yield* Fiber.join(purge)).toEqual({ blobScrubbed: true, refCount: 1 })
      const retries = Fixtures.retriesOf(logs, "purge")
      expect(retries.length).toBe(1)
      expect(retries[0]).toMatch(/Deadlock found/)
      expect((yield* store.show(stored.tombstone)).events.filter((e) => e.action === "DELETE_APPROVED").length).toBe(2)
    }).pipe(Effect.provide(logs.layer)), { retry: Fixtures.fastRetry })
})

it.live("every connection of the pool runs its session in UTC", () =>
  Fixtures.withArchive(backend, () =>
    Effect.gen(function*() {
      const { SqlClient } = yield* Effect.promise(() => import("@effect/sql"))
      const sql = yield* SqlClient.SqlClient
      const zones = yield* Effect.all(
        Array.from({ length: 6 }, () => sql<{ tz: string }>`SELECT @@session.time_zone AS tz, SLEEP(0.05) AS s`),
        { concurrency: 6 }
      )
      expect(new Set(zones.map((z) => z[0]!.tz))).toEqual(new Set(["+00:00"]))
    })))
