/**
 * The bench corpus: a seeded, deterministic tree of files with realistic mixed sizes. The plan (paths, sizes, kinds)
 * and every file's bytes derive from the seed through integer-only PRNG streams, so the same seed gives the same
 * bytes on any machine; `digest` proves it.
 */
import { Data, Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Binary from "./Corpus/Binary.js"
import * as SourceText from "./Corpus/SourceText.js"
import * as Prng from "./Prng.js"

export type Kind = "text" | "binary-random" | "binary-records"

/** Size classes, used to pick files for the latency scenarios. */
export type SizeClass = "small" | "medium" | "huge"

export interface FileSpec {
  readonly path: string
  readonly size: number
  readonly kind: Kind
  readonly sizeClass: SizeClass
  readonly style: SourceText.Style
  /** Seed of this file's content stream; a duplicate shares its original's, so it has the same bytes. */
  readonly contentSeed: number
}

export interface Plan {
  readonly seed: number
  readonly files: ReadonlyArray<FileSpec>
  readonly totalBytes: number
}

export interface WrittenFile extends FileSpec {
  readonly absolute: string
  readonly sha256: string
}

export interface Corpus {
  readonly dir: string
  readonly seed: number
  readonly files: ReadonlyArray<WrittenFile>
  readonly totalBytes: number
  /** SHA-256 over every (path, size, content SHA-256) in path order. */
  readonly digest: string
}

export const presets = { small: 1_000, large: 10_000 } as const

export class CorpusSpecError extends Data.TaggedError("CorpusSpecError")<{ readonly spec: string }> {
  override get message() {
    return `--corpus '${this.spec}': expected small, large or a positive number of files`
  }
}

/** `small`, `large` or a file count. */
export const parseCount = (spec: string): Effect.Effect<number, CorpusSpecError> => {
  if (spec === "small" || spec === "large") return Effect.succeed(presets[spec])
  const n = Number(spec)
  return Number.isInteger(n) && n >= 1 ? Effect.succeed(n) : Effect.fail(new CorpusSpecError({ spec }))
}

const KiB = 1024
const MiB = 1024 * KiB

const topDirs = ["packages", "services", "libs", "tools", "docs", "assets", "vendor", "legacy"]
const dirWords = [
  "core",
  "api",
  "util",
  "model",
  "handlers",
  "internal",
  "common",
  "io",
  "net",
  "db",
  "ui",
  "cli",
  "test",
  "fixtures",
  "v1",
  "v2",
  "impl",
  "gen"
]
const textExtensions: ReadonlyArray<readonly [string, SourceText.Style]> = [
  ["ts", "c"],
  ["ts", "c"],
  ["js", "c"],
  ["go", "c"],
  ["rs", "c"],
  ["java", "c"],
  ["c", "c"],
  ["py", "python"],
  ["py", "python"],
  ["md", "prose"],
  ["txt", "prose"],
  ["json", "data"]
]
const binaryExtensions = {
  "binary-random": ["png", "jpg", "gz", "woff2"],
  "binary-records": ["bin", "dat", "db", "bmp"]
} as const

/**
 * The files of a corpus of `count` files: per 1,000 files about one of 8–32 MiB, 62 of 100 KiB–2 MiB, 60 small
 * binaries, 20 duplicates of other files, and the rest 1–32 KiB of source-like text (the `large` preset, 10,000
 * files, comes to about 770 MiB).
 */
export const plan = (count: number, seed: number): Plan => {
  const rng = Prng.make(Prng.mix(seed, 1))
  const huge = Math.floor(count / 1000)
  const medium = Math.round(count * 0.062)
  const binary = Math.round(count * 0.06)
  const duplicates = Math.round(count * 0.02)
  const text = Math.max(0, count - huge - medium - binary - duplicates)
  const classes: Array<"huge" | "medium" | "binary" | "duplicate" | "text"> = [
    ...Array<"huge">(huge).fill("huge"),
    ...Array<"medium">(medium).fill("medium"),
    ...Array<"binary">(binary).fill("binary"),
    ...Array<"duplicate">(Math.min(duplicates, count - huge - medium - binary)).fill("duplicate"),
    ...Array<"text">(text).fill("text")
  ]
  for (let i = classes.length - 1; i > 0; i--) {
    const j = rng.below(i + 1)
    ;[classes[i], classes[j]] = [classes[j]!, classes[i]!]
  }
  const dirs = folders(rng, Math.max(1, Math.ceil(count / 12)))
  const files: Array<FileSpec> = []
  const textIndices: Array<number> = []
  const pending: Array<number> = []
  for (const [i, cls] of classes.entries()) {
    const dir = dirs[rng.below(dirs.length)]!
    const stem = `${rng.pick(dirWords)}_${rng.pick(dirWords)}_${String(i).padStart(5, "0")}`
    const contentSeed = Prng.mix(seed, 2, i)
    const u = rng.unit()
    let spec: Omit<FileSpec, "path">
    let ext: string
    if (cls === "huge") {
      const kind: Kind = rng.below(2) === 0 ? "text" : "binary-records"
      spec = { size: 8 * MiB + Math.floor(u * 24 * MiB), kind, sizeClass: "huge", style: "c", contentSeed }
      ext = kind === "text" ? "sql" : "dat"
    } else if (cls === "medium") {
      const r = rng.below(8)
      const kind: Kind = r < 6 ? "text" : r === 6 ? "binary-random" : "binary-records"
      const [e, style] = rng.pick(textExtensions)
      spec = {
        size: 100 * KiB + Math.floor(u * u * (2 * MiB - 100 * KiB)),
        kind,
        sizeClass: "medium",
        style,
        contentSeed
      }
      ext = kind === "text" ? e : rng.pick(binaryExtensions[kind])
    } else if (cls === "binary") {
      const kind: Kind = rng.below(2) === 0 ? "binary-random" : "binary-records"
      spec = { size: 1 * KiB + Math.floor(u * u * 63 * KiB), kind, sizeClass: "small", style: "c", contentSeed }
      ext = rng.pick(binaryExtensions[kind])
    } else {
      const [e, style] = rng.pick(textExtensions)
      spec = { size: 1 * KiB + Math.floor(u * u * 31 * KiB), kind: "text", sizeClass: "small", style, contentSeed }
      ext = e
      if (cls === "duplicate") pending.push(i)
      else textIndices.push(i)
    }
    files.push({ ...spec, path: `${dir}/${stem}.${ext}` })
  }
  // A duplicate copies a small text file's content (same seed, size and style) under its own path and extension.
  for (const i of pending) {
    if (textIndices.length === 0) break
    const original = files[textIndices[rng.below(textIndices.length)]!]!
    const own = files[i]!
    files[i] = { ...original, path: own.path.replace(/\.[^.]+$/, path.extname(original.path)) }
  }
  return { seed, files, totalBytes: files.reduce((n, f) => n + f.size, 0) }
}

/**
 * The growth corpus: `count` files of 1–16 KiB of source-like text, 100 to a folder (`gNN/dNN/`), the shape of a
 * pruned source tree at scale. No duplicates, so every file is a payload of its own.
 */
export const smallFiles = (count: number, seed: number): Plan => {
  const rng = Prng.make(Prng.mix(seed, 3))
  const files: Array<FileSpec> = []
  for (let i = 0; i < count; i++) {
    const [ext, style] = rng.pick(textExtensions)
    const size = 1 * KiB + rng.below(15 * KiB + 1)
    const folder = `g${String(Math.floor(i / 10_000)).padStart(3, "0")}/d${
      String(Math.floor(i / 100) % 100).padStart(2, "0")
    }`
    files.push({
      path: `${folder}/f${String(i).padStart(7, "0")}.${ext}`,
      size,
      kind: "text",
      sizeClass: "small",
      style,
      contentSeed: Prng.mix(seed, 4, i)
    })
  }
  return { seed, files, totalBytes: files.reduce((n, f) => n + f.size, 0) }
}

/** A tree of nested folders (up to 5 deep) under a few top-level ones. */
const folders = (rng: Prng.Prng, count: number): ReadonlyArray<string> => {
  const dirs: Array<string> = []
  const depth = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const parent = dirs.length < topDirs.length || rng.below(4) === 0
      ? rng.pick(topDirs)
      : dirs[rng.below(dirs.length)]!
    const d = (depth.get(parent) ?? 1) + 1
    const name = d > 5 ? rng.pick(topDirs) : `${parent}/${rng.pick(dirWords)}${rng.below(3) === 0 ? "-" + i : ""}`
    if (!depth.has(name)) {
      depth.set(name, d > 5 ? 1 : d)
      dirs.push(name)
    }
  }
  return dirs.length > 0 ? dirs : [topDirs[0]!]
}

/** The bytes of one file, from its own PRNG stream. */
export const content = (spec: Omit<FileSpec, "path">): Uint8Array => {
  const rng = Prng.make(spec.contentSeed)
  switch (spec.kind) {
    case "text":
      return SourceText.generate(rng, spec.style, spec.size)
    case "binary-random":
      return Binary.random(rng, spec.size)
    case "binary-records":
      return Binary.records(rng, spec.size)
  }
}

/** SHA-256 over each file's path, size and content hash, in path order: the corpus identity. */
export const digestOf = (
  files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly sha256: string }>
): string => {
  const hash = createHash("sha256")
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    hash.update(`${f.path}\u0000${f.size}\u0000${f.sha256}\n`)
  }
  return hash.digest("hex")
}

/** Writes the plan under `dir` (which must be empty or absent). */
export const write = (corpusPlan: Plan, dir: string): Corpus => {
  fs.mkdirSync(dir, { recursive: true })
  const written: Array<WrittenFile> = []
  const made = new Set<string>()
  for (const spec of corpusPlan.files) {
    const absolute = path.join(dir, ...spec.path.split("/"))
    const parent = path.dirname(absolute)
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true })
      made.add(parent)
    }
    const bytes = content(spec)
    fs.writeFileSync(absolute, bytes)
    written.push({ ...spec, absolute, sha256: createHash("sha256").update(bytes).digest("hex") })
  }
  return { dir, seed: corpusPlan.seed, files: written, totalBytes: corpusPlan.totalBytes, digest: digestOf(written) }
}

/** Bumped whenever the generator's output changes, so a cached corpus is never mistaken for a new one. */
export const generatorVersion = 1

interface Manifest {
  readonly files: ReadonlyArray<Omit<WrittenFile, "absolute">>
  readonly totalBytes: number
  readonly digest: string
}

const load = (dir: string, manifestFile: string, corpusPlan: Plan): Corpus | undefined => {
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as Manifest
    const files = manifest.files.map((f) => ({ ...f, absolute: path.join(dir, ...f.path.split("/")) }))
    const intact = files.length === corpusPlan.files.length &&
      files.every((f, i) =>
        f.path === corpusPlan.files[i]!.path && fs.statSync(f.absolute, { throwIfNoEntry: false })?.size === f.size
      )
    return intact
      ? { dir, seed: corpusPlan.seed, files, totalBytes: manifest.totalBytes, digest: manifest.digest }
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The corpus of `corpusPlan` under `cacheDir`, written once and reused by later runs with the same count, seed and
 * generator (the bench never modifies it). A damaged cache entry is written again.
 */
export const cached = (corpusPlan: Plan, cacheDir: string, shape: "mixed" | "small" = "mixed"): Corpus => {
  const key = `${
    shape === "mixed" ? "" : `${shape}-`
  }${corpusPlan.files.length}-files-seed-${corpusPlan.seed}-v${generatorVersion}`
  const dir = path.join(cacheDir, key)
  const manifestFile = path.join(cacheDir, `${key}.json`)
  const hit = load(dir, manifestFile, corpusPlan)
  if (hit !== undefined) return hit
  fs.rmSync(manifestFile, { force: true })
  fs.rmSync(dir, { recursive: true, force: true })
  const corpus = write(corpusPlan, dir)
  const manifest: Manifest = {
    files: corpus.files.map(({ absolute: _, ...f }) => f),
    totalBytes: corpus.totalBytes,
    digest: corpus.digest
  }
  const temp = `${manifestFile}.${process.pid}.tmp`
  fs.writeFileSync(temp, JSON.stringify(manifest))
  fs.renameSync(temp, manifestFile)
  return corpus
}
