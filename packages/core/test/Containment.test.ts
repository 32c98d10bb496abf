/**
 * Contained writes (issue 14, defect 5): a batch's outputs stay inside their folder by construction, not by one check
 * up front, and files are held until the caller commits them (record then rename).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { Codec, Containment, FileOps, Manifest, RestoreWriter } from "../src/index.js"

const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex")
const tempDir = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-contained-")))
const raw = Buffer.from("restored content\n".repeat(10))
const packed = Effect.map(Codec.forName("zstd"), (c) => Codec.compress(c, raw))

/** A held, contained write of `raw` to `output` below `root`. */
const write = (id: number, root: string, output: string, data: Uint8Array): RestoreWriter.Op => ({
  op: "write",
  id,
  output,
  temp: FileOps.tempFor(output),
  mode: 0o644,
  codec: "zstd",
  sha256: sha(raw),
  size: raw.length,
  hold: true,
  root,
  data
})

/** Every file below a folder, relative (links not followed). */
const files = (dir: string): Array<string> =>
  (fs.readdirSync(dir, { recursive: true }) as Array<string>).filter((f) => fs.lstatSync(path.join(dir, f)).isFile())
    .sort()

/** This process's descriptors open on something below these folders. */
const openBelow = (...dirs: ReadonlyArray<string>): Array<string> =>
  fs.readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const at = fs.readlinkSync(`/proc/self/fd/${fd}`)
      return dirs.some((d) => at.startsWith(d + path.sep)) ? [at] : []
    } catch {
      return []
    }
  })

const writers: ReadonlyArray<[string, Effect.Effect<RestoreWriter.RestoreWriter, never, Scope.Scope>]> = [
  ["in this thread", Effect.sync(() => RestoreWriter.inThread())],
  ["in worker threads", RestoreWriter.workers(1)]
]

describe.each(writers)("contained RestoreWriter %s", (_name, make) => {
  it.scoped("holds a verified file until commit, and discard removes it", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const root = tempDir()
      const a = path.join(root, "new/a.txt")
      const b = path.join(root, "b.txt")
      const replies = yield* writer.run(0, [write(1, root, a, yield* packed), write(2, root, b, yield* packed)])
      expect(replies.map((r) => r.ok)).toEqual([true, true])
      // Verified but not visible: only the hidden temp files exist.
      expect(files(root)).toEqual([".b.txt.codex-restore.tmp", "new/.a.txt.codex-restore.tmp"])
      const committed = yield* writer.run(0, [{ op: "discard", ids: [2] }, { op: "commit", ids: [1] }])
      expect(committed).toMatchObject([{ id: 1, ok: true, bytes: raw.length }])
      expect(files(root)).toEqual(["new/a.txt"])
      expect(fs.readFileSync(a)).toEqual(raw)
    }))

  it.scoped("a folder that is a link out of the root fails the item: nothing created or written outside", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const root = tempDir()
      const outside = tempDir()
      fs.symlinkSync(outside, path.join(root, "link"))
      const replies = yield* writer.run(0, [
        write(1, root, path.join(root, "link/x.txt"), yield* packed),
        write(2, root, path.join(root, "link/made/y.txt"), yield* packed)
      ])
      expect(replies).toMatchObject([{ ok: false, problem: "escapes" }, { ok: false, problem: "escapes" }])
      expect(replies[0]!.ok ? "" : replies[0]!.detail).toContain(`${root}/link is a symbolic link`)
      expect(fs.readdirSync(outside)).toEqual([])
      expect(files(root)).toEqual([])
    }))

  it.scoped("a folder swapped for a link between write and commit: the rename is refused, the temp removed", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const root = tempDir()
      const outside = tempDir()
      const output = path.join(root, "sub/deeper/x.txt")
      expect((yield* writer.run(0, [write(1, root, output, yield* packed)]))[0]!.ok).toBe(true)
      // The attacker moves the real folder (temp file and all) out, and leaves a link in its place.
      fs.renameSync(path.join(root, "sub"), path.join(outside, "sub"))
      fs.symlinkSync(path.join(outside, "sub"), path.join(root, "sub"))
      const [reply] = yield* writer.run(0, [{ op: "commit", ids: [1] }])
      expect(reply).toMatchObject({ id: 1, ok: false, problem: "escapes" })
      expect(files(outside)).toEqual([])
    }))

  it.scoped("a folder moved away before commit or discard: the items fail, their temp files removed where it went", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const root = tempDir()
      const outside = tempDir()
      const [a, b, c] = ["sub/a.txt", "sub/b.txt", "other/c.txt"].map((p) => path.join(root, p))
      const written = yield* writer.run(0, [
        write(1, root, a!, yield* packed),
        write(2, root, b!, yield* packed),
        write(3, root, c!, yield* packed)
      ])
      expect(written.map((r) => r.ok)).toEqual([true, true, true])
      // Caught mid-swap: the folder is gone from its path (no link yet), its temp files with it.
      fs.renameSync(path.join(root, "sub"), path.join(outside, "sub"))
      const [reply] = yield* writer.run(0, [{ op: "commit", ids: [1] }])
      expect(reply).toMatchObject({ id: 1, ok: false, problem: "unwritable", code: "ENOENT" })
      expect(files(outside)).toEqual(["sub/.b.txt.codex-restore.tmp"])
      expect(yield* writer.run(0, [{ op: "discard", ids: [2] }])).toEqual([])
      expect(files(outside)).toEqual([])
      // A folder that stayed is untouched by the other's move.
      expect((yield* writer.run(0, [{ op: "commit", ids: [3] }]))[0]!.ok).toBe(true)
      expect(files(root)).toEqual(["other/c.txt"])
      // Each folder was held open only while it held a temp file.
      expect(openBelow(root, outside)).toEqual([])
    }))

  it.scoped("a link planted at the temp file's name is replaced, not written through", () =>
    Effect.gen(function*() {
      const writer = yield* make
      const root = tempDir()
      const victim = path.join(tempDir(), "victim")
      fs.writeFileSync(victim, "keep me")
      const output = path.join(root, "x.txt")
      fs.symlinkSync(victim, FileOps.tempFor(output))
      const replies = yield* writer.run(0, [write(1, root, output, yield* packed), { op: "commit", ids: [1] }])
      expect(replies.map((r) => r.ok)).toEqual([true, true])
      expect(fs.readFileSync(victim, "utf8")).toBe("keep me")
      expect(fs.readFileSync(output)).toEqual(raw)
    }))
})

describe("contained RestoreWriter in this thread: a folder swapped for a link after its check", () => {
  it.scoped("the temp file created through the link is removed where it landed, before a byte is written", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const outside = tempDir()
      const output = path.join(root, "sub/x.txt")
      const data = yield* packed
      // The swap lands between the folder's check and the temp file's creation: fs.openSync is wrapped for that one
      // call (the ESM bindings follow the CommonJS object through syncBuiltinESMExports).
      const cjs = createRequire(import.meta.url)("node:fs") as typeof fs
      const open = cjs.openSync
      const restore = () => {
        cjs.openSync = open
        syncBuiltinESMExports()
      }
      cjs.openSync = ((file: fs.PathLike, ...rest: Array<never>) => {
        if (String(file) === FileOps.tempFor(output)) {
          restore()
          fs.renameSync(path.join(root, "sub"), path.join(root, "sub.real"))
          fs.symlinkSync(outside, path.join(root, "sub"))
        }
        return (open as (...args: Array<unknown>) => number)(file, ...rest)
      }) as typeof fs.openSync
      syncBuiltinESMExports()
      const [reply] = yield* RestoreWriter.inThread().run(0, [write(1, root, output, data)]).pipe(
        Effect.ensuring(Effect.sync(restore))
      )
      expect(reply).toMatchObject({ id: 1, ok: false, problem: "escapes" })
      expect(reply!.ok ? "" : reply!.detail).toContain(
        `was created at ${outside}/.x.txt.codex-restore.tmp, through a link`
      )
      expect(fs.readdirSync(outside)).toEqual([])
    }))
})

/** Wraps one function of the CommonJS `node:fs` (the ESM bindings follow it) until `restore`. */
const wrapFs = <K extends "openSync" | "mkdirSync" | "readlinkSync">(
  name: K,
  wrap: (original: (typeof fs)[K], restore: () => void) => (typeof fs)[K]
) => {
  const cjs = createRequire(import.meta.url)("node:fs") as typeof fs
  const original = cjs[name]
  const restore = () => {
    cjs[name] = original
    syncBuiltinESMExports()
  }
  cjs[name] = wrap(original, restore)
  syncBuiltinESMExports()
  return restore
}

describe("contained RestoreWriter in this thread: folders moved or swapped at the worst moment", () => {
  it.scoped("a folder made through an ancestor swapped for a link is removed where it was made, and the item fails", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const outside = tempDir()
      fs.mkdirSync(path.join(root, "a"))
      const output = path.join(root, "a/b/x.txt")
      // The swap lands after `a` was checked, right before `a/b` is made.
      const restore = wrapFs("mkdirSync", (mkdir, restore) =>
        ((dir: fs.PathLike, ...rest: Array<never>) => {
          if (String(dir) === path.join(root, "a/b")) {
            restore()
            fs.renameSync(path.join(root, "a"), path.join(root, "a.real"))
            fs.symlinkSync(outside, path.join(root, "a"))
          }
          return (mkdir as (...args: Array<unknown>) => unknown)(dir, ...rest)
        }) as typeof fs.mkdirSync)
      const [reply] = yield* RestoreWriter.inThread().run(0, [write(1, root, output, yield* packed)]).pipe(
        Effect.ensuring(Effect.sync(restore))
      )
      expect(reply).toMatchObject({ id: 1, ok: false, problem: "escapes" })
      expect(reply!.ok ? "" : reply!.detail).toContain(`${root}/a/b was created at ${outside}/b, through a link`)
      expect(fs.readdirSync(outside)).toEqual([])
    }))

  it.scoped("the link leads to a folder whose name is not UTF-8: what was made there is removed all the same", () =>
    Effect.gen(function*() {
      // Read as a string, `\xff` is U+FFFD, another name: the removal missed it and still said "removed".
      const outside = Buffer.concat([Buffer.from(tempDir() + "/"), Buffer.from([0xff])])
      fs.mkdirSync(outside)
      for (const swapped of ["folder", "temp file"] as const) {
        const root = tempDir()
        fs.mkdirSync(path.join(root, "a"))
        const output = path.join(root, "a/b/x.txt")
        const swap = () => {
          fs.renameSync(path.join(root, "a"), path.join(root, "a.real"))
          fs.symlinkSync(outside, path.join(root, "a"))
        }
        const restore = swapped === "folder"
          ? wrapFs("mkdirSync", (mkdir, restore) =>
            ((dir: fs.PathLike, ...rest: Array<never>) => {
              if (String(dir) === path.join(root, "a/b")) {
                restore()
                swap()
              }
              return (mkdir as (...args: Array<unknown>) => unknown)(dir, ...rest)
            }) as typeof fs.mkdirSync)
          : wrapFs("openSync", (open, restore) =>
            ((file: fs.PathLike, ...rest: Array<never>) => {
              if (String(file) === FileOps.tempFor(output)) {
                restore()
                // The temp file's own folder is made first, and moves with `a` to the same place outside.
                fs.mkdirSync(Buffer.concat([outside, Buffer.from("/b")]))
                swap()
              }
              return (open as (...args: Array<unknown>) => number)(file, ...rest)
            }) as typeof fs.openSync)
        const [reply] = yield* RestoreWriter.inThread().run(0, [write(1, root, output, yield* packed)]).pipe(
          Effect.ensuring(Effect.sync(restore))
        )
        expect(reply, swapped).toMatchObject({ id: 1, ok: false, problem: "escapes" })
        expect(reply!.ok ? "" : reply!.detail, swapped).toMatch(/, through a link; removed, nothing written outside/)
        const left = swapped === "folder" ? [] : [Buffer.from("b")]
        expect(fs.readdirSync(outside, { encoding: "buffer" }), swapped).toEqual(left)
        if (swapped === "temp file") {
          expect(fs.readdirSync(Buffer.concat([outside, Buffer.from("/b")])), swapped).toEqual([])
        }
      }
    }))

  it.scoped("a temp file whose folder moves back while it is removed is removed where it is then", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const output = path.join(root, "sub/x.txt")
      const temp = FileOps.tempFor(output)
      fs.mkdirSync(path.join(root, "sub"))
      // Created in `sub`, which is then renamed: the kernel places the file in `sub.real`, not at the temp path...
      const restoreOpen = wrapFs("openSync", (open, restore) =>
        ((file: fs.PathLike, ...rest: Array<never>) => {
          const fd = (open as (...args: Array<unknown>) => number)(file, ...rest)
          if (String(file) === temp) {
            restore()
            fs.renameSync(path.join(root, "sub"), path.join(root, "sub.real"))
          }
          return fd
        }) as typeof fs.openSync)
      // ...and `sub` is back by the time the writer removes the file it was told of.
      let told = false
      const restoreReadlink = wrapFs("readlinkSync", (readlink) =>
        ((file: fs.PathLike, ...rest: Array<never>) => {
          // A string or, as the writer asks for it, the bytes.
          const at = (readlink as (...args: Array<unknown>) => string | Buffer)(file, ...rest)
          if (!told && String(at) === path.join(root, "sub.real", path.basename(temp))) {
            told = true
            fs.renameSync(path.join(root, "sub.real"), path.join(root, "sub"))
          }
          return at
        }) as typeof fs.readlinkSync)
      const [reply] = yield* RestoreWriter.inThread().run(0, [write(1, root, output, yield* packed)]).pipe(
        Effect.ensuring(Effect.sync(() => {
          restoreOpen()
          restoreReadlink()
        }))
      )
      expect(told).toBe(true)
      expect(reply).toMatchObject({ id: 1, ok: false, problem: "escapes" })
      expect(files(root)).toEqual([])
    }))

  it.scoped("a folder moved away, made again and moved again: each temp file is removed where its own folder went", () =>
    Effect.gen(function*() {
      const writer = RestoreWriter.inThread()
      const root = tempDir()
      const outside = tempDir()
      const a = path.join(root, "sub/a.txt")
      const b = path.join(root, "sub/b.txt")
      expect((yield* writer.run(0, [write(1, root, a, yield* packed)]))[0]!.ok).toBe(true)
      fs.renameSync(path.join(root, "sub"), path.join(outside, "first"))
      // The writer makes `sub` again for the next file: another folder at the same path.
      expect((yield* writer.run(0, [write(2, root, b, yield* packed)]))[0]!.ok).toBe(true)
      fs.renameSync(path.join(root, "sub"), path.join(outside, "second"))
      const replies = yield* writer.run(0, [{ op: "commit", ids: [1, 2] }])
      expect(replies.map((r) => r.ok)).toEqual([false, false])
      expect(files(outside)).toEqual([])
      expect(openBelow(root, outside)).toEqual([])
    }))
})

describe("Manifest outputs compared by file identity", () => {
  const t1 = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
  const t2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  const t3 = "11111111-2222-4333-8444-555555555555"
  const load = (dir: string, items: ReadonlyArray<{ tombstone: string; output: string }>) => {
    const file = path.join(dir, "m.json")
    fs.writeFileSync(file, JSON.stringify(items))
    return Manifest.load(file, { defaultActor: "ops" })
  }

  it.effect("two outputs that are one file through a folder link inside the folder: the second names both", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, "a"))
      fs.symlinkSync(path.join(dir, "a"), path.join(dir, "b"))
      const error = yield* Effect.flip(load(dir, [{ tombstone: t1, output: "a/x" }, { tombstone: t2, output: "b/x" }]))
      expect(error.message).toBe(
        `manifest ${dir}/m.json (entry 2): output ${dir}/b/x is the same file as ${dir}/a/x (entry 1); two entries cannot restore to the same file`
      )
    }))

  it.effect("two existing outputs that are hard links of one file are refused; distinct files load, contained", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      fs.writeFileSync(path.join(dir, "y"), "old")
      fs.linkSync(path.join(dir, "y"), path.join(dir, "z"))
      const error = yield* Effect.flip(
        load(dir, [{ tombstone: t1, output: "y" }, { tombstone: t2, output: "other" }, { tombstone: t3, output: "z" }])
      )
      expect(error.message).toContain(`(entry 3): output ${dir}/z is the same file as ${dir}/y (entry 1)`)
      fs.mkdirSync(path.join(dir, "a"))
      fs.symlinkSync(path.join(dir, "a"), path.join(dir, "b"))
      const entries = yield* load(dir, [{ tombstone: t1, output: "y" }, { tombstone: t2, output: "b/new" }])
      // The writer goes where the link led when the manifest was read, and no further.
      expect(entries.map((e) => e.contained)).toEqual([{ root: dir, path: path.join(dir, "y") }, {
        root: dir,
        path: path.join(dir, "a/new")
      }])
    }))
})

/** A folder holding `out`, a link to a folder outside it, and `alias`, a link to its own folder `in`. */
const linkedFolder = () => {
  const dir = tempDir()
  fs.symlinkSync(tempDir(), path.join(dir, "out"))
  fs.mkdirSync(path.join(dir, "in"))
  fs.symlinkSync(path.join(dir, "in"), path.join(dir, "alias"))
  return dir
}

describe("Containment: one check for manifests, store --manifest-out and recorded paths", () => {
  it("below the folder as written and really; the folder itself, `..` and a folder link leading out are not", () => {
    const dir = linkedFolder()
    expect(Containment.contains(dir, "a/b")).toBe(true)
    expect(Containment.contains(dir, path.join(dir, "alias/x"))).toBe(true)
    expect(Containment.contains(dir, ".")).toBe(false)
    expect(Containment.contains(dir, "a/../../x")).toBe(false)
    expect(Containment.contains(dir, "out/x")).toBe(false)
    expect(Containment.contains(dir, "out/not/made/yet")).toBe(false)
    // Manifest.contains stays for hosts that used it.
    expect(Manifest.contains(dir, "out/x")).toBe(false)
  })

  it("inFolderOf: a manifest's folder and what lies below it, not beside it nor through a link leading out", () => {
    const dir = tempDir()
    const outside = tempDir()
    fs.mkdirSync(path.join(dir, "tree"))
    fs.symlinkSync(outside, path.join(dir, "tree/out"))
    const manifest = path.join(dir, "tree/m.json")
    expect(Containment.inFolderOf(manifest, path.join(dir, "tree"))).toBe(true)
    expect(Containment.inFolderOf(manifest, path.join(dir, "tree/a/b.txt"))).toBe(true)
    expect(Containment.inFolderOf(manifest, path.join(dir, "other.txt"))).toBe(false)
    expect(Containment.inFolderOf(manifest, path.join(dir, "tree/out/x.txt"))).toBe(false)
    expect(Containment.outsideFolderOf(manifest, [path.join(dir, "tree/a"), path.join(dir, "x"), path.join(dir, "y")]))
      .toBe(path.join(dir, "x"))
    // A manifest folder not made yet, under a linked path, compares real with real.
    fs.symlinkSync(dir, path.join(outside, "to-dir"))
    expect(Containment.inFolderOf(path.join(outside, "to-dir/new/m.json"), path.join(outside, "to-dir/new/d/a.txt")))
      .toBe(true)
  })
})

describe("Containment.inside", () => {
  it("is what path.relative gives for any path below a folder, the root folder included", () => {
    const names = ["a", "b.txt", ".git", "d d", "é", "x\ny"]
    for (const base of ["/", "/srv", "/srv/out/", "/srv/a b"]) {
      for (let n = 1; n <= 3; n++) {
        const target = path.join(base, ...names.slice(0, n))
        expect(Containment.below(base, target), target).toBe(true)
        expect(Containment.inside(base, target), target).toBe(path.relative(base, target))
      }
    }
  })
})

describe("Containment's cache of folders' real paths", () => {
  it("is bounded, and a checker that emptied it still places every path as written and really", () => {
    const dir = linkedFolder()
    const saved = Containment.tuning.cachedFolders
    Containment.tuning.cachedFolders = 2
    try {
      const place = Containment.within(dir)
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 20; i++) expect(place(`f${i}/g/x`)?.real).toBe(path.join(dir, `f${i}/g/x`))
        expect(place("out/x")).toBeUndefined()
        expect(place("out/deeper/x")).toBeUndefined()
        expect(place("alias/x")?.real).toBe(path.join(dir, "in/x"))
      }
    } finally {
      Containment.tuning.cachedFolders = saved
    }
  })
})
