/**
 * Hostile manifest entries, in each format: every one is refused before anything is restored, with one line naming
 * the manifest file, the entry (its line or ordinal) and the field.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Manifest, ManifestEntry } from "../src/index.js"

const t1 = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const t2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

const folder = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-entry-")))

type Fields = Record<string, unknown>

/** The manifest text holding a good first entry and then `bad`, and where the bad one stands, per format. */
const formats: ReadonlyArray<[string, (bad: Fields) => string, string]> = [
  ["m.json", (bad) => JSON.stringify([{ tombstone: t1, output: "ok" }, bad]), "entry 2"],
  [
    "m.jsonl",
    (bad) => [{ tombstone: t1, output: "ok" }, bad].map((e) => JSON.stringify(e)).join("\n") + "\n",
    "line 2"
  ],
  [
    "m.csv",
    (bad) =>
      `tombstone,output,actor,sha256\n${t1},ok,,\n` +
      [bad.tombstone, bad.output, bad.actor, bad.sha256].map((v) => v === undefined ? "" : String(v)).join(",") +
      "\n",
    "line 3"
  ]
]

/** Hostile entries: the field named, and what the problem says. CSV cells are text, so a wrong type is JSON's alone. */
const hostile: ReadonlyArray<[string, Fields, string, RegExp, boolean]> = [
  [
    "a bad id",
    { tombstone: "../../etc", output: "a" },
    "tombstone",
    /tombstone: '\.\.\/\.\.\/etc' is not a tombstone id/,
    true
  ],
  [
    "an output escaping with ..",
    { tombstone: t2, output: "a/../../evil" },
    "output",
    /output 'a\/\.\.\/\.\.\/evil' is outside the manifest's folder/,
    true
  ],
  // A dry run said RESTORABLE; the real run failed with ENAMETOOLONG (an attack review).
  [
    "an output with a name longer than a file system takes",
    { tombstone: t2, output: `d/${"é".repeat(128)}.txt` },
    "output",
    /output 'd\/é+\.txt' holds a name of 260 bytes, more than the 255 a file system takes/,
    true
  ],
  [
    "an output longer than Linux opens",
    { tombstone: t2, output: `${"d/".repeat(2100)}x` },
    "output",
    // Shown by its start and length: a hostile output may be megabytes long.
    /output '(d\/){50}'\.\.\. \(4201 bytes\) is \d+ bytes long, more than the 4095 Linux opens/,
    true
  ],
  // Written as a file `newdir` (an attack review).
  [
    "an output naming a folder",
    { tombstone: t2, output: "newdir/" },
    "output",
    /output 'newdir\/' names no file \(it ends in '\/', '\.' or '\.\.'\)/,
    true
  ],
  [
    "an output ending in /.",
    { tombstone: t2, output: "x/." },
    "output",
    /output 'x\/\.' names no file/,
    true
  ],
  [
    "a NUL in the output",
    { tombstone: t2, output: "a\u0000b" },
    "output",
    /output: "a\\u0000b" contains a NUL byte/,
    true
  ],
  ["a bad sha256", { tombstone: t2, output: "a", sha256: "xyz" }, "sha256", /sha256: 'xyz' is not a sha256/, true],
  [
    "a number as tombstone",
    { tombstone: 42, output: "a" },
    "tombstone",
    /tombstone: Expected string, actual 42/,
    false
  ],
  [
    "an object as output",
    { tombstone: t2, output: { path: "a" } },
    "output",
    /output: Expected string, actual \{"path":"a"\}/,
    false
  ],
  [
    "a list as actor",
    { tombstone: t2, output: "a", actor: ["x"] },
    "actor",
    /actor: Expected string, actual \["x"\]/,
    false
  ]
]

describe("hostile manifest entries name the file, the entry and the field on one line", () => {
  for (const [name, text, where] of formats) {
    for (const [what, bad, field, problem, inCsv] of hostile) {
      if (name === "m.csv" && !inCsv) continue
      it.effect(`${name}: ${what}`, () =>
        Effect.gen(function*() {
          const dir = folder()
          const file = path.join(dir, name)
          fs.writeFileSync(file, text(bad))
          const e = yield* Effect.flip(Manifest.load(file, { defaultActor: "ops" }))
          expect(e._tag).toBe("ManifestError")
          expect(e.message).toContain(`manifest ${file} (${where}): `)
          expect(e.message).toContain(field)
          expect(e.message).toMatch(problem)
          expect(e.message).not.toMatch(/[\n\r\u0000]/)
        }))
    }
  }

  it.effect("a newline in an output that escapes is named as JSON, keeping the error one line", () =>
    Effect.gen(function*() {
      const dir = folder()
      const file = path.join(dir, "m.jsonl")
      fs.writeFileSync(file, JSON.stringify({ tombstone: t1, output: "../x\n# Tombstone: y" }) + "\n")
      const e = yield* Effect.flip(Manifest.load(file, { defaultActor: "ops" }))
      expect(e.message).toBe(
        `manifest ${file} (line 1): output "../x\\n# Tombstone: y" is outside the manifest's folder ${dir}`
      )
    }))

  it.effect("a newline in a tombstone is named as JSON too", () =>
    Effect.gen(function*() {
      const dir = folder()
      const file = path.join(dir, "m.json")
      fs.writeFileSync(file, JSON.stringify([{ tombstone: `${t1}\nrm -rf /`, output: "a" }]))
      const e = yield* Effect.flip(Manifest.load(file, { defaultActor: "ops" }))
      expect(e.message).toContain(`(entry 1): tombstone: '${t1}\\nrm -rf /' is not a tombstone id`)
      expect(e.message).not.toContain("\n")
    }))

  it.effect("a newline inside the folder is a name a file can have (store writes such names): it loads", () =>
    Effect.gen(function*() {
      const dir = folder()
      const file = path.join(dir, "m.json")
      fs.writeFileSync(file, JSON.stringify([{ tombstone: t1, output: "a\nb" }]))
      const [entry] = yield* Manifest.load(file, { defaultActor: "ops" })
      expect(entry!.output).toBe(path.join(dir, "a\nb"))
    }))

  it.effect("one Schema for every format: blank and null fields are not given, a CSV's sha256 column is read", () =>
    Effect.gen(function*() {
      const dir = folder()
      const sha = "ab".repeat(32)
      fs.writeFileSync(path.join(dir, "m.csv"), `tombstone,output,sha256,actor\n${t1},a,${sha.toUpperCase()},\n`)
      fs.writeFileSync(
        path.join(dir, "m.json"),
        JSON.stringify([{ tombstone: t1, output: "a", sha256: sha, actor: null }])
      )
      for (const name of ["m.csv", "m.json"]) {
        const entries = yield* Manifest.load(path.join(dir, name), { defaultActor: "ops" })
        expect(entries.map(({ contained: _, ...e }) => e)).toEqual([
          { tombstone: t1, output: path.join(dir, "a"), actor: "ops", sha256: sha }
        ])
      }
    }))

  it("the checker decodes one record: ids normalised, the output placed below the folder as written and really", () => {
    const dir = folder()
    const check = ManifestEntry.checker({ defaultActor: " ops ", baseDir: dir })
    // An output's spaces are part of its name (` sub/x ` is no `sub/x`); an id's are not.
    expect(check({ tombstone: ` ${t1.toUpperCase()} `, output: " sub/x ", actor: "ann" })).toEqual({
      tombstone: t1,
      output: path.join(dir, " sub/x "),
      actor: "ann",
      contained: { root: dir, path: path.join(dir, " sub/x ") }
    })
    expect(check("a string")).toBe("each manifest entry must be an object with tombstone and output")
    expect(check({ output: "x" })).toBe("missing tombstone")
    expect(check({ tombstone: t1, output: "   " })).toBe("missing output")
  })

  it("an output nested 200,000 arrays deep is refused in words, not with the stack overflow of showing it", () => {
    const check = ManifestEntry.checker({ defaultActor: "ops", baseDir: folder() })
    const deep = JSON.parse("[".repeat(200_000) + "]".repeat(200_000)) as unknown
    expect(check({ tombstone: t1, output: deep })).toBe("a value nested too deeply to show (a field must be a string)")
  })
})
