import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Chunking from "../src/Chunking.js"

/** Every piece the splitter reads from a file of `size` bytes, with the flag that says the content ended. */
const split = (size: number) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-chunking-")), "f.bin")
  fs.writeFileSync(file, Buffer.alloc(size, 7))
  const fd = fs.openSync(file, "r")
  try {
    const next = Chunking.splitter(fd)
    const pieces: Array<{ bytes: number | undefined; end: boolean }> = []
    for (let piece = next();; piece = next()) {
      pieces.push({ bytes: piece.chunk?.length, end: piece.end })
      if (piece.end) return pieces
    }
  } finally {
    fs.closeSync(fd)
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
}

describe("Chunking", () => {
  const mib = Chunking.chunkSize
  it("an empty file is one empty chunk; a file ending on a boundary has no empty one after it", () => {
    expect(split(0)).toEqual([{ bytes: 0, end: true }])
    expect(split(2 * mib)).toEqual([
      { bytes: mib, end: false },
      { bytes: mib, end: false },
      { bytes: undefined, end: true }
    ])
    expect(split(mib + 5)).toEqual([{ bytes: mib, end: false }, { bytes: 5, end: true }])
  })

  it("rows must run 0, 1, 2, ...: a gap and a step back are named", () => {
    expect(Chunking.seqError("a1", 1, 1)).toBeUndefined()
    expect(Chunking.seqError("a1", 1, 3)).toBe(
      "table artifact_chunk, row a1#3: column seq: expected 1 (chunk 1 is missing)"
    )
    expect(Chunking.seqError("a1", 2, 1)).toBe("table artifact_chunk, row a1#1: column seq: expected 2 (out of order)")
  })

  it("the chunked layout: a compression prefix the codec is read back from", () => {
    expect(Chunking.codecOfCompression(Chunking.chunkedCompression("zstd"))).toBe("zstd")
    expect(Chunking.codecOfCompression("zlib")).toBe("zlib")
  })
})
