import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Tombstone } from "../src/index.js"

const stub: Tombstone.Stub = {
  path: "src/old dir/mod.py",
  archivedBy: "alice",
  reason: "dead",
  tombstone: "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f",
  sha256: "a".repeat(64),
  archivedAt: "2026-01-02T03:04:05Z",
  commit: "c0ffee"
}

describe("Tombstone", () => {
  it("makes canonical UUID v4 ids", () => {
    const id = Tombstone.make()
    expect(Tombstone.isTombstoneId(id)).toBe(true)
    expect(id[14]).toBe("4")
    expect(Tombstone.isTombstoneId("3F2C1A9E-8B7D-4C6E-9F00-1A2B3C4D5E6F")).toBe(false)
  })

  it("renders the spec's stub, naming our restore command, ending with a newline", () => {
    const text = Tombstone.render(stub)
    const lines = text.split("\n")
    expect(lines[0]).toBe("# TOMBSTONE ARCHIVE STUB — DO NOT DELETE")
    expect(lines).toContain("# Tombstone: 3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f")
    expect(lines).toContain(`#   codex archive restore ${stub.tombstone} 'src/old dir/mod.py'`)
    expect(text.endsWith("#\n# NOTE: This stub intentionally contains no functional code.\n")).toBe(true)
  })

  it.effect("parses its own stubs and the original tool's (including the misspelt header)", () =>
    Effect.gen(function*() {
      expect(yield* Tombstone.parse(Tombstone.render(stub), "s")).toEqual(stub)
      const original = Tombstone.render(stub).replace("TOMBSTONE ARCHIVE", "TOMBSONE ARCHIVE").replace(/#   codex.*/, `#   python -m codex.cli archive restore ${stub.tombstone} --out x`)
      expect((yield* Tombstone.parse(original, "s")).tombstone).toBe(stub.tombstone)
    }))

  it.effect("names the file and the problem of a malformed stub", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(Tombstone.parse("hello", "a/b.txt"))
      expect(missing.message).toBe("a/b.txt: not a valid tombstone stub: missing the '# TOMBSTONE ARCHIVE STUB' header")
      const noSha = yield* Effect.flip(Tombstone.parse(Tombstone.render(stub).replace(/# SHA256: .*/, "# SHA256: xyz"), "s.py"))
      expect(noSha.message).toContain("no valid '# SHA256:' line")
    }))
})
