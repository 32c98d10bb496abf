/**
 * A `SqlClient` over a mysql2 pool that this module owns, so every new connection starts with
 * `SET time_zone = '+00:00'` (TIMESTAMP columns convert through the session zone; `@effect/sql-mysql2`'s own layer
 * hides its pool and cannot do this). Statements compile with `@effect/sql-mysql2`'s compiler.
 */
import { Reactivity } from "@effect/experimental"
import { SqlClient, type SqlConnection, SqlError } from "@effect/sql"
import { MysqlClient } from "@effect/sql-mysql2"
import { Effect, Layer, Redacted, Stream } from "effect"
import * as Mysql from "mysql2"

export interface Options {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
  /** Further mysql2 options from the URL's query (`?connectTimeout=5000&ssl=...`). */
  readonly params: Readonly<Record<string, unknown>>
  readonly poolSize: number
}

type Target = Mysql.Pool | Mysql.PoolConnection

const run = (
  target: Target,
  sql: string,
  values: ReadonlyArray<unknown>,
  rowsAsArray = false,
  method: "execute" | "query" = "execute"
) =>
  Effect.async<unknown, SqlError.SqlError>((resume) => {
    ;(target as unknown as Record<string, (...args: ReadonlyArray<unknown>) => unknown>)[method]!.call(
      target,
      { sql, values, rowsAsArray },
      (cause: unknown, results: unknown) => {
        resume(
          cause
            ? Effect.fail(new SqlError.SqlError({ cause, message: "Failed to execute statement" }))
            : Effect.succeed(results)
        )
      }
    )
  })

const rows = (results: unknown): ReadonlyArray<any> => (Array.isArray(results) ? results : [])

const connection = (target: Target): SqlConnection.Connection => ({
  execute: (sql, params, transform) =>
    Effect.map(run(target, sql, params), (r) => (transform ? transform(rows(r)) : rows(r))),
  executeRaw: (sql, params) => run(target, sql, params),
  executeValues: (sql, params) => Effect.map(run(target, sql, params, true), rows),
  executeUnprepared: (sql, params, transform) =>
    Effect.map(run(target, sql, params, false, "query"), (r) => (transform ? transform(rows(r)) : rows(r))),
  // The store never streams rows (large content is paged by `seq`), so a stream here is one buffered result.
  executeStream: (sql, params, transform) =>
    Stream.fromIterableEffect(Effect.map(run(target, sql, params), (r) => (transform ? transform(rows(r)) : rows(r))))
})

export const make = (options: Options) =>
  Effect.gen(function*() {
    const pool = Mysql.createPool({
      ...options.params,
      host: options.host,
      port: options.port,
      database: options.database,
      user: options.user,
      password: options.password === undefined ? undefined : Redacted.value(options.password),
      connectionLimit: options.poolSize,
      maxIdle: options.poolSize,
      // TIMESTAMP text is UTC both ways: the session zone below, and how mysql2 reads it back into a Date.
      timezone: "Z",
      supportBigNumbers: true
    } as Mysql.PoolOptions)
    // Commands queue per connection, so this runs before anything a caller sends on a fresh connection.
    pool.on("connection", (conn) => void conn.query("SET time_zone = '+00:00'", () => {}))
    yield* Effect.acquireRelease(
      Effect.async<void, SqlError.SqlError>((resume) => {
        pool.query("SELECT 1", (cause) =>
          resume(cause ? Effect.fail(new SqlError.SqlError({ cause, message: "Failed to connect" })) : Effect.void))
      }),
      () =>
        Effect.async<void>((resume) =>
          void pool.end(() => resume(Effect.void))
        )
    )
    const acquire = Effect.acquireRelease(
      Effect.async<Mysql.PoolConnection, SqlError.SqlError>((resume) => {
        pool.getConnection((cause, conn) =>
          resume(
            cause
              ? Effect.fail(new SqlError.SqlError({ cause, message: "Failed to acquire connection" }))
              : Effect.succeed(conn)
          )
        )
      }),
      (conn) => Effect.sync(() => conn.release())
    )
    return yield* SqlClient.make({
      acquirer: Effect.succeed(connection(pool)),
      transactionAcquirer: Effect.map(acquire, connection),
      compiler: MysqlClient.makeCompiler(),
      spanAttributes: [["db.system.name", "mariadb"], ["server.address", options.host], ["server.port", options.port]]
    })
  })

export const layer = (options: Options): Layer.Layer<SqlClient.SqlClient, SqlError.SqlError> =>
  Layer.scoped(SqlClient.SqlClient, make(options)).pipe(Layer.provide(Reactivity.layer))
