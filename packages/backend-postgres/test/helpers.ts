/** Test wiring: a fresh PostgreSQL database per test (dropped afterwards) on the server of `CODEX_TEST_PG_URL`. */
import * as Fixtures from "@codex-archive/conformance/Fixtures"
import { Redact } from "@codex-archive/core"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Fiber, Layer, Redacted } from "effect"
import { PgArchive, PgSchema } from "../src/index.js"

export const serverUrl = process.env.CODEX_TEST_PG_URL || "postgres://postgres@127.0.0.1:5432/postgres"

/** A client on the server's admin database, for creating, inspecting and dropping test databases. */
export const admin = (url = serverUrl) =>
  Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })).pipe(
    Effect.map(Context.get(PgClient.PgClient)),
    Effect.mapError((e) =>
      new Fixtures.ServerUnreachable({
        server: `PostgreSQL ${Redact.url(url)}`,
        variable: "CODEX_TEST_PG_URL",
        detail: String((e as { cause?: Error }).cause?.message ?? e.message)
      })
    )
  )

/** The archive over its own pool, that pool shared with the test (as a host may share its client). */
export const withSql = (options: PgArchive.Options) =>
  Layer.provideMerge(
    PgArchive.layerFromClient({
      create: options.create,
      location: Redact.url(String(options.url)),
      schema: options.schema
    }),
    PgArchive.client(options)
  )

export const fresh = Effect.flatMap(
  admin(),
  (sql) => Fixtures.freshDatabase(sql, serverUrl, (db) => `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
)

export const backend: Fixtures.Backend = {
  name: "postgres",
  fresh,
  layer: (options) => withSql({ ...options, poolSize: 4 }),
  migrations: PgSchema.migrations
}

/**
 * Sessions of our store (application_name codex-archive) in the database of `url` that wait on a lock, their query
 * starting with `query` when given.
 */
export const waiting = (sql: Effect.Effect.Success<ReturnType<typeof admin>>, url: string, query = "") =>
  sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = ${new URL(url).pathname.slice(1)}
    AND application_name = 'codex-archive' AND wait_event_type = 'Lock' AND query LIKE ${`${query}%`}`

/**
 * Runs `operation` while another session holds `table` locked, terminates our session once it waits on that lock
 * (`pg_terminate_backend`, as a server restart would), releases the lock, and returns the operation's outcome.
 */
export const terminatedWhileLocked = <A, E, R>(
  url: string,
  table: string,
  operation: Effect.Effect<A, E, R>,
  query = ""
) =>
  Effect.gen(function*() {
    const sql = yield* admin(url)
    const holder = yield* sql.reserve
    yield* holder.executeRaw("BEGIN", [])
    yield* holder.executeRaw(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`, [])
    const running = yield* Effect.fork(operation)
    const [victim] = yield* Fixtures.waitFor(waiting(sql, url, query), (rows) => rows.length > 0)
    yield* sql`SELECT pg_terminate_backend(${victim!.pid})`
    yield* holder.executeRaw("COMMIT", [])
    return yield* Fiber.join(running)
  })

/** ReadyForQuery: the server has finished a statement (and committed it, outside a transaction). */
const readyForQuery = Buffer.from([0x5a, 0, 0, 0, 5])

/** `Fixtures.cuttingRelay` to the test server; a statement's answer ends with its ReadyForQuery. */
export const cuttingRelay = (url: string, cut: Fixtures.Cut) =>
  Fixtures.cuttingRelay(url, serverUrl, 5432, cut, (d) => d.includes(readyForQuery))
