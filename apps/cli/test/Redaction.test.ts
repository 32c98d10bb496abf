import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { hostileUrls, leaksIn } from "../../../packages/core/test/HostileUrls.js"
import { codex, codexAsync, evidence, tempDir, write } from "./support.js"

const password = "s3cr3t-pass"
/** Unreachable (port 1: connection refused, retried) and reachable-but-refusing (no such role) servers. */
const urls = [
  `postgres://u:${password}@127.0.0.1:1/db`,
  `postgresql://u:${password}@127.0.0.1:5432/codex_no_such_db`,
  `mysql://u:${password}@127.0.0.1:3306/db`
]
const fastRetry = {
  CODEX_ARCHIVE_RETRY_INITIAL: "0.01",
  CODEX_ARCHIVE_RETRY_MAX: "0.02",
  CODEX_ARCHIVE_RETRY_ATTEMPTS: "3"
}
const tombstone = "0f0f0f0f-0000-4000-8000-000000000000"
/** A file's URL chooses no backend (as in the original tool): the file names it beside the URL. */
const backendOf = (url: string) => (/^postgres/i.test(url) ? "postgres" : "mariadb")

/** Every byte a user could see: stdout, stderr, and every file the command left under its folder. */
const everything = (cwd: string, runs: ReadonlyArray<{ stdout: string; stderr: string }>) =>
  [
    ...runs.flatMap((r) => [r.stdout, r.stderr]),
    ...(fs.readdirSync(cwd, { recursive: true }) as Array<string>)
      .map((f) => path.join(cwd, f))
      .filter((f) => fs.statSync(f).isFile() && !f.endsWith(".toml"))
      .map((f) => fs.readFileSync(f, "latin1"))
  ].join("\n")

describe("a password-bearing URL never appears in any output", () => {
  for (const url of urls) {
    it(`${url.split(":")[0]}: config-show, debug logs in both formats, errors, health-check, evidence`, () => {
      const cwd = tempDir()
      write(path.join(cwd, "f.txt"), "x\n")
      write(path.join(cwd, "manifest.json"), JSON.stringify([{ tombstone, output: "out/a.txt" }]))
      write(
        path.join(cwd, "conf.toml"),
        `[backend]\nbackend = "${backendOf(url)}"\nurl = "${url}"\n[retry]\ninitial_delay = 0.01\n`
      )
      const env = { CODEX_ARCHIVE_URL: url, ...fastRetry }
      const runs = [
        codex(cwd, ["config-show"], env),
        codex(cwd, ["config-show", "--origin", "--log-level=debug"], env),
        codex(cwd, ["config-show", "--config-file", "conf.toml"]),
        codex(cwd, ["restore", tombstone, "out.txt", "--log-level=debug"], env),
        codex(cwd, [
          "restore",
          tombstone,
          "out.txt",
          "--log-level=debug",
          "--log-format",
          "json",
          "--metrics-out",
          "m.prom"
        ], env),
        codex(cwd, ["restore", tombstone, "out.txt", "--url", url, "--log-level=debug"], fastRetry),
        codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--log-level=debug"], env),
        codex(cwd, ["list", "--log-level=debug"], env),
        codex(cwd, ["batch-restore", "manifest.json", "--log-level=debug", "--results", "results.json"], env),
        codex(cwd, ["health-check", "--log-level=debug"], env),
        codex(cwd, ["health-check", "--json", "--log-format", "json", "--log-level=debug"], env),
        codex(cwd, ["config-show"], { ...env, CODEX_ARCHIVE_RETRY_JITTER: "bad" })
      ]
      // Each command really ran into the URL: the failures name the backend, redacted.
      expect(runs[3]!.code).toBe(1)
      expect(runs.map((r) => r.stdout + r.stderr).join("\n")).toMatch(
        /(postgres|postgresql|mysql):\/\/\*\*\*@127\.0\.0\.1/
      )
      expect(everything(cwd, runs)).not.toContain(password)
      // Only an explicit --debug reveals it.
      expect(codex(cwd, ["config-show", "--debug"], env).stdout).toContain(password)
    })
  }
})

const jsonLogs = ["--log-format", "json"]
const results = ["--results", "results.json"]
const metrics = (name: string) => ["--metrics-out", `${name}.prom`]

/** The rows no URL parser reads (an unencoded `/ # ?` ends the authority early, a port of letters): exit 2. */
const unparsable = new Set(["unencoded /", "unencoded #", "unencoded ?", "fails to parse"])
/** The rows whose query sets a mysql2 option a URL may not (a password): refused before connecting, exit 2. */
const refusedParams = new Set(["mariadb ?password=", "mariadb password1"])

describe("hostile URLs (passwords in odd places, malformed URLs) leak on no channel", () => {
  for (const row of hostileUrls) {
    const channels = "config-show (env, file, --origin), health-check (text, json), restore (evidence, metrics)"
    it(`${row.name}: ${channels}`, async () => {
      const cwd = tempDir()
      write(path.join(cwd, "conf.toml"), `[backend]\nbackend = "${backendOf(row.url)}"\nurl = "${row.url}"\n`)
      const env = { CODEX_ARCHIVE_URL: row.url, ...fastRetry }
      // Independent commands: run together to keep the table fast.
      const runs = await Promise.all([
        codexAsync(cwd, ["config-show"], env),
        codexAsync(cwd, ["config-show", "--origin", "--config-file", "conf.toml", "--log-level=debug"], fastRetry),
        codexAsync(cwd, ["health-check", "--log-level=debug"], env),
        codexAsync(cwd, ["health-check", "--json", "--log-format", "json", "--log-level=debug"], env),
        codexAsync(cwd, ["restore", tombstone, "out.txt", "--log-level=debug", ...jsonLogs, ...metrics("m")], env)
      ])
      const [show, origin, health, healthJson, restore] = runs
      expect([show!.code, origin!.code]).toEqual([0, 0])
      if (unparsable.has(row.name)) {
        // No driver could read it: bad input (exit 2) refused before connecting, on one line naming the key.
        for (const failed of [health!, healthJson!, restore!]) {
          expect(failed.code).toBe(2)
          expect(failed.stderr).toMatch(
            /^codex: error: backend\.url: postgres:\/\/\*\*\*@[^\n]*: not a valid URL \([^\n]*\n$/
          )
        }
      } else if (refusedParams.has(row.name)) {
        for (const failed of [health!, healthJson!, restore!]) {
          expect(failed.code).toBe(2)
          expect(failed.stderr).toMatch(
            /^codex: error: backend\.url: mariadb:\/\/\*\*\*@[^\n]* query parameter 'password1?' is not one of the mysql2 options a URL may set \([^\n]*\n$/
          )
        }
      } else {
        // The failing commands still said what failed, on one line naming the redacted URL.
        for (const failed of [health!, healthJson!, restore!]) {
          expect(failed.code).toBe(1)
          expect(failed.stderr).toMatch(/codex: error: .*(postgres|postgresql|mysql|mariadb):\/\/\*\*\*/)
        }
        expect(health!.stdout).toContain("(credentials redacted)")
        expect(JSON.parse(healthJson!.stdout).url).toContain("(credentials redacted)")
        const failure = evidence(cwd).find((r) => r.action === "RESTORE_FAIL")
        expect(failure?.url).toMatch(/^[a-z]+:\/\/\*\*\*@/)
      }
      expect(fs.existsSync(path.join(cwd, "m.prom"))).toBe(true)
      expect(leaksIn(everything(cwd, runs), row)).toEqual([])
    })
  }
})

describe("an unknown secret-named key in a config file is not echoed by its warning", () => {
  it("config-show (stdout's warnings, stderr) and a command's stderr hide `client.password = '...'`", async () => {
    const cwd = tempDir()
    const secret = "Pw-planted-secret"
    write(path.join(cwd, "conf.toml"), `[client]\nuser = "debian"\npassword = "${secret}"\napi_key = "${secret}2"\n`)
    const runs = await Promise.all([
      codexAsync(cwd, ["config-show", "--config-file", "conf.toml"]),
      codexAsync(cwd, ["list", "--config-file", "conf.toml"])
    ])
    for (const r of runs) {
      expect(r.stderr).toContain("client.password = '***' from")
      expect(r.stderr).toContain("client.user = 'debian' from")
      expect(`${r.stdout}${r.stderr}`).not.toContain(secret)
    }
    expect(JSON.parse(runs[0]!.stdout).warnings).toContainEqual(expect.stringContaining("client.api_key = '***' from"))
  })
})

describe("a URL the configuration rejects is redacted in the error that names it", () => {
  it("from a config file and from --url: exit 2, the key named, the password nowhere", async () => {
    const cwd = tempDir()
    const secret = "PwBad spaced@secret"
    write(path.join(cwd, "conf.toml"), `[backend]\nurl = "pg://u:${secret}@h/db?password=${secret}"\n`)
    const runs = await Promise.all([
      codexAsync(cwd, ["config-show", "--config-file", "conf.toml"]),
      codexAsync(cwd, ["list", "--url", `ftp://u:${secret}@h/db?sslpassword=${secret}`])
    ])
    for (const r of runs) {
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/codex: error: invalid configuration: backend\.url .*/)
      expect(r.stderr).toMatch(/got '(pg|ftp):\/\/\*\*\*@h\/db\?\*\*\*'/)
    }
    const row = { name: "rejected", url: "", secrets: [secret, "spaced", "secret"] }
    expect(leaksIn(everything(cwd, runs), row)).toEqual([])
  })
})

describe("a SQLite URL with a user or password part", () => {
  it("is refused (exit 2, one line, redacted) before anything is created; its secret on no channel", () => {
    const cwd = tempDir()
    write(path.join(cwd, "conf.toml"), "[backend]\nurl = \"sqlite://user:SqPw8@/tmp/x.sqlite\"\n")
    const env = { CODEX_ARCHIVE_URL: "sqlite://user:SqPw8@/tmp/x.sqlite" }
    const runs = [
      codex(cwd, ["config-show"], env),
      codex(cwd, ["config-show", "--origin"], env),
      codex(cwd, ["init"], env),
      codex(cwd, ["init", "--config-file", "conf.toml"]),
      codex(cwd, ["list", "--url", "sqlite://user:SqPw8@/tmp/x.sqlite"])
    ]
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(
        /^codex: error: invalid configuration: backend\.url \(.*\): got 'sqlite:\/\/\*\*\*@\/tmp\/x\.sqlite', a user or password part in a SQLite URL; sqlite URLs take a path only: .*\n$/
      )
    }
    expect(fs.readdirSync(cwd)).toEqual(["conf.toml"])
    expect(everything(cwd, runs)).not.toContain("SqPw8")
  })
})

describe("a URL missing the `//` after its scheme still has its password redacted", () => {
  it("config-show, health-check (text, json), list, and the config error of a file's rejected URL", async () => {
    const cwd = tempDir()
    const secret = "PwLoneScheme-9"
    const lone = `postgresql:/u:${secret}@127.0.0.1:1/db`
    write(path.join(cwd, "conf.toml"), `[backend]\nurl = "u:${secret}@h/db"\n`)
    const env = { CODEX_ARCHIVE_URL: lone, ...fastRetry }
    const runs = await Promise.all([
      codexAsync(cwd, ["config-show"], env),
      codexAsync(cwd, ["config-show"], { ...fastRetry, CODEX_ARCHIVE_URL: `postgres//u:${secret}@h/db` }),
      codexAsync(cwd, ["health-check", "--log-level=debug"], env),
      codexAsync(cwd, ["health-check", "--json"], env),
      codexAsync(cwd, ["list", "--log-level=debug"], env),
      codexAsync(cwd, ["config-show", "--config-file", "conf.toml"])
    ])
    // Without `//` it is no PostgreSQL URL: bad input, refused before connecting.
    expect(runs.map((r) => r.code)).toEqual([0, 0, 2, 2, 2, 2])
    for (const r of runs.slice(2, 5)) {
      expect(r.stderr).toBe(
        "codex: error: backend.url: postgresql:/***@127.0.0.1:1/db: not a PostgreSQL URL (expected postgres:// or postgresql://)\n"
      )
    }
    expect(runs[5]!.stderr).toMatch(/codex: error: invalid configuration: backend\.url/)
    const row = { name: "lone scheme", url: lone, secrets: [secret] }
    expect(leaksIn(everything(cwd, runs), row)).toEqual([])
  })
})

describe("secrets in a working PostgreSQL URL leak on no channel", () => {
  const secrets = ["PwReal with@odd/chars", "PwReal-ssl-secret"]
  const row = { name: "working", url: "", secrets }

  it("store, list, restore, verify, batch-restore (results, metrics), health-check, config-show", () => {
    const db = `codex_redact_${process.pid}`
    const psql = (sql: string) => {
      const r = spawnSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-c", sql], { encoding: "utf8" })
      if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`)
    }
    psql(`CREATE DATABASE ${db}`)
    try {
      // Trust authentication ignores the password, so the URL works and every success path runs with it.
      const userinfo = `postgres:${encodeURIComponent(secrets[0]!)}`
      const url = `postgres://${userinfo}@127.0.0.1:5432/${db}?sslpassword=${secrets[1]}`
      const cwd = tempDir()
      write(path.join(cwd, "f.txt"), "content\n")
      const env = { CODEX_ARCHIVE_URL: url }
      const store = codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--log-level=debug"], env)
      expect(store.code, store.stderr).toBe(0)
      const id = JSON.parse(store.stdout).tombstone as string
      write(path.join(cwd, "manifest.json"), JSON.stringify([{ tombstone: id, output: "out/a.txt" }]))
      const runs = [
        store,
        codex(cwd, ["list", "--log-level=debug"], env),
        codex(cwd, ["restore", id, "r.txt", "--log-level=debug", ...jsonLogs, ...metrics("m")], env),
        codex(cwd, ["verify", id, "--log-level=debug"], env),
        codex(cwd, ["batch-restore", "manifest.json", "--log-level=debug", ...results, ...metrics("b")], env),
        codex(cwd, ["batch-restore", "manifest.json", "--results", "results.csv", "--force"], env),
        codex(cwd, ["health-check", "--log-level=debug"], env),
        codex(cwd, ["health-check", "--json"], env),
        codex(cwd, ["config-show", "--origin"], env)
      ]
      runs.forEach((r, i) => expect(r.code, `run ${i}: ${r.stderr}`).toBe(0))
      expect(fs.readFileSync(path.join(cwd, "out/a.txt"), "utf8")).toBe("content\n")
      for (const file of ["m.prom", "b.prom", "results.json", "results.csv"]) {
        expect(fs.existsSync(path.join(cwd, file)), file).toBe(true)
      }
      expect(evidence(cwd).map((r) => r.action)).toEqual(expect.arrayContaining(["ARCHIVE", "RESTORE"]))
      expect(leaksIn(everything(cwd, runs), row)).toEqual([])
    } finally {
      psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
    }
  })
})
