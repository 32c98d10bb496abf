import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, ArchiveStore, RestoreTarget, Tombstone } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

const tombstone = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const stubText = Tombstone.render({
  path: "s.py",
  archivedBy: "a",
  reason: "dead",
  tombstone,
  sha256: "a".repeat(64),
  archivedAt: "",
  commit: "c"
})

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

  it("refuses a recorded path no store writes: into .git or .codex, holding a NUL byte, or naming a folder", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-target-"))
    const place = (recorded: string, allowOutside = false) =>
      RestoreTarget.recordedOutput({ tombstone, recorded, root, allowOutside })
    for (const recorded of [".git/hooks/post-checkout", "a/../.git/hooks/x", "sub/.codex/archive.sqlite", ".GIT/x"]) {
      const message = Either.getOrThrow(Either.flip(place(recorded))).message
      expect(message, recorded).toMatch(/goes into a \.(git|codex) folder, which no store archives; give an OUTPUT/i)
      expect(place(recorded, true)).toEqual(Either.right({ output: path.join(root, recorded), outside: true }))
    }
    for (const allowOutside of [false, true]) {
      expect(Either.getOrThrow(Either.flip(place("a\0b", allowOutside))).message).toBe(
        `tombstone ${tombstone}: recorded path "a\\u0000b" holds a NUL byte; give an OUTPUT`
      )
      // A million folders deep: placed, it overflowed the stack (or, at 100 MB, ran for minutes past 3 GB).
      const deep = `${"a/".repeat(1_000_000)}x`
      expect(Either.getOrThrow(Either.flip(place(deep, allowOutside))).message).toBe(
        `tombstone ${tombstone}: recorded path "${"a/".repeat(50)}"... (2000001 bytes) is ${
          Buffer.byteLength(path.join(root, deep))
        } bytes long, more than the 4095 Linux opens; give an OUTPUT`
      )
    }
    // A path naming a folder: `sub/` was written as a file `sub`, exit 0 (an attack review).
    for (const recorded of ["sub/", "sub/.", "a/b/..", ".", ""]) {
      for (const allowOutside of [false, true]) {
        expect(Either.getOrThrow(Either.flip(place(recorded, allowOutside))).message, recorded).toBe(
          `tombstone ${tombstone}: recorded path ${JSON.stringify(recorded)} names no file (it ends in '/', '.' or ` +
            "'..'); give an OUTPUT"
        )
      }
    }
    expect(place("sub/.x").pipe(Either.map((p) => p.output))).toEqual(Either.right(path.join(root, "sub/.x")))
    expect(place(".github/x.yml")).toEqual(Either.right({ output: path.join(root, ".github/x.yml"), outside: false }))
    // What bytes that are not UTF-8 read back as, from a text column: another name than the one stored.
    for (const recorded of ["dir/x\uFFFD.txt", "dir/x\ud800.txt"]) {
      expect(Either.getOrThrow(Either.flip(place(recorded, true))).message).toContain(
        "holds U+FFFD or half a surrogate pair, which may stand for bytes that are not UTF-8 (another name than the " +
          "one stored); give an OUTPUT"
      )
    }
  })

  it.effect("resolves a stub to its own tombstone and place; a mention of another id does not count", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-target-"))
      const file = path.join(dir, "s.py")
      const text = stubText
      fs.writeFileSync(file, text)
      // The stub's SHA-256 comes along: what is restored must be that content.
      expect(yield* RestoreTarget.fromArgument(file, undefined)).toEqual({
        tombstone,
        output: file,
        expected: { sha256: "a".repeat(64), from: `stub ${file}` },
        // Kept in the stub's folder as it really was when the stub was read.
        contained: { root: fs.realpathSync(dir), path: path.join(fs.realpathSync(dir), "s.py") }
      })
      expect(Tombstone.tombstoneOf(text)).toBe(tombstone)
      expect(Tombstone.tombstoneOf(`${text}# Tombstone: 0e7f6a52-1d3c-4b8a-9e2f-5a6b7c8d9e0f\n`)).toBeUndefined()
    }))

  it.effect("reads a stub once without following a link: a link (even to a stub), a FIFO or a large file is refused", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-target-"))
      const real = path.join(dir, "real.py")
      fs.writeFileSync(real, stubText)
      const link = path.join(dir, "link.py")
      fs.symlinkSync(real, link)
      const refused = yield* Effect.flip(RestoreTarget.fromArgument(link, undefined))
      expect(refused.message).toBe(
        `${link}: not a valid tombstone stub: not a stub file (a symbolic link; give the stub itself)`
      )
      const fifo = path.join(dir, "fifo")
      execFileSync("mkfifo", [fifo])
      expect((yield* Effect.flip(RestoreTarget.fromArgument(fifo, undefined))).message).toContain("not a regular file")
      const big = path.join(dir, "big")
      fs.writeFileSync(big, `${Tombstone.header}\n${"#".repeat(Tombstone.maxStubBytes)}`)
      expect((yield* Effect.flip(RestoreTarget.fromArgument(big, undefined))).message).toContain("too large")
      // A path through a file is no stub and no tombstone: the tombstone error, not a crash.
      expect((yield* Effect.flip(RestoreTarget.fromArgument(path.join(real, "x"), undefined)))._tag).toBe(
        "InvalidTombstone"
      )
    }))

  it("isStubFile and isStubOf follow no link and do not block on a FIFO (0 bytes: small enough to be a stub)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-stubfile-"))
    const real = path.join(dir, "real.py")
    fs.writeFileSync(real, stubText)
    const link = path.join(dir, "link.py")
    fs.symlinkSync(real, link)
    expect([Tombstone.isStubFile(real), Tombstone.isStubOf(real, tombstone)]).toEqual([true, true])
    expect([Tombstone.isStubFile(link, 0), Tombstone.isStubOf(link, tombstone, 0)]).toEqual([false, false])
    const fifo = path.join(dir, "fifo")
    execFileSync("mkfifo", [fifo])
    expect([Tombstone.isStubFile(fifo, 0), Tombstone.isStubOf(fifo, tombstone, 0)]).toEqual([false, false])
  })

  it("reads the SHA-256 an item's metadata records as the stub's is read: trimmed, any case; anything else is none", () => {
    const d = "ab".repeat(32)
    for (const given of [d, d.toUpperCase(), ` ${d}\n`, `\t${d}`]) {
      expect(ArchiveStore.recordedSha256({ sha256: given }), JSON.stringify(given)).toBe(d)
    }
    for (const given of [d.slice(1), `${d}0`, "", null, 7, undefined]) {
      expect(ArchiveStore.recordedSha256({ sha256: given }), JSON.stringify(given)).toBeUndefined()
    }
    expect(ArchiveStore.recordedSha256(null)).toBeUndefined()
  })

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

  it("refuses a purge whenever the metadata, as text or as a driver parsed it, cannot rule a hold out", () => {
    const t = "53ecc443-e163-4c65-a936-70ae8b593acf"
    const doubt = (metadata: unknown, column = false) => {
      const refusal = ArchiveStore.legalHoldRefusal(t, column, metadata)
      return refusal === undefined ? undefined : refusal.doubt ?? "held"
    }
    // The original's own encoding: the column, `"legal_hold": true` put back, `delete_after` kept in the metadata.
    expect(doubt(`{"delete_after":"2030-01-01","legal_hold":true}`, true)).toBe("held")
    expect(doubt(`{"delete_after":"2030-01-01","legal_hold":true}`)).toBe("held")
    expect(doubt(`{"compression":"zlib","delete_after":"2030-01-01","mime_type":"text/plain"}`)).toBeUndefined()
    expect(doubt(null)).toBeUndefined()
    expect(doubt({ legal_hold: false, legalHold: "off", "legal-hold": 0 })).toBeUndefined()
    expect(doubt({ Legal_Hold: true })).toBe("its metadata has 'Legal_Hold' (read as legal_hold) set to 'true'")
    expect(doubt({ LEGAL_HOLD: {} })).toBe("its metadata has 'LEGAL_HOLD' (read as legal_hold) set to '{}'")
    expect(doubt(`{ "legal_hold" :false , "legal_hold"\n:\t true}`)).toBe(
      "its metadata gives 'legal_hold' more than once"
    )
    expect(doubt(`{"a":{"legal_hold":false},"legal_hold":false}`)).toBeUndefined()
    expect(doubt("{")).toBe("its metadata is not readable JSON")
    expect(doubt("[]")).toBe("its metadata is not a JSON object")
    expect(doubt(JSON.stringify(JSON.stringify({ legal_hold: true })))).toBe("its metadata is not a JSON object")
    const buried = JSON.stringify({ n: JSON.stringify(JSON.stringify({ legalhold: "yes" })) })
    expect(doubt(buried)).toBe("its metadata has 'n.legalhold' (read as legal_hold) set to 'yes'")
    expect(doubt({ n: "{not json", m: "\"text\"", k: JSON.stringify({ legal_hold: "no" }) })).toBeUndefined()
    // A second attack review: holds nested in objects and arrays, other spellings, metadata stored as bytes, depth.
    expect(doubt(`{"retention":{"legal_hold":true}}`)).toBe(
      "its metadata has 'retention.legal_hold' (read as legal_hold) set to 'true'"
    )
    expect(doubt(`{"holds":[{"legal_hold":true}]}`)).toBe(
      "its metadata has 'holds.0.legal_hold' (read as legal_hold) set to 'true'"
    )
    for (const key of ["legal.hold", "\uFF2C\uFF25\uFF27\uFF21\uFF2C_HOLD", "legal_hold\u200B", "Legal Hold"]) {
      expect(doubt({ [key]: true }), key).toBe(`its metadata has '${key}' (read as legal_hold) set to 'true'`)
    }
    expect(doubt(new TextEncoder().encode(`{"legal_hold":true}`))).toBe("held")
    expect(doubt(new Uint8Array([0x7b, 0xff, 0x7d]))).toBe("its metadata is not readable text")
    expect(doubt(new TextEncoder().encode(`{"ticket":"OPS-1"}`))).toBeUndefined()
    const deep = `{"legal_hold":${"[".repeat(200_000)}${"]".repeat(200_000)}}`
    expect(doubt(deep)).toBe("legal_hold '[…]' in its metadata is not a boolean")
    expect(doubt(`{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}`)).toBe(
      "its metadata is nested more than 64 levels deep"
    )
  })
})

describe("RestoreTarget.outputOf (a single restore's output, as the CLI's restore asks for it)", () => {
  it.effect("a given output as given; else the recorded path under the root; escaping is OutsideRoot; unknown ids fail", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-outputof-"))
      fs.mkdirSync(path.join(root, "docs"))
      fs.writeFileSync(path.join(root, "docs/a.md"), "# a\n")
      const archiver = yield* Archiver.Archiver
      const report = yield* archiver.store(["docs/a.md"], {
        repo: "acme/shop",
        actor: "tester",
        commit: "c0ffee",
        reason: "dead",
        kind: "doc",
        cwd: root
      })
      const stored = report.stored[0]!
      expect(stored.path).toBe("docs/a.md")
      const outputOf = (given: string | undefined, at: string, allowOutside = false) =>
        RestoreTarget.outputOf({ tombstone: stored.tombstone, given, root: at, allowOutside })
      expect(yield* outputOf("x/b.md", root)).toBe(path.resolve("x/b.md"))
      expect(yield* outputOf(undefined, root)).toBe(path.join(root, "docs/a.md"))
      // The recorded path is relative: under another root it lands there, never above it.
      const other = fs.mkdtempSync(path.join(os.tmpdir(), "codex-outputof-"))
      expect(yield* outputOf(undefined, other)).toBe(path.join(other, "docs/a.md"))
      // A file stored from outside the working folder is recorded by its absolute path: restoring it there needs consent.
      const away = fs.mkdtempSync(path.join(os.tmpdir(), "codex-outputof-away-"))
      fs.writeFileSync(path.join(away, "z.md"), "# z\n")
      const outside = (yield* archiver.store([path.join(away, "z.md")], {
        repo: "acme/shop",
        actor: "tester",
        commit: "c0ffee",
        reason: "dead",
        kind: "doc",
        cwd: root
      })).stored[0]!
      expect(outside.path).toBe(path.join(away, "z.md"))
      const refused = yield* Effect.flip(
        RestoreTarget.outputOf({ tombstone: outside.tombstone, given: undefined, root, allowOutside: false })
      )
      expect(refused._tag).toBe("OutsideRoot")
      expect(refused.message).toContain(JSON.stringify(path.join(away, "z.md")))
      expect(
        yield* RestoreTarget.outputOf({ tombstone: outside.tombstone, given: undefined, root, allowOutside: true })
      ).toBe(path.join(away, "z.md"))
      const missing = yield* Effect.flip(
        RestoreTarget.outputOf({
          tombstone: "0e7f6a52-1d3c-4b8a-9e2f-5a6b7c8d9e0f",
          given: undefined,
          root,
          allowOutside: false
        })
      )
      expect(missing._tag).toBe("TombstoneNotFound")
    }).pipe(Effect.provide(InMemoryArchive.services())))
})
