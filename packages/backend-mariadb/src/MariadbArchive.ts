/**
 * The archive store on MariaDB / MySQL: a pooled client from the `mariadb://` / `mysql://` URL, the dialect's
 * migrations, and the shared `SqlArchiveStore` over them.
 */
import { type ArchiveStore, Redact, type Retry, ServerUrl, SqlArchiveStore } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { Either, Layer, Redacted } from "effect"
import * as MariadbClient from "./MariadbClient.js"
import { dialect } from "./MariadbDialect.js"
import { migrations } from "./MariadbSchema.js"

export interface Options {
  /** `mysql://user:password@host:3306/db?connectTimeout=5000`; query parameters become mysql2 options. */
  readonly url: string | Redacted.Redacted<string>
  /** Create the schema when missing (`init`, `store`); otherwise a database without the tables is an error. */
  readonly create: boolean
  /** Connections in the pool: the configured concurrency (default 4). */
  readonly poolSize?: number | undefined
}

/** The client options of a URL's parts. */
const optionsOf = (parts: ServerUrl.Parts, poolSize: number): MariadbClient.Options => ({
  host: parts.host || "localhost",
  port: parts.port ?? 3306,
  database: parts.database,
  user: parts.user,
  password: parts.password,
  params: Object.fromEntries(parts.params.map(([k, v]) => [k, ServerUrl.paramValue(v)])),
  poolSize: Math.max(1, poolSize)
})

/** The client options of a MariaDB URL (password `Redacted`), or `undefined` when it is not one (`ServerUrl.parse` says why). */
export const parseUrl = (url: string, poolSize = 4): MariadbClient.Options | undefined =>
  Either.getOrUndefined(Either.map(ServerUrl.parse(url, ServerUrl.mariadb), (parts) => optionsOf(parts, poolSize)))

/**
 * The client the archive opens for the URL (a pool of `poolSize`, every connection in UTC). A host that wants this
 * very pool for its own queries may use it; the archive's layers never hand it out.
 */
export const client = (
  options: Pick<Options, "url" | "poolSize">
): Layer.Layer<SqlClient.SqlClient, ArchiveStore.NotAnArchive | ArchiveStore.StoreError> => {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  const target = ServerUrl.parse(url, ServerUrl.mariadb)
  return SqlArchiveStore.connect(
    { dialect, location: Redact.url(url), secrets: Redact.secretsOf(url) },
    Either.isLeft(target)
      ? Layer.fail(new Error(target.left))
      : MariadbClient.layer(optionsOf(target.right, options.poolSize ?? 4))
  )
}

/** The migrated schema + `ArchiveStore` for the URL, on a pool of its own; only the store comes out. Needs the retry policy. */
export const layer = (
  options: Options
): Layer.Layer<ArchiveStore.ArchiveStore, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> => {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  return layerFromClient({ create: options.create, location: Redact.url(url), secrets: Redact.secretsOf(url) }).pipe(
    Layer.provide(client(options))
  )
}

/**
 * `layer` with its options read from Effect `Config` (the URL as `Redacted`), e.g.
 * `MariadbArchive.layerConfig({ url: Config.redacted("ARCHIVE_URL"), create: Config.succeed(true) })`.
 */
export const layerConfig = SqlArchiveStore.layerConfigOf(layer)

/** The host's client taken over; the archive is named `mariadb` unless `location` says. */
export type FromClientOptions = SqlArchiveStore.FromClientOptions

/**
 * The archive over the host's own MySQL `SqlClient` (e.g. `@effect/sql-mysql2`'s `MysqlClient` layer) and its pool.
 * Timestamps are written as UTC text: give the client's connections `time_zone = '+00:00'` (as `client` does), or
 * times read back shift by the session's offset. Only `ArchiveStore` comes out.
 */
export const layerFromClient = (
  options: FromClientOptions
): Layer.Layer<
  ArchiveStore.ArchiveStore,
  ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
  SqlClient.SqlClient | Retry.RetryPolicy
> => SqlArchiveStore.fromClientOf({ dialect, migrations, location: "mariadb" })(options)

export { migrations }
