import { Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { dialect } from "../src/MariadbDialect.js"

describe("MariadbDialect", () => {
  const transient = Retry.classifier(dialect.transient)
  const cases: ReadonlyArray<readonly [string, unknown, boolean]> = [
    ["deadlock", { code: "ER_LOCK_DEADLOCK", errno: 1213 }, true],
    ["lock wait timeout", { errno: 1205 }, true],
    ["lost connection", { code: "PROTOCOL_CONNECTION_LOST" }, true],
    ["nested as the SqlError cause", { _tag: "SqlError", cause: { errno: 2013 } }, true],
    ["a duplicate key", { code: "ER_DUP_ENTRY", errno: 1062 }, false],
    ["a PostgreSQL deadlock is not ours", { code: "40P01" }, false]
  ]
  for (const [name, error, expected] of cases) {
    it(`${expected ? "transient" : "permanent"}: ${name}`, () => expect(transient(error)).toBe(expected))
  }
  it("a missing database is errno 1049; timestamps lose their T and Z", () => {
    expect(dialect.missingDatabase({ cause: { errno: 1049 } })).toBe(true)
    expect(dialect.missingDatabase({ cause: { errno: 1045 } })).toBe(false)
    expect(dialect.timestamp("2026-01-02T03:04:05Z")).toBe("2026-01-02 03:04:05")
  })
})
