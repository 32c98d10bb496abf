/**
 * The backend switch, the one place: each backend package is loaded only when named (`import()`), and gives the
 * layer for a configuration and its migrations (for `schema` and `health-check`).
 */
import type { ArchiveStore, Config, Migrations, Retry } from "@codex-archive/core"
import { Effect, type Layer, Redacted } from "effect"

export interface Backend {
  readonly layer: (
    config: Config.ArchiveConfig,
    create: boolean,
    readOnly: boolean
  ) => Layer.Layer<ArchiveStore.ArchiveStore, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy>
  readonly migrations: ReadonlyArray<Migrations.Migration>
}

/** One connection per concurrent batch unit, plus one (unchanged from when each command picked its layer). */
const poolSize = (config: Config.ArchiveConfig) => config.batch.concurrent + 1

export const backends: { readonly [B in Config.BackendName]: () => Promise<Backend> } = {
  sqlite: () =>
    import("@codex-archive/backend-sqlite").then((m) => ({
      layer: (config, create, readOnly) =>
        m.SqliteArchive.layer({ url: Redacted.value(config.backend.url), file: config.backend.path, create, readOnly }),
      migrations: m.SqliteSchema.migrations
    })),
  postgres: () =>
    import("@codex-archive/backend-postgres").then((m) => ({
      layer: (config, create) =>
        m.PgArchive.layer({ url: Redacted.value(config.backend.url), create, poolSize: poolSize(config) }),
      migrations: m.PgSchema.migrations
    })),
  mariadb: () =>
    import("@codex-archive/backend-mariadb").then((m) => ({
      layer: (config, create) =>
        m.MariadbArchive.layer({ url: Redacted.value(config.backend.url), create, poolSize: poolSize(config) }),
      migrations: m.MariadbSchema.migrations
    }))
}

export const load = (name: Config.BackendName): Effect.Effect<Backend> => Effect.promise(backends[name])
