import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ArchiveStore, Archiver, RestoreTarget, Tombstone } from "../src/index.js"

const tombstone = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"

describe("RestoreTarget", () => {
  it("keeps a recorded path under the root; absolute, escaping or symlinked-out paths need allowOutside", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-target-"))
    const away = fs.mkdtempSync(path.join(os.tmpdir(), "codex-away-"))
    fs.symlinkSync(away, path.join(root, "link"))
    const place = (recorded: string, allowOutside = false) =>
      RestoreTarget.recordedOutput({ tombstone, recorded, root, allowOutside })
    expect(place("a/b.txt")).toEqual(Either.right({ output: path.join(root, "a/b.txt"), outside: false }))
    expect(place("a/../b.txt")).toEqual(Either.right({ output: path.join(root, "b.txt"), outside: false }))
    for (const recorded of ["../x", "/etc/x", "link/x", "a/../../x", ".."]) {
      const refused = Either.flip(place(recorded))
      expect(Either.getOrThrow(refused).message, recorded).toContain(`recorded path ${JSON.stringify(recorded)}`)
    }
    expect(place("link/x", true)).toEqual(Either.right({ output: path.join(root, "link/x"), outside: true }))
  })

  it.effect("resolves a stub to its own tombstone and place; a mention of another id does not count", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-target-"))
      const file = path.join(dir, "s.py")
      const text = Tombstone.render({
        path: "s.py", archivedBy: "a", reason: "dead", tombstone, sha256: "a".repeat(64), archivedAt: "", commit: "c"
      })
      fs.writeFileSync(file, text)
      expect(yield* RestoreTarget.fromArgument(file, undefined)).toEqual({ tombstone, output: file })
      expect(Tombstone.tombstoneOf(text)).toBe(tombstone)
      expect(Tombstone.tombstoneOf(`${text}# Tombstone: 0e7f6a52-1d3c-4b8a-9e2f-5a6b7c8d9e0f\n`)).toBeUndefined()
    }))

  it("reads legal_hold as purge does, and names what is wrong with reserved or non-boolean metadata", () => {
    for (const v of [true, 1, "1", " TRUE ", "yes", "On"]) expect(ArchiveStore.legalHoldValue(v)).toBe(true)
    for (const v of [false, 0, "0", "false", "No", "OFF"]) expect(ArchiveStore.legalHoldValue(v)).toBe(false)
    for (const v of ["maybe", "", null, {}, "2"]) expect(ArchiveStore.legalHoldValue(v)).toBeUndefined()
    expect(Archiver.metadataProblem("legal_hold", "maybe")).toContain("legal_hold 'maybe' is not a boolean")
    for (const key of Archiver.reservedMetadataKeys) {
      expect(Archiver.metadataProblem(key, "1")).toContain(`'${key}' is reserved`)
    }
    expect(Archiver.metadataProblem("ticket", "OPS-1")).toBeUndefined()
  })
})
