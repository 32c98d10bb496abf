/** Which databases the store takes for an archive: someone else's tables are refused, our own half-made ones are not. */
import { describe, expect, it } from "@effect/vitest"
import { SqlArchiveStore } from "../src/index.js"

const columns = (tables: Record<string, ReadonlyArray<string>>) =>
  new Map(Object.entries(tables).map(([t, cs]) => [t, new Set(cs)]))
const { archiveColumns, notAnArchiveReason } = SqlArchiveStore

describe("SqlArchiveStore.notAnArchiveReason", () => {
  it("an archive whose migrations another process is running (artifact made, item not yet) may be created", () => {
    const halfMade = columns({ artifact: archiveColumns.artifact })
    expect(notAnArchiveReason(halfMade, true)).toBeUndefined()
    expect(notAnArchiveReason(halfMade, false)).toBe("is a database but not a codex archive (no item/artifact tables)")
    expect(notAnArchiveReason(columns({}), true)).toBeUndefined()
    expect(notAnArchiveReason(columns({}), false)).toMatch(/not a codex archive/)
  })

  it("a table named item or artifact without the archive's columns is refused even when creating", () => {
    const foreign = columns({ artifact: archiveColumns.artifact, item: ["id", "name"] })
    expect(notAnArchiveReason(foreign, true)).toBe(
      "is a database but not a codex archive (table item lacks tombstone_id, artifact_id, repo, path, metadata, archived_at)"
    )
    expect(notAnArchiveReason(columns({ item: ["id"] }), true)).toMatch(/table item lacks/)
  })
})
