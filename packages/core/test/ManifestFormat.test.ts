import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ManifestFormat } from "../src/index.js"

const file = (name: string, text: string) => {
  const at = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-format-")), name)
  fs.writeFileSync(at, text)
  return at
}

describe("ManifestFormat.firstText and records", () => {
  it("reads the first non-blank line, never more than 1 MiB of it, past blank lines and a byte-order mark", () => {
    expect(ManifestFormat.firstText(file("a.json", "\n  \r\n\t [\n{}]\n"))).toBe("[")
    expect(ManifestFormat.firstText(file("b.jsonl", "\uFEFF{\"tombstone\":\"t\"}\n{}\n"))).toBe("{\"tombstone\":\"t\"}")
    // A compact manifest is one line: its start tells the format, the rest is streamed later.
    const compact = `[${"{\"tombstone\":\"3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f\",\"output\":\"a\"},".repeat(60_000)}{}]`
    const first = ManifestFormat.firstText(file("c.json", compact))
    expect(first.startsWith("[{\"tombstone\"")).toBe(true)
    expect(first.length).toBe(1024 * 1024)
    expect(ManifestFormat.firstText(file("d.json", " ".repeat(3_000_000) + "\n\n"))).toBe("")
  })

  it("gives no records for a file of blanks, whatever its format, without reading it whole", () => {
    for (const [name, format] of [["e.json", "json"], ["e.jsonl", "jsonl"]] as const) {
      const blanks = file(name, " \n".repeat(1_500_000))
      expect(Array.from(ManifestFormat.records(blanks, format, ManifestFormat.firstText(blanks))())).toEqual([])
    }
  })
})
