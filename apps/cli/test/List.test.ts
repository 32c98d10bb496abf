/** `list` as a user sees it: read a page at a time, printed as the one JSON document the whole list always was. */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

describe("list", () => {
  it("prints across pages byte for byte the JSON array of the whole list, in its order, for any limit", () => {
    const cwd = tempDir()
    // More than two pages of 500; the store's groups of 1,000 may take two timestamps, so ties and seconds both show.
    for (let i = 0; i < 1203; i++) write(path.join(cwd, "tree", `d${i % 7}`, `f${i}.txt`), `file ${i}\n`)
    expect(codex(cwd, ["store", "acme/app", "tree", "--commit", "c0ffee"]).code).toBe(0)
    write(path.join(cwd, "late.txt"), "late\n")
    expect(codex(cwd, ["store", "acme/other", "late.txt", "--commit", "c0ffee"]).code).toBe(0)
    // The oracle: the list's query as one statement, printed whole as `list` printed it before it paged.
    const db = new Database(path.join(cwd, ".codex/archive.sqlite"), { readonly: true })
    const at = "strftime('%Y-%m-%dT%H:%M:%SZ', archived_at)"
    const whole = (limit: number, repo?: string) =>
      JSON.stringify(
        db.prepare(
          `SELECT id, repo, path, commit_sha, reason, archived_by, ${at} AS archived_at, tombstone_id FROM item
           ${repo === undefined ? "" : "WHERE repo = ?"} ORDER BY ${at} DESC, rowid DESC LIMIT ${limit}`
        ).all(...(repo === undefined ? [] : [repo])),
        null,
        2
      ) + "\n"
    try {
      for (const limit of [5000, 1204, 1000, 501, 500, 499, 2]) {
        const r = codex(cwd, ["list", "--limit", String(limit)])
        expect([r.code, r.stderr]).toEqual([0, ""])
        expect(r.stdout, `--limit ${limit}`).toBe(whole(limit))
      }
      expect(JSON.parse(codex(cwd, ["list", "--limit", "5000"]).stdout).length).toBe(1204)
      expect(codex(cwd, ["list"]).stdout).toBe(whole(50))
      expect(codex(cwd, ["list", "--repo", "acme/app", "--limit", "700"]).stdout).toBe(whole(700, "acme/app"))
      expect(codex(cwd, ["list", "--limit", "0"]).stdout).toBe("[]\n")
      expect(codex(cwd, ["list", "--repo", "nobody"]).stdout).toBe("[]\n")
    } finally {
      db.close()
    }
  })
})
