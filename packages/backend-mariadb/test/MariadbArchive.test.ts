import { ArchiveStore, Retry } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import { MariadbArchive } from "../src/index.js"
import { fresh } from "./helpers.js"

const open = (url: string | Redacted.Redacted<string>, create = true) =>
  Effect.exit(Effect.flatMap(ArchiveStore.ArchiveStore, (s) => s.probe).pipe(
    Effect.provide(MariadbArchive.layer({ url, create, poolSize: 2 }).pipe(Layer.provide(Retry.none)))
  ))

describe("MariadbArchive URLs", () => {
  it("parses credentials (percent-encoded), host, port, database and typed query parameters", () => {
    const target = MariadbArchive.parseUrl("mysql+pymysql://us%40er:p%3Ass@db.example:3307/arch?connectTimeout=5000&compress=true&charset=utf8mb4", 8)!
    expect(target).toMatchObject({
      host: "db.example", port: 3307, database: "arch", user: "us@er", poolSize: 8,
      params: { connectTimeout: 5000, compress: true, charset: "utf8mb4" }
    })
    expect(Redacted.value(target.password!)).toBe("p:ss")
    expect(MariadbArchive.parseUrl("mariadb://h/db")).toMatchObject({ port: 3306, user: undefined, password: undefined })
    expect(MariadbArchive.parseUrl("postgres://h/db")).toBeUndefined()
  })

  it.live("opens mysql:// and mariadb:// forms, a Redacted URL and query parameters", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* fresh
      const mariadb = url.replace(/^mysql:/, "mariadb:")
      for (const form of [url, mariadb, Redacted.make(mariadb), `${url}?connectTimeout=5000`]) {
        expect(Exit.isSuccess(yield* open(form))).toBe(true)
      }
    })))

  it.live("a missing database is NotAnArchive naming the URL redacted", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = new URL(yield* fresh)
      url.pathname = "/codex_test_no_such_db"
      const missing = yield* open(url.toString())
      const error = Exit.isFailure(missing) ? Cause.squash(missing.cause) as Error : undefined
      expect(error?.message).toMatch(/^mysql:\/\/(\*\*\*@)?127\.0\.0\.1:3306\/codex_test_no_such_db: the database does not exist/)
    })))
})
