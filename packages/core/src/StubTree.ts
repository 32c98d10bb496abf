/**
 * A tree of tombstone stubs as a manifest (`batch-restore --stubs DIR`): every stub under the folder, walked sorted
 * and without following symbolic links, each restored where it stands.
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"
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
    : new ManifestError({
      file: root,
      where: undefined,
      kind: "stub folder",
      problem: `cannot read: ${FileOps.describeErrno(e)}`
    })

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
    const fail = (problem: string) => new ManifestError({ file: root, where: undefined, kind: "stub folder", problem })
    const st = fs.statSync(root, { throwIfNoEntry: false })
    if (!st) return yield* fail("no such folder")
    if (!st.isDirectory()) return yield* fail("not a folder")
    const actor = options.defaultActor.trim()
    if (actor === "") return yield* fail("no actor: give one with --actor")
    // The walk follows no link, so each stub's real path is the tree's real path plus its place in the tree.
    const real = Containment.realPath(root)
    // Reached through a link, a folder whose name is not UTF-8 reads back as another: every stub failed, each saying
    // its file was created "through a link" elsewhere.
    const notUtf8 = Containment.notUtf8(root)
    if (notUtf8 !== undefined) {
      return yield* fail(
        `its real path '${notUtf8}' is not UTF-8, which Node.js reads as another folder; no stub in it ` +
          "can be restored in place (rename that folder)"
      )
    }
    /**
     * A name that is not valid UTF-8 (`Walk.undecodable`): no path reaches it, so a stub by that name, or any stub in a
     * folder by that name, could not be restored. Passed over silently, the batch ended with exit 0 and the stub still
     * in place; the tree is now refused, naming it, unless it is a file that is no stub.
     */
    const unreachable = (folder: string, raw: Buffer) => {
      const file = Buffer.concat([Buffer.from(folder + path.sep), raw])
      const shown = path.join(folder, Walk.showBytes(raw))
      const st = fs.lstatSync(file, { throwIfNoEntry: false })
      if (st?.isDirectory() === true) {
        throw fail(`${shown}: a folder whose name is not valid UTF-8; no stub in it can be restored (rename it)`)
      }
      if (st?.isFile() === true && Tombstone.isStubFile(file)) {
        throw fail(`${shown}: a stub whose name is not valid UTF-8 cannot be restored in place (rename it)`)
      }
    }
    /** With `passGone`, a stub or a folder below the root gone since its folder was listed is passed over. */
    const walk = function*(folder: string, passGone: boolean): Generator<string> {
      let names: Array<fs.Dirent>
      try {
        names = Walk.entries(folder)
      } catch (e) {
        if (passGone && folder !== root && (e as NodeJS.ErrnoException).code === "ENOENT") return
        throw fail(`cannot read the tree: ${FileOps.describeErrno(e)}`)
      }
      const undecodable = Walk.undecodable(folder, names)
      for (const [i, entry] of names.entries()) {
        const full = path.join(folder, entry.name)
        let kind: { isDirectory(): boolean; isFile(): boolean } | undefined = entry
        if (undecodable.has(entry.name)) {
          // The entries reading back as one name sit side by side (sorted): the first stands for them all.
          if (names[i - 1]?.name === entry.name) continue
          for (const raw of undecodable.get(entry.name)!) unreachable(folder, raw)
          // A name holding U+FFFD itself (in UTF-8) beside them is a stub or a folder like any other, of its own type.
          kind = fs.lstatSync(full, { throwIfNoEntry: false })
          if (kind === undefined) continue
        }
        if (kind.isDirectory()) {
          if (!Walk.isSkippedFolder(entry.name)) yield* walk(full, passGone)
        } else if (kind.isFile() && Tombstone.isStubFile(full)) yield full
      }
    }
    /** The stubs as entries; at the end `onEnd` gets a digest of their paths in order, and their count. */
    const read = function*(
      options: { readonly passGone?: boolean; readonly onEnd?: (digest: string, count: number) => void } = {}
    ): Generator<Entry> {
      const digest = crypto.createHash("sha256")
      let count = 0
      for (const file of walk(root, options.passGone === true)) {
        let text: string
        try {
          // Once, bounded, through no link: the walk's check was a moment ago and the tree may be shared.
          text = FileOps.readBounded(file, Tombstone.maxStubBytes, { noFollow: true })
        } catch (e) {
          if (options.passGone === true && (e as NodeJS.ErrnoException).code === "ENOENT") continue
          throw fail(`${file}: ${FileOps.describeErrno(e)}`)
        }
        const stub = Effect.runSync(Effect.either(Tombstone.parse(text, file)))
        if (stub._tag === "Left") throw stub.left
        digest.update(file).update("\0")
        count++
        yield {
          tombstone: stub.right.tombstone,
          output: file,
          actor,
          sha256: stub.right.sha256,
          sha256From: `stub ${file}`,
          contained: { root: real, path: path.join(real, Containment.inside(root, file)) }
        }
      }
      options.onEnd?.(digest.digest("hex"), count)
    }
    // In slices, as a manifest's: a Ctrl-C during the walk of a large tree is seen and stops it.
    let checked: string | undefined
    const verdict = yield* EventLoop.sliced(() =>
      DistinctOutputs.checking(() => read({ onEnd: (digest) => void (checked ??= digest) }), {
        entryOf: (entry) => entry,
        whereOf: (entry) => entry.output,
        changed: () => fail("changed while it was being read")
      }), (e) =>
      asError(e, root))
    if (verdict._tag === "Duplicate") {
      return yield* fail(verdict.problem)
    }
    const counted = verdict._tag === "Distinct" ? verdict.total : 0
    if (counted === 0) {
      return yield* fail("contains no tombstone stubs")
    }
    // The tree is walked again as the batch runs and may change meanwhile: a stub restored by hand, removed, renamed or
    // added. Every stub found is restored where it stands (each is parsed and kept under the root as at the check);
    // once the walk ends, a list of stubs other than the one checked fails the batch, saying so.
    let found: { readonly digest: string; readonly count: number } | undefined
    return {
      total: counted,
      entries: () => ({
        [Symbol.iterator]: () =>
          read({ passGone: true, onEnd: (digest, count) => void (found = { digest, count }) })
      }),
      changed: () =>
        found === undefined || found.digest === checked ? undefined : fail(
          found.count === counted
            ? `changed since its check: the ${counted === 1 ? "stub" : `${counted} stubs`} found are not the ones ` +
              "checked (renamed, or as many added as removed)"
            : `changed since its check: ${found.count} ${
              found.count === 1 ? "stub" : "stubs"
            } found where ${counted} ` +
              `${counted === 1 ? "was" : "were"} checked (added, removed or renamed)`
        )
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
