import { ArchiveStore, Evidence } from "@codex-archive/core"
import { InMemoryArchive } from "@codex-archive/core/testing"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { retire, revive } from "../src/Cleanup.js"
import { archive } from "../src/Main.js"

// No database: the test kit's in-memory archive, with evidence in a temporary folder.
it.layer(InMemoryArchive.services())("cleanup", (it) => {
  it.effect("retires dead files and revives one byte for byte, with evidence", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "host-"))
      fs.writeFileSync(path.join(root, "old.py"), "print('bye')\n")
      const tombstones = yield* retire(root, ["old.py"])
      const tombstone = tombstones.get("old.py")!
      expect((yield* (yield* ArchiveStore.ArchiveStore).show(tombstone)).archived_by).toBe("cleanup-bot")
      expect(yield* revive(tombstone, path.join(root, "back.py"))).toBe("restored")
      expect(fs.readFileSync(path.join(root, "back.py"), "utf8")).toBe("print('bye')\n")
      expect(yield* revive("00000000-0000-4000-8000-000000000000", path.join(root, "none.py"))).toBe("unknown")
      const log = fs.readFileSync((yield* Evidence.Evidence).file, "utf8")
      expect(log).toContain(`"tombstone":"${tombstone}"`)
      fs.rmSync(root, { recursive: true, force: true })
    }))
})

// The same feature over the program's real archive (SQLite), configured through a ConfigProvider: no env, no TOML.
it.effect("runs over the real archive layer, configured through Effect Config", () =>
  Effect.gen(function*() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "host-"))
    fs.writeFileSync(path.join(root, "old.py"), "print('bye')\n")
    const settings = ConfigProvider.fromMap(
      new Map([
        ["ARCHIVE_URL", `sqlite:///${path.join(root, ".codex/archive.sqlite")}`],
        ["EVIDENCE_DIR", path.join(root, ".codex/evidence")]
      ])
    )
    const tombstone = yield* Effect.gen(function*() {
      const tombstone = (yield* retire(root, ["old.py"])).get("old.py")!
      expect(yield* revive(tombstone, path.join(root, "back.py"))).toBe("restored")
      return tombstone
    }).pipe(Effect.provide(archive.pipe(Layer.provide(Layer.setConfigProvider(settings)))))
    expect(fs.readFileSync(path.join(root, "back.py"), "utf8")).toBe("print('bye')\n")
    expect(Evidence.read(path.join(root, ".codex/evidence")).map((l) => [l.action, l.tombstone])).toEqual([[
      "ARCHIVE",
      tombstone
    ], ["RESTORE", tombstone]])
    fs.rmSync(root, { recursive: true, force: true })
  }))
