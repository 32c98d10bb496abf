/**
 * The filesystem floor: what the same work costs with no archive at all. A plain copy with Node's `fs` (read the
 * original, write the copy, as a restore writes its output), `tar -xf` of a tarball of the corpus when `tar` is
 * installed, and for the cold CLI a fresh `node` process that copies one file.
 */
import { Data } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

export interface Copyable {
  readonly absolute: string
  readonly path: string
}

/** Copies one file to `out/<its corpus path>`, creating folders as needed. */
export const copyOne = (file: Copyable, out: string, made = new Set<string>()): number => {
  const target = path.join(out, ...file.path.split("/"))
  const parent = path.dirname(target)
  if (!made.has(parent)) {
    fs.mkdirSync(parent, { recursive: true })
    made.add(parent)
  }
  const bytes = fs.readFileSync(file.absolute)
  fs.writeFileSync(target, bytes)
  return bytes.length
}

/** Copies every file, sequentially with blocking calls (the fastest way to write many files from Node). */
export const copyAll = (files: ReadonlyArray<Copyable>, out: string): number => {
  const made = new Set<string>()
  let bytes = 0
  for (const file of files) bytes += copyOne(file, out, made)
  return bytes
}

export const tarAvailable = (): boolean => spawnSync("tar", ["--version"], { stdio: "ignore" }).status === 0

export class FloorCommandError
  extends Data.TaggedError("FloorCommandError")<{ readonly command: string; readonly detail: string }>
{
  override get message() {
    return `${this.command} failed: ${this.detail}`
  }
}

const run = (command: string, args: ReadonlyArray<string>) => {
  const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"] })
  if (result.error) throw new FloorCommandError({ command, detail: result.error.message })
  if (result.status !== 0) {
    throw new FloorCommandError({
      command: `${command} ${args.join(" ")}`,
      detail: result.stderr.toString().trim() || `exit ${result.status}`
    })
  }
}

/** Packs the corpus folder once (not timed). */
export const createTarball = (dir: string, tarball: string): void => run("tar", ["-cf", tarball, "-C", dir, "."])

export const extractTarball = (tarball: string, out: string): void => {
  fs.mkdirSync(out, { recursive: true })
  run("tar", ["-xf", tarball, "-C", out])
}

/** A cold `node` process copying one file: the floor of a cold CLI restore (start-up plus the copy). */
export const nodeCopy = (source: string, target: string): void =>
  run(process.execPath, ["-e", "require('node:fs').copyFileSync(process.argv[1], process.argv[2])", source, target])
