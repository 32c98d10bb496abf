import { ServerSuite } from "@codex-archive/conformance"
import { Effect } from "effect"
import * as path from "node:path"
import { admin, backend, cuttingRelay } from "./helpers.js"

ServerSuite.serverSuite(backend, {
  worker: path.join(__dirname, "worker.ts"),
  // This server trusts 127.0.0.1 (STACK.md), so a wrong password alone passes: an unknown role is what it rejects.
  rejectedUser: "codex_nobody",
  // One statement records a unit.
  cutAfterRecord: (url, every) => cuttingRelay(url, { replyTo: "WITH restored AS", every }),
  // EXCLUSIVE lets plain SELECTs through and makes every INSERT into artifact wait for the commit.
  blockArtifactInserts: (url) =>
    Effect.gen(function*() {
      const sql = yield* admin(url)
      const conn = yield* sql.reserve
      yield* conn.executeRaw("BEGIN", [])
      yield* conn.executeRaw("LOCK TABLE artifact IN EXCLUSIVE MODE", [])
      const database = new URL(url).pathname.slice(1)
      return {
        waiting: Effect.map(
          sql<
            { n: string }
          >`SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = ${database} AND wait_event_type = 'Lock'`,
          (rows) => Number(rows[0]!.n)
        ),
        release: conn.executeRaw("COMMIT", [])
      }
    })
})
