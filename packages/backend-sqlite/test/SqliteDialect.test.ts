import { Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { dialect } from "../src/SqliteDialect.js"

describe("SqliteDialect", () => {
  const transient = Retry.classifier(dialect.transient)
  const cases: ReadonlyArray<readonly [string, unknown, boolean]> = [
    ["locked", { code: "SQLITE_LOCKED" }, true],
    ["busy, nested as the SqlError cause", { _tag: "SqlError", cause: { code: "SQLITE_BUSY" } }, true],
    ["no such table", { code: "SQLITE_ERROR", message: "no such table: artifact" }, false],
    ["a PostgreSQL deadlock is not ours", { code: "40P01" }, false]
  ]
  for (const [name, error, expected] of cases) {
    it(`${expected ? "transient" : "permanent"}: ${name}`, () => expect(transient(error)).toBe(expected))
  }
})
