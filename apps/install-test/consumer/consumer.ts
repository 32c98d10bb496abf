// A TypeScript consumer of the installed packages, type-checked with NodeNext resolution, @tsconfig/strictest and
// skipLibCheck off: every declaration file we publish (and what it imports) must hold under a strict host's flags.
import { MariadbArchive } from "@codex-archive/backend-mariadb"
import { PgArchive } from "@codex-archive/backend-postgres"
import { SqliteArchive } from "@codex-archive/backend-sqlite"
import * as Cli from "@codex-archive/cli"
import { Archiver, ArchiveStore, Batch, CodexArchive, Metrics, Restorer, Retry, Tombstone } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { Config as EffectConfig, Effect, type Layer } from "effect"

const retrySettings: Retry.RetrySettings = { ...Retry.defaults, max_attempts: 3 }

const program = Effect.gen(function*() {
  const archiver = yield* Archiver.Archiver
  const restorer = yield* Restorer.Restorer
  const report = yield* archiver.store(["docs/old"], {
    repo: "acme/shop",
    actor: "ci",
    commit: "4f9c2e1",
    reason: "legacy",
    kind: "doc",
    writeStub: true,
    cwd: process.cwd()
  })
  const results = yield* restorer.restoreAll(
    report.stored.map((file) => ({ tombstone: file.tombstone, output: file.source, actor: "ci" })),
    { concurrency: 4 }
  )
  const first = report.stored[0]
  if (first !== undefined) {
    const outcome = yield* restorer.restore({ tombstone: first.tombstone, output: first.source, actor: "ci" })
    yield* Effect.log(`${outcome.output}: ${outcome.status} in ${outcome.timings.duration_ms.toFixed(1)} ms`)
  }
  return results.length
}).pipe(
  Effect.catchTags({
    TombstoneNotFound: (e: ArchiveStore.TombstoneNotFound) => Effect.succeed(e.tombstone.length),
    IntegrityError: (e: Restorer.IntegrityError) => Effect.succeed(e.expected.length)
  })
)

const evidenceDir = ".codex/evidence"
export const sqlite = SqliteArchive.layer({ url: "sqlite:///./.codex/archive.sqlite", create: true })
export const pg = PgArchive.layer({ url: "postgres://localhost/archive", create: true, schema: "archive" })
export const mariadb = MariadbArchive.layer({ url: "mysql://localhost/archive", create: true })
// Settings through Effect `Config`, the URL redacted; and the archive over a host's own client.
const configured = PgArchive.layerConfig({
  url: EffectConfig.redacted("ARCHIVE_URL"),
  create: EffectConfig.succeed(true)
})
const onHostClient: Layer.Layer<
  ArchiveStore.ArchiveStore,
  ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
  SqlClient.SqlClient | Retry.RetryPolicy
> = PgArchive.layerFromClient({ create: true })

export const runOn = (store: typeof sqlite | typeof pg | typeof mariadb): Promise<number> =>
  Effect.runPromise(program.pipe(Effect.provide(CodexArchive.layer({ store, evidenceDir, retry: retrySettings }))))

export const viaConfig = CodexArchive.layerConfig(configured, { evidenceDir: EffectConfig.string("EVIDENCE_DIR") })
export const hostClient = CodexArchive.layer({ store: onHostClient, evidenceDir })
export const metrics: Effect.Effect<string, never, Metrics.ArchiveMetrics> = Effect.flatMap(
  Metrics.ArchiveMetrics,
  (m) => m.prometheus
)
export const noThreads: Archiver.StoreOptions["workers"] = 0

export const tombstone: string = Tombstone.make()
export const batch: typeof Batch = Batch
export const command: typeof Cli.codex = Cli.codex
