/**
 * The archive store on SQLite (the embedded default): a client from the `sqlite:` URL, the dialect's migrations,
 * and the shared `SqlArchiveStore` over them.
 */
import { ArchiveStore, Config, Migrations, type Retry, SqlArchiveStore } from "@codex-archive/core"
import { Migrator, SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { migrations } from "./SqliteSchema.js"

export interface Options {
  readonly url: string
  /** Create the file and schema when missing (`init`, `store`); otherwise a missing archive is an error. */
  readonly create: boolean
}

/** Resolves the file of a `sqlite:` URL (relative to the process's folder, as the original does). */
export const fileOf = (url: string): string => {
  const file = Config.sqlitePath(url)
  return file === ":memory:" ? file : path.resolve(file)
}

/**
 * A new archive's page size, fixed when the file is created (WAL mode freezes it). Payloads are blobs of up to ~1 MiB,
 * and a store's commit copies every page of its WAL into the file: with 4x fewer pages, storing 10,000 files (770 MiB)
 * took 6.5 s instead of 7.1 s, restores the same. Archives created elsewhere keep their own.
 */
const pageSize = 16384

/** Creates an empty archive file with our page size, in WAL mode; the driver then opens it as any other. */
const createFile = (file: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const db = new Database(file)
  try {
    db.pragma(`page_size = ${pageSize}`)
    db.pragma("journal_mode = WAL")
  } finally {
    db.close()
  }
}

/** Checks, before the driver touches it, that the file is there and is a SQLite database holding an archive. */
const preflight = (file: string, create: boolean): Effect.Effect<void, ArchiveStore.NotAnArchive> =>
  Effect.suspend(() => {
    if (file === ":memory:") return Effect.void
    const st = fs.statSync(file, { throwIfNoEntry: false })
    if (!st) {
      if (create) {
        return Effect.try({
          try: () => createFile(file),
          catch: (e) => new ArchiveStore.NotAnArchive({ location: file, detail: `cannot create the archive: ${(e as Error).message}` })
        })
      }
      return Effect.fail(new ArchiveStore.NotAnArchive({ location: file, detail: "no archive database here (run `codex archive init` or set CODEX_ARCHIVE_URL)" }))
    }
    if (st.isDirectory()) return Effect.fail(new ArchiveStore.NotAnArchive({ location: file, detail: "is a directory, not an archive database" }))
    if (st.size === 0) return Effect.void
    const fd = fs.openSync(file, "r")
    const head = Buffer.alloc(16)
    fs.readSync(fd, head, 0, 16, 0)
    fs.closeSync(fd)
    return head.toString("latin1") === "SQLite format 3\u0000"
      ? Effect.void
      : Effect.fail(new ArchiveStore.NotAnArchive({ location: file, detail: "is not a SQLite database" }))
  })

/** An existing database must already hold the archive's tables unless we may create them. */
const requireArchive = (file: string, create: boolean) =>
  Effect.gen(function*() {
    if (create) return
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('item', 'artifact')`
    if (rows.length < 2) {
      return yield* new ArchiveStore.NotAnArchive({ location: file, detail: "is a SQLite database but not a codex archive (no item/artifact tables)" })
    }
  })

const toStoreError = (operation: string) => (e: { message: string; cause?: unknown }) =>
  new ArchiveStore.StoreError({ operation, backend: "sqlite", detail: String((e.cause as Error | undefined)?.message ?? e.message), transient: false })

/** `SqlClient` + migrated schema + `ArchiveStore`, for the given URL. Needs the retry policy. */
export const layer = (options: Options): Layer.Layer<ArchiveStore.ArchiveStore | SqlClient.SqlClient, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> => {
  const file = fileOf(options.url)
  const client = Layer.unwrapEffect(Effect.as(preflight(file, options.create), SqliteClient.layer({ filename: file }))).pipe(
    Layer.catchAll((e) => Layer.fail(e._tag === "NotAnArchive" ? e : toStoreError("connect")(e)))
  )
  const setup = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Lock waits surface quickly as SQLITE_BUSY, so the retry policy (logged, counted) handles contention.
    yield* sql.unsafe("PRAGMA busy_timeout = 200")
    yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    // Content is read once per restore and written once per store: a large page cache only adds to peak memory.
    yield* sql.unsafe("PRAGMA cache_size = -4000")
    yield* requireArchive(file, options.create)
    yield* Migrator.make({})({ loader: Migrations.loader(migrations) })
  }).pipe(Effect.catchTags({ SqlError: (e) => Effect.fail(toStoreError("migrate")(e)), MigrationError: (e) => Effect.fail(toStoreError("migrate")(e)) })))
  // A file (not `:memory:`) can be opened again by a batch restore's worker threads to read payloads themselves.
  const direct = file === ":memory:" ? undefined : { driver: createRequire(import.meta.url).resolve("better-sqlite3"), file }
  const store = Layer.effect(ArchiveStore.ArchiveStore, SqlArchiveStore.make({ backend: "sqlite", location: file, direct }))
  return Layer.provideMerge(Layer.merge(store, setup), client)
}

export { migrations }
