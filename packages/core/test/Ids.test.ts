import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import { Ids } from "../src/index.js"

const decode = <A>(schema: Schema.Schema<A, string>, value: string) =>
  Either.mapLeft(
    Schema.decodeUnknownEither(schema)(value),
    (error) => ParseResult.ArrayFormatter.formatErrorSync(error)[0]!.message
  )

describe("Ids as Schemas from text", () => {
  it("decode through the id's one decoder: normalised as it normalises, refused with its error", () => {
    const id = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
    expect(decode(Ids.TombstoneIdFromString, ` ${id.toUpperCase()} `)).toEqual(Either.right(id))
    expect(decode(Ids.TombstoneIdFromString, `../${id}`)).toEqual(
      Either.left(Ids.decodeTombstoneId(`../${id}`).pipe(Either.flip, Either.getOrThrow).message)
    )
    expect(decode(Ids.Sha256FromString, "A".repeat(64))).toEqual(Either.right("a".repeat(64)))
    expect(decode(Ids.Sha256FromString, "a".repeat(63))).toEqual(
      Either.left(`'${"a".repeat(63)}' is not a sha256 (expected 64 hex digits)`)
    )
  })

  it("a long refused value is shown cut to its first 80 characters, keeping the error one short line", () => {
    expect(decode(Ids.TombstoneIdFromString, "x".repeat(40_000))).toEqual(
      Either.left(
        `'${"x".repeat(80)}…' is not a tombstone id (expected a UUID like 3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f)`
      )
    )
    expect(decode(Ids.Sha256FromString, "g".repeat(200))).toEqual(
      Either.left(`'${"g".repeat(80)}…' is not a sha256 (expected 64 hex digits)`)
    )
  })
})
