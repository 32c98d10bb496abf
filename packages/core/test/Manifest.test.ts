import { Manifest } from "@codex-archive/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const t1 = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const t2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
const t3 = "11111111-2222-4333-8444-555555555555"

const folder = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-manifest-")))

const withFile = (name: string, text: string) => {
  const dir = folder()
  const file = path.join(dir, name)
  fs.writeFileSync(file, text)
  return { dir, file }
}

/** Entries as the manifest states them; where they really land (`contained`) is checked on its own below. */
const load = (file: string, defaultActor = "ops") =>
  Manifest.load(file, { defaultActor }).pipe(
    Effect.map((entries) => entries.map(({ contained: _, ...entry }) => entry))
  )

const failure = (file: string, defaultActor = "ops") =>
  Effect.flip(load(file, defaultActor)).pipe(Effect.map((e) => {
    expect(e._tag).toBe("ManifestError")
    expect(e.message).toContain(file)
    return e
  }))

describe("Manifest formats", () => {
  it.effect("a JSON array, with per-entry actor falling back to the default", () => {
    const { dir, file } = withFile(
      "m.json",
      JSON.stringify([{ tombstone: t1, output: "a/one.txt", actor: "alice" }, {
        tombstone: t2.toUpperCase(),
        output: "b.txt"
      }])
    )
    return Effect.gen(function*() {
      const entries = yield* load(file)
      expect(entries).toEqual([
        { tombstone: t1, output: path.join(dir, "a/one.txt"), actor: "alice" },
        { tombstone: t2, output: path.join(dir, "b.txt"), actor: "ops" }
      ])
    })
  })

  it.effect("an output's spaces are part of its name: never trimmed, in JSON or CSV", () => {
    // Trimmed, `a.txt ` (which store --manifest-out writes as it is) was restored over `a.txt`, another file.
    const json = withFile(
      "m.json",
      JSON.stringify([{ tombstone: t1, output: "a.txt " }, { tombstone: t2, output: " a.txt" }])
    )
    const csv = withFile("m.csv", `tombstone,output\n${t1},a.txt \n${t3},\ta.txt\n`)
    return Effect.gen(function*() {
      expect((yield* load(json.file)).map((e) => e.output)).toEqual([
        path.join(json.dir, "a.txt "),
        path.join(json.dir, " a.txt")
      ])
      expect((yield* load(csv.file)).map((e) => e.output)).toEqual([
        path.join(csv.dir, "a.txt "),
        path.join(csv.dir, "\ta.txt")
      ])
    })
  })

  it.effect("a JSON object with items, and sha256 kept", () => {
    const sha = "a".repeat(64)
    const { dir, file } = withFile(
      "m.json",
      JSON.stringify({ items: [{ tombstone: t1, output: "x", sha256: sha }] }, null, 2)
    )
    return Effect.gen(function*() {
      expect(yield* load(file)).toEqual([{ tombstone: t1, output: path.join(dir, "x"), actor: "ops", sha256: sha }])
    })
  })

  it.effect("JSON Lines, blank lines ignored; a .jsonl holding one JSON array is still read", () => {
    const lines = `{"tombstone":"${t1}","output":"one"}\n\n{"tombstone":"${t2}","output":"two","actor":"bob"}\n`
    const a = withFile("m.jsonl", lines)
    const b = withFile("m.jsonl", JSON.stringify([{ tombstone: t1, output: "one" }]))
    const c = withFile("single.jsonl", `{"tombstone":"${t3}","output":"three"}`)
    return Effect.gen(function*() {
      expect((yield* load(a.file)).map((e) => [e.tombstone, path.basename(e.output), e.actor])).toEqual([[
        t1,
        "one",
        "ops"
      ], [t2, "two", "bob"]])
      expect((yield* load(b.file)).length).toBe(1)
      expect((yield* load(c.file))[0]!.tombstone).toBe(t3)
    })
  })

  it.effect("CSV with columns in any order, quoted fields, extra columns", () => {
    const csv =
      `note,output,Actor,tombstone\n"a, b","dir/with ""quotes"", and comma.txt",,${t1}\nx,plain.txt,carol,${t2}\n`
    const { dir, file } = withFile("m.csv", csv)
    return Effect.gen(function*() {
      expect(yield* load(file)).toEqual([
        { tombstone: t1, output: path.join(dir, `dir/with "quotes", and comma.txt`), actor: "ops" },
        { tombstone: t2, output: path.join(dir, "plain.txt"), actor: "carol" }
      ])
    })
  })
})

describe("Manifest errors name the file, the place and the problem", () => {
  const cases: ReadonlyArray<[string, string, string, string | undefined, string]> = [
    ["invalid JSON", "m.json", `[{"tombstone": "${t1}",\n "output": }]`, "line 2", "invalid JSON"],
    ["a bad JSON line", "m.jsonl", `{"tombstone":"${t1}","output":"a"}\n{"tombstone":\n`, "line 2", "invalid JSON"],
    ["not a list", "m.json", `{"entries": []}`, undefined, "'items' array"],
    ["a non-object entry", "m.json", `[{"tombstone":"${t1}","output":"a"}, 42]`, "entry 2", "must be an object"],
    ["a missing tombstone", "m.json", `[{"output":"a"}]`, "entry 1", "missing tombstone"],
    [
      "a tombstone that is not a UUID",
      "m.json",
      `[{"tombstone":"nope","output":"a"}]`,
      "entry 1",
      "'nope' is not a tombstone id"
    ],
    ["a missing output", "m.jsonl", `{"tombstone":"${t1}"}`, "line 1", "missing output"],
    ["an empty manifest", "m.json", "[]", undefined, "no restore entries"],
    ["an empty CSV", "m.csv", "tombstone,output\n", undefined, "no restore entries"],
    ["a CSV header without output", "m.csv", `tombstone,path\n${t1},a\n`, "line 1", "tombstone and output"],
    // Placed, an output a million folders deep overflowed the stack: refused before, by its length.
    [
      "an output a million folders deep",
      "m.json",
      JSON.stringify([{ tombstone: t1, output: `${"d/".repeat(1e6)}x` }]),
      "entry 1",
      "bytes long, more than the 4095 Linux opens"
    ],
    [
      "a CSV row with more cells than the header",
      "m.csv",
      `tombstone,output\n${t1},a\n${t2},report,final.txt\n`,
      "line 3",
      "3 cells where the header names 2 columns (quote a value that holds a comma)"
    ],
    [
      "a CSV header naming a field twice",
      "m.csv",
      `tombstone,output,TOMBSTONE\n${t1},a,${t2}\n`,
      "line 1",
      "CSV header names the column tombstone twice; keep one"
    ],
    ["a CSV with a broken quote", "m.csv", `tombstone,output\n${t1},a\n${t2},"b"x\n`, "line 3", "invalid CSV"],
    ["a CSV row without output", "m.csv", `tombstone,output\n${t1},a\n${t2},\n`, "line 3", "missing output"],
    ["an unknown extension", "m.txt", "[]", undefined, "must end in .json, .jsonl or .csv"],
    [
      "an output with half a surrogate pair",
      "m.json",
      `[{"tombstone":"${t1}","output":"a"},{"tombstone":"${t2}","output":"x\\ud800.txt"}]`,
      "entry 2",
      "holds half a surrogate pair"
    ],
    [
      "an output escaping with ..",
      "m.json",
      `[{"tombstone":"${t1}","output":"../evil"}]`,
      "entry 1",
      "outside the manifest's folder"
    ],
    [
      "an absolute output elsewhere",
      "m.json",
      `[{"tombstone":"${t1}","output":"/etc/passwd"}]`,
      "entry 1",
      "outside the manifest's folder"
    ],
    [
      "an output into .git (a hook would run)",
      "m.json",
      `[{"tombstone":"${t1}","output":"a/../.git/hooks/post-checkout"}]`,
      "entry 1",
      "goes into a .git folder, which no store archives"
    ],
    ["an output into .codex", "m.jsonl", `{"tombstone":"${t1}","output":".codex/archive.sqlite"}`, "line 1", ".codex"],
    [
      "the manifest folder itself",
      "m.json",
      `[{"tombstone":"${t1}","output":"."}]`,
      "entry 1",
      "output '.' names no file"
    ],
    [
      "two entries with one output",
      "m.json",
      `[{"tombstone":"${t1}","output":"a/b"},{"tombstone":"${t2}","output":"a/x/../b"}]`,
      "entry 2",
      "also the output of entry 1"
    ]
  ]
  for (const [name, file, text, where, problem] of cases) {
    it.effect(name, () => {
      const made = withFile(file, text)
      return Effect.gen(function*() {
        const e = yield* failure(made.file)
        expect(e.where).toBe(where)
        expect(e.problem).toContain(problem)
      })
    })
  }

  it.effect("no actor anywhere", () => {
    const { file } = withFile("m.json", `[{"tombstone":"${t1}","output":"a"}]`)
    return Effect.gen(function*() {
      expect((yield* failure(file, " ")).problem).toContain("no actor")
    })
  })

  it.effect("bytes that are not UTF-8, in every format, are refused at their line, never read as U+FFFD", () =>
    Effect.gen(function*() {
      // Read leniently, `out\xff.txt` named another file, `out\u{FFFD}.txt`, which a batch restored and called a success.
      const cases: ReadonlyArray<[string, string]> = [
        ["m.json", `[{"tombstone":"${t1}",\n"output":"out\xff.txt"}]`],
        ["m.json", `{"items":[{"tombstone":"${t1}",\n"output":"out\xff.txt"}]}`],
        ["m.jsonl", `{"tombstone":"${t2}","output":"a"}\n{"tombstone":"${t1}","output":"out\xff.txt"}\n`],
        ["m.csv", `tombstone,output\n${t1},out\xff.txt\n`]
      ]
      for (const [name, text] of cases) {
        const bytes = Buffer.from(text, "latin1")
        const { file } = withFile(name, "")
        fs.writeFileSync(file, bytes)
        const offset = bytes.indexOf(0xff)
        const line = bytes.subarray(0, offset).toString("latin1").split("\n").length
        const e = yield* failure(file)
        expect(e.problem).toBe(`not UTF-8 text: byte 0xff at line ${line} (offset ${offset})`)
      }
    }))

  it.effect("a missing manifest", () => {
    const file = path.join(folder(), "absent.json")
    return Effect.gen(function*() {
      expect((yield* failure(file)).problem).toBe("no such file")
    })
  })

  it.effect("an output inside the folder through a symbolic link leading out", () => {
    const outside = folder()
    const { dir, file } = withFile("m.json", `[{"tombstone":"${t1}","output":"link/x"}]`)
    fs.symlinkSync(outside, path.join(dir, "link"))
    return Effect.gen(function*() {
      expect((yield* failure(file)).problem).toContain("outside the manifest's folder")
    })
  })

  it.effect("an output in folders not made yet, under a symbolic link leading out, after one inside", () => {
    const outside = folder()
    const { dir, file } = withFile(
      "m.json",
      `[{"tombstone":"${t1}","output":"new/deeper/x"},{"tombstone":"${t2}","output":"link/new/deeper/y"}]`
    )
    fs.symlinkSync(outside, path.join(dir, "link"))
    return Effect.gen(function*() {
      const error = yield* failure(file)
      expect(error.problem).toBe("output 'link/new/deeper/y' is outside the manifest's folder " + dir)
      expect(error.message).toContain("entry 2")
    })
  })

  it.effect("an output under a regular file is an entry like any other (its restore fails, the manifest loads)", () => {
    const { dir, file } = withFile("m.json", `[{"tombstone":"${t1}","output":"plain.txt/deeper/x"}]`)
    fs.writeFileSync(path.join(dir, "plain.txt"), "not a folder")
    return Effect.gen(function*() {
      expect((yield* load(file))[0]!.output).toBe(path.join(dir, "plain.txt/deeper/x"))
    })
  })

  it.effect("an absolute output inside the folder is accepted", () => {
    const dir = folder()
    const file = path.join(dir, "m.json")
    fs.writeFileSync(file, JSON.stringify([{ tombstone: t1, output: path.join(dir, "deep/x") }]))
    return Effect.gen(function*() {
      expect((yield* load(file))[0]!.output).toBe(path.join(dir, "deep/x"))
    })
  })
})

describe("Manifest writer", () => {
  it.effect("writes outputs relative to its folder and loads back to the same entries", () => {
    const dir = folder()
    const file = path.join(dir, "out", "manifest.json")
    fs.mkdirSync(path.dirname(file))
    const written = [
      { tombstone: t1, output: path.join(dir, "out", "src/a.ts"), sha256: "b".repeat(64) },
      { tombstone: t2, output: path.join(dir, "out", "b c.txt"), sha256: "c".repeat(64) }
    ]
    return Effect.gen(function*() {
      yield* Manifest.write(file, written)
      const raw = JSON.parse(fs.readFileSync(file, "utf8"))
      expect(raw[0]).toEqual({ tombstone: t1, output: "src/a.ts", sha256: "b".repeat(64) })
      expect(yield* load(file, "ops")).toEqual(written.map((w) => ({ ...w, actor: "ops" })))
      expect(fs.readdirSync(path.dirname(file))).toEqual(["manifest.json"])
    })
  })

  it.effect("refuses an output outside the manifest's folder", () => {
    const dir = folder()
    return Effect.gen(function*() {
      const e = yield* Effect.flip(
        Manifest.write(path.join(dir, "sub", "m.json"), [{
          tombstone: t1,
          output: path.join(dir, "x"),
          sha256: "b".repeat(64)
        }])
      )
      expect(e.where).toBe("entry 1")
      expect(e.problem).toContain("outside the manifest's folder")
    })
  })
})

describe("Manifest files that never end", () => {
  it.effect("a manifest that is a link to a device or a FIFO is refused, not read without end", () =>
    Effect.gen(function*() {
      const dir = folder()
      const device = path.join(dir, "zero.json")
      fs.symlinkSync("/dev/zero", device)
      expect((yield* failure(device)).message).toContain("not a regular file")
      const fifo = path.join(dir, "fifo.jsonl")
      execFileSync("mkfifo", [fifo])
      expect((yield* failure(fifo)).message).toContain("not a regular file")
    }))
})

describe("Manifest outputs no file can have", () => {
  it.effect("a NUL in an output is refused at the check, naming the entry (JSON, JSONL and CSV)", () =>
    Effect.gen(function*() {
      const t = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
      for (
        const [name, text, where] of [
          ["m.json", JSON.stringify([{ tombstone: t, output: "a\u0000b" }]), "(entry 1)"],
          ["m.jsonl", JSON.stringify({ tombstone: t, output: "a\u0000b" }) + "\n", "(line 1)"],
          ["m.csv", `tombstone,output\n${t},a\u0000b\n`, "(line 2)"]
        ] as const
      ) {
        const { file } = withFile(name, text)
        const e = yield* failure(file)
        expect(e.message, name).toContain(where)
        expect(e.message, name).toContain("contains a NUL byte")
      }
    }))
})
