import { describe, expect, it } from "@effect/vitest"
import { Health } from "../src/index.js"

/** A report whose failed check carries what a hostile archive row put in it (a codec name, a row id). */
const report = (detail: string): Health.Report => ({
  ok: false,
  backend: "sqlite",
  url: "sqlite:///./.codex/archive.sqlite",
  schema_version: 5,
  expected_schema_version: 5,
  items_retrievable: 1,
  checks: [{ name: "sample", ok: false, detail, ms: 1 }]
})

describe("Health.renderText", () => {
  it("shows archive text escaped: no ESC, BEL, C1 control or line break reaches the terminal", () => {
    const text = Health.renderText(report("codec 'zs\u001b]0;PWN\u0007\u001b[2Jtd', row t\u009b2J\nStatus: ✓ OK"))
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/)
    const lines = text.split("\n")
    expect(lines).toHaveLength(6)
    expect(lines[3]).toMatch(/ms {2}codec 'zs\\u001b\]0;PWN\\u0007\\u001b\[2Jtd', row t\\u009b2J\\u000aStatus: ✓ OK$/)
    expect(lines[4]).toBe(
      "Status: ✗ FAILED (sample: codec 'zs\\u001b]0;PWN\\u0007\\u001b[2Jtd', row t\\u009b2J\\u000aStatus: ✓ OK)"
    )
  })
})
