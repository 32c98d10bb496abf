/** Store's stubs: written only over the very file that was archived, whatever the tree became meanwhile. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, ArchiveStore, Evidence, Packer } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

/** A store's evidence whose every append runs `act` instead: between a group's commit and its stubs. */
const onEvidence = (root: string, act: () => void) =>
  Layer.succeed(
    Evidence.Evidence,
    Evidence.Evidence.of({ file: path.join(root, "evidence.jsonl"), append: () => Effect.sync(act) })
  )
/** An archiver over an in-memory archive and that evidence, the archive kept for the test to read. */
const archiverWith = (evidence: Layer.Layer<Evidence.Evidence>) =>
  Archiver.layer.pipe(Layer.provideMerge(Layer.merge(InMemoryArchive.layer, evidence)))
const options = { repo: "r", actor: "a", commit: "c", reason: "dead", kind: "code" } as const

describe("Archiver --write-stub", () => {
  it.effect("a folder swapped for a link after the archive (to a same-size, same-mtime file) gets no stub", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-archiver-"))
    const victims = fs.mkdtempSync(path.join(os.tmpdir(), "codex-victims-"))
    fs.mkdirSync(path.join(root, "sub"))
    fs.writeFileSync(path.join(root, "sub/passwd"), "attacker's bytes\n")
    // The victim looks like the archived file to a size and mtime check: the attacker copied both.
    const victim = path.join(victims, "passwd")
    fs.writeFileSync(victim, "root:x:0:0:root:\n")
    for (const file of [victim, path.join(root, "sub/passwd")]) fs.utimesSync(file, 1_700_000_000, 1_700_000_000)
    // Between the archive's commit and the stub: its evidence line is where the swap happens.
    const swapping = onEvidence(root, () => {
      fs.renameSync(path.join(root, "sub"), path.join(root, "sub.orig"))
      fs.symlinkSync(victims, path.join(root, "sub"))
    })
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const failed = yield* Effect.flip(archiver.store(["sub/passwd"], { ...options, writeStub: true, cwd: root }))
      expect(failed.message).toBe(
        "sub/passwd: archived, but the stub was not written: its folder was moved or swapped for a link since it was " +
          `read (it is at ${fs.realpathSync(victims)}); left as it is`
      )
      expect(fs.readFileSync(victim, "utf8")).toBe("root:x:0:0:root:\n")
      expect(fs.readdirSync(victims)).toEqual(["passwd"])
    }).pipe(Effect.provide(archiverWith(swapping)))
  })

  it.effect("a file edited in place after it was read, its size and mtime put back (touch -r, rsync -t), gets no stub", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-edit-"))
    const file = path.join(root, "notes.txt")
    fs.writeFileSync(file, "original-content\n")
    fs.utimesSync(file, 1_700_000_000, 1_700_000_000)
    // Between the archive's commit and the stub, through its evidence line: same size, mtime set back.
    const editing = onEvidence(root, () => {
      fs.writeFileSync(file, "EDITED!-content!\n")
      fs.utimesSync(file, 1_700_000_000, 1_700_000_000)
    })
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const failed = yield* Effect.flip(archiver.store(["notes.txt"], { ...options, writeStub: true, cwd: root }))
      expect(failed.message).toBe(
        "notes.txt: archived, but the stub was not written: the file changed after it was archived; left as it is"
      )
      expect(fs.readFileSync(file, "utf8")).toBe("EDITED!-content!\n")
    }).pipe(Effect.provide(archiverWith(editing)))
  })
})

describe("Archiver walk", () => {
  it.effect("a folder swapped for a link mid-store is not followed: nothing outside the input is archived", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-walk-"))
    const vault = fs.mkdtempSync(path.join(os.tmpdir(), "codex-vault-"))
    fs.mkdirSync(path.join(root, "tree/sub/zz"), { recursive: true })
    for (const name of ["a0", "a1", "a2", "a3"]) fs.writeFileSync(path.join(root, "tree/sub", name), `${name}\n`)
    fs.writeFileSync(path.join(root, "tree/sub/zz/s1"), "public\n")
    fs.mkdirSync(path.join(vault, "zz"))
    fs.writeFileSync(path.join(vault, "zz/s1"), "SECRET\n")
    fs.writeFileSync(path.join(vault, "a2"), "SECRET\n")
    // After the first group's commit (its evidence line), while the walk is inside the folder: swapped for a link.
    let groups = 0
    const swapping = onEvidence(root, () => {
      if (groups++ > 0) return
      fs.renameSync(path.join(root, "tree/sub"), path.join(root, "sub.orig"))
      fs.symlinkSync(vault, path.join(root, "tree/sub"))
    })
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const store = yield* ArchiveStore.ArchiveStore
      const walking = { ...options, cwd: root, groupSize: 2 }
      // a2 leads to the vault's file: refused as read through a link, the store fails there.
      const failed = yield* Effect.flip(archiver.store(["tree"], walking))
      expect(failed.message).toContain("tree/sub/a2: ")
      expect(failed.message).toContain(`(it is at ${fs.realpathSync(vault)}/a2)`)
      const listed = yield* store.list({ limit: 100 })
      expect(listed.map((i) => i.path).sort()).toEqual(["tree/sub/a0", "tree/sub/a1"])
      // Without a2 there, the walk goes on and passes over the folder below, which now lies in the vault.
      fs.rmSync(path.join(vault, "a2"))
      const skipped: Array<Archiver.SkippedFile> = []
      groups = 0
      fs.rmSync(path.join(root, "tree/sub"))
      fs.renameSync(path.join(root, "sub.orig"), path.join(root, "tree/sub"))
      const report = yield* archiver.store(["tree"], { ...walking, onSkipped: (f) => void skipped.push(f) })
      expect(report.count).toBe(2)
      expect(skipped).toContainEqual({
        path: "tree/sub/zz",
        reason: `replaced by a link while it was walked (it leads to ${fs.realpathSync(vault)}/zz); not followed`
      })
      const all = yield* store.list({ limit: 100 })
      expect(all.map((i) => i.path)).not.toContain("tree/sub/zz/s1")
    }).pipe(Effect.provide(archiverWith(swapping)))
  })
})

describe("Archiver, trees as they come", () => {
  it.effect("hard links each get their stub: the first one's stub moves the shared inode's ctime, which is no edit", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-links-"))
    fs.writeFileSync(path.join(root, "a.txt"), "hello\n")
    fs.linkSync(path.join(root, "a.txt"), path.join(root, "b.txt"))
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const report = yield* archiver.store(["a.txt", "b.txt"], { ...options, writeStub: true, cwd: root })
      expect(report.stored.map((f) => [f.path, f.stub])).toEqual([["a.txt", true], ["b.txt", true]])
      for (const name of ["a.txt", "b.txt"]) {
        expect(fs.readFileSync(path.join(root, name), "utf8")).toContain("TOMBSTONE ARCHIVE STUB")
      }
    }).pipe(Effect.provide(archiverWith(onEvidence(root, () => {}))))
  })

  it.effect("a temporary a killed run left is passed over, not archived (and stubbed) as a file of the tree", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-leftover-"))
    const leftovers = [".m.json.0123456789ab.codex-manifest.tmp", ".a.txt.fedcba987654.codex.tmp"]
    for (const name of [...leftovers, "a.txt"]) fs.writeFileSync(path.join(root, name), `${name}\n`)
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const skipped: Array<Archiver.SkippedFile> = []
      const report = yield* archiver.store(["."], {
        ...options,
        writeStub: true,
        cwd: root,
        onSkipped: (f) => void skipped.push(f)
      })
      expect(report.count).toBe(1)
      expect(skipped.map((f) => f.path).sort()).toEqual([...leftovers].sort())
      expect(skipped[0]!.reason).toBe("a temporary file a killed run of codex left; not archived")
      for (const name of leftovers) expect(fs.readFileSync(path.join(root, name), "utf8")).toBe(`${name}\n`)
    }).pipe(Effect.provide(archiverWith(onEvidence(root, () => {}))))
  })

  it.effect("a file below a folder whose name is not UTF-8, given through a link, is stored", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "codex-bytes-"))
    const odd = Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0xff])])
    fs.mkdirSync(Buffer.concat([odd, Buffer.from("/d")]), { recursive: true })
    fs.writeFileSync(Buffer.concat([odd, Buffer.from("/d/f")]), "hi\n")
    fs.symlinkSync(odd, path.join(root, "ok"))
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      // Given as the file, and as its folder.
      for (const input of ["ok/d/f", "ok/d"]) {
        const report = yield* archiver.store([input], { ...options, cwd: root })
        expect(report.stored.map((f) => f.path), input).toEqual(["ok/d/f"])
      }
    }).pipe(Effect.provide(archiverWith(onEvidence(root, () => {}))))
  })
})

describe("Archiver.payloadOf", () => {
  it.effect("a large file that grew after it was hashed fails as changed, read no further than its size and a chunk", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-payload-"))
    const file = path.join(dir, "big.log")
    const content = Buffer.alloc(3 * ArchiveStore.chunkSize + 100, "log line\n")
    fs.writeFileSync(file, content)
    const sha256 = crypto.createHash("sha256").update(content).digest("hex")
    // Grown since the walk (and its hash) by far more than it held: the stream stops at the first chunk past the size.
    fs.appendFileSync(file, Buffer.alloc(20 * ArchiveStore.chunkSize, "more\n"))
    const walked = { ...Packer.sourceOf(file, "big.log"), size: content.length }
    let read = 0
    const counted = (raw: Uint8Array) => Effect.sync(() => void (read += raw.length)).pipe(Effect.as(raw))
    return Effect.gen(function*() {
      const failed = yield* Effect.flip(Stream.runDrain(
        Archiver.payloadOf(walked, sha256, counted, 1)
      ))
      expect(failed.message).toBe("big.log: file changed while it was being stored; nothing was archived")
      expect(read).toBeLessThanOrEqual(content.length)
      // The same file as the walk saw it streams whole.
      fs.truncateSync(file, content.length)
      read = 0
      yield* Stream.runDrain(Archiver.payloadOf(walked, sha256, counted, 1))
      expect(read).toBe(content.length)
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })
})
