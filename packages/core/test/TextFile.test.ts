import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as TextFile from "../src/internal/TextFile.js"
import * as Utf8 from "../src/internal/Utf8.js"

const file = (text: string) => {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-text-")), "t.txt")
  fs.writeFileSync(f, text)
  return f
}

describe("TextFile.lines", () => {
  it("gives every line whole, one longer than several pieces, and breaks that fall on a piece's edge", () => {
    const MiB = 1 << 20
    const long = "x".repeat(3 * MiB + 17)
    // The first line ends exactly at the first piece's end; the long one spans four pieces.
    const first = "a".repeat(MiB - 1)
    const text = `${first}\n${long}\nshort\n\n${"é".repeat(10)}`
    expect([...TextFile.lines(file(text))]).toEqual([first, long, "short", "", "é".repeat(10)])
    expect([...TextFile.lines(file("one\n"))]).toEqual(["one", ""])
    expect([...TextFile.lines(file(""))]).toEqual([""])
  })
})

const bytesFile = (bytes: Buffer) => {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "codex-text-")), "t.txt")
  fs.writeFileSync(f, bytes)
  return f
}

describe("TextFile refuses text that is not UTF-8", () => {
  const read = (
    bytes: Buffer,
    options?: { readonly tornTail?: boolean }
  ) => [...TextFile.lines(bytesFile(bytes), options)]
  const refusal = (bytes: Buffer) => {
    try {
      read(bytes)
    } catch (e) {
      expect(e).toBeInstanceOf(Utf8.NotUtf8)
      return (e as Error).message
    }
    throw new Error("read without complaint")
  }

  it("names the bad byte, its line and its offset, wherever it falls", () => {
    expect(refusal(Buffer.from("ok\nout\xff.txt\n", "latin1"))).toBe("not UTF-8 text: byte 0xff at line 2 (offset 6)")
    // Overlong forms, surrogates and a lone continuation byte are not UTF-8 either.
    expect(refusal(Buffer.from([0x61, 0xc0, 0xaf]))).toBe("not UTF-8 text: byte 0xc0 at line 1 (offset 1)")
    expect(refusal(Buffer.from([0x0a, 0xed, 0xa0, 0x80]))).toBe("not UTF-8 text: byte 0xed at line 2 (offset 1)")
    expect(refusal(Buffer.from([0x80]))).toBe("not UTF-8 text: byte 0x80 at line 1 (offset 0)")
    expect(refusal(Buffer.concat([Buffer.from("é\n"), Buffer.from([0xe2, 0x82])]))).toBe(
      "not UTF-8 text: it ends inside a character at line 2 (offset 3)"
    )
    // Past the first piece: offsets and lines count from the start of the file.
    const MiB = 1 << 20
    const before = Buffer.from(`${"a".repeat(MiB - 2)}\n€`) // the € straddles the pieces' edge, whole
    expect(refusal(Buffer.concat([before, Buffer.from([0x0a, 0x62, 0xfe])]))).toBe(
      `not UTF-8 text: byte 0xfe at line 3 (offset ${before.length + 2})`
    )
  })

  it("a bad lead byte just before a character the piece's edge cuts is named as a byte, not as the end", () => {
    const MiB = 1 << 20
    const bytes = Buffer.concat([Buffer.from("a".repeat(MiB - 3)), Buffer.from([0xe2]), Buffer.from("€\n")])
    expect(refusal(bytes)).toBe(`not UTF-8 text: byte 0xe2 at line 1 (offset ${MiB - 3})`)
  })

  it("reads every character whole where a piece's edge cuts it, and a torn last character only when asked", () => {
    const MiB = 1 << 20
    for (const cut of [1, 2, 3]) {
      const text = `${"a".repeat(MiB - cut)}😀\nnext`
      expect(read(Buffer.from(text))).toEqual([`${"a".repeat(MiB - cut)}😀`, "next"])
    }
    const torn = Buffer.concat([Buffer.from("whole\npart"), Buffer.from("😀").subarray(0, 2)])
    expect(() => read(torn)).toThrow(Utf8.NotUtf8)
    expect(read(torn, { tornTail: true })).toEqual(["whole", "part\uFFFD"])
  })
})
