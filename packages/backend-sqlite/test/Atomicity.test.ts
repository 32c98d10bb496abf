import { ArchiveStore, Codec, Evidence } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as path from "node:path"
import { services, tempDir } from "./helpers.js"

const entry = (sha: string, payload: ArchiveStore.Payload): ArchiveStore.ArchiveEntry => ({
  sha256: sha,
  sizeBytes: 3,
  codec: "zstd",
  payload,
  item: {
    repo: "r",
    path: `p-${sha.slice(0, 4)}`,
    commitSha: "c",
    kind: "code",
    reason: "dead",
    language: null,
    mimeType: "text/plain",
    archivedBy: "a",
    tags: ["t"],
    extraMetadata: {},
    context: {}
  }
})

describe("store atomicity", () => {
  it.effect("a store that fails midway leaves the database as it was", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const store = yield* ArchiveStore.ArchiveStore
      const zstd = yield* Codec.forName("zstd")
      const good: ArchiveStore.Payload = {
        _tag: "Whole",
        read: Effect.sync(() => Codec.compress(zstd, Buffer.from("abc")))
      }
      const bad: ArchiveStore.Payload = {
        _tag: "Chunks",
        stream: Stream.fail(
          new ArchiveStore.PayloadSourceError({ path: "p-bbbb", detail: "file changed while it was being stored" })
        )
      }
      const error = yield* Effect.flip(store.archive([entry("a".repeat(64), good), entry("b".repeat(64), bad)]))
      expect(error.message).toBe("p-bbbb: file changed while it was being stored")
      expect(yield* store.list({ limit: 10 })).toEqual([])
      expect(yield* store.artifacts()).toEqual([])
      expect(Evidence.read(path.join(dir, "evidence"))).toEqual([])
      const ok = yield* store.archive([entry("a".repeat(64), good)])
      expect(ok).toHaveLength(1)
    }).pipe(Effect.provide(services(dir)))
  })
})
