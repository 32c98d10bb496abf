// A TypeScript consumer of the installed packages, type-checked with NodeNext resolution, @tsconfig/strictest and
// skipLibCheck off: every declaration file we publish (and what it imports) must hold under a strict host's flags.
import { MariadbArchive } from "@codex-archive/backend-mariadb"
import { PgArchive } from "@codex-archive/backend-postgres"
import { SqliteArchive } from "@codex-archive/backend-sqlite"
import * as Cli from "@codex-archive/cli"
import { Archiver, ArchiveStore, Batch, Config, Evidence, Restorer, Retry, Tombstone } from "@codex-archive/core"
import { Effect, Layer } from "effect"

const retry = Retry.layer({ enabled: true, max_attempts: 5, initial_delay: 1, max_delay: 32, multiplier: 2, jitter: 0.1, seed: null })

const program = Effect.gen(function*() {
  const archiver = yield* Archiver.Archiver
  const restorer = yield* Restorer.Restorer
  const report = yield* archiver.store(["docs/old"], {
    repo: "acme/shop", actor: "ci", commit: "4f9c2e1", reason: "legacy", kind: "doc", writeStub: true, cwd: process.cwd()
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

const config = Layer.effect(Config.ArchiveConfigTag, Effect.map(Config.load({ cwd: process.cwd(), env: {} }), (l) => l.config))
const shared = Layer.mergeAll(config, Evidence.layer(".codex/evidence"))
const sqlite = SqliteArchive.layer({ url: "sqlite:///./.codex/archive.sqlite", create: true }).pipe(Layer.provide(retry))
const pg = PgArchive.layer({ url: "postgres://localhost/archive", create: true }).pipe(Layer.provide(retry))
const mariadb = MariadbArchive.layer({ url: "mysql://localhost/archive", create: true }).pipe(Layer.provide(retry))

export const runOn = (store: typeof sqlite | typeof pg | typeof mariadb): Promise<number> =>
  Effect.runPromise(program.pipe(Effect.provide(Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(store, shared))
  ))))

export const tombstone: string = Tombstone.make()
export const batch: typeof Batch = Batch
export const command: typeof Cli.codex = Cli.codex
