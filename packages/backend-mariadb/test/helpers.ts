/** Test wiring: a fresh MariaDB database per test (dropped afterwards) on the server of `CODEX_TEST_MARIADB_URL`. */
import * as Fixtures from "@codex-archive/conformance/Fixtures"
import { Redact } from "@codex-archive/core"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { MariadbArchive, MariadbClient, MariadbSchema } from "../src/index.js"

export const serverUrl = process.env.CODEX_TEST_MARIADB_URL || "mysql://root@127.0.0.1:3306/test"

/** A client on the server's own database, for creating, inspecting and dropping test databases. */
export const admin = (url = serverUrl) =>
  Layer.build(MariadbClient.layer(MariadbArchive.parseUrl(url, 2)!)).pipe(
    Effect.map(Context.get(SqlClient.SqlClient)),
    Effect.mapError((e) =>
      new Fixtures.ServerUnreachable({
        server: `MariaDB ${Redact.url(url)}`,
        variable: "CODEX_TEST_MARIADB_URL",
        detail: String((e.cause as Error | undefined)?.message ?? e.message)
      })
    )
  )

/** The archive over its own pool, that pool shared with the test (as a host may share its client). */
export const withSql = (options: MariadbArchive.Options) =>
  Layer.provideMerge(
    MariadbArchive.layerFromClient({ create: options.create, location: Redact.url(String(options.url)) }),
    MariadbArchive.client(options)
  )

export const fresh = Effect.flatMap(admin(), (sql) => Fixtures.freshDatabase(sql, serverUrl))

export const backend: Fixtures.Backend = {
  name: "mariadb",
  fresh,
  layer: (options) => withSql({ ...options, poolSize: 4 }),
  migrations: MariadbSchema.migrations
}

/** `Fixtures.cuttingRelay` to the test server: MariaDB answers a statement (an OK packet) in one piece. */
export const cuttingRelay = (url: string, cut: Fixtures.Cut) => Fixtures.cuttingRelay(url, serverUrl, 3306, cut)
