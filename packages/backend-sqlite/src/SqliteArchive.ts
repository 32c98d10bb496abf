/**
 * The archive store on SQLite (the embedded default): a client from the `sqlite:` URL, the dialect's migrations,
 * and the shared `SqlArchiveStore` over them.
 */
import { ArchiveStore, Config, FileOps, Guarded, Retry, SqlArchiveStore } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { dialect } from "./SqliteDialect.js"
import { migrations } from "./SqliteSchema.js"

/** SQLite's busy and locked codes are what the retry policy waits out while opening. */
const transient = Retry.classifier(dialect.transient)

export interface Options {
  readonly url: string
  /** Create the file and schema when missing (`init`, `store`); otherwise a missing archive is an error. */
  readonly create: boolean
  /** The command never writes to the archive: a file this process may not write is then opened read-only. */
  readonly readOnly?: boolean
  /** The file, when the caller has read the URL already (the CLI's configuration has, as the original tool does). */
  readonly file?: string | null | undefined
}

/**
 * Resolves the file of a `sqlite:` URL against the process's folder, as the original does; `sqlite:///:memory:` is an
 * in-memory database for embedders (the original tool would make a file `/:memory:` of it, so no config gets here).
 */
export const fileOf = (url: string): string =>
  /^sqlite:\/\/\/:memory:$/i.test(url.trim()) ? ":memory:" : Config.sqlitePath(url.trim(), process.cwd())

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

const notAnArchive = (file: string, detail: string) => new ArchiveStore.NotAnArchive({ location: file, detail })

/** `database is locked` and its kin: another process holds the file; the retry policy decides how long to wait. */
const isBusy = (e: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown }).code ?? ""))

const openFailure = (file: string, e: unknown) =>
  new ArchiveStore.StoreError({
    operation: "open",
    backend: "sqlite",
    detail: isBusy(e)
      ? `${file} is locked by another process (${(e as Error).message})`
      : `${file}: ${FileOps.describeErrno(e)}`,
    transient: isBusy(e)
  })

/**
 * Reads the file's schema through a read-only connection, which never writes to the file: an empty file, a foreign
 * SQLite database (even one with tables named `item` and `artifact`) or anything else is refused before any write.
 * A database with no tables at all is accepted only where we may create the archive (our own half-made file).
 */
const probeSchema = (file: string, create: boolean) =>
  Effect.suspend((): Effect.Effect<void, ArchiveStore.NotAnArchive | ArchiveStore.StoreError> => {
    let db: Database.Database | undefined
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: 200 })
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as Array<string>
      const columnsOf = (t: string) =>
        new Set(db!.prepare(`SELECT name FROM pragma_table_info('${t}')`).pluck().all() as Array<string>)
      const columns = new Map(tables.filter((t) => t === "item" || t === "artifact").map((t) => [t, columnsOf(t)]))
      // Only a database with no tables at all (our own half-made file) may become an archive.
      const reason = SqlArchiveStore.notAnArchiveReason(columns, create && tables.length === 0)
      if (reason === undefined) return Effect.void
      return Effect.fail(notAnArchive(file, reason.replace("is a database", "is a SQLite database")))
    } catch (e) {
      return Effect.fail(openFailure(file, e))
    } finally {
      db?.close()
    }
  })

/** Whether this process may write the file and its folder (WAL mode keeps `-wal`/`-shm` files beside it). */
const writable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.W_OK)
    fs.accessSync(path.dirname(file), fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Checks, before the driver touches it, that the file is there and is a SQLite database holding an archive; returns
 * whether to open it read-only. The schema probe runs under the retry policy: a lock held at open is waited out
 * like a lock held during a query, and one that outlasts the retries is reported as such.
 */
const preflight = (file: string, create: boolean, readOnly: boolean) =>
  Effect.gen(function*() {
    if (file === ":memory:") return false
    const st = fs.statSync(file, { throwIfNoEntry: false })
    if (!st) {
      if (!create) {
        return yield* notAnArchive(file, "no archive database here (run `codex archive init` or set CODEX_ARCHIVE_URL)")
      }
      yield* Effect.try({
        try: () => createFile(file),
        catch: (e) => notAnArchive(file, `cannot create the archive: ${FileOps.describeErrno(e)}`)
      })
      return false
    }
    if (st.isDirectory()) return yield* notAnArchive(file, "is a directory, not an archive database")
    // An empty file is not an archive: SQLite would silently turn it into one.
    if (st.size === 0) return yield* notAnArchive(file, "is an empty file, not an archive database (left untouched)")
    const head = Buffer.alloc(16)
    yield* Effect.try({
      try: () => {
        const fd = fs.openSync(file, "r")
        try {
          fs.readSync(fd, head, 0, 16, 0)
        } finally {
          fs.closeSync(fd)
        }
      },
      catch: (e) => notAnArchive(file, `cannot be read: ${FileOps.describeErrno(e)}`)
    })
    if (head.toString("latin1") !== "SQLite format 3\u0000") {
      return yield* notAnArchive(file, "is not a SQLite database")
    }
    const retry = yield* Retry.RetryPolicy
    yield* retry.retry("open", probeSchema(file, create), transient)
    if (writable(file)) return false
    if (!readOnly) {
      return yield* notAnArchive(file, "is read-only (permission denied), and this command writes to the archive")
    }
    return true
  })

/**
 * The connection the archive opens for the URL, after the preflight (the file is there and is an archive, or may
 * become one), in WAL mode, read-only where the file is not writable and the command only reads. A host that wants
 * this very connection for its own queries may use it; the archive's layers never hand it out.
 */
export const client = (
  options: Options
): Layer.Layer<
  SqliteClient.SqliteClient | SqlClient.SqlClient,
  ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
  Retry.RetryPolicy
> => {
  const file = options.file ?? fileOf(options.url)
  // WAL is switched on below, under the retry policy (the driver would do it at once, waiting 5 s on a lock).
  const connection = Layer.unwrapEffect(Effect.map(
    preflight(file, options.create, options.readOnly ?? false),
    (ro) => SqliteClient.layer({ filename: file, readonly: ro, disableWAL: true })
  )).pipe(
    Layer.catchAll((e) =>
      Layer.fail(
        e._tag === "NotAnArchive" || e._tag === "StoreError"
          ? e
          : SqlArchiveStore.storeErrorOf({ dialect, location: file })("connect")(e)
      )
    )
  )
  const session = Layer.effectDiscard(
    Effect.gen(function*() {
      const sql = yield* SqliteClient.SqliteClient
      const retry = yield* Retry.RetryPolicy
      // Lock waits surface quickly as SQLITE_BUSY, so the retry policy (logged, counted) handles contention.
      yield* sql.unsafe("PRAGMA busy_timeout = 200")
      // Content is read once per restore and written once per store: a large page cache only adds to peak memory.
      yield* sql.unsafe("PRAGMA cache_size = -4000")
      if (sql.config.readonly === true) return
      // Switching to WAL needs the file's lock: under the retry policy, like every query (the driver would wait 5 s).
      yield* retry.retry("open", sql.unsafe("PRAGMA journal_mode = WAL"), transient)
      yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(openError(file, e))))
  )
  return Layer.provideMerge(session, connection)
}

/** The migrated schema + `ArchiveStore` for the URL, on a connection of its own; only the store comes out. Needs the retry policy. */
export const layer = (
  options: Options
): Layer.Layer<ArchiveStore.ArchiveStore, ArchiveStore.NotAnArchive | ArchiveStore.StoreError, Retry.RetryPolicy> =>
  over({ create: options.create }).pipe(Layer.provide(client(options)))

/**
 * `layer` with its options read from Effect `Config`, e.g.
 * `SqliteArchive.layerConfig({ url: Config.string("ARCHIVE_URL"), create: Config.succeed(true) })`.
 */
export const layerConfig = SqlArchiveStore.layerConfigOf(layer)

/** The host's client taken over; the archive is named by its file unless `location` says. */
export type FromClientOptions = SqlArchiveStore.FromClientOptions

/**
 * The archive over the host's own `SqliteClient` (`@effect/sql-sqlite-node`): its connection, its pragmas (WAL is
 * the host's choice), its file. A read-only client is checked, never migrated. Batch restores' worker threads may
 * open the client's file read-only to read payloads. Only `ArchiveStore` comes out.
 */
export const layerFromClient = (
  options: FromClientOptions
): Layer.Layer<
  ArchiveStore.ArchiveStore,
  ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
  SqliteClient.SqliteClient | Retry.RetryPolicy
> => over(options)

/** The schema checked and migrated, and the store, over the `SqliteClient` in context. */
const over = (options: FromClientOptions) =>
  Layer.unwrapEffect(Effect.map(SqliteClient.SqliteClient, (sql) => {
    const file = sql.config.filename
    // A file (not `:memory:`) can be opened again by a batch restore's worker threads to read payloads themselves.
    const embedded = file !== ":memory:" && file !== ""
    const direct = embedded ? { driver: driverModule(), file } : undefined
    return SqlArchiveStore.fromClientOf({ dialect, migrations, location: file })({
      ...options,
      readOnly: sql.config.readonly === true,
      direct,
      files: embedded ? Guarded.embeddedDatabase(file) : []
    }).pipe(
      // Opening failed past every retry: "locked" when another process held the file, as the connection's own errors say.
      Layer.catchAll((e) => Layer.fail(e._tag === "StoreError" ? lockedOrAsIs(file, e) : e)),
      Layer.provide(Layer.succeed(SqlClient.SqlClient, sql))
    )
  }))

/** The driver's entry, resolved from here: the module a worker thread loads to open the same file. */
const driverModule = () => createRequire(import.meta.url ?? __filename).resolve("better-sqlite3")

/**
 * A failure while opening, redacted and classified as every backend's: names the file, and says "locked" when another
 * process held it past every retry.
 */
const openError = (file: string, e: unknown) =>
  lockedOrAsIs(file, SqlArchiveStore.storeErrorOf({ dialect, location: file })("open")(e))

const lockedOrAsIs = (file: string, e: ArchiveStore.StoreError) => {
  const detail = e.detail.startsWith(`${file}: `) ? e.detail.slice(file.length + 2) : e.detail
  return new ArchiveStore.StoreError({
    backend: e.backend,
    transient: e.transient,
    operation: "open",
    detail: /database is locked|SQLITE_(BUSY|LOCKED)/.test(detail)
      ? `${file} is locked by another process (${detail})`
      : `${file}: ${detail}`
  })
}

export { migrations }
