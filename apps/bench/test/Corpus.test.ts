import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as Corpus from "../src/Corpus.js"
import * as Prng from "../src/Prng.js"
import { tempDir } from "./helpers.js"

const zstd = createRequire(import.meta.url)("zstd-napi") as {
  compress: (b: Uint8Array, o: { compressionLevel: number }) => Buffer
}

describe("Corpus", () => {
  it("gives the same bytes and digest for the same seed", () => {
    const a = Corpus.write(Corpus.plan(60, 7), tempDir())
    const b = Corpus.write(Corpus.plan(60, 7), tempDir())
    expect(a.digest).toBe(b.digest)
    for (const [i, f] of a.files.entries()) {
      expect(fs.readFileSync(f.absolute).equals(fs.readFileSync(b.files[i]!.absolute))).toBe(true)
    }
  })

  it("gives a different digest for a different seed", () => {
    expect(Corpus.write(Corpus.plan(60, 7), tempDir()).digest).not.toBe(
      Corpus.write(Corpus.plan(60, 8), tempDir()).digest
    )
  })

  it("pins the digest of a seed, so every machine and Node version must produce these exact bytes", () => {
    expect(Corpus.write(Corpus.plan(40, 7), tempDir()).digest).toBe(
      "f0b508abe9a7bf3ef4a14515fe8b822d6ea2d845eb50fc92142e2e8ba80cdfa3"
    )
  })

  it("digests what is on disk: hashing the written files again gives the same digest", () => {
    const corpus = Corpus.write(Corpus.plan(30, 3), tempDir())
    const again = corpus.files.map((f) => ({
      path: f.path,
      size: fs.statSync(f.absolute).size,
      sha256: createHashOf(f.absolute)
    }))
    expect(Corpus.digestOf(again)).toBe(corpus.digest)
  })

  it("plans the presets with realistic mixed sizes: large is 10,000 files of about 770 MiB", () => {
    const large = Corpus.plan(Corpus.presets.large, 42)
    expect(large.files.length).toBe(10_000)
    expect(large.totalBytes / 1024 ** 2).toBeGreaterThan(700)
    expect(large.totalBytes / 1024 ** 2).toBeLessThan(850)
    const sizes = large.files.map((f) => f.size)
    const small = sizes.filter((s) => s >= 1024 && s <= 32 * 1024).length
    expect(small / sizes.length).toBeGreaterThan(0.8)
    expect(sizes.filter((s) => s >= 8 * 1024 ** 2 && s <= 32 * 1024 ** 2).length).toBe(10)
    expect(large.files.some((f) => f.kind === "binary-random")).toBe(true)
    expect(large.files.some((f) => f.kind === "binary-records")).toBe(true)
    expect(new Set(large.files.map((f) => f.path)).size).toBe(10_000)
    expect(Math.max(...large.files.map((f) => f.path.split("/").length))).toBeGreaterThanOrEqual(4)
    expect(Corpus.plan(Corpus.presets.small, 42).files.length).toBe(1_000)
  })

  it("writes source-like text that zstd compresses about as much as real code, and binaries that barely compress", () => {
    const ratio = (kind: Corpus.Kind, style: "c" | "python" | "prose" | "data") => {
      let raw = 0
      let packed = 0
      for (let seed = 0; seed < 20; seed++) {
        const bytes = Corpus.content({ size: 24 * 1024, kind, sizeClass: "small", style, contentSeed: seed })
        raw += bytes.length
        packed += zstd.compress(bytes, { compressionLevel: 3 }).length
      }
      return raw / packed
    }
    for (const style of ["c", "python"] as const) {
      expect(ratio("text", style)).toBeGreaterThan(3)
      expect(ratio("text", style)).toBeLessThan(4.5)
    }
    expect(ratio("binary-random", "c")).toBeLessThan(1.01)
    expect(ratio("binary-records", "c")).toBeGreaterThan(1.2)
    expect(ratio("binary-records", "c")).toBeLessThan(2.5)
    const text = Buffer.from(
      Corpus.content({ size: 4096, kind: "text", sizeClass: "small", style: "c", contentSeed: 1 })
    ).toString("latin1")
    expect(text).toMatch(/^ {2,4}\S/m)
    expect(text).toMatch(/\/\/ |\/\*\*/)
  })

  it("parses corpus specs and names a bad one", () => {
    expect(Effect.runSync(Corpus.parseCount("small"))).toBe(1000)
    expect(Effect.runSync(Corpus.parseCount("large"))).toBe(10000)
    expect(Effect.runSync(Corpus.parseCount("250"))).toBe(250)
    const bad = Effect.runSyncExit(Corpus.parseCount("huge"))
    expect(Exit.isFailure(bad) && String(bad.cause)).toContain("--corpus 'huge'")
  })

  it("has a PRNG whose stream is fixed by its seed", () => {
    const rng = Prng.make(123)
    const first = Array.from({ length: 4 }, () => rng.next())
    expect(first).toEqual(Array.from({ length: 4 }, ((r) => () => r.next())(Prng.make(123))))
    expect(first).toEqual(PRNG_GOLDEN)
    const r = Prng.make(5)
    for (let i = 0; i < 1000; i++) {
      const v = r.between(3, 9)
      expect(v >= 3 && v <= 9).toBe(true)
    }
  })
})

const PRNG_GOLDEN: ReadonlyArray<number> = [3146710351, 1913850085, 2160143029, 1836263080]

const createHashOf = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

describe("Corpus cache", () => {
  it("writes a corpus once and reuses it, and rewrites an entry that was damaged", () => {
    const cache = tempDir()
    const first = Corpus.cached(Corpus.plan(20, 9), cache)
    const victim = first.files[3]!.absolute
    const mtime = fs.statSync(victim).mtimeMs
    const second = Corpus.cached(Corpus.plan(20, 9), cache)
    expect(second.digest).toBe(first.digest)
    expect(second.files.map((f) => f.absolute)).toEqual(first.files.map((f) => f.absolute))
    expect(fs.statSync(victim).mtimeMs).toBe(mtime)
    fs.truncateSync(victim, 1)
    const third = Corpus.cached(Corpus.plan(20, 9), cache)
    expect(third.digest).toBe(first.digest)
    expect(fs.statSync(victim).size).toBe(first.files[3]!.size)
    expect(Corpus.cached(Corpus.plan(20, 10), cache).digest).not.toBe(first.digest)
  })
})
