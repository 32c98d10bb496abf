/** Large files through the CLI: the inline limit from the environment, the schema's triggers, and `gc`. */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, evidence, tamper, tempDir, write } from "./support.js"

const artifactRow = (cwd: string) => {
  const db = new Database(path.join(cwd, ".codex/archive.sqlite"), { readonly: true })
  try {
    return db.prepare(
      "SELECT compression, storage_driver, (SELECT COUNT(*) FROM artifact_chunk) AS chunks FROM artifact"
    ).get()
  } finally {
    db.close()
  }
}

describe("large files", () => {
  it("CODEX_ARCHIVE_INLINE_LIMIT decides inline or chunked; both restore byte for byte", () => {
    const cwd = fs.realpathSync(tempDir())
    const content = randomBytes(2 * 1024 * 1024)
    for (
      const [limit, expected] of [
        ["2097152", { compression: "zstd", storage_driver: "db", chunks: 0 }],
        ["2097151", { compression: "chunked:zstd", storage_driver: "chunked", chunks: 2 }]
      ] as const
    ) {
      const dir = path.join(cwd, limit)
      write(path.join(dir, "big.bin"), content)
      const stored = codex(dir, ["store", "r", "big.bin", "--commit", "x"], { CODEX_ARCHIVE_INLINE_LIMIT: limit })
      expect(stored.code, stored.stderr).toBe(0)
      expect(artifactRow(dir)).toEqual(expected)
      const restored = codex(dir, ["restore", JSON.parse(stored.stdout).tombstone, "out.bin"])
      expect(restored.code, restored.stderr).toBe(0)
      expect(fs.readFileSync(path.join(dir, "out.bin")).equals(content)).toBe(true)
    }
    const bad = codex(cwd, ["store", "r", "2097152/big.bin", "--commit", "x"], { CODEX_ARCHIVE_INLINE_LIMIT: "lots" })
    expect([bad.code, bad.stderr.trim()]).toEqual([
      2,
      "codex: error: invalid configuration: store.inline_limit (env CODEX_ARCHIVE_INLINE_LIMIT): got 'lots', expected a whole number >= 0"
    ])
  })

  it("schema prints the triggers that make chunk rows follow their artifact, for every dialect", () => {
    const cwd = fs.realpathSync(tempDir())
    for (const dialect of ["sqlite", "postgres", "mariadb"]) {
      const r = codex(cwd, ["schema", "--dialect", dialect])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(
        /CREATE (OR REPLACE )?TRIGGER (IF NOT EXISTS )?artifact_chunk_follow_update AFTER UPDATE ON artifact/
      )
      expect(r.stdout).toMatch(
        /CREATE (OR REPLACE )?TRIGGER (IF NOT EXISTS )?artifact_chunk_follow_delete BEFORE DELETE ON artifact/
      )
    }
  })

  it("gc --dry-run counts orphaned chunk rows, gc removes them; each writes one evidence line; health-check follows", () => {
    const cwd = fs.realpathSync(tempDir())
    write(path.join(cwd, "f.txt"), "inline content\n")
    expect(codex(cwd, ["store", "r", "f.txt", "--commit", "x"]).code).toBe(0)
    // Chunk rows of an artifact that is not chunked: what another tool's purge left before the triggers existed.
    tamper(cwd, "INSERT INTO artifact_chunk (artifact_id, seq, blob_bytes) SELECT id, 0, zeroblob(300) FROM artifact")
    const id = (evidence(cwd)[0] as { tombstone: string }).tombstone
    expect(id).toBeTruthy()
    const sick = codex(cwd, ["health-check"])
    expect(sick.code).toBe(1)
    expect(sick.stdout).toContain("1 orphaned chunk rows (300 bytes) of 1 artifacts: run `codex archive gc`")
    const dry = codex(cwd, ["gc", "--dry-run"])
    expect(dry.code, dry.stderr).toBe(0)
    const dryOut = JSON.parse(dry.stdout)
    expect([dryOut.dry_run, dryOut.would_remove.chunk_rows, dryOut.would_remove.bytes]).toEqual([true, 1, 300])
    const gc = codex(cwd, ["gc"])
    expect(gc.code, gc.stderr).toBe(0)
    expect(JSON.parse(gc.stdout).removed).toEqual({
      chunk_rows: 1,
      bytes: 300,
      artifacts: dryOut.would_remove.artifacts
    })
    expect(
      evidence(cwd).filter((l) => l.action === "GC").map((l) => [l.dry_run, l.orphan_chunk_rows, l.bytes, l.actor])
    ).toEqual([
      [true, 1, 300, "tester"],
      [false, 1, 300, "tester"]
    ])
    expect(codex(cwd, ["health-check"]).code).toBe(0)
    expect(JSON.parse(codex(cwd, ["gc"]).stdout).removed.chunk_rows).toBe(0)
  })
})
