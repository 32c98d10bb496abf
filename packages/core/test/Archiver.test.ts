/** Store's stubs: written only over the very file that was archived, whatever the tree became meanwhile. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Archiver, Evidence } from "../src/index.js"
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
