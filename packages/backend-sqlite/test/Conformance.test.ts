import { Conformance, Fixtures, Measure } from "@codex-archive/conformance"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqliteSchema } from "../src/index.js"
import { withSql } from "./helpers.js"

const backend: Fixtures.Backend = {
  name: "sqlite",
  // A new file in a new folder; the folder goes when the test ends.
  fresh: Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fixtures.tempDir("codex-sqlite-")),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => `sqlite:///${path.join(dir, "archive.sqlite")}`
  ),
  layer: withSql,
  migrations: SqliteSchema.migrations
}

Conformance.suite(backend)
Measure.measureSuite(backend)
