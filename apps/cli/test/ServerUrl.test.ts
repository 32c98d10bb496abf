import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codexAsync, tempDir, write } from "./support.js"

const secret = "Sekr1t-pw-4711"
const tombstone = "0f0f0f0f-0000-4000-8000-000000000000"

/** A server URL the backend cannot use, and the problem the CLI must name (after the redacted URL). */
const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
  [`postgres://u:${secret}%ZZ@127.0.0.1/db`, "postgres://***@127.0.0.1/db", /malformed %-escape in the password$/],
  [`mysql://u:${secret}%ZZ@127.0.0.1/db`, "mysql://***@127.0.0.1/db", /malformed %-escape in the password$/],
  [`postgres://u%ZZ:${secret}@127.0.0.1/db`, "postgres://***@127.0.0.1/db", /malformed %-escape in the user name$/],
  [`postgres://u:${secret}@h%ZZ/db`, "postgres://***@h%ZZ/db", /malformed %-escape in the host$/],
  [`mysql://u:${secret}@127.0.0.1/d%ZZb`, "mysql://***@127.0.0.1/d%ZZb", /malformed %-escape in the database name$/],
  [`postgres://u:${secret}@127.0.0.1/db%00`, "postgres://***@127.0.0.1/db%00", /database name contains %00/],
  [
    `postgres://u:${secret}@127.0.0.1:99999/db`,
    "postgres://***@127.0.0.1:99999/db",
    /port 99999 is out of range \(expected 1-65535\)$/
  ],
  [`postgres://u:${secret}@127.0.0.1:0/db`, "postgres://***@127.0.0.1:0/db", /port 0 is out of range/],
  [`postgres://u:${secret}@[::1]:70000/db`, "postgres://***@[::1]:70000/db", /port 70000 is out of range/],
  [
    `mysqlx://u:${secret}@127.0.0.1/db`,
    "mysqlx://***@127.0.0.1/db",
    /not a MariaDB URL \(expected mysql:\/\/ or mariadb:\/\/\)$/
  ],
  [`mariadb://u:${secret}@127.0.0.1:3306`, "mariadb://***@127.0.0.1:3306", /the URL names no database/],
  [
    `mysql://u:${secret}@127.0.0.1/db?connectTimeout=5000&foo=1`,
    "mysql://***@127.0.0.1/db?connectTimeout=5000&foo=1",
    /: query parameter 'foo' is not one of the mysql2 options a URL may set \(charset, .*, waitForConnections\)$/
  ],
  [`postgres://u:${secret}@127.0.0.1/d\nb`, "postgres://***@127.0.0.1/d", /line break or another control character$/],
  [`postgres://u:${secret}/x@127.0.0.1:1/db`, "postgres://***@127.0.0.1:1/db", /not a valid URL \(check the port/]
]

describe("a server URL its backend cannot use is bad input, named before connecting", () => {
  for (const [url, shown, problem] of cases) {
    it(`${JSON.stringify(url.replace(secret, "PW"))}: exit 2, one line naming backend.url and the problem`, async () => {
      const cwd = tempDir()
      write(path.join(cwd, "f.txt"), "x\n")
      const env = { CODEX_ARCHIVE_URL: url }
      const runs = await Promise.all([
        codexAsync(cwd, ["list"], env),
        codexAsync(cwd, ["store", "r", "f.txt", "--commit", "x", "--log-level=debug"], env),
        codexAsync(cwd, ["restore", tombstone, "out.txt", "--log-format", "json", "--log-level=debug"], env),
        codexAsync(cwd, ["health-check", "--json"], env),
        codexAsync(cwd, ["list", "--url", url])
      ])
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(2)
        expect(r.stdout).toBe("")
        const lines = r.stderr.split("\n").filter(Boolean)
        expect(lines).toHaveLength(1)
        expect(lines[0]!.startsWith(`codex: error: backend.url: ${shown}`)).toBe(true)
        expect(lines[0]).toMatch(problem)
      }
      const show = await codexAsync(cwd, ["config-show"], env)
      expect(show.code, show.stderr).toBe(0)
      const files = (fs.readdirSync(cwd, { recursive: true }) as Array<string>)
        .map((f) => path.join(cwd, f))
        .filter((f) => fs.statSync(f).isFile())
        .map((f) => fs.readFileSync(f, "latin1"))
      expect([...runs, show].map((r) => r.stdout + r.stderr).concat(files).join("\n")).not.toContain(secret)
    })
  }

  it("a config file's URL is checked the same way; an IPv6 host still parses (and is tried)", async () => {
    const cwd = tempDir()
    write(path.join(cwd, "conf.toml"), `[backend]\nbackend = "postgres"\nurl = "postgres://u:${secret}%ZZ@h/db"\n`)
    const env = { CODEX_ARCHIVE_RETRY_ATTEMPTS: "1" }
    const [bad, ipv6] = await Promise.all([
      codexAsync(cwd, ["list", "--config-file", "conf.toml"]),
      codexAsync(cwd, ["list"], { ...env, CODEX_ARCHIVE_URL: `postgres://u:${secret}@[::1]:1/db` })
    ])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe("codex: error: backend.url: postgres://***@h/db: malformed %-escape in the password\n")
    // Connection refused: an operation that failed, not bad input.
    expect(ipv6.code, ipv6.stderr).toBe(1)
    expect(ipv6.stderr).toMatch(/^codex: error: .*postgres:\/\/\*\*\*@\[::1\]:1\/db/)
    expect(bad.stderr + ipv6.stderr).not.toContain(secret)
  })
})
