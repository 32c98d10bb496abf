import { describe, expect, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import { ServerUrl } from "../src/index.js"
import { hostileUrls } from "./HostileUrls.js"

const secret = "Sekr1t-pw"
const problem = (url: string, kind = ServerUrl.postgres) => ServerUrl.problemOf(url, kind)

describe("ServerUrl", () => {
  it("reads the decoded parts, the password Redacted", () => {
    const parts = Either.getOrThrow(
      ServerUrl.parse(
        `postgresql://us%40er:${secret}%3A@db.example:6543/arch%2Dive?sslmode=disable`,
        ServerUrl.postgres
      )
    )
    expect(parts).toMatchObject({ host: "db.example", port: 6543, database: "arch-ive", user: "us@er" })
    expect(Redacted.value(parts.password!)).toBe(`${secret}:`)
    expect(parts.params).toEqual([["sslmode", "disable"]])
    expect(Either.getOrThrow(ServerUrl.parse("mysql+pymysql://h/db", ServerUrl.mariadb))).toMatchObject({
      host: "h",
      port: undefined,
      database: "db",
      user: undefined,
      password: undefined
    })
  })

  it("an IPv6 host and an empty host (the driver's default) still parse", () => {
    expect(Either.getOrThrow(ServerUrl.parse(`postgres://u:${secret}@[::1]:5432/db`, ServerUrl.postgres)))
      .toMatchObject({ host: "::1", port: 5432, database: "db" })
    expect(Either.getOrThrow(ServerUrl.parse("postgres:///db", ServerUrl.postgres))).toMatchObject({
      host: "",
      database: "db"
    })
    expect(problem("mysql://root@[::1]:3306/test", ServerUrl.mariadb)).toBeUndefined()
  })

  it("names what is wrong, in one sentence", () => {
    expect(problem("mysql://h/db")).toBe("not a PostgreSQL URL (expected postgres:// or postgresql://)")
    expect(problem("postgres:/h/db")).toBe("not a PostgreSQL URL (expected postgres:// or postgresql://)")
    expect(problem("mysqlx://u@h/db", ServerUrl.mariadb)).toBe("not a MariaDB URL (expected mysql:// or mariadb://)")
    expect(problem("postgres://u@127.0.0.1:99999/db")).toBe("port 99999 is out of range (expected 1-65535)")
    expect(problem("postgres://u@127.0.0.1:0/db")).toBe("port 0 is out of range (expected 1-65535)")
    expect(problem("postgres://u@[::1]:70000/db")).toBe("port 70000 is out of range (expected 1-65535)")
    expect(problem("postgres://u@127.0.0.1:notaport/db")).toMatch(/^not a valid URL \(check the port/)
    expect(problem("postgres://u%ZZ@h/db")).toBe("malformed %-escape in the user name")
    expect(problem("postgres://u@h%ZZ/db")).toBe("malformed %-escape in the host")
    expect(problem("postgres://u@h/d%ZZb")).toBe("malformed %-escape in the database name")
    expect(problem("postgres://u@h/db%00")).toBe("the database name contains %00 (a NUL character)")
    expect(problem("postgres://u@h/d\nb")).toBe("the URL contains a line break or another control character")
    expect(problem("mysql://u@h:3306", ServerUrl.mariadb)).toBe(
      "the URL names no database (expected mysql://host:3306/DATABASE)"
    )
    expect(problem("postgres://u@h")).toBeUndefined()
  })

  it("never quotes the password, however it is malformed", () => {
    const urls = [
      `postgres://u:${secret}%ZZ@127.0.0.1/db`,
      `mysql://u:${secret}%ZZ@127.0.0.1/db`,
      `postgres://u:${secret}%00@127.0.0.1/db`,
      `postgres://u:${secret}@127.0.0.1:99999/db`,
      `postgres://u:${secret}/x@127.0.0.1/db`,
      `postgres://u:${secret}#x@127.0.0.1/db`,
      `postgres://u:${secret}\n@127.0.0.1/db`,
      ...hostileUrls.map((row) => row.url)
    ]
    for (const url of urls) {
      const kind = /^postgres/.test(url) ? ServerUrl.postgres : ServerUrl.mariadb
      // The parts may hold a query's secrets (they are the driver's); a problem never does.
      const said = problem(url, kind) ?? ""
      expect(said).not.toContain(secret)
      expect(said).not.toMatch(/Pw\d\d/)
    }
    expect(problem(`postgres://u:${secret}%ZZ@127.0.0.1/db`)).toBe("malformed %-escape in the password")
    expect(problem(`postgres://u:${secret}%00@127.0.0.1/db`)).toBe("the password contains %00 (a NUL character)")
  })

  it("a MariaDB query parameter is refused by its name alone unless a URL may set it; those pass", () => {
    const refused = (name: string) =>
      `query parameter ${name} is not one of the mysql2 options a URL may set (${
        [...ServerUrl.mariadb.params!.options.keys()].join(", ")
      })`
    expect(problem(`mysql://root@127.0.0.1:3306/test?foo=${secret}`, ServerUrl.mariadb)).toBe(refused("'foo'"))
    expect(problem(`mysql://h/db?connectTimeout=5000&ssl_ca=${secret}`, ServerUrl.mariadb)).toBe(refused("'ssl_ca'"))
    expect(problem("mysql://h/db?%1b%5B2J=1", ServerUrl.mariadb)).toBe(refused(`"\\u001b[2J"`))
    // mysql2 options that would reshape the rows the archive reads, or weaken the connection, are refused too.
    for (const name of ["typeCast", "rowsAsArray", "dateStrings", "multipleStatements", "flags", "host", "password"]) {
      expect(problem(`mysql://h/db?${name}=1`, ServerUrl.mariadb), name).toBe(refused(`'${name}'`))
    }
    // Another charset would store a path's UTF-8 as other characters (latin1), unseen by verify.
    for (const charset of ["latin1", "binary", "utf8"]) {
      expect(problem(`mysql://h/db?charset=${charset}`, ServerUrl.mariadb), charset).toBe(
        "query parameter 'charset' must be utf8mb4 or one of its collations (the archive's text is UTF-8)"
      )
    }
    for (const charset of ["utf8mb4", "UTF8MB4_UNICODE_CI", "utf8mb4_0900_ai_ci"]) {
      expect(problem(`mysql://h/db?charset=${charset}`, ServerUrl.mariadb), charset).toBeUndefined()
    }
    expect(
      problem(
        "mysql://h/db?connectTimeout=5000&compress=true&ssl={\"rejectUnauthorized\":true}&socketPath=/run/m.sock",
        ServerUrl.mariadb
      )
    ).toBeUndefined()
    // A value is checked as the driver will get it, and never quoted (it may be a secret).
    const wrong: ReadonlyArray<readonly [string, string]> = [
      ["ssl=true", "query parameter 'ssl' must be a JSON object"],
      ["ssl=secret-profile", "query parameter 'ssl' must be a JSON object"],
      [
        "connectTimeout=abc",
        "query parameter 'connectTimeout' must be a whole number of milliseconds from 0 to 2147483647"
      ],
      [
        "connectTimeout=1e999",
        "query parameter 'connectTimeout' must be a whole number of milliseconds from 0 to 2147483647"
      ],
      [
        "connectTimeout=99999999999",
        "query parameter 'connectTimeout' must be a whole number of milliseconds from 0 to 2147483647"
      ],
      [
        "maxPreparedStatements=-1",
        "query parameter 'maxPreparedStatements' must be a whole number of statements from 1 to 2147483647"
      ],
      ["queueLimit=abc", "query parameter 'queueLimit' must be a whole number of requests from 0 to 2147483647"],
      ["compress=yes", "query parameter 'compress' must be true or false"],
      ["socketPath=", "query parameter 'socketPath' must be a non-empty text"]
    ]
    for (const [query, said] of wrong) expect(problem(`mysql://h/db?${query}`, ServerUrl.mariadb), query).toBe(said)
    // pg ignores a parameter it does not know, quietly: nothing to refuse.
    expect(problem("postgres://h/db?foo=1")).toBeUndefined()
  })
})
