import { ServerSuite } from "@codex-archive/conformance"
import { Effect } from "effect"
import * as path from "node:path"
import { admin, backend, cuttingRelay } from "./helpers.js"

ServerSuite.serverSuite(backend, {
  worker: path.join(__dirname, "worker.ts"),
  // A transaction records a unit: its COMMIT (not one of the client's setup) is the one cut.
  cutAfterRecord: (url, every) => cuttingRelay(url, { replyTo: "COMMIT", after: "INSERT INTO event", every }),
  // A READ table lock lets other sessions read artifact and makes their inserts wait until UNLOCK TABLES.
  blockArtifactInserts: (url) =>
    Effect.gen(function*() {
      const sql = yield* admin(url)
      const conn = yield* sql.reserve
      yield* conn.executeUnprepared("LOCK TABLES artifact READ", [], undefined)
      const database = new URL(url).pathname.slice(1)
      return {
        waiting: Effect.map(
          sql<
            { n: string }
          >`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ${database} AND STATE LIKE 'Waiting for table%'`,
          (rows) => Number(rows[0]!.n)
        ),
        release: conn.executeUnprepared("UNLOCK TABLES", [], undefined)
      }
    })
})
