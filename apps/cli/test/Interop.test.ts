/**
 * The interop suite: archives written by our CLI are read, purged and re-stored by a stand-in for the original Python
 * tool (test/interop/original.py: its SQL, decode, stub and config reading), and what it writes is read back here.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { baseEnv, codex, type Run, tempDir, write } from "./support.js"

const standIn = path.resolve(__dirname, "interop/original.py")
const commit = "c0ffee0000000000000000000000000000000000"
/** A small inline limit, so "above the limit" needs no 64 MiB files. */
const inlineLimit = 64 * 1024

let python: string | undefined
/** A python that imports what the stand-in needs; without one every test fails on this line, never skips. */
const findPython = (): string => {
  if (python !== undefined) return python
  const tried = [process.env.CODEX_TEST_PYTHON, "/usr/bin/python3", "python3"].filter((c): c is string => !!c)
  for (const candidate of tried) {
    const r = spawnSync(candidate, ["-c", "import zstandard, psycopg2, pymysql"], { encoding: "utf8" })
    if (r.status === 0) return (python = candidate)
  }
  throw new Error(
    `interop: no python imports zstandard, psycopg2 and pymysql (tried ${
      tried.join(", ")
    }): run 'bash scripts/setup.sh' (Debian packages python3-zstandard python3-psycopg2 python3-pymysql) or set CODEX_TEST_PYTHON`
  )
}

/** Runs the stand-in for the original tool in `cwd`, with the same clean environment our CLI gets. */
const original = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Run => {
  const r = spawnSync(findPython(), [standIn, ...args], { cwd, env: { ...baseEnv(), ...env }, encoding: "utf8" })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

const pgServer = process.env.CODEX_TEST_PG_URL || "postgres://postgres@127.0.0.1:5432/postgres"
const psql = (sql: string) => spawnSync("psql", [pgServer, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { encoding: "utf8" })
const pgDatabases: Array<string> = []
/** A fresh database of our own on the shared server (dropped after the file), as a `postgresql://` URL both tools take. */
const freshPg = (): string => {
  const name = `codex_interop_${process.pid}_${pgDatabases.length}_${randomBytes(3).toString("hex")}`
  const r = psql(`CREATE DATABASE ${name}`)
  if (r.status !== 0) {
    throw new Error(
      `PostgreSQL ${pgServer.replace(/\/\/[^@/]*@/, "//***@")} unreachable (CODEX_TEST_PG_URL): ${
        (r.stderr || r.error?.message || "").trim()
      }`
    )
  }
  pgDatabases.push(name)
  const url = new URL(pgServer)
  url.protocol = "postgresql:"
  url.pathname = `/${name}`
  return url.toString()
}

const myServer = new URL(process.env.CODEX_TEST_MARIADB_URL || "mysql://root@127.0.0.1:3306/test")
const mysql = (sql: string) =>
  spawnSync("mysql", [
    "-h",
    myServer.hostname,
    "-P",
    myServer.port || "3306",
    "-u",
    decodeURIComponent(myServer.username),
    "-e",
    sql
  ], {
    encoding: "utf8",
    env: { ...process.env, MYSQL_PWD: decodeURIComponent(myServer.password) }
  })
const myDatabases: Array<string> = []
/** A fresh MariaDB database of our own, as the `mysql+pymysql://` URL both tools take (SQLAlchemy's PyMySQL form). */
const freshMariadb = (): string => {
  const name = `codex_interop_${process.pid}_${myDatabases.length}_${randomBytes(3).toString("hex")}`
  const r = mysql(`CREATE DATABASE ${name}`)
  if (r.status !== 0) {
    throw new Error(
      `MariaDB ${myServer.host} unreachable (CODEX_TEST_MARIADB_URL): ${(r.stderr || r.error?.message || "").trim()}`
    )
  }
  myDatabases.push(name)
  const auth = myServer.username ? `${myServer.username}${myServer.password ? `:${myServer.password}` : ""}@` : ""
  return `mysql+pymysql://${auth}${myServer.host}/${name}`
}

afterAll(() => {
  for (const name of pgDatabases) psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  for (const name of myDatabases) mysql(`DROP DATABASE IF EXISTS ${name}`)
})

interface Backend {
  readonly name: string
  /** The environment that points both tools at a fresh archive in `cwd`. */
  readonly fresh: (cwd: string) => Record<string, string>
}
const backends: ReadonlyArray<Backend> = [
  // Both tools' default URL: ./.codex/archive.sqlite under the working directory.
  { name: "sqlite", fresh: () => ({}) },
  { name: "postgres", fresh: () => ({ CODEX_ARCHIVE_URL: freshPg() }) },
  { name: "mariadb", fresh: () => ({ CODEX_ARCHIVE_URL: freshMariadb() }) }
]

/** Content no compressor shrinks and no other test shares, so finding it in a file means it was stored there. */
const unique = (n: number) => randomBytes(n)

const storeHere = (cwd: string, file: string, env: Record<string, string>): string => {
  const r = codex(cwd, ["store", "acme/app", file, "--commit", commit], env)
  expect(r.code, `our store ${file}: ${r.stderr}`).toBe(0)
  return JSON.parse(r.stdout).tombstone as string
}

const storeThere = (cwd: string, file: string, env: Record<string, string>, ...extra: Array<string>): string => {
  const r = original(cwd, ["store", "acme/app", file, "--by", "py", "--commit", commit, ...extra], env)
  expect(r.code, `original store ${file}: ${r.stderr}`).toBe(0)
  return JSON.parse(r.stdout).tombstone as string
}

for (const backend of backends) {
  describe(`interop with the original tool on ${backend.name}`, () => {
    it("every item we store, of every size, is restored byte-identical by the original's read path, or refused honestly when chunked", () => {
      const cwd = tempDir()
      const env = { ...backend.fresh(cwd), CODEX_ARCHIVE_INLINE_LIMIT: String(inlineLimit) }
      const same = Buffer.from("the same bytes twice\n")
      const files: Record<string, Buffer> = {
        "empty": Buffer.alloc(0),
        "bin.dat": Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff)),
        "ünïcødé/日本語.txt": Buffer.from("こんにちは\n"),
        "dup1.txt": same,
        "x/dup2.txt": same,
        "below.bin": unique(inlineLimit - 1000),
        "at.bin": unique(inlineLimit),
        "above.bin": unique(inlineLimit * 3),
        "big.bin": unique(3 * 1024 * 1024 + 5)
      }
      const stored = Object.entries(files).map(([name, bytes]) => {
        write(path.join(cwd, name), bytes)
        return { name, bytes, tombstone: storeHere(cwd, name, env) }
      })
      for (const { bytes, name, tombstone } of stored) {
        const out = path.join("restored", name)
        const r = original(cwd, ["restore", tombstone, out, "--by", "py"], env)
        if (bytes.length <= inlineLimit) {
          expect(r.code, `original restore of ${name}: ${r.stderr}`).toBe(0)
          expect(fs.readFileSync(path.join(cwd, out)).equals(bytes), `${name} differs after the original's restore`)
            .toBe(true)
        } else {
          // Chunked content is not where the original looks: it must fail saying so, not claim the item was purged.
          expect(r.code, `original restore of chunked ${name}`).toBe(1)
          expect(r.stderr).toMatch(/^ERROR: .*chunked/)
          expect(r.stderr, `original restore of chunked ${name}`).not.toMatch(/purged/i)
          expect(fs.existsSync(path.join(cwd, out))).toBe(false)
        }
      }
      // The original's RESTORE rows and restored_at leave everything readable and intact here.
      const verified = codex(cwd, ["verify", ...stored.map((s) => s.tombstone)], env)
      expect(verified.code, verified.stderr + verified.stdout).toBe(0)
    })

    it("what the original stores, purges and re-stores, we restore and verify", () => {
      const cwd = tempDir()
      const env = { ...backend.fresh(cwd), CODEX_ARCHIVE_INLINE_LIMIT: String(inlineLimit) }
      const v1 = unique(20_000)
      const zlibbed = Buffer.from("written by an original without python-zstandard\n".repeat(50))
      write(path.join(cwd, "a.bin"), v1)
      write(path.join(cwd, "z.txt"), zlibbed)
      write(path.join(cwd, "e"), "")
      const tA1 = storeThere(cwd, "a.bin", env)
      const tZ = storeThere(cwd, "z.txt", env, "--codec", "zlib")
      const tE = storeThere(cwd, "e", env)
      // Re-store: a changed file at the same path is a new item; the old tombstone keeps the old bytes.
      const v2 = unique(30_000)
      write(path.join(cwd, "a.bin"), v2)
      const tA2 = storeThere(cwd, "a.bin", env)
      const expectRestore = (tombstone: string, bytes: Buffer) => {
        const out = path.join(cwd, "out", tombstone)
        const r = codex(cwd, ["restore", tombstone, out], env)
        expect(r.code, `our restore of ${tombstone}: ${r.stderr}`).toBe(0)
        expect(fs.readFileSync(out).equals(bytes)).toBe(true)
      }
      expectRestore(tA1, v1)
      expectRestore(tA2, v2)
      expectRestore(tZ, zlibbed)
      expectRestore(tE, Buffer.alloc(0))
      const verified = codex(cwd, ["verify", tA1, tA2, tZ, tE], env)
      expect(verified.code, verified.stderr + verified.stdout).toBe(0)

      // The original's purge: we refuse to restore, naming the tombstone.
      const purged = original(
        cwd,
        ["purge", tA1, "--by", "alice", "--second", "bob", "--reason", "gdpr", "--apply"],
        env
      )
      expect(purged.stdout.trim(), purged.stderr).toBe("purge approvals recorded and blob scrubbed")
      const refused = codex(cwd, ["restore", tA1, path.join(cwd, "out", "purged")], env)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain(tA1)
      expect(fs.existsSync(path.join(cwd, "out", "purged"))).toBe(false)

      // The original's re-store of the purged content re-hydrates the artifact: the old tombstone restores again.
      write(path.join(cwd, "again/a.bin"), v1)
      const tA3 = storeThere(cwd, "again/a.bin", env)
      expectRestore(tA1, v1)
      expectRestore(tA3, v1)

      // Content we stored twice is one artifact: the original's purge of one item keeps the bytes for the other.
      const shared = unique(1000)
      write(path.join(cwd, "d1.bin"), shared)
      write(path.join(cwd, "d2.bin"), shared)
      const tD1 = storeHere(cwd, "d1.bin", env)
      const tD2 = storeHere(cwd, "d2.bin", env)
      const kept = original(cwd, ["purge", tD1, "--by", "alice", "--second", "bob", "--reason", "gdpr", "--apply"], env)
      expect(kept.stdout.trim(), kept.stderr).toBe("purge approvals recorded; blob retained (artifact still shared)")
      expectRestore(tD2, shared)
      expectRestore(tD1, shared)

      // An item we chunked, purged and then re-stored by the original, restores here from what the original wrote.
      const big = unique(inlineLimit * 4)
      write(path.join(cwd, "big.bin"), big)
      const tBig = storeHere(cwd, "big.bin", env)
      const purgedBig = original(cwd, [
        "purge",
        tBig,
        "--by",
        "alice",
        "--second",
        "bob",
        "--reason",
        "gdpr",
        "--apply"
      ], env)
      expect(purgedBig.code, purgedBig.stderr).toBe(0)
      expect(codex(cwd, ["restore", tBig, path.join(cwd, "out", "big-purged")], env).code).toBe(1)
      const tBig2 = storeThere(cwd, "big.bin", env)
      expectRestore(tBig2, big)
      expectRestore(tBig, big)
    })

    it("the restore command printed in the original's stub restores the bytes through our CLI", () => {
      const cwd = tempDir()
      const env = backend.fresh(cwd)
      const bytes = Buffer.from("def old():\n    return 1\n")
      write(path.join(cwd, "src/old.py"), bytes)
      const tombstone = storeThere(cwd, "src/old.py", env, "--write-stub")
      const stub = fs.readFileSync(path.join(cwd, "src/old.py"), "utf8")
      expect(stub).toContain("TOMBSTONE ARCHIVE STUB")
      const line = /archive restore (\S+) --out (\S+)/.exec(stub)
      expect(line, stub).not.toBeNull()
      expect(line![1]).toBe(tombstone)
      const r = codex(cwd, ["restore", line![1], "--out", line![2]], env)
      expect(r.code, `codex archive restore ${line![1]} --out ${line![2]}: ${r.stderr}`).toBe(0)
      expect(fs.readFileSync(path.join(cwd, "src/old.py")).equals(bytes)).toBe(true)
    })
  })
}

/** Every occurrence of a few slices of `content` in the SQLite file (and its WAL, if one is left). */
const foundIn = (dbFile: string, content: Buffer): number => {
  const files = [dbFile, `${dbFile}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f))
  const probes = [100, Math.floor(content.length / 2), content.length - 200].map((at) => content.subarray(at, at + 48))
  return files.reduce((n, raw) => n + probes.filter((p) => raw.includes(p)).length, 0)
}

describe("interop with the original tool: purge on SQLite", () => {
  it("after the original's purge, no byte of the purged content is left in the database file", () => {
    const cwd = tempDir()
    const env = { CODEX_ARCHIVE_INLINE_LIMIT: String(inlineLimit) }
    const small = unique(inlineLimit / 2)
    // Above today's 1 MiB chunk size too, so it is stored as chunk rows whatever the inline limit.
    const large = unique(2 * 1024 * 1024 + 7)
    write(path.join(cwd, "small.bin"), small)
    write(path.join(cwd, "large.bin"), large)
    const tSmall = storeHere(cwd, "small.bin", env)
    const tLarge = storeHere(cwd, "large.bin", env)
    const db = path.join(cwd, ".codex/archive.sqlite")
    // The search finds stored content (incompressible data is kept verbatim), so "not found" below means gone.
    expect(foundIn(db, small)).toBeGreaterThan(0)
    expect(foundIn(db, large)).toBeGreaterThan(0)
    for (const t of [tSmall, tLarge]) {
      const r = original(cwd, ["purge", t, "--by", "alice", "--second", "bob", "--reason", "gdpr", "--apply"], env)
      expect(r.stdout.trim(), r.stderr).toBe("purge approvals recorded and blob scrubbed")
    }
    expect(foundIn(db, small), "bytes of the inline item after the original's purge").toBe(0)
    expect(foundIn(db, large), "bytes of the chunked item after the original's purge").toBe(0)
  })
})

interface ConfigCase {
  readonly name: string
  /** Writes the shared config into `cwd` and returns the environment both tools run with. */
  readonly setup: (cwd: string) => Record<string, string>
  /** The archive file the original opens, relative to `cwd`, as its code resolves it. */
  readonly expected: string
}
const configCases: ReadonlyArray<ConfigCase> = [
  {
    name: "a relative sqlite:///./.codex/archive.sqlite in a TOML file in another folder",
    setup: (cwd) => {
      write(
        path.join(cwd, "conf/archive.toml"),
        `[backend]\nbackend = "sqlite"\nurl = "sqlite:///./.codex/archive.sqlite"\n`
      )
      return { CODEX_ARCHIVE_CONFIG: "conf/archive.toml" }
    },
    expected: ".codex/archive.sqlite"
  },
  {
    // `sqlite:///fx.sqlite` is `/fx.sqlite` to the original: the same URL shape, pointed into this test's own folder.
    name: "sqlite:///<path> (absolute after the third slash)",
    setup: (cwd) => ({ CODEX_ARCHIVE_URL: `sqlite:///${fs.realpathSync(cwd).slice(1)}/fx.sqlite` }),
    expected: "fx.sqlite"
  },
  {
    name: "a bare path as the URL",
    setup: (cwd) => {
      write(path.join(cwd, "conf/archive.toml"), `[backend]\nurl = "data/bare.sqlite"\n`)
      return { CODEX_ARCHIVE_CONFIG: "conf/archive.toml" }
    },
    expected: "data/bare.sqlite"
  },
  {
    name: ".codex/archive.toml present",
    setup: (cwd) => {
      write(path.join(cwd, ".codex/archive.toml"), `[backend]\nurl = "sqlite:///./elsewhere.sqlite"\n`)
      return {}
    },
    expected: ".codex/archive.sqlite"
  }
]

const tombstonesIn = (file: string): Array<string> => {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare("SELECT tombstone_id FROM item").all() as Array<{ tombstone_id: string }>).map((r) =>
      r.tombstone_id
    )
  } finally {
    db.close()
  }
}

describe("interop with the original tool: one config, one archive", () => {
  for (const c of configCases) {
    it(`both tools open the same archive: ${c.name}`, () => {
      const cwd = tempDir()
      const env = c.setup(cwd)
      const resolved = original(cwd, ["resolve"], env)
      expect(resolved.code, resolved.stderr).toBe(0)
      const archive = JSON.parse(resolved.stdout).sqlite_path as string
      expect(archive).toBe(path.join(fs.realpathSync(cwd), c.expected))
      write(path.join(cwd, "ours.txt"), "stored by us\n")
      write(path.join(cwd, "theirs.txt"), "stored by the original\n")
      const ours = storeHere(cwd, "ours.txt", env)
      const theirs = storeThere(cwd, "theirs.txt", env)
      // Each tool reads what the other wrote, and both rows sit in the file the original's code names.
      expect(tombstonesIn(archive).sort()).toEqual([ours, theirs].sort())
      const there = original(cwd, ["restore", ours, "back/ours.txt", "--by", "py"], env)
      expect(there.code, there.stderr).toBe(0)
      expect(fs.readFileSync(path.join(cwd, "back/ours.txt"), "utf8")).toBe("stored by us\n")
      const here = codex(cwd, ["restore", theirs, "back/theirs.txt"], env)
      expect(here.code, here.stderr).toBe(0)
      expect(fs.readFileSync(path.join(cwd, "back/theirs.txt"), "utf8")).toBe("stored by the original\n")
    })
  }
})
