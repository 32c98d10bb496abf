/**
 * The archive store on PostgreSQL: a pooled client from the `postgres://` / `postgresql://` URL, the dialect's
 * migrations, and the shared `SqlArchiveStore` over them.
 */
import { type ArchiveStore, PayloadReader, Redact, type Retry, ServerUrl, SqlArchiveStore } from "@codex-archive/core"
import { SqlClient, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Duration, Effect, Either, Layer, Redacted } from "effect"
import Pg from "pg"
import * as PgCopy from "./PgCopy.js"
import { dialect } from "./PgDialect.js"
import { migrations } from "./PgSchema.js"

export interface Options {
  /** `postgres://user:password@host:5432/db?sslmode=...`; the driver reads credentials and query parameters. */
  readonly url: string | Redacted.Redacted<string>
  /** Create the schema when missing (`init`, `store`); otherwise a database without the tables is an error. */
  readonly create: boolean
  /** Connections in the pool: the configured concurrency (default 4). */
  readonly poolSize?: number | undefined
  /**
   * The schema the archive lives in (created with `create`): tables, triggers and its migrations table, apart from
   * anything else in the database. Default: the server's `search_path` (normally `public`).
   */
  readonly schema?: string | undefined
}

export interface Target {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
}

/** The parts of a PostgreSQL URL, or `undefined` when it is not one (`ServerUrl.parse` says why). */
export const parseUrl = (url: string): Target | undefined =>
  Either.getOrUndefined(Either.map(ServerUrl.parse(url, ServerUrl.postgres), (parts) => ({
    host: parts.host || "localhost",
    port: parts.port ?? 5432,
    database: parts.database || "postgres",
    username: parts.user,
    password: parts.password
  })))

/** How long a connection may take to open (ms). */
const connectTimeout = 10_000

/** A PostgreSQL schema name we can put in `search_path` and `CREATE SCHEMA` alike: unquoted, lower case. */
const schemaName = /^[a-z_][a-z0-9_]{0,62}$/

/** The URL whose connections start with `search_path` set to the schema: every table, trigger and record in it. */
const inSchema = (url: string, schema: string | undefined): string => {
  if (schema === undefined) return url
  const parsed = new URL(url)
  const given = parsed.searchParams.get("options")
  parsed.searchParams.set("options", `${given === null ? "" : `${given} `}-c search_path=${schema}`)
  return parsed.toString()
}

/**
 * The client the archive opens for the URL (a pool of `poolSize`), `search_path` set to `schema` when one is named; a
 * store over this very client reads payloads by binary COPY on its pool (`PgCopy`, attached as its `PayloadReader`).
 * A host that wants this pool for its own queries may use it; the archive's layers never hand it out.
 */
export const client = (
  options: Pick<Options, "url" | "poolSize" | "schema">
): Layer.Layer<SqlClient.SqlClient, ArchiveStore.NotAnArchive | ArchiveStore.StoreError> => {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  const pool = () => {
    const problem = ServerUrl.problemOf(url, ServerUrl.postgres)
    if (problem !== undefined) return Layer.fail(new Error(problem))
    if (options.schema !== undefined && !schemaName.test(options.schema)) {
      return Layer.fail(
        new Error(
          `schema ${JSON.stringify(options.schema)}: expected a lower-case name of letters, digits and _ (at most 63)`
        )
      )
    }
    // The pool is ours, not the driver layer's: payloads are read on it by binary COPY (`PgCopy`), which a `PgClient`
    // cannot run. Built as `PgClient.layer` builds its own, and checked the same way.
    const acquire = Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pg.Pool({
          connectionString: inSchema(url, options.schema),
          max: Math.max(1, options.poolSize ?? 4),
          connectionTimeoutMillis: connectTimeout,
          application_name: "codex-archive"
        })
        pool.on("error", () => {})
        return pool
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
    ).pipe(
      Effect.tap((pool) =>
        Effect.tryPromise({
          try: () => pool.query("SELECT 1"),
          catch: (cause) => new SqlError.SqlError({ cause, message: "PgClient: Failed to connect" })
        }).pipe(Effect.timeoutFail({
          duration: Duration.millis(connectTimeout),
          onTimeout: () =>
            new SqlError.SqlError({
              cause: new Error("Connection timed out"),
              message: "PgClient: Connection timed out"
            })
        }))
      )
    )
    return Layer.unwrapScoped(
      Effect.map(
        acquire,
        (pool) =>
          PgClient.layerFromPool({ acquire: Effect.succeed(pool), applicationName: "codex-archive" }).pipe(
            Layer.tap((context) =>
              Effect.sync(() => PayloadReader.attach(Context.get(context, SqlClient.SqlClient), PgCopy.reader(pool)))
            )
          )
      )
    )
  }
  // Only the generic tag in the signature: a host's declarations then need no `pg` types.
  return SqlArchiveStore.connect(
    { dialect, location: Redact.url(url), secrets: Redact.secretsOf(url) },
    pool() as Layer.Layer<SqlClient.SqlClient, unknown>
  )
}

/** The migrated schema + `ArchiveStore` for the URL, on a pool of its own; only the store comes out. Needs the retry policy. */
export const layer = (
  options: Options
): Layer.Layer<ArchiveStore.ArchiveStore, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> => {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  return layerFromClient({
    create: options.create,
    location: Redact.url(url),
    secrets: Redact.secretsOf(url),
    schema: options.schema
  }).pipe(
    Layer.provide(client(options))
  )
}

/**
 * `layer` with its options read from Effect `Config` (the URL as `Redacted`), e.g.
 * `PgArchive.layerConfig({ url: Config.redacted("ARCHIVE_URL"), create: Config.succeed(true) })`.
 */
export const layerConfig = SqlArchiveStore.layerConfigOf(layer)

/** The host's client taken over (the archive named `postgres` unless `location` says), in the schema it points at. */
export interface FromClientOptions extends SqlArchiveStore.FromClientOptions {
  /**
   * The schema the client's `search_path` already points at, created with `create` (`client({ schema })` makes such
   * a pool). The archive never changes a host's `search_path`.
   */
  readonly schema?: string | undefined
}

/**
 * The archive over the host's own `SqlClient` (a `PgClient` layer the host built): its pool, its connections, and its
 * `search_path` (the archive's tables go where the host's unqualified names go). Only `ArchiveStore` comes out; the
 * archive's migrations are recorded in `codex_archive_migrations`, beside (never in) the host's own.
 */
export const layerFromClient = (
  options: FromClientOptions
): Layer.Layer<
  ArchiveStore.ArchiveStore,
  ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
  SqlClient.SqlClient | Retry.RetryPolicy
> => SqlArchiveStore.fromClientOf({ dialect, migrations, location: "postgres" })(options)

export { migrations }
