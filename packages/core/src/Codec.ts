/**
 * Compression codecs, named as the original tool names them in `artifact.compression`.
 * Restore reads every codec the original wrote (`zstd`, `zlib`); new artifacts use `zstd` level 3, chosen by
 * measurement (see README "Choosing the codec"): ~3.4× on source text at ~120 MiB/s, 3× faster than zlib-6.
 */
import { Data, Effect, Either } from "effect"
import { createRequire } from "node:module"
import * as zlib from "node:zlib"

// A CommonJS bundle of this module has an empty `import.meta`; `__filename` (the bundle) is its base there.
const require = createRequire(import.meta.url ?? __filename)

interface ZstdBinding {
  readonly compress: (data: Uint8Array, params?: { compressionLevel?: number }) => Buffer
}
let zstd: ZstdBinding | undefined
// Loaded on first use, so commands that never touch content do not pay for the native addon.
const zstdBinding = (): ZstdBinding => (zstd ??= require("zstd-napi") as ZstdBinding)

/** As much of zstd-napi's low-level binding as bounded decoding needs. */
export interface ZstdDecoding {
  readonly DCtx: new() => {
    decompress(dst: Uint8Array, src: Uint8Array): number
    /** [hint (0 at the end of a frame), bytes written, bytes consumed] */
    decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number]
    reset(directive: number): void
  }
  readonly ResetDirective: { readonly sessionOnly: number }
  getFrameContentSize(src: Uint8Array): number | null
  findFrameCompressedSize(src: Uint8Array): number
}

/**
 * Decodes `data` to at most `limit` bytes, or throws; the result may be a view of a buffer the next call reuses. With
 * `onPiece`, the bytes go to it instead, a piece of at most `pieceBytes` at a time (each a view the next one reuses),
 * and an empty array is returned: memory stays at a piece whatever the size.
 */
export type BoundedDecode = (
  codec: CodecName,
  data: Uint8Array,
  limit: number,
  onPiece?: (piece: Uint8Array) => void
) => Uint8Array

/** The largest piece `BoundedDecode` hands to `onPiece`; a whole payload larger than it is best decoded in pieces. */
export const pieceBytes = 1024 * 1024

/** Where zstd-napi's package and native binding are, for worker threads (which resolve no modules of their own). */
export const zstdPaths = (): { readonly zstdPackage: string; readonly zstdBinding: string } => ({
  zstdPackage: require.resolve("zstd-napi"),
  zstdBinding: require.resolve("zstd-napi/binding")
})

export type CodecName = "zstd" | "zlib"
/** Compression levels for new content (worker threads compress with the same ones). */
export const levels = { zstd: 3, zlib: 6 } as const
export const names: ReadonlyArray<CodecName> = ["zstd", "zlib"]
export const defaultCodec: CodecName = "zstd"

export class UnknownCodec extends Data.TaggedError("UnknownCodec")<{ readonly codec: string }> {
  override get message() {
    return `unsupported compression codec '${this.codec}' (this archive can read: ${names.join(", ")})`
  }
}

export class CorruptPayload extends Data.TaggedError("CorruptPayload")<{
  readonly codec: string
  readonly detail: string
  /** The tombstone whose payload it is, when known: the user's handle on it. */
  readonly tombstone?: string | undefined
}> {
  override get message() {
    const whose = this.tombstone === undefined ? "payload" : `payload of tombstone ${this.tombstone}`
    return `${whose} cannot be decoded with codec '${this.codec}': ${this.detail}`
  }
}

/**
 * A decoder that never produces more than the caller's limit (the recorded size), whatever the payload claims: the
 * archive is untrusted input, and a few KB of zstd or zlib can expand to gigabytes (a decompression bomb).
 * - zstd, one frame stating its size (the normal case): O(1) check of the claim against the limit, then one call into a
 *   buffer of exactly that size (reused when `reuse`), which zstd cannot overrun;
 * - zstd otherwise (several frames, no stated size): streamed into a buffer grown up to the limit; one byte more fails;
 * - zlib: `maxOutputLength` stops the inflate at the limit.
 * Self-contained (no reference outside itself): the restore writer ships its source to worker threads.
 */
export const boundedDecoder = (zstd: ZstdDecoding, zlib: typeof import("node:zlib"), reuse: boolean): BoundedDecode => {
  let dctx: InstanceType<ZstdDecoding["DCtx"]> | undefined
  let scratch = Buffer.allocUnsafe(reuse ? 1024 * 1024 : 0)
  const probe = Buffer.allocUnsafe(1)
  const beyond = (limit: number) => new Error(`it decodes to more than the ${limit} bytes its record allows`)
  const buffer = (n: number) =>
    !reuse ? Buffer.allocUnsafe(n) : scratch.length < n ? (scratch = Buffer.allocUnsafe(n)) : scratch
  const grow = (out: Buffer, used: number, limit: number) => {
    const bigger = Buffer.allocUnsafe(Math.min(limit, Math.max(64 * 1024, out.length * 2)))
    out.copy(bigger, 0, 0, used)
    if (reuse) scratch = bigger
    return bigger
  }
  /**
   * The frames decoded into `room(used)` (never past `limit`), each output handed to `took`: the one loop of both ways
   * below. With the budget spent, a one-byte probe tells the end of the frames from a bomb.
   */
  const drain = (
    ctx: NonNullable<typeof dctx>,
    data: Uint8Array,
    limit: number,
    room: (used: number) => Uint8Array,
    took: (bytes: Uint8Array) => void
  ): number => {
    ctx.reset(zstd.ResetDirective.sessionOnly)
    let used = 0
    let read = 0
    let hint = data.length > 0 ? 1 : 0
    while (read < data.length || hint !== 0) {
      const full = used === limit
      const dst = full ? probe : room(used)
      const [next, written, consumed] = ctx.decompressStream(dst, data.subarray(read))
      if (full && written > 0) throw beyond(limit)
      if (written === 0 && consumed === 0) throw new Error("the zstd frame is truncated")
      if (written > 0) took(dst.subarray(0, written))
      used += written
      read += consumed
      hint = next
    }
    return used
  }
  /** Frames of no stated size, whole: into a buffer grown up to the limit. */
  const stream = (ctx: NonNullable<typeof dctx>, data: Uint8Array, limit: number): Uint8Array => {
    let out = reuse ? scratch : Buffer.allocUnsafe(Math.min(limit, 64 * 1024))
    const used = drain(ctx, data, limit, (at) => {
      if (at === out.length) out = grow(out, at, limit)
      return out.subarray(at, limit)
    }, () => {})
    return out.subarray(0, used)
  }
  // 1 MiB (`pieceBytes`; written here, since this function's text is all a worker gets).
  const piece = 1024 * 1024
  let pieceOut: Buffer | undefined
  /** The frames' bytes to `onPiece`, a piece at a time into one buffer: an honest 3 GiB payload costs a piece. */
  const pieces = (
    ctx: NonNullable<typeof dctx>,
    data: Uint8Array,
    limit: number,
    onPiece: (bytes: Uint8Array) => void
  ): Uint8Array => {
    const out = (pieceOut ??= Buffer.allocUnsafe(piece))
    drain(ctx, data, limit, (used) => out.subarray(0, Math.min(out.length, limit - used)), onPiece)
    return out.subarray(0, 0)
  }
  return (codec, data, limit, onPiece) => {
    if (codec === "zlib") {
      let out: Buffer
      try {
        out = zlib.inflateSync(data, { maxOutputLength: Math.max(1, limit) })
      } catch (e) {
        throw (e as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE" ? beyond(limit) : e
      }
      if (out.length > limit) throw beyond(limit)
      if (onPiece === undefined) return out
      // Node's zlib decodes whole when synchronous: bounded by the record, handed on in pieces all the same.
      for (let at = 0; at < out.length; at += piece) onPiece(out.subarray(at, at + piece))
      return out.subarray(0, 0)
    }
    dctx ??= new zstd.DCtx()
    const claimed = data.length > 0 ? zstd.getFrameContentSize(data) : null
    if (claimed !== null && claimed > limit) {
      throw new Error(`its zstd frame claims ${claimed} bytes, more than the ${limit} its record allows`)
    }
    if (onPiece !== undefined) return pieces(dctx, data, limit, onPiece)
    if (claimed === null || zstd.findFrameCompressedSize(data) !== data.length) return stream(dctx, data, limit)
    const out = buffer(claimed)
    return out.subarray(0, dctx.decompress(out.subarray(0, claimed), data))
  }
}

/**
 * More stored bytes than any encoding of `size` raw bytes takes, whole or in chunks, with either codec (both add well
 * under 1% to incompressible data, plus a frame's few bytes per chunk). A stored payload above it is corrupt, and is
 * refused before it is fetched: a hostile archive's gigabyte row for an 8-byte item would be read whole, and on
 * PostgreSQL, its text past V8's longest string, crashed the process.
 */
export const maxEncodedSize = (size: number): number =>
  size + Math.ceil(size / 64) + 64 * 1024 * (1 + Math.ceil(size / (1024 * 1024)))

/** The corrupt payload a record claims when it stores more than `maxEncodedSize` of its size; restore and verify. */
export const oversized = (
  codec: string,
  record: { readonly sizeBytes: number; readonly compressedSize: number; readonly tombstone?: string | undefined }
): CorruptPayload | undefined =>
  record.compressedSize > maxEncodedSize(record.sizeBytes)
    ? new CorruptPayload({
      codec,
      detail: `its ${record.compressedSize} stored bytes are more than any encoding of the ${record.sizeBytes} bytes ` +
        "its record says; nothing was fetched",
      tombstone: record.tombstone
    })
    : undefined

let decoder: BoundedDecode | undefined
const decode: BoundedDecode = (codec, data, limit, onPiece) =>
  (decoder ??= boundedDecoder(require("zstd-napi/binding") as ZstdDecoding, zlib, false))(codec, data, limit, onPiece)

export interface Codec {
  readonly name: CodecName
  readonly compress: (raw: Uint8Array) => Uint8Array
  /** Decodes to at most `limit` bytes (the recorded size), or throws. */
  readonly decompress: (compressed: Uint8Array, limit: number) => Uint8Array
  /** `decompress`, handing the bytes to `onPiece` a piece (`pieceBytes`) at a time, each a view the next reuses. */
  readonly decompressPieces: (compressed: Uint8Array, limit: number, onPiece: (piece: Uint8Array) => void) => void
}

const zstdCodec: Codec = {
  name: "zstd",
  compress: (raw) => zstdBinding().compress(raw, { compressionLevel: levels.zstd }),
  decompress: (compressed, limit) => decode("zstd", compressed, limit),
  decompressPieces: (compressed, limit, onPiece) => void decode("zstd", compressed, limit, onPiece)
}

const zlibCodec: Codec = {
  name: "zlib",
  compress: (raw) => zlib.deflateSync(raw, { level: levels.zlib }),
  decompress: (compressed, limit) => decode("zlib", compressed, limit),
  decompressPieces: (compressed, limit, onPiece) => void decode("zlib", compressed, limit, onPiece)
}

/**
 * The codec recorded for an artifact; an empty or NULL value means the default, as in the original tool. An `Either`
 * (itself an effect): a batch looks up one per item and can branch on it without running an effect.
 */
export const forName = (name: string | null | undefined): Either.Either<Codec, UnknownCodec> => {
  const key = (name ?? "").trim().toLowerCase() || defaultCodec
  return key === "zstd"
    ? Either.right(zstdCodec)
    : key === "zlib"
    ? Either.right(zlibCodec)
    : Either.left(new UnknownCodec({ codec: name ?? "" }))
}

export const compress = (codec: Codec, raw: Uint8Array): Uint8Array => codec.compress(raw)

/**
 * Decompresses to at most `limit` bytes (the recorded size: more is a corrupt payload, never more memory), turning the
 * codec library's exceptions into a typed failure that names `tombstone` when given.
 */
export const decompress = (
  codec: Codec,
  compressed: Uint8Array,
  limit: number,
  tombstone?: string
): Effect.Effect<Uint8Array, CorruptPayload> =>
  Effect.try({
    try: () => codec.decompress(compressed, limit),
    catch: (e) =>
      new CorruptPayload({ codec: codec.name, detail: e instanceof Error ? e.message : String(e), tombstone })
  })

/**
 * `decompress`, the bytes handed to `onPiece` a piece at a time (`pieceBytes`, each a view the next reuses): a payload
 * of any recorded size costs a piece of memory, where decoding it whole cost its size (3 GiB of zeros fit 98 KB).
 */
export const decompressPieces = (
  codec: Codec,
  compressed: Uint8Array,
  limit: number,
  onPiece: (piece: Uint8Array) => void,
  tombstone?: string
): Effect.Effect<void, CorruptPayload> =>
  Effect.try({
    try: () => codec.decompressPieces(compressed, limit, onPiece),
    catch: (e) =>
      new CorruptPayload({ codec: codec.name, detail: e instanceof Error ? e.message : String(e), tombstone })
  })
