import { Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { dialect } from "../src/PgDialect.js"

describe("PgDialect", () => {
  const transient = Retry.classifier(dialect.transient)
  const cases: ReadonlyArray<readonly [string, unknown, boolean]> = [
    ["serialization failure", { code: "40001" }, true],
    ["deadlock", { code: "40P01" }, true],
    ["admin shutdown", { code: "57P01" }, true],
    ["cannot connect now", { code: "57P03" }, true],
    ["nested as the SqlError cause", { _tag: "SqlError", cause: { code: "08006" } }, true],
    ["a syntax error", { code: "42601", message: "syntax error at or near" }, false],
    ["a MySQL deadlock is not ours", { code: "ER_LOCK_DEADLOCK" }, false]
  ]
  for (const [name, error, expected] of cases) {
    it(`${expected ? "transient" : "permanent"}: ${name}`, () => expect(transient(error)).toBe(expected))
  }
  it("a missing database is 3D000; UUID columns take only UUID text", () => {
    expect(dialect.missingDatabase({ cause: { code: "3D000" } })).toBe(true)
    expect(dialect.missingDatabase({ cause: { code: "28P01" } })).toBe(false)
    expect(dialect.acceptsId("0196f3a0-0000-7000-8000-000000000000")).toBe(true)
    expect(dialect.acceptsId("not-a-uuid")).toBe(false)
  })
})
