/** Small trees of files for tests of whole-archive and whole-manifest commands, stored with one set of options. */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Archiver } from "../src/index.js"

/** `count` small files under `dir/tree`, ten to a folder, each of its own content (`text(i)`). */
export const smallTree = (dir: string, count: number, text: (i: number) => string) =>
  Array.from({ length: count }, (_, i) => {
    const file = path.join(dir, "tree", `d${Math.floor(i / 10)}`, `f${i}.txt`)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text(i))
    return file
  })

/** Stores `dir/tree` whole. */
export const storeTree = (dir: string) =>
  Effect.flatMap(Archiver.Archiver, (archiver) =>
    archiver.store([path.join(dir, "tree")], {
      repo: "acme/big",
      actor: "ann",
      commit: "c0ffee",
      reason: "dead",
      kind: "code",
      cwd: dir
    }))
