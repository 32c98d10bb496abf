/**
 * A dry run over a manifest holds a group of entries, never the manifest (issue 15): proved by counting what it has
 * pulled from the source and not yet handed on, not by timing; its items are complete, in manifest order, and its
 * totals are those of the whole-list check.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Batch, Manifest } from "../src/index.js"
import { InMemoryArchive } from "../src/testing/index.js"
import { smallTree, storeTree } from "./trees.js"

describe("bounded dry run", () => {
  it.effect("checks a group of entries at a time and hands on every item in manifest order", () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-dry-")))
    return Effect.gen(function*() {
      const files = smallTree(dir, 100, (i) => `file ${i}\n`)
      const report = yield* storeTree(dir)
      // Half the outputs are gone (restorable), half still hold their content (unchanged), and one tombstone is unknown.
      for (const file of files.filter((_, i) => i % 2 === 0)) fs.rmSync(file)
      const entries: Array<Manifest.Entry> = [
        ...report.stored.map((s) => ({ tombstone: s.tombstone, output: path.join(dir, s.path), actor: "bob" })),
        { tombstone: "00000000-0000-4000-8000-000000000000", output: path.join(dir, "gone.txt"), actor: "bob" }
      ]
      let pulled = 0
      let handed = 0
      let most = 0
      const source: Manifest.Source = {
        total: entries.length,
        entries: () => ({
          *[Symbol.iterator]() {
            for (const e of entries) {
              pulled++
              most = Math.max(most, pulled - handed)
              yield e
            }
          }
        })
      }
      const items: Array<Batch.CheckItem> = []
      const groups: Array<number> = []
      const streamed = yield* Batch.checkSource(source, {
        groupSize: 16,
        onItems: (group) =>
          Effect.sync(() => {
            groups.push(group.length)
            items.push(...group)
            handed += group.length
          })
      })
      expect(most).toBeLessThanOrEqual(16)
      expect(groups).toEqual([16, 16, 16, 16, 16, 16, 5])
      expect(items.map((r) => [r.tombstone, r.output])).toEqual(entries.map((e) => [e.tombstone, e.output]))
      const whole = yield* Batch.check(entries)
      expect(items).toEqual(whole.results)
      expect(streamed).toEqual({ ...whole, results: [] })
      expect(streamed).toMatchObject({ total: 101, restorable: 50, unchanged: 50, failed: 1 })
    }).pipe(
      Effect.provide(InMemoryArchive.services()),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })
})
