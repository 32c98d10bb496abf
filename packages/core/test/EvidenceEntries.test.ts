/**
 * Each evidence constructor writes the line the code wrote before the records were typed, byte for byte: the
 * original tool and the hash chain read these lines. The expected texts are those earlier lines, serialized.
 */
import { describe, expect, it } from "@effect/vitest"
import { Evidence } from "../src/index.js"

const line = (record: Evidence.Entry) => Evidence.serialize(record)

const timings = {
  duration_ms: 9.7,
  fetch_ms: 1.2,
  decompression_ms: 0.1,
  verify_ms: 0.1,
  write_ms: 0.3,
  record_ms: 4.9
}

describe("Evidence entries", () => {
  it("ARCHIVE", () => {
    expect(line(Evidence.archive({
      actor: "alice",
      repo: "acme/shop",
      path: "src/a.py",
      tombstone: "t1",
      sha256: "ab",
      size: 654,
      compressed_size: 376,
      reason: "dead",
      commit: "4f9c2e1"
    }))).toBe(
      "{\"action\":\"ARCHIVE\",\"actor\":\"alice\",\"commit\":\"4f9c2e1\",\"compressed_size\":376,\"path\":\"src/a.py\"," +
        "\"reason\":\"dead\",\"repo\":\"acme/shop\",\"sha256\":\"ab\",\"size\":654,\"tombstone\":\"t1\"}"
    )
  })

  it("RESTORE: status only when unchanged, timings only when on", () => {
    const base = { actor: "bob", tombstone: "t1", path: "/o/a.py", repo: "acme/shop", sha256: "ab", size: 654 }
    expect(line(Evidence.restore({ ...base, unchanged: false, timings: undefined }))).toBe(
      "{\"action\":\"RESTORE\",\"actor\":\"bob\",\"path\":\"/o/a.py\",\"repo\":\"acme/shop\",\"sha256\":\"ab\"," +
        "\"size\":654,\"tombstone\":\"t1\"}"
    )
    expect(line(Evidence.restore({ ...base, unchanged: true, timings }))).toBe(
      "{\"action\":\"RESTORE\",\"actor\":\"bob\",\"decompression_ms\":0.1,\"duration_ms\":9.7,\"fetch_ms\":1.2," +
        "\"path\":\"/o/a.py\",\"record_ms\":4.9,\"repo\":\"acme/shop\",\"sha256\":\"ab\",\"size\":654," +
        "\"status\":\"unchanged\",\"tombstone\":\"t1\",\"verify_ms\":0.1,\"write_ms\":0.3}"
    )
  })

  it("RESTORE_FAIL: the reason defaults to the message and is redacted; a null path stays", () => {
    const error = { _tag: "StoreError", message: "cannot reach postgres://bob:hunter2@db/x" }
    const common = { actor: "bob", tombstone: "t1", error, backend: "postgres", url: "postgres://db/x" }
    expect(line(Evidence.restoreFail({ ...common, path: "/o/a.py" }))).toBe(
      "{\"action\":\"RESTORE_FAIL\",\"actor\":\"bob\",\"backend\":\"postgres\",\"error\":\"StoreError\"," +
        "\"path\":\"/o/a.py\",\"reason\":\"cannot reach postgres://***@db/x\",\"tombstone\":\"t1\"," +
        "\"url\":\"postgres://db/x\"}"
    )
    expect(line(Evidence.restoreFail({ ...common, path: null, reason: "Archive backend validation failed" }))).toBe(
      "{\"action\":\"RESTORE_FAIL\",\"actor\":\"bob\",\"backend\":\"postgres\",\"error\":\"StoreError\"," +
        "\"path\":null,\"reason\":\"Archive backend validation failed\",\"tombstone\":\"t1\",\"url\":\"postgres://db/x\"}"
    )
  })

  it("RESTORE_BATCH of a batch: duration twice when timed, nothing of it when timings are off", () => {
    const counts = {
      actor: "bob",
      status: "SUCCESS" as const,
      total: 3,
      succeeded: 2,
      failed: 0,
      unchanged: 1,
      skipped: 0,
      not_run: 0,
      bytes: 10,
      source: "m.json",
      results_file: undefined
    }
    expect(line(Evidence.restoreBatch({ ...counts, duration_ms: 12.5 }))).toBe(
      "{\"action\":\"RESTORE_BATCH\",\"actor\":\"bob\",\"bytes\":10,\"duration_ms\":12.5,\"failed\":0," +
        "\"metrics\":{\"duration_ms\":12.5,\"name\":\"batch_restore\"},\"not_run\":0,\"skipped\":0," +
        "\"source\":\"m.json\",\"status\":\"SUCCESS\",\"succeeded\":2,\"tombstone\":\"\",\"total\":3,\"unchanged\":1}"
    )
    expect(line(Evidence.restoreBatch({ ...counts, duration_ms: undefined }))).toBe(
      "{\"action\":\"RESTORE_BATCH\",\"actor\":\"bob\",\"bytes\":10,\"failed\":0,\"not_run\":0,\"skipped\":0," +
        "\"source\":\"m.json\",\"status\":\"SUCCESS\",\"succeeded\":2,\"tombstone\":\"\",\"total\":3,\"unchanged\":1}"
    )
    expect(line(Evidence.restoreBatch({ ...counts, duration_ms: null }))).toContain(
      "\"duration_ms\":null,\"failed\":0,\"metrics\":{\"duration_ms\":null,\"name\":\"batch_restore\"}"
    )
  })

  it("RESTORE_BATCH of a health check", () => {
    expect(line(Evidence.healthCheck({ ok: false, summary: "connect: no route to mysql://u:pw@h/db" }))).toBe(
      "{\"action\":\"RESTORE_BATCH\",\"actor\":\"health-check\",\"detail\":\"connect: no route to mysql://***@h/db\"," +
        "\"status\":\"FAILED\",\"tombstone\":\"\"}"
    )
  })

  it("PRUNE_REQUEST, DELETE_APPROVED, VERIFY, GC", () => {
    expect(line(Evidence.pruneRequest({ actor: "a", tombstone: "t1", reason: "old" }))).toBe(
      "{\"action\":\"PRUNE_REQUEST\",\"actor\":\"a\",\"reason\":\"old\",\"tombstone\":\"t1\"}"
    )
    const approval = { tombstone: "t1", primary: "a", secondary: "b", reason: "ok", apply: true, blob_scrubbed: false }
    expect(line(Evidence.deleteApproved({ ...approval, shared_references: 2 }))).toBe(
      "{\"action\":\"DELETE_APPROVED\",\"apply\":true,\"blob_scrubbed\":false,\"primary\":\"a\",\"reason\":\"ok\"," +
        "\"secondary\":\"b\",\"shared_references\":2,\"tombstone\":\"t1\"}"
    )
    expect(line(Evidence.deleteApproved({ ...approval, shared_references: undefined }))).not.toContain("shared")
    expect(line(Evidence.verify({ actor: "a", checked: 3, ok: 2, purged: 1, mismatches: 0, orphan_chunks: 4 }))).toBe(
      "{\"action\":\"VERIFY\",\"actor\":\"a\",\"checked\":3,\"mismatches\":0,\"ok\":2,\"orphan_chunks\":4,\"purged\":1}"
    )
    expect(line(Evidence.verify({ actor: "a", checked: 3, ok: 2, purged: 1, mismatches: 0, orphan_chunks: undefined })))
      .not.toContain("orphan")
    expect(
      line(Evidence.gc({ actor: "a", dry_run: true, part: 2, orphan_chunk_rows: 3, bytes: 9, artifacts: ["x", "y"] }))
    )
      .toBe(
        "{\"action\":\"GC\",\"actor\":\"a\",\"artifacts\":[\"x\",\"y\"],\"bytes\":9,\"dry_run\":true," +
          "\"orphan_chunk_rows\":3,\"part\":2}"
      )
  })
})
