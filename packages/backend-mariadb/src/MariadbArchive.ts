/**
 * The archive store on MariaDB / MySQL: a pooled client from the `mariadb://` / `mysql://` URL, the dialect's
 * migrations, and the shared `SqlArchiveStore` over them.
 */
import { type ArchiveStore, Redact, type Retry, SqlArchiveStore } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { Layer, Redacted } from "effect"
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

/** `mariadb:`, `mysql:` and SQLAlchemy's `mysql+pymysql:` forms (spec §2.4). */
const scheme = /^(mariadb|mysql)(\+[a-z0-9]+)?:$/i

/** Query values as the legacy DAL passes them: numbers and booleans typed, JSON objects parsed, the rest as text. */
const paramValue = (value: string): unknown => {
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

/** The client options of a MariaDB URL (password `Redacted`), or `undefined` when it is not one. */
export const parseUrl = (url: string, poolSize = 4): MariadbClient.Options | undefined => {
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (!parsed || !scheme.test(parsed.protocol)) return undefined
  const params = Object.fromEntries([...parsed.searchParams].map(([k, v]) => [k, paramValue(v)]))
  return {
    host: decodeURIComponent(parsed.hostname) || "localhost",
    port: parsed.port === "" ? 3306 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
    user: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : Redacted.make(decodeURIComponent(parsed.password)),
    params,
    poolSize: Math.max(1, poolSize)
  }
}

/** `SqlClient` + migrated schema + `ArchiveStore`, for the given URL. Needs the retry policy. */
export const layer = (options: Options): Layer.Layer<ArchiveStore.ArchiveStore | SqlClient.SqlClient, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> => {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  const target = parseUrl(url, options.poolSize)
  const client = target === undefined
    ? Layer.fail(new Error("not a MariaDB URL (expected mysql:// or mariadb://)"))
    : target.database === ""
    ? Layer.fail(new Error("the URL names no database (expected mysql://host:3306/DATABASE)"))
    : MariadbClient.layer(target)
  const secrets = Redact.secretsOf(url)
  return SqlArchiveStore.serve({ dialect, location: Redact.url(url), secrets, client, migrations, create: options.create })
}

export { migrations }
