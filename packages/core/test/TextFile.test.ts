import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as TextFile from "../src/internal/TextFile.js"

const file = (text: string) => {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-text-")), "t.txt")
  fs.writeFileSync(f, text)
  return f
}

describe("TextFile.lines", () => {
  it("gives every line whole, one longer than several pieces, and breaks that fall on a piece's edge", () => {
    const MiB = 1 << 20
    const long = "x".repeat(3 * MiB + 17)
    // The first line ends exactly at the first piece's end; the long one spans four pieces.
    const first = "a".repeat(MiB - 1)
    const text = `${first}\n${long}\nshort\n\n${"é".repeat(10)}`
    expect([...TextFile.lines(file(text))]).toEqual([first, long, "short", "", "é".repeat(10)])
    expect([...TextFile.lines(file("one\n"))]).toEqual(["one", ""])
    expect([...TextFile.lines(file(""))]).toEqual([""])
  })
})
