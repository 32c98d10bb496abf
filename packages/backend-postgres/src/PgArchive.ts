/**
 * The archive store on PostgreSQL: a pooled client from the `postgres://` / `postgresql://` URL, the dialect's
 * migrations, and the shared `SqlArchiveStore` over them.
 */
import { type ArchiveStore, Redact, type Retry, SqlArchiveStore } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Duration, Layer, Redacted } from "effect"
import { dialect } from "./PgDialect.js"
import { migrations } from "./PgSchema.js"

export interface Options {
  /** `postgres://user:password@host:5432/db?sslmode=...`; the driver reads credentials and query parameters. */
  readonly url: string | Redacted.Redacted<string>
  /** Create the schema when missing (`init`, `store`); otherwise a database without the tables is an error. */
  readonly create: boolean
  /** Connections in the pool: the configured concurrency (default 4). */
  readonly poolSize?: number | undefined
}

export interface Target {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
}

/** The parts of a PostgreSQL URL, or `undefined` when it is not one. */
export const parseUrl = (url: string): Target | undefined => {
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (!parsed || (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:")) return undefined
  return {
    host: decodeURIComponent(parsed.hostname) || "localhost",
    port: parsed.port === "" ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres",
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : Redacted.make(decodeURIComponent(parsed.password))
  }
}

/** `SqlClient` + migrated schema + `ArchiveStore`, for the given URL. Needs the retry policy. */
export const layer = (options: Options): Layer.Layer<ArchiveStore.ArchiveStore | SqlClient.SqlClient, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> => {
  const url = Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url)
  const location = Redact.url(Redacted.value(url))
  const target = parseUrl(Redacted.value(url))
  const secrets = Redact.secretsOf(Redacted.value(url))
  const client = target === undefined
    ? Layer.fail(new Error("not a PostgreSQL URL (expected postgres:// or postgresql://)"))
    : PgClient.layer({
      url,
      maxConnections: Math.max(1, options.poolSize ?? 4),
      connectTimeout: Duration.seconds(10),
      applicationName: "codex-archive"
    })
  return SqlArchiveStore.serve({ dialect, location, secrets, client, migrations, create: options.create })
}

export { migrations }
