/**
 * Decompression bombs for tests: payloads a few KB long that decode to far more than their item's recorded size.
 * The zstd ones are written by hand (RLE blocks: 4 bytes per 128 KiB of zeros), so a 1 GiB bomb costs no CPU to make.
 */
import * as zlib from "node:zlib"

const rleBlock = 128 * 1024

/**
 * One zstd frame of `bytes` zeros. `claim` is the content size its header states: the truth by default, a lie when
 * given, or none at all ("none").
 */
export const zstdZeros = (bytes: number, claim: number | "none" = bytes): Buffer => {
  const blocks = Math.max(1, Math.ceil(bytes / rleBlock))
  // Magic, frame header descriptor (8-byte content size, or none), window descriptor (128 KiB window).
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, claim === "none" ? 0x00 : 0xc0, 0x38])
  const size = Buffer.alloc(claim === "none" ? 0 : 8)
  if (claim !== "none") size.writeBigUInt64LE(BigInt(claim))
  const body = Buffer.alloc(blocks * 4)
  for (let i = 0; i < blocks; i++) {
    const n = Math.min(rleBlock, bytes - i * rleBlock)
    // Block header: last-block bit, type 1 (RLE), regenerated size; then the byte to repeat.
    body.writeUIntLE((n << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0), i * 4, 3)
    body[i * 4 + 3] = 0
  }
  return Buffer.concat([header, size, body])
}

/** `frames` zstd frames of `bytes` zeros each, back to back (each frame's claim alone may look harmless). */
export const zstdFrames = (frames: number, bytes: number, claim: number | "none" = bytes): Buffer =>
  Buffer.concat(Array.from({ length: frames }, () => zstdZeros(bytes, claim)))

/** A zlib stream of `bytes` zeros (64 MiB deflates to ~64 KB, in well under a second). */
export const zlibZeros = (bytes: number): Buffer => zlib.deflateSync(Buffer.alloc(bytes), { level: 9 })

export const MiB = 1024 * 1024
