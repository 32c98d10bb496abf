/**
 * Chunking of large content, in one place: the chunk size, the split of a file into raw pieces, how a chunked artifact
 * is recorded (its `compression` prefix, its `blob_bytes` marker, its `artifact_chunk` rows) and the checks its
 * reassembly makes (rows in order, none missing).
 */
import * as fs from "node:fs"

/** Chunked content is stored in pieces of this size of raw content, one `artifact_chunk` row each. */
export const chunkSize = 1024 * 1024

/**
 * A chunked artifact's `compression`: `chunked:<codec>`. The original reads only `blob_bytes` with this codec, so it
 * refuses such an item by this name ("Unsupported compression codec") instead of calling it purged.
 */
export const chunkedCompression = (codec: string): string => `chunked:${codec}`

/** The codec of an artifact's bytes: `compression` without the `chunked:` prefix. */
export const codecOfCompression = (compression: string): string =>
  compression.startsWith("chunked:") ? compression.slice("chunked:".length) : compression

/** A chunked artifact's `blob_bytes`: never NULL (the original would call it purged), and says where the bytes are. */
export const chunkedMarker = "codex-archive: content in artifact_chunk rows"

/** A file's next raw chunk, and whether the content ended with this read. */
export interface Piece {
  readonly chunk: Uint8Array | undefined
  readonly end: boolean
}

/**
 * Splits an open file into raw chunks, one read call at a time (memory bounded by one chunk). An empty file is one
 * empty chunk; a file ending on a chunk boundary has no empty chunk after it. Read errors are thrown.
 */
export const splitter = (fd: number): () => Piece => {
  let emitted = 0
  return () => {
    const buf = Buffer.allocUnsafe(chunkSize)
    let filled = 0
    let n: number
    while (filled < chunkSize && (n = fs.readSync(fd, buf, filled, chunkSize - filled, null)) > 0) filled += n
    const end = filled < chunkSize
    if (filled === 0 && emitted > 0) return { chunk: undefined, end }
    emitted++
    return { chunk: buf.subarray(0, filled), end }
  }
}

/**
 * Why the row of `seq` cannot be chunk `index` of artifact `artifactId` (rows run 0, 1, 2, ... without a gap), or
 * undefined. Self-contained: restore workers get it as source text.
 */
export const seqError = (artifactId: string, index: number, seq: number): string | undefined =>
  seq === index ? undefined : `table artifact_chunk, row ${artifactId}#${seq}: column seq: expected ${index}` +
    (seq > index ? ` (chunk ${index} is missing)` : " (out of order)")

/** Stored bytes of the artifact aliased `t`, as SQL: its chunks when chunked (its `blob_bytes` is only a marker). */
export const compressedSizeSql = (t: string) =>
  `CASE WHEN ${t}.storage_driver = 'chunked' THEN COALESCE((SELECT SUM(LENGTH(c.blob_bytes)) FROM artifact_chunk c
        WHERE c.artifact_id = ${t}.id), 0) ELSE COALESCE(LENGTH(${t}.blob_bytes), 0) END AS compressed_size`

/** One parameter, an artifact id: its chunk rows' place and bytes, in order (a restore reads them so). */
export const chunksQuery = "SELECT seq, blob_bytes FROM artifact_chunk WHERE artifact_id = ? ORDER BY seq"
