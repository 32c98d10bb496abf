/**
 * A whole-archive verify reads the archive a page at a time, never all of it (issue 15): proved by counting the
 * store's operations, not by timing; what it reports is still complete and in SHA-256 order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Hash, Verifier } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"
import { MiB, zstdZeros } from "./bombs.js"
import { smallTree, storeTree } from "./trees.js"

describe("bounded verify", () => {
  it.effect("reads pages of at most pageSize artifacts, and reports every artifact and every problem in order", () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-verify-")))
    const state = InMemoryArchive.emptyState()
    const calls = new Map<string, number>()
    const layer = InMemoryArchive.services({
      state,
      fault: (operation) => void calls.set(operation, (calls.get(operation) ?? 0) + 1)
    })
    return Effect.gen(function*() {
      const files = smallTree(dir, 200, (i) => `file ${i}\n`.repeat(1 + (i % 7)))
      yield* storeTree(dir)
      // Three artifacts get another one's bytes: each must be reported, wherever its page falls.
      const rows = [...state.artifacts.values()].sort((x, y) => (x.sha256 < y.sha256 ? -1 : 1))
      expect(rows.length).toBe(files.length)
      const broken = [rows[3]!, rows[100]!, rows[199]!]
      for (const row of broken) row.blob = rows[0]!.blob
      calls.clear()
      const report = yield* Verifier.verify({ actor: "ci", pageSize: 16 })
      expect(calls.get("artifacts")).toBeUndefined()
      // 12 full pages and a short 13th that ends the walk.
      expect(calls.get("artifact_page")).toBe(13)
      expect([report.checked, report.ok, report.purged]).toEqual([200, 197, 0])
      expect(report.problems.map((p) => p.sha256)).toEqual(broken.map((r) => r.sha256))
      // A page size dividing the count exactly still ends, after one empty page.
      calls.clear()
      const exact = yield* Verifier.verify({ actor: "ci", pageSize: 50 })
      expect(calls.get("artifact_page")).toBe(5)
      expect(exact.checked).toBe(200)
    }).pipe(
      Effect.provide(layer),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })
})

describe("verify of a payload stored whole", () => {
  it.effect("decodes it a piece at a time: a row truly holding many MiB of zeros in a few KB costs a piece", () => {
    // 3 GiB of zeros fit 98 KB: decoded whole, verify took 3 GiB, then stopped the whole archive's check past 2 GiB.
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-verify-")))
    const state = InMemoryArchive.emptyState()
    const allocUnsafe = Buffer.allocUnsafe
    let largest = 0
    return Effect.gen(function*() {
      smallTree(dir, 2, (i) => `file ${i}\n`)
      yield* storeTree(dir)
      const [row, other] = [...state.artifacts.values()]
      const size = 48 * MiB
      const sha256 = Hash.sha256(Buffer.alloc(size))
      Object.assign(row!, { blob: zstdZeros(size), sizeBytes: size, sha256 })
      for (const item of state.items.values()) {
        if (item.artifactId === row!.id) Object.assign(item, { metadata: { ...item.metadata, sha256 } })
      }
      Buffer.allocUnsafe = ((n: number) => {
        largest = Math.max(largest, n)
        return allocUnsafe(n)
      }) as typeof Buffer.allocUnsafe
      const report = yield* Verifier.verify({ actor: "ci" })
      expect([report.checked, report.ok, report.problems]).toEqual([2, 2, []])
      expect(largest, "the largest buffer allocated").toBeLessThanOrEqual(2 * MiB)
      // One byte past its record: a problem of that artifact alone, the rest still checked.
      row!.blob = zstdZeros(size + 1, "none")
      const over = yield* Verifier.verify({ actor: "ci" })
      expect([over.checked, over.ok]).toEqual([2, 1])
      expect(over.problems.map((p) => [p.sha256, p.problem])).toEqual([
        [
          row!.sha256,
          `payload cannot be decoded with codec 'zstd': it decodes to more than the ${size} bytes its record allows`
        ]
      ])
      expect(other!.sha256).not.toBe(row!.sha256)
    }).pipe(
      Effect.provide(InMemoryArchive.services({ state })),
      Effect.ensuring(Effect.sync(() => {
        Buffer.allocUnsafe = allocUnsafe
        fs.rmSync(dir, { recursive: true, force: true })
      }))
    )
  })
})
