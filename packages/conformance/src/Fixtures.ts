/**
 * What every backend test shares, free of vitest so that worker processes can load it: the backend description a
 * suite runs against, fresh databases, the services the CLI composes, and file fixtures.
 */
import { Archiver, type ArchiveStore, Config, Evidence, type Migrations, Restorer, Retry } from "@codex-archive/core"
import type { SqlClient } from "@effect/sql"
import { Data, Effect, Layer, Logger, Schedule, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export interface Backend {
  readonly name: ArchiveStore.ArchiveStore["Type"]["backend"]
  /** A URL to a new, empty database, dropped when the scope closes; fails naming the server if it is unreachable. */
  readonly fresh: Effect.Effect<string, unknown, Scope.Scope>
  /**
   * The archive and a `SqlClient` on its database for the suite's raw SQL: the test composes them, as a host sharing
   * its client with the archive would (`layerFromClient` over the backend's `client`); the archive alone never hands
   * out a `SqlClient`.
   */
  readonly layer: (options: { readonly url: string; readonly create: boolean }) => Layer.Layer<
    ArchiveStore.ArchiveStore | SqlClient.SqlClient,
    ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
    Retry.RetryPolicy
  >
  readonly migrations: ReadonlyArray<Migrations.Migration>
  /**
   * What the backend can do beyond the port. `sql: false` (the in-memory test kit): no `SqlClient`, so the suite's
   * tests that run raw SQL are reported as skipped, each named `[needs SQL]`. Default: everything.
   */
  readonly capabilities?: { readonly sql: boolean }
}

/**
 * A backend that is only an `ArchiveStore` (no `SqlClient` in its layer): the suite skips, by name, the tests that
 * need SQL, so the layer's missing `SqlClient` is never asked for.
 */
export const storeOnly = (backend: {
  readonly name: Backend["name"]
  readonly fresh: Backend["fresh"]
  readonly layer: (options: { readonly url: string; readonly create: boolean }) => Layer.Layer<
    ArchiveStore.ArchiveStore,
    ArchiveStore.NotAnArchive | ArchiveStore.StoreError,
    Retry.RetryPolicy
  >
}): Backend => ({ ...backend, layer: backend.layer as Backend["layer"], migrations: [], capabilities: { sql: false } })

/** Whether the suite may run raw SQL against this backend. */
export const hasSql = (backend: Backend): boolean => backend.capabilities?.sql ?? true

/** A test server that cannot be reached fails the suite, naming the server and the variable that sets it. */
export class ServerUnreachable extends Data.TaggedError("ServerUnreachable")<
  { readonly server: string; readonly variable: string; readonly detail: string }
> {
  override get message() {
    return `cannot reach the test server ${this.server}: ${this.detail} (start it, or set ${this.variable})`
  }
}

/** A new database `codex_test_<random>` on the admin client's server, dropped when the scope closes; its URL. */
export const freshDatabase = (
  admin: SqlClient.SqlClient,
  serverUrl: string,
  dropSql = (db: string) => `DROP DATABASE IF EXISTS ${db}`
) =>
  Effect.gen(function*() {
    const database = `codex_test_${randomBytes(6).toString("hex")}`
    yield* Effect.acquireRelease(
      Effect.orDie(admin.unsafe(`CREATE DATABASE ${database}`)),
      () => Effect.orDie(admin.unsafe(dropSql(database)))
    )
    const url = new URL(serverUrl)
    url.pathname = `/${database}`
    return url.toString()
  })

export const tempDir = (prefix = "codex-conformance-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Config, evidence, store, Archiver and Restorer over one archive URL, as the CLI composes them. */
export const services = (
  backend: Backend,
  url: string,
  dir: string,
  options: { readonly create?: boolean; readonly retry?: Layer.Layer<Retry.RetryPolicy> } = {}
) => {
  const config = Layer.effect(
    Config.ArchiveConfigTag,
    Effect.map(
      // A store without SQL is no configurable backend: its URL is the store's own business.
      Config.compose([
        Config.fromFlags([
          ...(hasSql(backend) ? [["backend.url", "--url", url] as const] : []),
          ["evidence.dir", "--evidence", path.join(dir, "evidence")] as const
        ], dir)
      ], dir),
      (l) => l.config
    )
  )
  const store = backend.layer({ url, create: options.create ?? true }).pipe(Layer.provide(options.retry ?? Retry.none))
  const base = Layer.mergeAll(store, config, Evidence.layer(path.join(dir, "evidence")), Restorer.settingsLayer())
  return Layer.mergeAll(Archiver.layer, Restorer.layer).pipe(Layer.provideMerge(base), Layer.orDie)
}

export type Services = Layer.Layer.Success<ReturnType<typeof services>>

/** Runs `body` against a fresh archive of `backend` in a temporary folder; the database is dropped afterwards. */
export const withArchive = <A, E>(
  backend: Backend,
  body: (dir: string, url: string) => Effect.Effect<A, E, Services | Scope.Scope>,
  options: { readonly retry?: Layer.Layer<Retry.RetryPolicy> } = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const url = yield* backend.fresh
    const dir = tempDir()
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    return yield* Effect.provide(body(dir, url), services(backend, url, dir, options))
  }))

export const write = (file: string, content: string | Uint8Array, mode?: number) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, content, mode === undefined ? undefined : { mode })
  return file
}

/** Deterministic incompressible-ish bytes, so chunked content really spans several chunks after compression. */
export const noise = (size: number, seed = 1): Buffer => {
  const out = Buffer.alloc(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** The production retry policy with short delays: contention and injected faults are expected in these tests. */
export const fastRetry = Retry.layer({
  enabled: true,
  max_attempts: 10,
  initial_delay: 0.05,
  max_delay: 1,
  multiplier: 2,
  jitter: 0.1,
  seed: null
})

/** A logger that keeps every line (message and annotations as JSON), to assert on retries and on what never leaks. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, message }) =>
    void lines.push(JSON.stringify({ message, ...Object.fromEntries(annotations) }))
  )
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** Polls a condition on the server (a session waiting on a lock, ...) until it holds; fails after a minute. */
export const waitFor = <A, E, R>(probe: Effect.Effect<A, E, R>, until: (a: A) => boolean) =>
  probe.pipe(
    Effect.filterOrFail(until, () => new Error("not yet")),
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error("the awaited server condition never held")
    })
  )

/** Stores one file named `name` in `dir` holding `content` (repo acme/faults), as a fault-injection test's subject. */
export const storeFile = (dir: string, name: string, content: string | Uint8Array) =>
  Effect.flatMap(
    Archiver.Archiver,
    (a) =>
      a.store([write(path.join(dir, name), content)], {
        repo: "acme/faults",
        actor: "alice",
        commit: "abc",
        reason: "dead",
        kind: "code",
        cwd: dir
      })
  )

/** Stores one small text file named `name` in `dir` (its content: the name and a newline). */
export const storeText = (dir: string, name: string) => storeFile(dir, name, `${name}\n`)

/** The retry log lines of one store operation (`list`, `purge`, ...). */
export const retriesOf = (logs: ReturnType<typeof captureLogs>, operation: string) =>
  logs.lines.filter((l) => l.includes(`retrying ${operation} `))

/**
 * When `cuttingRelay` cuts: past `serverBytes` from the server, or once the server has answered `replyTo` (sent after
 * `after`, when given, on the same connection: a COMMIT of one transaction, not of the client's setup); with `every`,
 * each connection at each such answer, not only the first.
 */
export type Cut =
  | { readonly serverBytes: number }
  | { readonly replyTo: string; readonly after?: string | undefined; readonly every?: boolean | undefined }

/**
 * A TCP relay to the server of `serverUrl` that drops the first connection, both ends at once and without a word from
 * the server (a network cut, a proxy restarting): once it has carried more than `serverBytes` from the server, or once
 * the server has answered the first statement holding `replyTo` (`answered` says when an answer is whole), that answer
 * swallowed: the statement ran, or committed, and the client never hears of it. Later connections pass, unless the cut
 * is at `every` such answer. Its URL is `url` with the relay's port.
 */
export const cuttingRelay = (
  url: string,
  serverUrl: string,
  defaultPort: number,
  cut: Cut,
  answered: (data: Buffer) => boolean = () => true
) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly cuts: () => number }>((resume) => {
      const target = new URL(serverUrl)
      let cuts = 0
      const relay = net.createServer((client) => {
        const server = net.connect(Number(target.port || defaultPort), target.hostname)
        let carried = 0
        let armed = false
        let ready = !("replyTo" in cut) || cut.after === undefined
        const every = "replyTo" in cut && cut.every === true
        const drop = () => {
          cuts++
          client.destroy()
          server.destroy()
        }
        client.on("error", () => {})
        server.on("error", () => {})
        client.on("data", (d: Buffer) => {
          if ("replyTo" in cut && cut.after !== undefined && d.includes(cut.after)) ready = true
          if ((cuts === 0 || every) && ready && "replyTo" in cut && d.includes(cut.replyTo)) armed = true
          server.write(d)
        })
        server.on("data", (d: Buffer) => {
          carried += d.length
          if (cuts > 0 && !every) return void client.write(d)
          if ("serverBytes" in cut && carried > cut.serverBytes) return drop()
          if (!armed) return void client.write(d)
          if (answered(d)) drop()
        })
        client.on("close", () => server.destroy())
        server.on("close", () => client.destroy())
      })
      relay.listen(0, "127.0.0.1", () => {
        const at = new URL(url)
        at.port = String((relay.address() as net.AddressInfo).port)
        resume(Effect.succeed(Object.assign(relay, { url: at.toString(), cuts: () => cuts })))
      })
    }),
    (relay) => Effect.sync(() => (relay as unknown as net.Server).close())
  )
