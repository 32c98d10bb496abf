/**
 * Binary content: incompressible (uniform bytes, like media or already-compressed files) and semi-compressible
 * (fixed-size records with counters, small enums and random fields, like database pages or uncompressed images).
 */
import type { Prng } from "../Prng.js"

export const random = (rng: Prng, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  rng.fill(out)
  return out
}

/** 32-byte records: a counter, a slowly rising stamp, small enums, 12 random bytes and 8 bytes of zero padding. */
export const records = (rng: Prng, size: number): Uint8Array => {
  const out = new Uint8Array(Math.ceil(size / 32) * 32)
  const view = new DataView(out.buffer)
  let stamp = rng.next()
  const noise = new Uint8Array(12)
  for (let offset = 0, i = 0; offset < out.length; offset += 32, i++) {
    view.setUint32(offset, i, true)
    stamp = (stamp + rng.below(64)) >>> 0
    view.setUint32(offset + 4, stamp, true)
    out[offset + 8] = rng.below(4)
    out[offset + 9] = rng.below(16)
    view.setUint16(offset + 10, rng.below(3) === 0 ? rng.below(65536) : 0, true)
    rng.fill(noise)
    out.set(noise, offset + 12)
  }
  return out.subarray(0, size)
}
