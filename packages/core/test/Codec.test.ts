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
      expect(Buffer.from(yield* Codec.decompress(codec, zlib.deflateSync(text, { level: 9 }), text.length))).toEqual(text)
    }))

  it.effect("an empty or NULL codec means the default; an unknown one is named", () =>
    Effect.gen(function*() {
      expect((yield* Codec.forName(null)).name).toBe("zstd")
      expect((yield* Codec.forName(" ")).name).toBe("zstd")
      expect((yield* Effect.flip(Codec.forName("lz4"))).message).toBe("unsupported compression codec 'lz4' (this archive can read: zstd, zlib)")
    }))

  it.effect("corrupt data is a typed failure, not a thrown exception", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Codec.decompress(yield* Codec.forName("zstd"), Buffer.from("not zstd at all"), 100))
      expect(error._tag).toBe("CorruptPayload")
      expect(error.message).toMatch(/^payload cannot be decoded with codec 'zstd': /)
    }))

  describe("decoding is bounded by the recorded size (decompression bombs)", () => {
    const failure = (codec: Codec.CodecName, data: Uint8Array, limit: number) =>
      Effect.gen(function*() {
        return yield* Effect.flip(Codec.decompress(yield* Codec.forName(codec), data, limit, "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"))
      })

    it.effect("64 MiB of zeros in a 5-byte item's payload is corrupt, naming the tombstone (zstd and zlib)", () =>
      Effect.gen(function*() {
        for (const [codec, bomb] of [["zstd", zstdZeros(64 * MiB)], ["zlib", zlibZeros(64 * MiB)]] as const) {
          expect(bomb.length).toBeLessThan(100 * 1024)
          const error = yield* failure(codec, bomb, 5)
          expect(error._tag).toBe("CorruptPayload")
          expect(error.message).toMatch(new RegExp(`^payload of tombstone 3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f cannot be decoded with codec '${codec}': `))
          expect(error.message).toMatch(/the recorded 5( bytes)?$/)
        }
      }))

    it.effect("a frame that claims more than the recorded size is refused before any output buffer is made", () =>
      Effect.gen(function*() {
        // 2^40 bytes claimed: allocating from the claim would throw (or, below the buffer limit, reserve it).
        expect((yield* failure("zstd", zstdZeros(5, 2 ** 40), 5)).detail).toBe(`its zstd frame claims ${2 ** 40} bytes, more than the recorded 5`)
        expect((yield* failure("zstd", zstdZeros(5, 6), 5)).detail).toBe("its zstd frame claims 6 bytes, more than the recorded 5")
      }))

    it.effect("concatenated frames and frames that state no size stream into the budget and stop one byte past it", () =>
      Effect.gen(function*() {
        // Each frame's claim (1 MiB) is within the limit; together they are 64 MiB.
        expect((yield* failure("zstd", zstdFrames(64, MiB), MiB)).detail).toBe(`it decodes to more than the recorded ${MiB} bytes`)
        expect((yield* failure("zstd", zstdFrames(5, 1, "none"), 4)).detail).toBe("it decodes to more than the recorded 4 bytes")
        expect((yield* failure("zstd", zstdZeros(64 * MiB, "none"), 5)).detail).toBe("it decodes to more than the recorded 5 bytes")
        // A frame cut short is corrupt too, not a hang.
        expect((yield* failure("zstd", zstdZeros(5, "none").subarray(0, 8), 5)).detail).toBe("the zstd frame is truncated")
      }))

    it.effect("content within the limit still decodes, whatever its framing", () =>
      Effect.gen(function*() {
        const zstd = yield* Codec.forName("zstd")
        // Buffer.equals, not toEqual: vitest compares megabytes element by element (seconds).
        const zeros = (decoded: Uint8Array, n: number) => expect(Buffer.from(decoded).equals(Buffer.alloc(n))).toBe(true)
        zeros(yield* Codec.decompress(zstd, zstdFrames(3, 100, "none"), 300), 300)
        zeros(yield* Codec.decompress(zstd, zstdFrames(3, 100), 300), 300)
        zeros(yield* Codec.decompress(zstd, zstdZeros(3 * MiB, "none"), 3 * MiB), 3 * MiB)
        zeros(yield* Codec.decompress(zstd, Codec.compress(zstd, new Uint8Array()), 0), 0)
        const zlibCodec = yield* Codec.forName("zlib")
        zeros(yield* Codec.decompress(zlibCodec, zlibZeros(MiB), MiB), MiB)
        zeros(yield* Codec.decompress(zlibCodec, zlibZeros(0), 0), 0)
        expect((yield* Effect.flip(Codec.decompress(zlibCodec, zlibZeros(1), 0))).detail).toBe("it decodes to more than the recorded 0 bytes")
      }))
  })
})
