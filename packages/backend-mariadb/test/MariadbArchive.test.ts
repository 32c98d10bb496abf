import { ArchiveStore, Migrations, Retry, ServerUrl } from "@codex-archive/core"
import { describe, expect, it, vi } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import * as Mysql from "mysql2"
import { MariadbArchive, MariadbSchema } from "../src/index.js"
import { admin, fresh } from "./helpers.js"

const open = (url: string | Redacted.Redacted<string>, create = true) =>
  Effect.exit(
    Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.probe).pipe(
      Effect.provide(MariadbArchive.layer({ url, create, poolSize: 2 }).pipe(Layer.provide(Retry.none)))
    )
  )

describe("MariadbArchive URLs", () => {
  it("parses credentials (percent-encoded), host, port, database and typed query parameters", () => {
    const target = MariadbArchive.parseUrl(
      "mysql+pymysql://us%40er:p%3Ass@db.example:3307/arch?connectTimeout=5000&compress=true&charset=utf8mb4",
      8
    )!
    expect(target).toMatchObject({
      host: "db.example",
      port: 3307,
      database: "arch",
      user: "us@er",
      poolSize: 8,
      params: { connectTimeout: 5000, compress: true, charset: "utf8mb4" }
    })
    expect(Redacted.value(target.password!)).toBe("p:ss")
    expect(MariadbArchive.parseUrl("mariadb://h/db")).toMatchObject({
      port: 3306,
      user: undefined,
      password: undefined
    })
    expect(MariadbArchive.parseUrl("postgres://h/db")).toBeUndefined()
    expect(MariadbArchive.parseUrl("mysql://u:p%ZZ@h/db")).toBeUndefined()
    expect(MariadbArchive.parseUrl("mysql://u@h:3306")).toBeUndefined()
  })

  it.live("opens mysql:// and mariadb:// forms, a Redacted URL and query parameters", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const mariadb = url.replace(/^mysql:/, "mariadb:")
      for (const form of [url, mariadb, Redacted.make(mariadb), `${url}?connectTimeout=5000`]) {
        expect(Exit.isSuccess(yield* open(form))).toBe(true)
      }
    })))

  it.live("a query parameter mysql2 does not take is refused by name before connecting, and mysql2 says nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const said = vi.spyOn(console, "error").mockImplementation(() => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => said.mockRestore()))
      const exit = yield* open(`${url}?connectTimeout=5000&foo=1`)
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Error : undefined
      expect(error?.message).toMatch(
        /\?connectTimeout=5000&foo=1: query parameter 'foo' is not one of the mysql2 options a URL may set \(charset, /
      )
      expect(said).not.toHaveBeenCalled()
    })))

  it("every query parameter the URL accepts is an option mysql2 takes without a warning", () => {
    const said = vi.spyOn(console, "error").mockImplementation(() => {})
    try {
      const names = [...ServerUrl.mariadb.params!.options.keys()]
      expect(names.length).toBeGreaterThan(10)
      Mysql.createPool(Object.fromEntries(names.map((name) => [name, undefined]))).end(() => {})
      expect(said).not.toHaveBeenCalled()
      Mysql.createPool({ foo: 1 } as Mysql.PoolOptions).end(() => {})
      expect(said).toHaveBeenCalledOnce()
    } finally {
      said.mockRestore()
    }
  })

  it.live("a malformed URL fails with what is wrong with it, never its password", () =>
    Effect.gen(function*() {
      const exit = yield* open("mysql://root:hunter22%ZZ@127.0.0.1/x")
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Error : undefined
      expect(error?.message).toBe(
        "mariadb archive: connect failed: mysql://***@127.0.0.1/x: malformed %-escape in the password"
      )
    }))

  it.live("a missing database is NotAnArchive naming the URL redacted", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = new URL(yield* fresh)
      url.pathname = "/codex_test_no_such_db"
      const missing = yield* open(url.toString())
      const error = Exit.isFailure(missing) ? Cause.squash(missing.cause) as Error : undefined
      expect(error?.message).toMatch(
        /^mysql:\/\/(\*\*\*@)?127\.0\.0\.1:3306\/codex_test_no_such_db: the database does not exist/
      )
    })))

  it.live("a migration that fails midway (DDL auto-commits) is not recorded, so the next start completes it", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const sql = yield* admin(url)
      const open = Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.schemaVersion).pipe(
        Effect.provide(MariadbArchive.layer({ url, create: true, poolSize: 2 }).pipe(Layer.provide(Retry.none)))
      )
      // A view named like one of our tables: CREATE TABLE IF NOT EXISTS passes it by, the index on it then fails.
      yield* sql.unsafe("CREATE VIEW event AS SELECT 1 AS id")
      const failed = yield* Effect.flip(open)
      expect(failed.message).toMatch(/migrate failed/)
      // Nothing recorded (the Migrator's table does not even exist yet), so nothing will be skipped next time.
      const recorded = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql(Migrations.table)}`.pipe(
        Effect.orElseSucceed(() => [{ n: 0 }])
      )
      expect(recorded).toEqual([{ n: 0 }])
      yield* sql.unsafe("DROP VIEW event")
      expect(yield* open).toBe(Migrations.latest(MariadbSchema.migrations))
      const columns = yield* sql<{ t: string }>`SELECT TABLE_NAME AS t FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ${
        new URL(url).pathname.slice(1)
      } AND COLUMN_NAME = 'seq' AND TABLE_NAME IN ('item', 'event') ORDER BY t`
      expect(columns.map((c) => c.t)).toEqual(["event", "item"])
    })))
})
