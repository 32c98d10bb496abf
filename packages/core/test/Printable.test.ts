import { describe, expect, it } from "@effect/vitest"
import { Printable } from "../src/index.js"

const hostile = "a\nb\t\u001b[2J\u0007\u007f\u009b2J\u0085\u2028\u2029z"

describe("Printable", () => {
  it("escape: every C0/C1 control, DEL and line separator as \\uXXXX; other text as it is", () => {
    expect(Printable.escape(hostile)).toBe(
      "a\\u000ab\\u0009\\u001b[2J\\u0007\\u007f\\u009b2J\\u0085\\u2028\\u2029z"
    )
    expect(Printable.escape("plain ✓ é 日本")).toBe("plain ✓ é 日本")
    // Bidirectional controls reorder what a terminal shows: `report\u202etxt.exe` read as `reportexe.txt`.
    expect(Printable.escape("report\u202etxt.exe \u200f\u2066x\u2069\u061c")).toBe(
      "report\\u202etxt.exe \\u200f\\u2066x\\u2069\\u061c"
    )
  })

  it("escapeLog: the same characters, with JSON's short forms where JSON has one", () => {
    expect(Printable.escapeLog(hostile)).toBe("a\\nb\\t\\u001b[2J\\u0007\\u007f\\u009b2J\\u0085\\u2028\\u2029z")
  })

  it("escapeJson: the same JSON value, no raw control left, the layout's line breaks kept", () => {
    const text = Printable.escapeJson(JSON.stringify({ path: hostile }, null, 2))
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/)
    expect(text.split("\n")).toHaveLength(3)
    expect(JSON.parse(text)).toEqual({ path: hostile })
  })
})
