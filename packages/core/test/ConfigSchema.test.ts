import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import * as ConfigSchema from "../src/ConfigSchema.js"

const field = (key: string) => ConfigSchema.fieldByKey.get(key)!
const place = (lenient: boolean): ConfigSchema.Place => ({
  baseDir: "/etc/codex",
  cwd: "/work",
  fromFile: true,
  lenient
})
const decode = (key: string, value: unknown, lenient: boolean) =>
  Either.mapLeft(
    Schema.decodeUnknownEither(ConfigSchema.schemaOf(field(key), place(lenient)))(value),
    ParseResult.TreeFormatter.formatErrorSync
  )

describe("ConfigSchema", () => {
  it("a value accepted as written decodes to what is used, with nothing tolerated", () => {
    expect(decode("retry.max_attempts", " 1_000 ", false)).toEqual(Either.right({ value: 1000 }))
    expect(decode("backend.backend", "MariaDB", true)).toEqual(Either.right({ value: "mariadb" }))
    expect(decode("retry.enabled", " Off ", false)).toEqual(Either.right({ value: false }))
    expect(decode("evidence.dir", "ev", false)).toEqual(Either.right({ value: "/etc/codex/ev" }))
  })

  it("what the original tool tolerates decodes only where it is lenient, saying why", () => {
    expect(decode("batch.concurrent", 0, true)).toEqual(
      Either.right({ value: 1, tolerated: "below 1, the original tool runs as with 1" })
    )
    expect(decode("batch.concurrent", 0, false)).toEqual(Either.left("got 0, expected a whole number from 1 to 256"))
    expect(decode("batch.concurrent", 1e8, true)).toEqual(
      Either.right({ value: 256, tolerated: "above 256, it runs as with 256" })
    )
    expect(decode("backend.backend", "mysql", true)).toEqual(
      Either.right({ value: "mariadb", tolerated: "the original tool accepts only sqlite, postgres, mariadb" })
    )
    expect(decode("logging.evidence_file", "logs/x.log", true)).toEqual(
      Either.right({
        value: "/etc/codex/logs/x.log",
        tolerated: "relative to the config file's folder (the original tool: to the working folder)"
      })
    )
  })

  it("a refused value's error is the whole problem: what was given and what was expected", () => {
    expect(decode("retry.multiplier", -2, true)).toEqual(Either.left("got -2, expected a number >= 1"))
    expect(decode("logging.level", 3, true)).toEqual(
      Either.left("got 3, expected one of debug, info, warning, error")
    )
    expect(decode("backend.url", " ", true)).toEqual(
      Either.left(`got ' ', expected ${ConfigSchema.urlExpected} (the archive URL must be provided)`)
    )
    expect(decode("evidence.hmac_key", "", false)).toEqual(Either.left("expected a non-empty string"))
  })

  it("a value is shown on one line, whatever it holds: control characters escaped, nan and inf as themselves", () => {
    expect(decode("logging.level", "a\nb", false)).toEqual(
      Either.left(`got "a\\nb", expected one of debug, info, warning, error`)
    )
    expect(ConfigSchema.show("a\u2028b")).toBe(`"a\\u2028b"`)
    expect(ConfigSchema.show("a\u009bb")).toBe(`"a\\u009bb"`)
    expect(decode("retry.jitter", Number.NaN, false)).toEqual(Either.left("got NaN, expected a number from 0 to 1"))
    expect(decode("store.inline_limit", Number.POSITIVE_INFINITY, false)).toEqual(
      Either.left("got Infinity, expected a whole number >= 0")
    )
  })

  it("every default decodes as written", () => {
    for (const f of ConfigSchema.fields.filter((f) => f.default !== null)) {
      expect(Either.isRight(decode(f.key, f.default, false))).toBe(true)
    }
  })
})
