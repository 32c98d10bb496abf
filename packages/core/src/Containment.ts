/**
 * Path containment, the one home of "does this path stay inside that folder": as written (`..`, absolute paths) and
 * once symbolic links on the way are resolved (a folder inside that links outside does not count as inside). Used by
 * manifests (every output below the manifest's folder), `store --manifest-out` and `restore`'s recorded paths.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as Walk from "./Walk.js"

/** `target` lies strictly below `base`; both absolute and normalized (`path.resolve`, realpath), so a prefix says it. */
export const below = (base: string, target: string): boolean =>
  target.length > base.length && target.startsWith(base) &&
  (base.endsWith(path.sep) || target[base.length] === path.sep)

/**
 * The part of `target` below `base`, given `below(base, target)`: what `path.relative` gives then, without resolving
 * both again (a manifest entry's two `path.resolve`s cost more than its containment check).
 */
export const inside = (base: string, target: string): string =>
  target.slice(base.endsWith(path.sep) ? base.length : base.length + 1)

/** A folder's real path, or its absolute path when it cannot be resolved (absent, no permission). */
export const realPath = (dir: string): string => {
  try {
    return fs.realpathSync(dir)
  } catch {
    return path.resolve(dir)
  }
}

/**
 * The bytes of a folder's real path (its nearest existing ancestor's, for one not made yet), shown, when they are not
 * UTF-8: Node.js reads each such byte as U+FFFD, another name, so no path below it can be checked or written exactly.
 * `undefined` for a real path in UTF-8, or one that cannot be resolved.
 */
export const notUtf8 = (folder: string): string | undefined => {
  for (let at = path.resolve(folder);; at = path.dirname(at)) {
    try {
      return shownIfNotUtf8(fs.realpathSync.native(at, { encoding: "buffer" }))
    } catch {
      if (at === path.dirname(at)) return undefined
    }
  }
}

/** A path's bytes, shown, when they are not UTF-8; `undefined` when they are. */
export const shownIfNotUtf8 = (bytes: Buffer): string | undefined =>
  bytes.equals(Buffer.from(bytes.toString("utf8"))) ? undefined : Walk.showBytes(bytes)

/** Why a folder with such a real path (`notUtf8`, shown) takes no output. */
export const notUtf8Folder = (shown: string): string =>
  `its folder's real path '${shown}' is not UTF-8, which Node.js reads as another folder; rename that folder`

/** A folder's real path; one that does not exist yet is its nearest existing ancestor's real path plus the rest. */
const realFolder = (folder: string, cache: Map<string, string>): string => {
  const known = cache.get(folder)
  if (known !== undefined) return known
  let real: string | undefined
  try {
    // Most outputs of a fresh restore lie in folders not made yet: ask without an exception per folder.
    if (fs.lstatSync(folder, { throwIfNoEntry: false }) !== undefined) real = fs.realpathSync.native(folder)
  } catch {
    // a file on the way, a dangling link, no permission: resolved through its parent, like a missing folder
  }
  if (real === undefined) {
    const parent = path.dirname(folder)
    real = parent === folder ? folder : path.join(realFolder(parent, cache), path.basename(folder))
  }
  // Bounded: a manifest whose every output has a folder of its own would otherwise hold one path per entry (200,000
  // entries, each in a folder of its own: 174 MiB for a dry run). Emptied, the cache is filled again from the next
  // folder on; outputs come grouped by folder, so little is resolved twice.
  if (cache.size >= tuning.cachedFolders) cache.clear()
  cache.set(folder, real)
  return real
}

/** Folders' real paths a checker keeps (tests shrink it). */
export const tuning: { cachedFolders: number } = { cachedFolders: 4096 }

/**
 * Where absolute paths would really land, symbolic links on the way resolved; one real path per folder is kept, since
 * a folder holds many outputs.
 */
export const resolver = (): (target: string) => string => {
  const cache = new Map<string, string>()
  return (target) => landing(target, cache)
}

const landing = (target: string, cache: Map<string, string>): string => {
  const folder = path.dirname(target)
  const real = realFolder(folder, cache)
  // No link on the way (the usual case): the path itself, without joining it again.
  return real === folder ? target : path.join(real, path.basename(target))
}

/** Where a checked path lands: its absolute path, and its real path below the folder's real path. */
export interface Placed {
  readonly path: string
  readonly root: string
  readonly real: string
}

/**
 * A checker for one folder: the place of a path (relative to the folder, or absolute) that lies strictly below it, as
 * written and really; `undefined` for one that does not.
 */
export const within = (base: string): (target: string) => Placed | undefined => {
  const from = path.resolve(base)
  const cache = new Map<string, string>()
  // A folder not made yet is its nearest existing ancestor's real path plus the rest, as its outputs' folders are.
  const root = realFolder(from, cache)
  return (target) => {
    const to = path.resolve(from, target)
    if (!below(from, to)) return undefined
    const landed = landing(to, cache)
    return below(root, landed) ? { path: to, root, real: landed } : undefined
  }
}

/** `target` lies below `base`, both as written and once symbolic links on the way are resolved. */
export const contains = (base: string, target: string): boolean => within(base)(target) !== undefined

/**
 * The first of `targets` that is neither the folder `file` lies in nor below it (as written or really), if any: what
 * `store --manifest-out FILE` checks its inputs with, since a manifest's outputs may not leave its folder.
 */
export const outsideFolderOf = (file: string, targets: ReadonlyArray<string>): string | undefined => {
  const folder = path.dirname(path.resolve(file))
  const check = within(folder)
  return targets.find((target) => {
    const to = path.resolve(target)
    return to !== folder && check(to) === undefined
  })
}

/** `target` is the folder `file` lies in or lies below it, as written and really. */
export const inFolderOf = (file: string, target: string): boolean => outsideFolderOf(file, [target]) === undefined
