import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as zlib from "node:zlib"
import { Codec } from "../src/index.js"

const text = Buffer.from("export const answer = 42\n".repeat(500))

describe("Codec", () => {
  it.effect("round-trips zstd and zlib, and compresses source text", () =>
    Effect.gen(function*() {
      for (const name of Codec.names) {
        const codec = yield* Codec.forName(name)
        const packed = Codec.compress(codec, text)
        expect(packed.length).toBeLessThan(text.length / 10)
        expect(Buffer.from(yield* Codec.decompress(codec, packed))).toEqual(text)
      }
    }))

  it.effect("reads zlib streams written by another implementation (RFC 1950, level 9)", () =>
    Effect.gen(function*() {
      const codec = yield* Codec.forName("zlib")
      expect(Buffer.from(yield* Codec.decompress(codec, zlib.deflateSync(text, { level: 9 })))).toEqual(text)
    }))

  it.effect("an empty or NULL codec means the default; an unknown one is named", () =>
    Effect.gen(function*() {
      expect((yield* Codec.forName(null)).name).toBe("zstd")
      expect((yield* Codec.forName(" ")).name).toBe("zstd")
      expect((yield* Effect.flip(Codec.forName("lz4"))).message).toBe("unsupported compression codec 'lz4' (this archive can read: zstd, zlib)")
    }))

  it.effect("corrupt data is a typed failure, not a thrown exception", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Codec.decompress(yield* Codec.forName("zstd"), Buffer.from("not zstd at all")))
      expect(error._tag).toBe("CorruptPayload")
      expect(error.message).toMatch(/^payload cannot be decoded with codec 'zstd': /)
    }))
})
