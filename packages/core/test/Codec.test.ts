import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as zlib from "node:zlib"
import { Codec } from "../src/index.js"
import { MiB, zlibZeros, zstdFrames, zstdZeros } from "./bombs.js"

const text = Buffer.from("export const answer = 42\n".repeat(500))

describe("Codec", () => {
  it.effect("round-trips zstd and zlib, and compresses source text", () =>
    Effect.gen(function*() {
      for (const name of Codec.names) {
        const codec = yield* Codec.forName(name)
        const packed = Codec.compress(codec, text)
        expect(packed.length).toBeLessThan(text.length / 10)
        expect(Buffer.from(yield* Codec.decompress(codec, packed, text.length))).toEqual(text)
      }
    }))

  it.effect("reads zlib streams written by another implementation (RFC 1950, level 9)", () =>
    Effect.gen(function*() {
      const codec = yield* Codec.forName("zlib")
      const legacy = zlib.deflateSync(text, { level: 9 })
      expect(Buffer.from(yield* Codec.decompress(codec, legacy, text.length))).toEqual(text)
    }))

  it.effect("an empty or NULL codec means the default; an unknown one is named", () =>
    Effect.gen(function*() {
      expect((yield* Codec.forName(null)).name).toBe("zstd")
      expect((yield* Codec.forName(" ")).name).toBe("zstd")
      expect((yield* Effect.flip(Codec.forName("lz4"))).message).toBe(
        "unsupported compression codec 'lz4' (this archive can read: zstd, zlib)"
      )
    }))

  it.effect("corrupt data is a typed failure, not a thrown exception", () =>
    Effect.gen(function*() {
      const zstd = yield* Codec.forName("zstd")
      const error = yield* Effect.flip(Codec.decompress(zstd, Buffer.from("not zstd at all"), 100))
      expect(error._tag).toBe("CorruptPayload")
      expect(error.message).toMatch(/^payload cannot be decoded with codec 'zstd': /)
    }))

  describe("decoding is bounded by the recorded size (decompression bombs)", () => {
    const tombstone = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
    const failure = (codec: Codec.CodecName, data: Uint8Array, limit: number) =>
      Effect.flatMap(Codec.forName(codec), (c) => Effect.flip(Codec.decompress(c, data, limit, tombstone)))
    const allows = (n: number, what: "bytes " | "" = "bytes ") => `the ${n} ${what}its record allows`

    it.effect("64 MiB of zeros in a 5-byte item's payload is corrupt, naming the tombstone (zstd and zlib)", () =>
      Effect.gen(function*() {
        for (const [codec, bomb] of [["zstd", zstdZeros(64 * MiB)], ["zlib", zlibZeros(64 * MiB)]] as const) {
          expect(bomb.length).toBeLessThan(100 * 1024)
          const error = yield* failure(codec, bomb, 5)
          expect(error._tag).toBe("CorruptPayload")
          expect(error).toMatchObject({ codec, tombstone })
          expect(error.message).toMatch(new RegExp(`^payload of tombstone ${tombstone} cannot be decoded with codec`))
          expect(error.message).toMatch(/the 5 (bytes )?its record allows$/)
        }
      }))

    it.effect("a frame that claims more than the recorded size is refused before any output buffer is made", () =>
      Effect.gen(function*() {
        // 2^40 bytes claimed: allocating from the claim would throw (or, below the buffer limit, reserve it).
        const claims = (n: number) => `its zstd frame claims ${n} bytes, more than ${allows(5, "")}`
        expect((yield* failure("zstd", zstdZeros(5, 2 ** 40), 5)).detail).toBe(claims(2 ** 40))
        expect((yield* failure("zstd", zstdZeros(5, 6), 5)).detail).toBe(claims(6))
      }))

    it.effect("concatenated frames and frames that state no size stream into the budget, stopping one byte past", () =>
      Effect.gen(function*() {
        // Each frame's claim (1 MiB) is within the limit; together they are 64 MiB.
        const detail = (data: Uint8Array, limit: number) => Effect.map(failure("zstd", data, limit), (e) => e.detail)
        expect(yield* detail(zstdFrames(64, MiB), MiB)).toBe(`it decodes to more than ${allows(MiB)}`)
        expect(yield* detail(zstdFrames(5, 1, "none"), 4)).toBe(`it decodes to more than ${allows(4)}`)
        expect(yield* detail(zstdZeros(64 * MiB, "none"), 5)).toBe(`it decodes to more than ${allows(5)}`)
        // A frame cut short is corrupt too, not a hang.
        expect(yield* detail(zstdZeros(5, "none").subarray(0, 8), 5)).toBe("the zstd frame is truncated")
      }))

    it.effect("content within the limit still decodes, whatever its framing", () =>
      Effect.gen(function*() {
        const zstd = yield* Codec.forName("zstd")
        // Buffer.equals, not toEqual: vitest compares megabytes element by element (seconds).
        const zeros = (decoded: Uint8Array, n: number) =>
          expect(Buffer.from(decoded).equals(Buffer.alloc(n))).toBe(true)
        zeros(yield* Codec.decompress(zstd, zstdFrames(3, 100, "none"), 300), 300)
        zeros(yield* Codec.decompress(zstd, zstdFrames(3, 100), 300), 300)
        zeros(yield* Codec.decompress(zstd, zstdZeros(3 * MiB, "none"), 3 * MiB), 3 * MiB)
        zeros(yield* Codec.decompress(zstd, Codec.compress(zstd, new Uint8Array()), 0), 0)
        const zlibCodec = yield* Codec.forName("zlib")
        zeros(yield* Codec.decompress(zlibCodec, zlibZeros(MiB), MiB), MiB)
        zeros(yield* Codec.decompress(zlibCodec, zlibZeros(0), 0), 0)
        expect((yield* failure("zlib", zlibZeros(1), 0)).detail).toBe(`it decodes to more than ${allows(0)}`)
      }))
  })
})
