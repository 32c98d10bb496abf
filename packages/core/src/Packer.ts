/**
 * The file side of a store: hash a source file, and read, re-check and compress a small one. Run in the calling
 * thread for a few files, or in worker threads for many, so hashing and zstd use every core while the main thread
 * writes the database (the same split as `RestoreWriter`).
 */
import { Effect, type Scope } from "effect"
import * as fs from "node:fs"
import { PayloadSourceError } from "./ArchiveStore.js"
import * as Codec from "./Codec.js"
import * as FileOps from "./FileOps.js"
import * as WorkerPool from "./WorkerPool.js"

/**
 * A file the walk found: where, what it was (`FileOps.Walked`: only that file, reached the same way, is read), its
 * size then (a file that no longer has it changed, and is not archived), and its name for messages.
 */
export interface Source extends FileOps.Walked {
  readonly display: string
  readonly size: number
}

type Input =
  | { readonly op: "hash"; readonly source: Source }
  | { readonly op: "pack"; readonly source: Source; readonly sha256: string; readonly codec: Codec.CodecName }
  | { readonly op: "compress"; readonly data: Uint8Array; readonly codec: Codec.CodecName }
  | { readonly op: "hashPack"; readonly source: Source; readonly codec: Codec.CodecName }

type Output =
  | { readonly ok: true; readonly sha256: string; readonly data?: Uint8Array }
  | { readonly ok: false; readonly changed: boolean; readonly message: string; readonly code?: string }

interface Data {
  readonly zstdBinding: string
  readonly levels: typeof Codec.levels
  /** `FileOps.openWalkedWith`'s source: workers get code as text. */
  readonly openWalked: string
}

/** Shipped to workers as source text: it refers to nothing outside itself. */
const program: WorkerPool.Program<Data, Input, Output> = (req, data) => {
  const fs = req("node:fs") as typeof import("node:fs")
  const crypto = req("node:crypto") as typeof import("node:crypto")
  const zlib = req("node:zlib") as typeof import("node:zlib")
  type Zstd = {
    CCtx: new() => { setParameter(p: number, v: number): void; compress2(dst: Uint8Array, src: Uint8Array): number }
    CParameter: { compressionLevel: number }
    compressBound(n: number): number
  }
  let zstd: { cctx: InstanceType<Zstd["CCtx"]>; bound: (n: number) => number } | undefined
  // Reused for every file: a fresh read buffer and compression buffer per large file left the worker's malloc arena
  // holding what they freed.
  let buf = Buffer.allocUnsafe(1024 * 1024)
  let out = Buffer.allocUnsafe(0)
  const failed = (e: unknown): Output => {
    const err = e as NodeJS.ErrnoException
    return {
      ok: false,
      changed: false,
      message: err.message ?? String(e),
      ...(err.code === undefined ? {} : { code: err.code })
    }
  }
  const compress = (raw: Uint8Array, codec: string): Uint8Array => {
    if (codec === "zlib") return zlib.deflateSync(raw, { level: data.levels.zlib })
    if (zstd === undefined) {
      const binding = req(data.zstdBinding) as Zstd
      const cctx = new binding.CCtx()
      cctx.setParameter(binding.CParameter.compressionLevel, data.levels.zstd)
      zstd = { cctx, bound: binding.compressBound }
    }
    const bound = zstd.bound(raw.length)
    if (out.length < bound) out = Buffer.allocUnsafe(bound)
    return out.subarray(0, zstd.cctx.compress2(out, raw))
  }
  // A buffer of its own, so it can be handed over to the main thread without a copy.
  const handOver = (sha256: string, packed: Uint8Array) => {
    const own = new Uint8Array(packed.length)
    own.set(packed)
    return { value: { ok: true as const, sha256, data: own }, transfer: [own.buffer] }
  }
  // The file walked, where it was walked: never a link, FIFO or other file swapped in since, nor one outside.
  const openWalked = ((req("node:vm") as typeof import("node:vm")).runInThisContext(
    `(__name) => (${data.openWalked})`
  ) as (name: unknown) => typeof FileOps.openWalkedWith)((target: unknown) => target)(fs)
  const changed: { readonly value: Output } = { value: { ok: false, changed: true, message: "changed" } }
  return (input) => {
    try {
      if (input.op === "compress") return handOver("", compress(input.data, input.codec))
      const { size } = input.source
      const fd = openWalked(input.source)
      if (input.op === "hash") {
        const hash = crypto.createHash("sha256")
        let total = 0
        try {
          // Never past the walk's size and one byte more, which tells a file that grew: memory and time stay bounded.
          for (let n = 1; n > 0 && total <= size; total += n) {
            n = fs.readSync(fd, buf, 0, Math.min(buf.length, size + 1 - total), null)
            hash.update(buf.subarray(0, n))
          }
        } finally {
          fs.closeSync(fd)
        }
        return total === size ? { value: { ok: true, sha256: hash.digest("hex") } } : changed
      }
      let raw: Buffer
      try {
        // Into the worker's own buffer (a fresh one per small file left its malloc arena fragmented, ~20 MiB of RSS),
        // with room for the walk's size and one byte more, which tells a file that grew.
        if (buf.length <= size) buf = Buffer.allocUnsafe(size + 1)
        let n = 0
        for (let got = 1; got > 0 && n <= size; n += got) got = fs.readSync(fd, buf, n, size + 1 - n, null)
        if (n !== size) return changed
        raw = buf.subarray(0, n)
      } finally {
        fs.closeSync(fd)
      }
      const sha256 = crypto.createHash("sha256").update(raw).digest("hex")
      if (input.op === "hashPack") return handOver(sha256, compress(raw, input.codec))
      if (sha256 !== input.sha256) return changed
      return handOver(sha256, compress(raw, input.codec))
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "ECHANGED" ? changed : { value: failed(e) }
    }
  }
}

const data = (): Data => ({
  zstdBinding: Codec.zstdPaths().zstdBinding,
  levels: Codec.levels,
  openWalked: FileOps.openWalkedWith.toString()
})

/** A file as it is now, to read with a packer outside a walk (a host's own list of files, tests). */
export const sourceOf = (file: string, display: string = file): Source => {
  const st = fs.lstatSync(file)
  return { file, display, size: st.size, dev: st.dev, ino: st.ino, real: FileOps.realPathOf(file) }
}

/** A source file that is no longer what the walk saw or what was hashed: nothing of it is archived. */
export const fileChanged = (display: string): PayloadSourceError =>
  new PayloadSourceError({ path: display, detail: "file changed while it was being stored; nothing was archived" })

export interface Packer {
  /** A file's SHA-256; a file that is no longer the one walked, or no longer its size, fails as changed (so below). */
  readonly hash: (source: Source) => Effect.Effect<string, PayloadSourceError | WorkerPool.WorkerFailed>
  /** The compressed content of a small file, read in one go; fails if the bytes no longer hash to `sha256`. */
  readonly pack: (
    source: Source,
    sha256: string,
    codec: Codec.CodecName
  ) => Effect.Effect<Uint8Array, PayloadSourceError>
  /**
   * A small file's SHA-256 and compressed content from one read (one message, where `hash` then `pack` are two): the
   * bytes compressed are the bytes hashed.
   */
  readonly hashPack: (
    source: Source,
    codec: Codec.CodecName
  ) => Effect.Effect<
    { readonly sha256: string; readonly data: Uint8Array },
    PayloadSourceError | WorkerPool.WorkerFailed
  >
  /**
   * `hashPack` of many small files as one call, results in their order; fails naming the first file (in that order)
   * that could not be read.
   */
  readonly hashPackAll: (
    sources: ReadonlyArray<Source>,
    codec: Codec.CodecName
  ) => Effect.Effect<
    ReadonlyArray<{ readonly sha256: string; readonly data: Uint8Array }>,
    PayloadSourceError | WorkerPool.WorkerFailed
  >
  /** Compresses one piece of a large file (read and hashed in order by the caller). */
  readonly compress: (
    raw: Uint8Array,
    codec: Codec.CodecName,
    display: string
  ) => Effect.Effect<Uint8Array, PayloadSourceError>
  /** How many calls are worth having in flight. */
  readonly concurrency: number
}

const packerOf = (pool: WorkerPool.WorkerPool<Input, Output>): Packer => {
  let next = 0
  // Calls go to the lanes in turn.
  const lane = () => next++ % pool.lanes
  const refused = (display: string, input: Input, out: Extract<Output, { ok: false }>) =>
    out.changed ? fileChanged(display) : new PayloadSourceError({
      path: display,
      detail: input.op === "compress" ? `compression failed: ${out.message}` : FileOps.describeErrno(out)
    })
  const run = (display: string, input: Input, transfer?: ReadonlyArray<ArrayBuffer>) =>
    Effect.flatMap(
      pool.run(lane(), input, transfer),
      (out) => out.ok ? Effect.succeed(out) : Effect.fail(refused(display, input, out))
    )
  // What reads a payload fails naming the file, whatever broke: the port's payloads fail with PayloadSourceError only.
  const named = (display: string) => <A>(self: Effect.Effect<A, PayloadSourceError | WorkerPool.WorkerFailed>) =>
    Effect.catchTag(
      self,
      "WorkerFailed",
      (e) => Effect.fail(new PayloadSourceError({ path: display, detail: e.message }))
    )
  return {
    concurrency: pool.lanes * 2,
    hash: (source) => Effect.map(run(source.display, { op: "hash", source }), (out) => out.sha256),
    hashPack: (source, codec) =>
      Effect.map(
        run(source.display, { op: "hashPack", source, codec }),
        (out) => ({ sha256: out.sha256, data: out.data! })
      ),
    hashPackAll: (sources, codec) => {
      const inputs = sources.map((source): Input => ({ op: "hashPack", source, codec }))
      return Effect.flatMap(pool.runAll(inputs), (outs) => {
        const packed: Array<{ readonly sha256: string; readonly data: Uint8Array }> = []
        for (const [i, out] of outs.entries()) {
          if (!out.ok) return Effect.fail(refused(sources[i]!.display, inputs[i]!, out))
          packed.push({ sha256: out.sha256, data: out.data! })
        }
        return Effect.succeed(packed)
      })
    },
    pack: (source, sha256, codec) =>
      Effect.map(run(source.display, { op: "pack", source, sha256, codec }), (out) => out.data!).pipe(
        named(source.display)
      ),
    compress: (raw, codec, display) =>
      Effect.map(run(display, { op: "compress", data: raw, codec }, WorkerPool.transferable([raw])), (out) => out.data!)
        .pipe(named(display))
  }
}

/** In this thread: no start-up cost, for a few files. */
export const inThread = (): Packer => packerOf(WorkerPool.inThread(program, data()))

/** `size` worker threads, setting `v8Flags` as they start; terminated when the scope closes. */
export const workers = (size: number, v8Flags?: ReadonlyArray<string>): Effect.Effect<Packer, never, Scope.Scope> =>
  Effect.map(WorkerPool.make(program, data(), size, v8Flags), packerOf)
