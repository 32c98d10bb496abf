/**
 * File names that are not valid UTF-8: Node reads them back with U+FFFD in place of the bad bytes, a path that reaches
 * nothing. A store reports such a file as skipped, naming its bytes; a stub tree holding a stub (or a folder) by such a
 * name is refused, where it used to pass the stub over and end with exit 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, Manifest, StubTree, Tombstone, Walk } from "../src/index.js"

const tempDir = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-names-")))
/** Creates `name` (bytes) in `dir` as a file holding `text`, or as a folder. */
const make = (dir: string, name: Buffer, text?: string) => {
  const full = Buffer.concat([Buffer.from(dir + path.sep), name])
  if (text === undefined) fs.mkdirSync(full)
  else fs.writeFileSync(full, text)
}
const bad = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74]) // "bad\xff.txt"
const stub = (file: string) =>
  Tombstone.render({
    path: file,
    archivedBy: "a",
    reason: "dead",
    tombstone: "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f",
    sha256: "a".repeat(64),
    archivedAt: "2026-01-01T00:00:00Z",
    commit: "c"
  })

describe("names that are not valid UTF-8", () => {
  it("Walk.undecodable finds them by their bytes; a real U+FFFD in a name is a name like any other", () => {
    const dir = tempDir()
    make(dir, bad, "x")
    make(dir, Buffer.from([0x62, 0x61, 0x64, 0xfe, 0x2e, 0x74, 0x78, 0x74]), "y")
    fs.writeFileSync(path.join(dir, "real\uFFFD.txt"), "z")
    fs.writeFileSync(path.join(dir, "plain.txt"), "p")
    const found = Walk.undecodable(dir, Walk.entries(dir))
    expect([...found.keys()]).toEqual(["bad\uFFFD.txt"])
    expect(found.get("bad\uFFFD.txt")!.map(Walk.showBytes).sort()).toEqual(["bad\\xfe.txt", "bad\\xff.txt"])
    expect(Walk.undecodable(dir, Walk.entries(dir).filter((e) => e.name === "plain.txt")).size).toBe(0)
  })

  it.effect("a store skips such a file, naming its bytes and why, and stores the rest", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, "t"))
      make(path.join(dir, "t"), bad, "file one")
      fs.writeFileSync(path.join(dir, "t/two.txt"), "file two")
      const { files, skipped } = yield* Archiver.collect(["t"], dir)
      expect(files.map((f) => f.recorded)).toEqual(["t/two.txt"])
      expect(skipped).toEqual([{ path: "t/bad\\xff.txt", reason: expect.stringContaining("not valid UTF-8") }])
    }))

  it.effect("a real U+FFFD name beside a name that reads back as it is stored, and restored from a stub tree", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, "t"))
      make(path.join(dir, "t"), Buffer.from([0x78, 0xff, 0x2e, 0x74, 0x78, 0x74]), "bad bytes") // x\xff.txt
      fs.writeFileSync(path.join(dir, "t/x\uFFFD.txt"), "a real U+FFFD")
      const { files, skipped } = yield* Archiver.collect(["t"], dir)
      expect(files.map((f) => f.recorded)).toEqual(["t/x\uFFFD.txt"])
      expect(skipped).toEqual([{ path: "t/x\\xff.txt", reason: expect.stringContaining("not valid UTF-8") }])
      // In a stub tree: the real name's stub is restored, the other (no stub) passed over, in either order of types.
      const tree = tempDir()
      fs.writeFileSync(path.join(tree, "x\uFFFD.txt"), stub("x\uFFFD.txt"))
      make(tree, Buffer.from([0x78, 0xff, 0x2e, 0x74, 0x78, 0x74]), "not a stub")
      const source = yield* StubTree.open(tree, { defaultActor: "a" })
      expect(Array.from(source.entries()).map((e) => path.basename(e.output))).toEqual(["x\uFFFD.txt"])
    }))

  it.effect("a stub tree holding a stub by such a name is refused, naming it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      make(dir, bad, stub("bad.txt"))
      fs.writeFileSync(path.join(dir, "two.txt"), stub("two.txt").replace("3f2c1a9e", "4f2c1a9e"))
      const error = yield* Effect.flip(StubTree.open(dir, { defaultActor: "a" }))
      expect(error.message).toBe(
        `stub folder ${dir}: ${dir}/bad\\xff.txt: a stub whose name is not valid UTF-8 cannot be restored in place ` +
          "(rename it)"
      )
    }))

  it.effect("a folder by such a name is refused too; a file by such a name that is no stub is passed over", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.writeFileSync(path.join(dir, "two.txt"), stub("two.txt"))
      make(dir, bad, "not a stub")
      const source = yield* StubTree.open(dir, { defaultActor: "a" })
      expect(Array.from(source.entries()).map((e) => path.basename(e.output))).toEqual(["two.txt"])
      make(dir, Buffer.from([0x64, 0xff]))
      const error = yield* Effect.flip(StubTree.open(dir, { defaultActor: "a" }))
      expect(error.message).toContain(`${dir}/d\\xff: a folder whose name is not valid UTF-8`)
    }))

  it.effect("a stub tree or a manifest's output reached through a link to such a folder is refused, naming its bytes", () =>
    Effect.gen(function*() {
      // Read as a string the real path holds U+FFFD, another folder: every stub failed, each said to escape its folder.
      const dir = tempDir()
      make(dir, Buffer.from([0xff]))
      const real = Buffer.concat([Buffer.from(dir + "/"), Buffer.from([0xff])])
      fs.writeFileSync(Buffer.concat([real, Buffer.from("/a.txt")]), stub("a.txt"))
      fs.symlinkSync(real, path.join(dir, "ok"))
      const error = yield* Effect.flip(StubTree.open(path.join(dir, "ok"), { defaultActor: "a" }))
      expect(error.message).toBe(
        `stub folder ${dir}/ok: its real path '${dir}/\\xff' is not UTF-8, which Node.js reads as another folder; no ` +
          "stub in it can be restored in place (rename that folder)"
      )
      const manifest = path.join(dir, "m.json")
      fs.writeFileSync(
        manifest,
        JSON.stringify([{ tombstone: "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f", output: "ok/new/b.txt" }])
      )
      const refused = yield* Effect.flip(Manifest.load(manifest, { defaultActor: "a" }))
      expect(refused.message).toContain(
        `output 'ok/new/b.txt' lies in a folder whose real path '${dir}/\\xff' is not UTF-8, which Node.js reads as ` +
          "another folder; rename that folder"
      )
    }))
})
