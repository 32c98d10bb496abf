import { describe, expect, it } from "@effect/vitest"
import * as Utf8Args from "../src/Utf8Args.js"

/** The command line as Node decodes it, and the bytes `/proc/self` holds for it. */
const given = (args: ReadonlyArray<Buffer>, env: ReadonlyArray<readonly [string, Buffer]> = []) => {
  const argv = ["node", "codex.mjs", ...args.map((a) => a.toString("utf8"))]
  const read = (file: string) =>
    file.endsWith("cmdline")
      ? [Buffer.from("node"), Buffer.from("--stack-size=900"), Buffer.from("codex.mjs"), ...args]
      : env.map(([name, value]) => Buffer.concat([Buffer.from(`${name}=`), value]))
  return Utf8Args.refusal(argv, Object.fromEntries(env.map(([n, v]) => [n, v.toString("utf8")])), read)
}
const bytes = (text: string) => Buffer.from(text, "latin1")

describe("Utf8Args.refusal", () => {
  it("names the first argument that is not UTF-8 by its bytes, credentials redacted", () => {
    expect(given([bytes("restore"), bytes("a\x05b\xff")])).toBe(
      "argument 'a\\x05b\\xff' is not UTF-8, and Node.js would read it as another name; use a UTF-8 name"
    )
    const url = given([bytes("list"), bytes("--url"), bytes("postgres://alice:hunter2\xff@db/a")])
    expect(url).toContain("argument 'postgres://***@db/a' is not UTF-8")
    expect(url).not.toContain("hunter2")
    // Two arguments that read back alike: the one whose bytes differ is named, wherever it is.
    expect(given([Buffer.from("x\uFFFD"), bytes("x\xfe")])).toContain("argument 'x\\xfe'")
  })

  it("accepts U+FFFD itself, in UTF-8, and a command line of UTF-8", () => {
    expect(given([Buffer.from("out\uFFFD.txt")])).toBeUndefined()
    expect(given([Buffer.from("é😀")], [["CODEX_ACTOR", Buffer.from("zoë")]])).toBeUndefined()
  })

  it("names this tool's variables only, and never shows their values (a key, a URL's password)", () => {
    const key = given([], [["CODEX_EVIDENCE_HMAC_KEY", bytes("topsecret\xff")]])
    expect(key).toBe(
      "CODEX_EVIDENCE_HMAC_KEY is not UTF-8, and Node.js would read it as another value; set it in UTF-8"
    )
    expect(given([], [["CODEX_ARCHIVE_URL", bytes("postgres://a:hunter2\xff@h/d")]])).not.toContain("hunter2")
    // Another program's variable under the same prefix is not ours to refuse.
    expect(given([], [["CODEX_HOME", bytes("/home/\xff")], ["CODEX_X\nY", bytes("\xff")]])).toBeUndefined()
  })

  it("names a working folder that is not UTF-8 by its bytes; without /proc, one holding U+FFFD, saying why", () => {
    const folder = (path: string, bytes: Buffer | undefined) => ({ path: () => path, bytes: () => bytes })
    const argv = ["node", "codex.mjs", "list"]
    expect(Utf8Args.refusal(argv, {}, () => undefined, folder("/srv/cw\uFFFD", bytes("/srv/cw\xff")))).toBe(
      "the current folder '/srv/cw\\xff' is not UTF-8: relative paths would be read under another folder by Node.js; " +
        "run from a folder whose path is UTF-8"
    )
    expect(Utf8Args.refusal(argv, {}, () => undefined, folder("/srv/cw\uFFFD", Buffer.from("/srv/cw\uFFFD"))))
      .toBeUndefined()
    expect(Utf8Args.refusal(argv, {}, () => undefined, folder("/srv/cw\uFFFD", undefined))).toContain(
      "the current folder '/srv/cw\\xef\\xbf\\xbd' holds U+FFFD"
    )
  })

  it("without /proc to read, an argument holding U+FFFD is refused, saying why", () => {
    const argv = ["node", "codex.mjs", "restore", "out\uFFFD.txt"]
    expect(Utf8Args.refusal(argv, {}, () => undefined)).toContain("argument 'out\\xef\\xbf\\xbd.txt' holds U+FFFD")
  })
})
