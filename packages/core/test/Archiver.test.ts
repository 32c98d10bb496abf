/** Store's stubs: written only over the very file that was archived, whatever the tree became meanwhile. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, ArchiveStore, Evidence } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"

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
    const swapping = Layer.succeed(
      Evidence.Evidence,
      Evidence.Evidence.of({
        file: path.join(root, "evidence.jsonl"),
        append: () =>
          Effect.sync(() => {
            fs.renameSync(path.join(root, "sub"), path.join(root, "sub.orig"))
            fs.symlinkSync(victims, path.join(root, "sub"))
          })
      })
    )
    return Effect.gen(function*() {
      const archiver = yield* Archiver.Archiver
      const options = {
        repo: "r",
        actor: "a",
        commit: "c",
        reason: "dead",
        kind: "code",
        writeStub: true,
        cwd: root
      } as const
      const failed = yield* Effect.flip(archiver.store(["sub/passwd"], options))
      expect(failed.message).toBe(
        "sub/passwd: archived, but the stub was not written: the file changed after it was archived; left as it is"
      )
      expect(fs.readFileSync(victim, "utf8")).toBe("root:x:0:0:root:\n")
      expect(fs.readdirSync(victims)).toEqual(["passwd"])
    }).pipe(Effect.provide(Archiver.layer.pipe(Layer.provide(Layer.merge(InMemoryArchive.layer, swapping)))))
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
    let read = 0
    const counted = (raw: Uint8Array) => Effect.sync(() => void (read += raw.length)).pipe(Effect.as(raw))
    return Effect.gen(function*() {
      const failed = yield* Effect.flip(Stream.runDrain(
        Archiver.payloadOf(file, "big.log", content.length, sha256, counted, 1)
      ))
      expect(failed.message).toBe("big.log: file changed while it was being stored; nothing was archived")
      expect(read).toBeLessThanOrEqual(content.length)
      // The same file as the walk saw it streams whole.
      fs.truncateSync(file, content.length)
      read = 0
      yield* Stream.runDrain(Archiver.payloadOf(file, "big.log", content.length, sha256, counted, 1))
      expect(read).toBe(content.length)
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
  })
})
