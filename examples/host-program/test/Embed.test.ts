/** The embedding guide's program, run as written: in this process, and bundled by esbuild into one file run by node. */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { logger, run } from "../src/Embed.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const files = { "docs/a.md": "# a\n", "docs/old/b.txt": "b".repeat(5000), "docs/empty": "" }

const tree = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "embed-"))
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    fs.writeFileSync(path.join(root, name), text)
  }
  return root
}

const restoredAll = (root: string) =>
  Object.entries(files).every(([name, text]) => fs.readFileSync(path.join(root, "restored", name), "utf8") === text)

/** A child process's exit code and output, without blocking vitest's worker. */
const node = (args: ReadonlyArray<string>, cwd: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

it.effect("stores docs/, restores every file byte for byte, and reads the restores back from the metrics", () =>
  Effect.gen(function*() {
    const root = tree()
    const lines: Array<string> = []
    const url = `sqlite:///${path.join(root, ".codex/archive.sqlite")}`
    const result = yield* run({ root, url }, (line) => lines.push(line))
    expect(result.stored).toBe(3)
    expect(result.restored).toBeGreaterThanOrEqual(3)
    expect(restoredAll(root)).toBe(true)
    expect(lines.some((line) => line.includes("stored 3 files"))).toBe(true)
    fs.rmSync(root, { recursive: true, force: true })
  }))

it.effect("the host's logger never sees the URL's password, though the program logs the URL", () =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const url = "postgres://app:Ex4mple-s3cret@db.internal:5432/archive?sslpassword=Ex4mple-ssl"
    yield* Effect.logInfo(`stored 3 files into ${url}`).pipe(
      Effect.provide(logger({ url, root: "." }, (l) => lines.push(l)))
    )
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain("db.internal")
    expect(lines[0]).not.toContain("Ex4mple")
  }))

it.effect("a missing docs/ is the host's own message, not a crash", () =>
  Effect.gen(function*() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "embed-"))
    const failure = yield* Effect.flip(run({ root, url: `sqlite:///${path.join(root, "a.sqlite")}` }, () => {}))
    expect(failure).toBe("nothing to archive: docs: no such file or directory")
    fs.rmSync(root, { recursive: true, force: true })
  }))

it("bundles into one ESM file that node runs, with the same result", async () => {
  const project = path.resolve(here, "..")
  const built = await node(["build.mjs"], project)
  expect(built.stderr).toBe("")
  expect(built.status).toBe(0)
  const root = tree()
  const ran = await node([path.join(project, "dist/embed.mjs"), root], root)
  expect(ran.status, ran.stderr).toBe(0)
  expect(JSON.parse(ran.stdout)).toMatchObject({ stored: 3 })
  expect(restoredAll(root)).toBe(true)
  fs.rmSync(root, { recursive: true, force: true })
})
