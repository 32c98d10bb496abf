import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Tombstone } from "../src/index.js"

const stub: typeof Tombstone.Stub.Encoded = {
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
      const original = Tombstone.render(stub).replace("TOMBSTONE ARCHIVE", "TOMBSONE ARCHIVE").replace(
        /# {3}codex.*/,
        `#   python -m codex.cli archive restore ${stub.tombstone} --out x`
      )
      expect((yield* Tombstone.parse(original, "s")).tombstone).toBe(stub.tombstone)
    }))

  it("counts the lines a stub file holds besides the stub: none for ours or the original's, however they end", () => {
    const ours = Tombstone.render(stub)
    const original = ours.replace("TOMBSTONE ARCHIVE", "TOMBSONE ARCHIVE").replace(
      /# {3}codex.*/,
      `#   python -m codex.cli archive restore ${stub.tombstone} --out src/old dir/mod.py`
    )
    for (
      const text of [
        ours,
        original,
        ours.trimEnd(),
        `${ours}\n\n`,
        ours.replace(/\n/g, "\r\n"),
        ours.replace(/\n/g, "  \n")
      ]
    ) {
      expect(Tombstone.linesBesidesStub(text)).toBe(0)
    }
    expect(Tombstone.linesBesidesStub(`${ours}def keep(): pass\n`)).toBe(1)
    expect(Tombstone.linesBesidesStub(`${ours}\n# a note\nx = 1`)).toBe(2)
    expect(Tombstone.linesBesidesStub(`import os\n${ours}`)).toBe(1)
    // A stub line given twice is one line more than a stub holds.
    expect(Tombstone.linesBesidesStub(`${ours}# NOTE: This stub intentionally contains no functional code.\n`)).toBe(1)
    // Text added to the restore line is not part of it; nor is a restore line for another item or path.
    const command = /^#.*archive restore.*$/m
    for (
      const edited of [
        ours.replace(command, (line) => `${line} && echo NOTES`),
        ours.replace(command, (line) => line.replace(stub.tombstone, "4f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f")),
        original.replace(command, (line) => `${line}; rm -rf ~`)
      ]
    ) {
      expect(Tombstone.linesBesidesStub(edited), edited.match(command)?.[0]).toBe(1)
    }
  })

  it.effect("names the file and the problem of a malformed stub", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(Tombstone.parse("hello", "a/b.txt"))
      expect(missing.message).toBe("a/b.txt: not a valid tombstone stub: missing the '# TOMBSTONE ARCHIVE STUB' header")
      const noSha = yield* Effect.flip(
        Tombstone.parse(Tombstone.render(stub).replace(/# SHA256: .*/, "# SHA256: xyz"), "s.py")
      )
      expect(noSha.message).toContain("no valid '# SHA256:' line")
    }))

  it.effect("encodes names with control characters, so a newline cannot inject a field; plain names stay as is", () =>
    Effect.gen(function*() {
      const other = "0e7f6a52-1d3c-4b8a-9e2f-5a6b7c8d9e0f"
      const hostile = {
        ...stub,
        path: `evil\n# Tombstone: ${other}\r\u2028\u0085"q"\\`,
        archivedBy: "mallory\n# SHA256: x"
      }
      const text = Tombstone.render(hostile)
      // Still the spec's 14 lines: nothing the names held became a line of its own.
      expect(text.split(/\r?\n/)).toHaveLength(14)
      expect(text).not.toMatch(/[\r\u2028\u0085]/)
      expect(text).toContain(`# File: "evil\\n# Tombstone: ${other}\\r\\u2028\\u0085\\"q\\"\\\\"`)
      expect(text).toContain(`#   codex archive restore ${stub.tombstone} $'evil\\u000a# Tombstone: ${other}`)
      expect(yield* Tombstone.parse(text, "s")).toEqual(hostile)
      // Plain names (and one that merely looks quoted) round-trip; plain ones are written exactly as before.
      expect(Tombstone.render(stub)).toContain("# File: src/old dir/mod.py\n")
      for (const path of ["\"quoted\"", " lead", "trail ", "tab\there", "ünï/日本.txt", "back\\slash"]) {
        expect((yield* Tombstone.parse(Tombstone.render({ ...stub, path }), "s")).path).toBe(path)
      }
    }))

  it.effect("refuses a stub whose fields repeat, conflict or hold control characters, naming the field", () =>
    Effect.gen(function*() {
      const text = Tombstone.render(stub)
      const other = "0e7f6a52-1d3c-4b8a-9e2f-5a6b7c8d9e0f"
      // What the old renderer wrote for a name holding "\n# Tombstone: <other>": the first Tombstone line used to win.
      const injected = text.replace("# File: src/old dir/mod.py", `# File: x\n# Tombstone: ${other}`)
      const repeated = yield* Effect.flip(Tombstone.parse(injected, "a/x"))
      expect(repeated.message).toBe("a/x: not a valid tombstone stub: field 'Tombstone' appears more than once")
      const secondSha = text.replace("# Commit:", `# SHA256: ${"b".repeat(64)}\n# Commit:`)
      const twoShas = yield* Effect.flip(Tombstone.parse(secondSha, "s"))
      expect(twoShas.message).toContain("field 'SHA256' appears more than once")
      const otherCommand = text.replace(`restore ${stub.tombstone}`, `restore ${other}`)
      const conflict = yield* Effect.flip(Tombstone.parse(otherCommand, "s"))
      expect(conflict.message).toContain(`field 'To restore' names tombstone ${other}, not ${stub.tombstone}`)
      const cr = yield* Effect.flip(Tombstone.parse(text.replace("# File: src/old", "# File: src/\rold"), "s"))
      expect(cr.message).toContain("field 'File' contains a control character")
      const badEscape = text.replace("# File: src/old dir/mod.py", "# File: \"a\\q\"")
      const badQuote = yield* Effect.flip(Tombstone.parse(badEscape, "s"))
      expect(badQuote.message).toContain("field 'File' is not a valid quoted string")
      // CRLF stubs (a checkout on Windows) and the original's restore line still parse.
      expect((yield* Tombstone.parse(text.replace(/\n/g, "\r\n"), "s")).tombstone).toBe(stub.tombstone)
    }))
})

describe("Tombstone stubs with hostile fields", () => {
  const text = Tombstone.render(stub)
  const refused = (from: string, to: string) =>
    Effect.map(Effect.flip(Tombstone.parse(text.replace(from, to), "tree/evil.py")), (error) => error.message)

  it.effect("an id with a path in it, or a digest of the wrong length, is refused naming the stub and the field", () =>
    Effect.gen(function*() {
      expect(yield* refused(`# Tombstone: ${stub.tombstone}`, `# Tombstone: ../${stub.tombstone}`)).toBe(
        `tree/evil.py: not a valid tombstone stub: tombstone '../${stub.tombstone}' is not a UUID`
      )
      expect(yield* refused(`# Tombstone: ${stub.tombstone}`, "# Tombstone:  ")).toBe(
        "tree/evil.py: not a valid tombstone stub: no '# Tombstone:' line"
      )
      for (
        const digest of ["a".repeat(63), "a".repeat(65), "g".repeat(64), `"${"a".repeat(32)}\\n${"a".repeat(32)}"`]
      ) {
        expect(yield* refused(`# SHA256: ${stub.sha256}`, `# SHA256: ${digest}`)).toBe(
          "tree/evil.py: not a valid tombstone stub: no valid '# SHA256:' line"
        )
      }
    }))

  it.effect("a quoted id is decoded like a plain one; an upper-case digest is read as its lower-case digest", () =>
    Effect.gen(function*() {
      const quoted = yield* Tombstone.parse(
        text.replace(`# Tombstone: ${stub.tombstone}`, `# Tombstone: "${stub.tombstone}"`),
        "s"
      )
      expect(quoted.tombstone).toBe(stub.tombstone)
      const upper = yield* Tombstone.parse(text.replace(stub.sha256, stub.sha256.toUpperCase()), "s")
      expect(upper.sha256).toBe(stub.sha256)
    }))

  it.effect("a newline quoted into an id, or a value longer than a stub, is refused naming the field", () =>
    Effect.gen(function*() {
      expect(yield* refused(`# Tombstone: ${stub.tombstone}`, `# Tombstone: "${stub.tombstone}\\n# X"`)).toMatch(
        /^tree\/evil\.py: not a valid tombstone stub: tombstone '.*' is not a UUID$/s
      )
      const long = yield* refused("# Commit: c0ffee", `# Commit: ${"c".repeat(Tombstone.maxStubBytes + 1)}`)
      expect(long).toBe(
        "tree/evil.py: not a valid tombstone stub: field 'Commit' is longer than a stub (4096 characters)"
      )
      const nul = yield* refused("# Reason: dead", "# Reason: de\u0000ad")
      expect(nul).toBe("tree/evil.py: not a valid tombstone stub: field 'Reason' contains a control character")
    }))
})
