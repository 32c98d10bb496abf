/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) built only from 32-bit integer operations, so the
 * same seed yields the same sequence on every machine and Node version (no Math.random, no transcendental math).
 */

export interface Prng {
  /** A uniform 32-bit unsigned integer. */
  readonly next: () => number
  /** A uniform integer in [0, n) for 0 < n <= 2^21 (multiply-shift, exact in doubles). */
  readonly below: (n: number) => number
  /** A uniform integer in [lo, hi]. */
  readonly between: (lo: number, hi: number) => number
  /** A uniform float in [0, 1) with 32 bits of precision (exact in doubles). */
  readonly unit: () => number
  /** One element of a non-empty array. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** Fills `out` with uniform bytes. */
  readonly fill: (out: Uint8Array) => void
}

const splitmix32 = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
}

/** Mixes several integers (a seed and the indices of a stream) into one 32-bit seed. */
export const mix = (...parts: ReadonlyArray<number>): number => {
  let h = 0x811c9dc5
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0
  }
  return h >>> 0
}

export const make = (seed: number): Prng => {
  const sm = splitmix32(seed)
  let a = sm(), b = sm(), c = sm(), d = sm()
  if ((a | b | c | d) === 0) a = 1
  const next = () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return result
  }
  const below = (n: number) => Math.floor((next() * n) / 4294967296)
  const fill = (out: Uint8Array) => {
    const words = out.length >>> 2
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    for (let i = 0; i < words; i++) view.setUint32(i * 4, next(), true)
    for (let i = words * 4; i < out.length; i++) out[i] = next() & 0xff
  }
  return {
    next,
    below,
    between: (lo, hi) => lo + below(hi - lo + 1),
    unit: () => next() / 4294967296,
    pick: (items) => items[below(items.length)]!,
    fill
  }
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0
