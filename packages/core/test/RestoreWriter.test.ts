import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Codec, FileOps, RestoreWriter } from "../src/index.js"
import { MiB, zlibZeros, zstdFrames, zstdZeros } from "./bombs.js"

const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex")
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "codex-writer-"))

const target = (
  id: number,
  output: string,
  raw: Uint8Array,
  codec: Codec.CodecName = "zstd"
): RestoreWriter.Target => ({
  id,
  output,
  temp: FileOps.tempFor(output),
  mode: 0o640,
  codec,
  sha256: sha(raw),
  size: raw.length
})
const packed = (raw: Uint8Array, codec: Codec.CodecName = "zstd") =>
  Effect.map(Codec.forName(codec), (c) => Codec.compress(c, raw))

/** Every writer gets the same checks: in this thread, and in a pool of worker threads. */
const writers: ReadonlyArray<
  [string, Effect.Effect<RestoreWriter.RestoreWriter, never, import("effect").Scope.Scope>]
> = [
  ["in this thread", Effect.sync(() => RestoreWriter.inThread())],
  ["in worker threads", RestoreWriter.workers(2)],
  // The flags go into each worker's source: a worker that cannot start would fail every check (V8's defaults here).
  ["in worker threads that set V8 flags", RestoreWriter.workers(2, { v8Flags: RestoreWriter.heapFlags })]
]

describe.each(writers)("RestoreWriter %s", (name, make) => {
  it.scoped("writes whole and streamed payloads byte for byte, with their mode, in new folders", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const small = Buffer.from("print('hello')\n".repeat(100))
      const empty = Buffer.alloc(0)
      const legacy = Buffer.from("zlib from the original tool\n".repeat(50))
      const big = crypto.randomBytes(3 * 1024 * 1024 + 17)
      // Chunks as the archive stores them: 1 MiB each (a chunk that decodes to more is corrupt), the last one shorter.
      const pieces = [0, 1, 2, 3].map((i) => big.subarray(i * MiB, (i + 1) * MiB))
      const ops: Array<RestoreWriter.Op> = [
        { op: "write", ...target(1, path.join(dir, "a/b/small.py"), small), data: yield* packed(small) },
        { op: "write", ...target(2, path.join(dir, "empty.txt"), empty), data: yield* packed(empty) },
        {
          op: "write",
          ...target(3, path.join(dir, "legacy.txt"), legacy, "zlib"),
          data: yield* packed(legacy, "zlib")
        },
        { op: "open", ...target(4, path.join(dir, "c/big.bin"), big) },
        { op: "append", id: 4, data: yield* packed(pieces[0]!) }
      ]
      const first = yield* writer.run(0, ops)
      const rest = yield* writer.run(0, [
        { op: "append", id: 4, data: yield* packed(pieces[1]!) },
        { op: "append", id: 4, data: yield* packed(pieces[2]!) },
        { op: "append", id: 4, data: yield* packed(pieces[3]!) },
        { op: "close", id: 4 }
      ])
      expect([...first, ...rest].map((r) => [r.id, r.ok])).toEqual([[1, true], [2, true], [3, true], [4, true]])
      expect(fs.readFileSync(path.join(dir, "a/b/small.py"))).toEqual(small)
      expect(fs.readFileSync(path.join(dir, "empty.txt")).length).toBe(0)
      expect(fs.readFileSync(path.join(dir, "legacy.txt"))).toEqual(legacy)
      expect(sha(fs.readFileSync(path.join(dir, "c/big.bin")))).toBe(sha(big))
      expect(fs.statSync(path.join(dir, "c/big.bin")).mode & 0o777).toBe(0o640)
      expect(rest[0]).toMatchObject({ bytes: big.length })
    }))

  it.scoped("refuses corrupt and mismatched content, leaving no file and no temp file", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const raw = Buffer.from("the real content\n".repeat(20))
      const other = Buffer.from("other content\n".repeat(20))
      const replies = yield* writer.run(1, [
        { op: "write", ...target(1, path.join(dir, "garbage.txt"), raw), data: Buffer.from("not zstd at all") },
        { op: "write", ...target(2, path.join(dir, "swapped.txt"), raw), data: yield* packed(other) },
        { op: "open", ...target(3, path.join(dir, "streamed.txt"), raw) },
        { op: "append", id: 3, data: yield* packed(other) },
        { op: "close", id: 3 }
      ])
      expect(replies.map((r) => (r.ok ? "ok" : r.problem))).toEqual(["corrupt", "integrity", "integrity"])
      expect(replies[1]).toMatchObject({ actual: sha(other) })
      expect(fs.readdirSync(dir)).toEqual([])
    }))

  it.scoped("a decompression bomb stops at the recorded size: corrupt, no file, no temp file", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const five = Buffer.from("hello")
      const big = crypto.randomBytes(MiB + 10)
      const at = (name: string) => path.join(dir, "out", name)
      const replies = yield* writer.run(0, [
        { op: "write", ...target(1, at("zstd.txt"), five), data: zstdZeros(64 * MiB) },
        { op: "write", ...target(2, at("zlib.txt"), five, "zlib"), data: zlibZeros(64 * MiB) },
        { op: "write", ...target(3, at("frames.txt"), five), data: zstdFrames(64, 4, "none") },
        { op: "write", ...target(4, at("claims.txt"), five), data: zstdZeros(5, 2 ** 40) },
        // A chunk decodes to at most the chunk size (1 MiB), even when the recorded total is larger.
        { op: "open", ...target(5, at("chunked.bin"), big) },
        { op: "append", id: 5, data: zstdZeros(2 * MiB, "none") },
        { op: "close", id: 5 },
        // ... and the chunks together never past the recorded total.
        { op: "open", ...target(6, at("total.bin"), big) },
        { op: "append", id: 6, data: zstdZeros(MiB) },
        { op: "append", id: 6, data: zstdZeros(MiB) },
        { op: "close", id: 6 }
      ])
      expect(replies.map((r) => (r.ok ? "ok" : r.problem))).toEqual(Array(6).fill("corrupt"))
      const claims = (n: number, limit: number) =>
        `its zstd frame claims ${n} bytes, more than the ${limit} its record allows`
      const beyond = (limit: number) => `it decodes to more than the ${limit} bytes its record allows`
      expect(replies.map((r) => !r.ok && r.detail)).toEqual([
        claims(64 * MiB, 5),
        beyond(5),
        beyond(5),
        claims(2 ** 40, 5),
        beyond(MiB),
        claims(MiB, 10)
      ])
      expect(fs.readdirSync(path.join(dir, "out"))).toEqual([])
    }))

  it.scoped("a whole payload recorded larger than a piece is decoded into its file a piece at a time", () =>
    Effect.gen(function*() {
      // A row may truly hold 3 GiB of zeros in 98 KB: decoded whole, it took 3 GiB, then (past 2 GiB, too much for one
      // hash update) ended the worker and every item in flight with it.
      const writer = yield* make
      const dir = tempDir()
      const size = 48 * MiB
      const zeros = Buffer.alloc(size)
      const at = (name: string) => path.join(dir, "out", name)
      // Watched in this thread only: workers allocate in their own isolates.
      const allocUnsafe = Buffer.allocUnsafe
      let largest = 0
      Buffer.allocUnsafe = ((n: number) => {
        largest = Math.max(largest, n)
        return allocUnsafe(n)
      }) as typeof Buffer.allocUnsafe
      const replies = [
        ...yield* writer.run(0, [
          { op: "write", ...target(1, at("zeros.bin"), zeros), data: zstdZeros(size) },
          // Past its recorded size by a byte, or not its recorded content: corrupt, and the file begun is removed.
          { op: "write", ...target(2, at("longer.bin"), zeros), data: zstdZeros(size + 1, "none") },
          { op: "write", ...target(3, at("other.bin"), zeros), data: zstdFrames(2, size / 2 - 1, "none") }
        ]).pipe(Effect.ensuring(Effect.sync(() => (Buffer.allocUnsafe = allocUnsafe))))
      ]
      if (name === "in this thread") expect(largest, "the largest buffer allocated").toBeLessThanOrEqual(2 * MiB)
      // zlib (Node decodes it whole when synchronous) is bounded by the record alone.
      replies.push(
        ...yield* writer.run(0, [
          { op: "write", ...target(4, at("zlib.bin"), zeros, "zlib"), data: zlibZeros(size) }
        ])
      )
      expect(replies.map((r) => (r.ok ? "ok" : `${r.problem}: ${r.detail}`))).toEqual([
        "ok",
        `corrupt: it decodes to more than the ${size} bytes its record allows`,
        "integrity: content does not match its checksum",
        "ok"
      ])
      expect(sha(fs.readFileSync(at("zeros.bin")))).toBe(sha(zeros))
      expect(sha(fs.readFileSync(at("zlib.bin")))).toBe(sha(zeros))
      expect(fs.readdirSync(path.join(dir, "out")).sort()).toEqual(["zeros.bin", "zlib.bin"])
    }))

  it.scoped("reports an unwritable output with its errno, and with stopAfterFailure skips the rest", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      fs.writeFileSync(path.join(dir, "file"), "a file, not a folder")
      const raw = Buffer.from("content\n")
      const data = yield* packed(raw)
      const replies = yield* writer.run(0, [
        { op: "write", ...target(1, path.join(dir, "file/below.txt"), raw), data },
        { op: "write", ...target(2, path.join(dir, "after.txt"), raw), data }
      ], true)
      expect(replies).toMatchObject([{ id: 1, ok: false, problem: "unwritable", code: "ENOTDIR" }, {
        id: 2,
        ok: false,
        problem: "skipped"
      }])
      expect(fs.existsSync(path.join(dir, "after.txt"))).toBe(false)
    }))

  it.scoped("halted, it skips whole files not yet begun on every lane, writing nothing, until resumed", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const raw = Buffer.from("halted\n")
      const write = (id: number) =>
        Effect.map(packed(raw), (data): RestoreWriter.Op => ({
          op: "write",
          ...target(id, path.join(dir, `f${id}.txt`), raw),
          data
        }))
      yield* writer.halt
      const lanes = Array.from({ length: writer.lanes }, (_, lane) => lane)
      const skipped = yield* Effect.forEach(
        lanes,
        (lane) => Effect.flatMap(write(lane + 1), (op) => writer.run(lane, [op])),
        { concurrency: "unbounded" }
      )
      expect(skipped.flat()).toEqual(lanes.map((lane) => ({
        id: lane + 1,
        ok: false,
        problem: "skipped",
        detail: "not attempted: the batch was stopped"
      })))
      expect(fs.readdirSync(dir)).toEqual([])
      yield* writer.resume
      const [written] = yield* writer.run(0, [yield* write(9)])
      expect(written).toMatchObject({ id: 9, ok: true })
      expect(fs.readFileSync(path.join(dir, "f9.txt"), "utf8")).toBe("halted\n")
    }))

  it.scoped("payloads that are views into a larger buffer, or share one, are written exactly; the buffers are left as is", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const [a, b] = [Buffer.from("first file\n".repeat(900)), Buffer.from("second file\n".repeat(700))]
      const [pa, pb] = [yield* packed(a), yield* packed(b)]
      // Two payloads side by side in one buffer, as a driver's packet or a base64 decode with slack holds them.
      const shared = Buffer.concat([pa, pb, Buffer.alloc(64)])
      const before = Buffer.from(shared)
      // A whole buffer of its own, and a small one from Node's shared pool.
      const whole = new Uint8Array(pa)
      const tiny = Buffer.from("tiny\n")
      const pooled = Buffer.from(yield* packed(tiny))
      const replies = yield* writer.run(0, [
        { op: "write", ...target(1, path.join(dir, "a.txt"), a), data: shared.subarray(0, pa.length) },
        {
          op: "write",
          ...target(2, path.join(dir, "b.txt"), b),
          data: shared.subarray(pa.length, pa.length + pb.length)
        },
        { op: "write", ...target(3, path.join(dir, "c.txt"), a), data: whole },
        { op: "write", ...target(4, path.join(dir, "d.txt"), tiny), data: pooled },
        // Two outputs of one content, given one buffer: the second is written from it too.
        { op: "write", ...target(5, path.join(dir, "e.txt"), a), data: whole }
      ])
      expect(replies.map((r) => [r.id, r.ok])).toEqual([[1, true], [2, true], [3, true], [4, true], [5, true]])
      expect(fs.readFileSync(path.join(dir, "e.txt"))).toEqual(a)
      expect(fs.readFileSync(path.join(dir, "a.txt"))).toEqual(a)
      expect(fs.readFileSync(path.join(dir, "b.txt"))).toEqual(b)
      expect(fs.readFileSync(path.join(dir, "c.txt"))).toEqual(a)
      expect(fs.readFileSync(path.join(dir, "d.txt"))).toEqual(tiny)
      // Views are copied before they are handed over: the buffers they share (the pool too) stay whole and unchanged.
      expect(shared).toEqual(before)
      expect(Buffer.from(pooled.buffer).length).toBeGreaterThan(0)
      // A whole buffer is handed over to a worker, not cloned into it (detached here); this thread's writer keeps it.
      expect(whole.byteLength).toBe(name === "in this thread" ? pa.length : 0)
    }))

  it.scoped("two calls in one turn given one buffer (one message to the worker) both write it", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const raw = Buffer.from("shared content\n".repeat(500))
      const data = new Uint8Array(yield* packed(raw))
      const replies = yield* Effect.all([
        writer.run(0, [{ op: "write", ...target(1, path.join(dir, "a.txt"), raw), data }]),
        writer.run(0, [{ op: "write", ...target(2, path.join(dir, "b.txt"), raw), data }])
      ], { concurrency: "unbounded" })
      expect(replies.flat().map((r) => [r.id, r.ok])).toEqual([[1, true], [2, true]])
      expect(fs.readFileSync(path.join(dir, "a.txt"))).toEqual(raw)
      expect(fs.readFileSync(path.join(dir, "b.txt"))).toEqual(raw)
    }))

  it.scoped("an aborted stream leaves nothing behind", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const dir = tempDir()
      const raw = Buffer.from("partial\n".repeat(1000))
      const replies = yield* writer.run(0, [
        { op: "open", ...target(1, path.join(dir, "partial.txt"), raw) },
        { op: "append", id: 1, data: yield* packed(raw.subarray(0, 100)) },
        { op: "abort", id: 1 }
      ])
      expect(replies).toEqual([])
      expect(fs.readdirSync(dir)).toEqual([])
    }))
})
