/**
 * A tree of tombstone stubs as a manifest (`batch-restore --stubs DIR`): every stub under the folder, walked sorted
 * and without following symbolic links, each restored where it stands.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Containment from "./Containment.js"
import * as FileOps from "./FileOps.js"
import * as DistinctOutputs from "./internal/DistinctOutputs.js"
import * as EventLoop from "./internal/EventLoop.js"
import { type Entry, type LoadOptions, ManifestError, type Source } from "./ManifestEntry.js"
import * as Tombstone from "./Tombstone.js"
import * as Walk from "./Walk.js"

/** The error a walk threw, as a `ManifestError` naming the tree unless it is a stub's own. */
const asError = (e: unknown, root: string): ManifestError | Tombstone.MalformedStub =>
  e instanceof Tombstone.MalformedStub || e instanceof ManifestError
    ? e
    : new ManifestError({ file: root, where: undefined, problem: `cannot read: ${FileOps.describeErrno(e)}` })

/**
 * A tree of stubs as a `Source`: walked twice (sorted, symbolic links not followed), once now to parse and check
 * every stub, then as the batch runs; a folder's names are held while the walk is in it, no stub longer than that.
 */
export const open = (
  dir: string,
  options: LoadOptions
): Effect.Effect<Source, ManifestError | Tombstone.MalformedStub> =>
  Effect.gen(function*() {
    const root = path.resolve(dir)
    const fail = (problem: string) => new ManifestError({ file: root, where: undefined, problem })
    const st = fs.statSync(root, { throwIfNoEntry: false })
    if (!st) return yield* fail("no such folder")
    if (!st.isDirectory()) return yield* fail("not a folder")
    const actor = options.defaultActor.trim()
    if (actor === "") return yield* fail("no actor: give one with --actor")
    // The walk follows no link, so each stub's real path is the tree's real path plus its place in the tree.
    const real = Containment.realPath(root)
    const walk = function*(folder: string): Generator<string> {
      let names: Array<fs.Dirent>
      try {
        names = Walk.entries(folder)
      } catch (e) {
        throw fail(`cannot read the tree: ${FileOps.describeErrno(e)}`)
      }
      for (const entry of names) {
        const full = path.join(folder, entry.name)
        if (entry.isDirectory()) {
          if (!Walk.isSkippedFolder(entry.name)) yield* walk(full)
        } else if (entry.isFile() && Tombstone.isStubFile(full)) yield full
      }
    }
    /** The stubs as entries; with `passGone`, one gone between the walk's look and its read is passed over. */
    const read = function*(passGone = false): Generator<Entry> {
      for (const file of walk(root)) {
        let text: string
        try {
          // Once, bounded, through no link: the walk's check was a moment ago and the tree may be shared.
          text = FileOps.readBounded(file, Tombstone.maxStubBytes, { noFollow: true })
        } catch (e) {
          if (passGone && (e as NodeJS.ErrnoException).code === "ENOENT") continue
          throw fail(`${file}: ${FileOps.describeErrno(e)}`)
        }
        const stub = Effect.runSync(Effect.either(Tombstone.parse(text, file)))
        if (stub._tag === "Left") throw stub.left
        yield {
          tombstone: stub.right.tombstone,
          output: file,
          actor,
          sha256: stub.right.sha256,
          contained: { root: real, path: path.join(real, path.relative(root, file)) }
        }
      }
    }
    // In slices, as a manifest's: a Ctrl-C during the walk of a large tree is seen and stops it.
    const verdict = yield* EventLoop.sliced(() =>
      DistinctOutputs.checking(read, {
        entryOf: (entry) => entry,
        whereOf: (entry) => entry.output,
        changed: () => fail("changed while it was being read")
      }), (e) => asError(e, root))
    if (verdict._tag === "Duplicate") return yield* fail(verdict.problem)
    const counted = verdict._tag === "Distinct" ? verdict.total : 0
    if (counted === 0) return yield* fail("contains no tombstone stubs")
    // The tree is walked again as the batch runs and may change meanwhile (a stub restored by hand, or a new one). A
    // stub gone is passed over and the rest restored, then the batch fails saying how many; a stub more than were
    // checked stops it there.
    const changed = (problem: string) => fail(`changed while the batch ran: ${problem}`)
    let short = 0
    const entries = function*(): Generator<Entry> {
      let n = 0
      for (const entry of read(true)) {
        if (++n > counted) {
          throw changed(
            `it holds more stubs than the ${counted} checked at the start; ${entry.output} and after not run`
          )
        }
        yield entry
      }
      short = counted - n
    }
    return {
      total: counted,
      entries: () => ({ [Symbol.iterator]: entries }),
      changed: () =>
        short === 0
          ? undefined
          : changed(`${short} of the ${counted} stubs checked at the start were gone when reached, not run`)
    } satisfies Source as Source
  })

/** Every stub of a tree, all in memory (small trees, tests). */
export const load = (
  dir: string,
  options: LoadOptions
): Effect.Effect<ReadonlyArray<Entry>, ManifestError | Tombstone.MalformedStub> =>
  Effect.flatMap(
    open(dir, options),
    (source) => Effect.try({ try: () => Array.from(source.entries()), catch: (e) => asError(e, path.resolve(dir)) })
  )
