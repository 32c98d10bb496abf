import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as path from "node:path"
import { Walk } from "../src/index.js"

/** The definition: any segment of the normalized path, lower-cased, is a skipped folder's name. */
const reference = (relative: string): string | undefined =>
  path.normalize(relative).split(/[\\/]/).find((part) => Walk.isSkippedFolder(part.toLowerCase()))

describe("Walk.skippedFolderOn", () => {
  it("finds the skipped folder a path goes into exactly as the normalized path's segments say, for any path", () => {
    const segment = fc.oneof(
      fc.constantFrom(
        ".git",
        ".GIT",
        ".Hg",
        ".svn",
        ".codex",
        ".",
        "..",
        "",
        "a",
        ".gitx",
        "x.git",
        "\u017fvn",
        "\u0130"
      ),
      fc.string({ maxLength: 6 })
    )
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), fc.constantFrom("/", "\\", "//"), (parts, sep) => {
        const relative = parts.join(sep)
        expect(Walk.skippedFolderOn(relative), JSON.stringify(relative)).toBe(reference(relative))
      }),
      { numRuns: 5000 }
    )
  })

  it("names the folder, whatever its letter case and however the path reaches it", () => {
    expect(Walk.skippedFolderOn("src/.GIT/hooks/x")).toBe(".GIT")
    expect(Walk.skippedFolderOn("a\\.svn\\entries")).toBe(".svn")
    expect(Walk.skippedFolderOn("a/../.codex/archive.sqlite")).toBe(".codex")
    expect(Walk.skippedFolderOn("a/.gitx/b.git")).toBeUndefined()
  })
})
