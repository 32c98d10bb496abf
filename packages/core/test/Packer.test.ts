import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { execFileSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Codec, Packer } from "../src/index.js"

const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex")
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-packer-"))
/** A file as a walk finds it, named by its base name unless told, at the size the walk saw unless told. */
const src = (file: string, display = path.basename(file), size?: number): Packer.Source => ({
  ...Packer.sourceOf(file, display),
  ...(size === undefined ? {} : { size })
})
/** A file that is not there. */
const gone = (file: string): Packer.Source => ({
  file,
  display: path.basename(file),
  size: 0,
  dev: 0,
  ino: 0,
  real: file
})

const packers: ReadonlyArray<[string, Effect.Effect<Packer.Packer, never, Scope.Scope>]> = [
  ["in this thread", Effect.sync(() => Packer.inThread())],
  ["in worker threads", Packer.workers(2)]
]

describe.each(packers)("Packer %s", (_name, make) => {
  it.scoped("hashes files and compresses whole files and pieces that decode to the same bytes", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      const text = Buffer.from("def main():\n    return 42\n".repeat(200))
      const file = path.join(dir, "main.py")
      fs.writeFileSync(file, text)
      expect(yield* packer.hash(src(file, "main.py"))).toBe(sha(text))
      for (const name of Codec.names) {
        const codec = yield* Codec.forName(name)
        const packed = yield* packer.pack(src(file, "main.py"), sha(text), name)
        expect(packed.length).toBeLessThan(text.length / 5)
        expect(Buffer.from(yield* Codec.decompress(codec, packed, text.length))).toEqual(text)
        const piece = Buffer.from(text.subarray(0, 1000))
        const compressed = yield* packer.compress(piece, name, "main.py")
        expect(Buffer.from(yield* Codec.decompress(codec, compressed, 1000))).toEqual(text.subarray(0, 1000))
      }
      // Many at once, as a store asks for them: every answer goes to its own question.
      const files = Array.from({ length: 50 }, (_, i) => {
        const f = path.join(dir, `f${i}.txt`)
        fs.writeFileSync(f, `file ${i}\n`.repeat(i + 1))
        return f
      })
      const hashes = yield* Effect.forEach(files, (f) => packer.hash(src(f, f)), {
        concurrency: "unbounded"
      })
      expect(hashes).toEqual(files.map((f) => sha(fs.readFileSync(f))))
      const listed = files.map((f) => src(f))
      const packs = yield* packer.hashPackAll(listed, "zstd")
      const zstd = yield* Codec.forName("zstd")
      for (const [i, f] of files.entries()) {
        const raw = fs.readFileSync(f)
        expect(packs[i]!.sha256).toBe(sha(raw))
        expect(Buffer.from(yield* Codec.decompress(zstd, packs[i]!.data, raw.length))).toEqual(raw)
      }
      // The first file that cannot be read, in the files' order, is the one named.
      fs.rmSync(files[30]!)
      fs.rmSync(files[40]!)
      const gone = yield* Effect.flip(
        packer.hashPackAll(listed, "zstd")
      )
      expect(gone).toMatchObject({ _tag: "PayloadSourceError", path: "f30.txt" })
    }))

  it.scoped("packs files above, at and around its 1 MiB read buffer, and an empty one, byte for byte, one after another", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      const zstd = yield* Codec.forName("zstd")
      // Large first, so a smaller file after it would show any bytes left over in the reused read and output buffers.
      for (const size of [3 * 1024 * 1024 + 7, 1024 * 1024 + 5, 1024 * 1024, 1024 * 1024 - 1, 3, 0]) {
        const raw = crypto.randomBytes(size)
        const file = path.join(dir, `f${size}.bin`)
        fs.writeFileSync(file, raw)
        const [packed] = yield* packer.hashPackAll([src(file)], "zstd")
        expect(packed!.sha256).toBe(sha(raw))
        expect(Buffer.from(yield* Codec.decompress(zstd, packed!.data, size)).equals(raw)).toBe(true)
        const packedAlone = yield* packer.pack(src(file, "f"), sha(raw), "zstd")
        expect(Buffer.from(yield* Codec.decompress(zstd, packedAlone, size)).equals(raw)).toBe(true)
      }
    }))

  it.scoped("a file that changed since it was hashed, or cannot be read, fails naming it", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      const file = path.join(dir, "a.txt")
      fs.writeFileSync(file, "before\n")
      const before = yield* packer.hash(src(file))
      fs.writeFileSync(file, "after\n")
      expect((yield* Effect.flip(packer.pack(src(file), before, "zstd"))).message).toBe(
        "a.txt: file changed while it was being stored; nothing was archived"
      )
      const missing = yield* Effect.flip(packer.hash(gone(path.join(dir, "gone.txt"))))
      expect(missing).toMatchObject({ _tag: "PayloadSourceError", path: "gone.txt" })
      expect(missing.detail).toContain("ENOENT")
    }))

  it.scoped("a file no longer the size the walk saw (grown or shrunk) fails as changed, however it is read", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      const file = path.join(dir, "log.txt")
      const content = Buffer.from("a line of a log\n".repeat(100_000))
      fs.writeFileSync(file, content)
      const changed = "log.txt: file changed while it was being stored; nothing was archived"
      // The walk saw it shorter (it grew since) or longer (it shrank since): never archived under the wrong size.
      for (const seen of [content.length - 16, content.length + 16, 0]) {
        expect((yield* Effect.flip(packer.hash(src(file, "log.txt", seen)))).message, `hash ${seen}`).toBe(changed)
        const packs = packer.hashPackAll([src(file, "log.txt", seen)], "zstd")
        expect((yield* Effect.flip(packs)).message, `hashPackAll ${seen}`).toBe(changed)
        expect((yield* Effect.flip(packer.pack(src(file, "log.txt", seen), sha(content), "zstd"))).message).toBe(
          changed
        )
      }
      expect(yield* packer.hash(src(file, "log.txt"))).toBe(sha(content))
    }))

  it.scoped("an input swapped for a link (to /etc/shadow) or a FIFO after the walk is refused, not read or waited on", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      const secret = path.join(dir, "secret.txt")
      fs.writeFileSync(secret, "root-only\n")
      const link = path.join(dir, "a.txt")
      fs.symlinkSync(secret, link)
      const fifo = path.join(dir, "b.txt")
      execFileSync("mkfifo", [fifo])
      for (const file of [link, fifo]) {
        const name = path.basename(file)
        expect(yield* Effect.flip(packer.hash(src(file, name, 10))), name).toMatchObject({
          _tag: "PayloadSourceError",
          path: name
        })
        const packed = yield* Effect.flip(packer.hashPack(src(file, name, 10), "zstd"))
        expect(packed, name).toMatchObject({ _tag: "PayloadSourceError", path: name })
      }
    }))

  it.scoped("reads only the file walked, where it was walked: not one through a folder since swapped for a link, nor another file put in its place", () =>
    Effect.gen(function*() {
      const packer = yield* make
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, "tree/sub"), { recursive: true })
      fs.mkdirSync(path.join(dir, "vault/sub"), { recursive: true })
      const file = path.join(dir, "tree/sub/a.txt")
      fs.writeFileSync(file, "public\n")
      fs.writeFileSync(path.join(dir, "vault/sub/a.txt"), "secret\n")
      const walked = src(file)
      // The folder on the way moved out and a link to the vault put in its place: the path now reaches the vault's file.
      fs.renameSync(path.join(dir, "tree"), path.join(dir, "moved"))
      fs.symlinkSync(path.join(dir, "vault"), path.join(dir, "tree"))
      // Even with the vault file's own identity (as a walk through the swapped folder would have seen it).
      const through = src(file)
      for (const source of [walked, { ...through, real: walked.real }]) {
        const refused = yield* Effect.flip(packer.hashPackAll([source], "zstd"))
        expect(refused).toMatchObject({ _tag: "PayloadSourceError", path: "a.txt" })
      }
      expect((yield* Effect.flip(packer.hash({ ...through, real: walked.real }))).message).toContain(
        `(it is at ${fs.realpathSync(path.join(dir, "vault/sub/a.txt"))})`
      )
      // Another file of the same size at the walked path (its folder back): changed, not read.
      fs.rmSync(path.join(dir, "tree"))
      fs.renameSync(path.join(dir, "moved"), path.join(dir, "tree"))
      // Written beside it and renamed over it: a new inode (a file removed first may hand its number on).
      fs.writeFileSync(`${file}.new`, "PUBLIC\n")
      fs.renameSync(`${file}.new`, file)
      expect((yield* Effect.flip(packer.hash(walked))).message).toBe(
        "a.txt: file changed while it was being stored; nothing was archived"
      )
      expect(yield* packer.hash(src(file))).toBe(sha(Buffer.from("PUBLIC\n")))
    }))
})
