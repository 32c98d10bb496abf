/**
 * The backends under test. Each run gets a fresh, empty archive: a new SQLite file, or a new uniquely named database
 * on the PostgreSQL / MariaDB server, dropped when the run's scope closes. Server backends are loaded with a dynamic
 * `import()`, so a SQLite-only run never loads their drivers, and a backend package without its layer yet is reported
 * as unavailable instead of failing the bench.
 */
import { type ArchiveStore, Redact, type Retry } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { Data, Effect, Layer, Redacted, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export type BackendName = "sqlite" | "postgres" | "mariadb"
export const backendNames: ReadonlyArray<BackendName> = ["sqlite", "postgres", "mariadb"]

export const defaultUrls = {
  postgres: "postgres://postgres@127.0.0.1:5432/postgres",
  mariadb: "mysql://root@127.0.0.1:3306/test"
} as const

/** Server URLs: any database in them is only used to connect; each run creates its own next to it. */
export interface ServerUrls {
  readonly postgres: string
  readonly mariadb: string
}

export type StoreLayer = Layer.Layer<ArchiveStore.ArchiveStore, unknown, Retry.RetryPolicy>

export interface Target {
  readonly backend: BackendName
  /** The fresh archive's URL (for the layer and the CLI); it holds no password for the default servers. */
  readonly url: string
  readonly layer: StoreLayer
}

export class BackendUnavailable
  extends Data.TaggedError("BackendUnavailable")<{ readonly backend: BackendName; readonly reason: string }>
{
  override get message() {
    return `${this.backend}: not available: ${this.reason}`
  }
}

export class UnknownBackend extends Data.TaggedError("UnknownBackend")<{ readonly name: string }> {
  override get message() {
    return `--backends: unknown backend '${this.name}' (expected ${backendNames.join(", ")})`
  }
}

export const parseList = (spec: string): Effect.Effect<ReadonlyArray<BackendName>, UnknownBackend> =>
  Effect.forEach(
    [...new Set(spec.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0))],
    (name) => {
      const canonical = name === "postgresql" ? "postgres" : name === "mysql" ? "mariadb" : name
      return backendNames.includes(canonical as BackendName)
        ? Effect.succeed(canonical as BackendName)
        : Effect.fail(new UnknownBackend({ name }))
    }
  )

/** The layer constructor a server backend package exports (`PgArchive.layer`, `MariadbArchive.layer`). */
type LayerFactory = (
  options: { readonly url: string; readonly create: boolean; readonly poolSize?: number }
) => StoreLayer

const loadFactory = (backend: "postgres" | "mariadb"): Effect.Effect<LayerFactory, BackendUnavailable> =>
  Effect.tryPromise({
    // `as string` keeps tsc from requiring the package's types while esbuild still bundles it.
    try: () =>
      backend === "postgres"
        ? import("@codex-archive/backend-postgres" as string)
        : import("@codex-archive/backend-mariadb" as string),
    catch: (e) =>
      new BackendUnavailable({
        backend,
        reason: `cannot load @codex-archive/backend-${backend}: ${(e as Error).message}`
      })
  }).pipe(Effect.flatMap((mod: Record<string, unknown>) => {
    const exported = (backend === "postgres" ? mod["PgArchive"] : mod["MariadbArchive"]) as
      | { layer?: unknown }
      | undefined
    return typeof exported?.layer === "function"
      ? Effect.succeed(exported.layer as LayerFactory)
      : Effect.fail(
        new BackendUnavailable({
          backend,
          reason: `@codex-archive/backend-${backend} does not export ${
            backend === "postgres" ? "PgArchive" : "MariadbArchive"
          }.layer yet`
        })
      )
  }))

/** Runs statements on the server's admin connection (its own short-lived pool). */
const onServer = (backend: "postgres" | "mariadb", serverUrl: string, statements: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const client = backend === "postgres"
      ? (yield* Effect.promise(() => import("@effect/sql-pg/PgClient"))).layer({
        url: Redacted.make(serverUrl),
        maxConnections: 1
      })
      : (yield* Effect.promise(() => import("@effect/sql-mysql2/MysqlClient"))).layer({
        url: Redacted.make(serverUrl),
        maxConnections: 1
      })
    const Sql = yield* Effect.promise(() => import("@effect/sql/SqlClient"))
    yield* Effect.gen(function*() {
      const sql = yield* Sql.SqlClient
      for (const statement of statements) yield* sql.unsafe(statement)
    }).pipe(Effect.provide(client as Layer.Layer<SqlClient.SqlClient, unknown>))
  }).pipe(Effect.mapError((e) =>
    new BackendUnavailable({
      backend,
      reason: Redact.secrets(`${Redact.url(serverUrl)}: ${describe(e)}`, Redact.secretsOf(serverUrl))
    })
  ))

const describe = (e: unknown): string => {
  const err = e as { message?: string; cause?: { message?: string } }
  return err.cause?.message ?? err.message ?? String(e)
}

const withDatabase = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

/**
 * A fresh archive for one run; released (file removed, database dropped) when the scope closes.
 * `name` must be unique in this process (`<pid>_<run>_<backend>`).
 */
export const fresh = (
  backend: BackendName,
  servers: ServerUrls,
  workDir: string,
  name: string,
  poolSize: number
): Effect.Effect<Target, BackendUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    if (backend === "sqlite") {
      const { SqliteArchive } = yield* Effect.promise(() => import("@codex-archive/backend-sqlite"))
      const file = path.join(workDir, `${name}.sqlite`)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const suffix of ["", "-wal", "-shm", "-journal"]) fs.rmSync(file + suffix, { force: true })
        })
      )
      const url = `sqlite:///${file}`
      return { backend, url, layer: SqliteArchive.layer({ url, create: true }) }
    }
    const factory = yield* loadFactory(backend)
    const serverUrl = servers[backend]
    const database = `codex_bench_${name}`.replace(/[^a-z0-9_]/gi, "_").toLowerCase()
    const quoted = backend === "postgres" ? `"${database}"` : `\`${database}\``
    yield* Effect.acquireRelease(
      onServer(backend, serverUrl, [`DROP DATABASE IF EXISTS ${quoted}`, `CREATE DATABASE ${quoted}`]),
      () =>
        Effect.ignoreLogged(onServer(backend, serverUrl, [
          backend === "postgres"
            ? `DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`
            : `DROP DATABASE IF EXISTS ${quoted}`
        ]))
    )
    const url = withDatabase(serverUrl, database)
    return { backend, url, layer: factory({ url, create: true, poolSize }) }
  })
