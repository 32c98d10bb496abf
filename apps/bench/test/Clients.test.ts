/**
 * Many clients on one server archive, at CI scale: 4 concurrent CLI processes per server store content shared by all
 * of them (writers race on the same artifacts, a chunked one among them) and their own, restore items one by one and
 * batch-restore their manifests. Needs the CLI bundle and the real PostgreSQL and MariaDB servers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Backends from "../src/Backends.js"
import * as Clients from "../src/Clients.js"

const servers = {
  postgres: process.env.CODEX_TEST_PG_URL || Backends.defaultUrls.postgres,
  mariadb: process.env.CODEX_TEST_MARIADB_URL || Backends.defaultUrls.mariadb
}
const cli = path.resolve(import.meta.dirname, "../../cli/dist/codex.mjs")

describe("clients", () => {
  for (const backend of ["postgres", "mariadb"] as const) {
    it.effect(
      `${backend}: 4 concurrent CLI processes: no failure, exact deduplication, identical bytes, complete evidence`,
      () =>
        Effect.gen(function*() {
          expect(fs.existsSync(cli), `${cli} is missing: bundle the CLI first`).toBe(true)
          const settings: Clients.Settings = {
            clients: 4,
            rounds: 1,
            files: 8,
            backends: [backend],
            servers,
            cli,
            tmp: os.tmpdir()
          }
          const outcome = yield* Clients.runBackend(settings, backend).pipe(
            // An unreachable server fails the test naming it (Backends.fresh says which URL and why).
            Effect.catchTag("ClientsFailed", (e) => Effect.die(new Error(e.message)))
          )
          expect(outcome.problems).toEqual([])
          // 4 clients × 8 files: 4 shared by all, 4 of each client's own.
          expect(outcome.storedItems).toBe(32)
          expect(outcome.distinctContent).toBe(4 + 4 * 4)
          expect(outcome.artifacts).toBe(outcome.distinctContent)
          // Each client: 3 single restores and its 8 files from the manifest, every one compared with its source.
          expect(outcome.restoredFiles).toBe(4 * (3 + 8))
          expect(outcome.latencies.map((l) => [l.operation, l.count])).toEqual([["store", 4], ["restore", 12], [
            "batch-restore",
            4
          ]])
        }),
      { timeout: 300_000 }
    )
  }
})
