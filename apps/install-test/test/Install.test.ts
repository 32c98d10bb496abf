/**
 * What a stranger gets from npm: packs the five publishable packages, installs the tarballs (never the workspace) into
 * an empty folder outside the repository, offline from the pnpm store that setup filled, then uses them three ways:
 * the `codex` bin through npx, a plain Node ESM program, and a strict TypeScript consumer type-checked with NodeNext.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../../..")
const publishable = [
  "packages/core",
  "packages/backend-sqlite",
  "packages/backend-postgres",
  "packages/backend-mariadb",
  "apps/cli"
]
/** A file each package's build or bundle must have made (turbo runs them before this test). */
const built: Record<string, string> = {
  "packages/core": "dist/index.d.ts",
  "packages/backend-sqlite": "dist/index.d.ts",
  "packages/backend-postgres": "dist/index.d.ts",
  "packages/backend-mariadb": "dist/index.d.ts",
  "apps/cli": "lib/Cli.d.ts"
}

/** The pinned version of `name` in the workspace catalog. */
const catalog = (name: string): string => {
  const line = fs.readFileSync(path.join(root, "pnpm-workspace.yaml"), "utf8").split("\n")
    .find((l) => l.trim().replace(/^"|"(?=:)/g, "").startsWith(`${name}:`))
  if (line === undefined) throw new Error(`pnpm-workspace.yaml: no catalog entry for ${name}`)
  return line.split(":").pop()!.trim()
}

/** The workspace's `allowBuilds:` block, so the consumer builds (or takes from the store's cache) the same addons. */
const allowBuilds = (): string => {
  const text = fs.readFileSync(path.join(root, "pnpm-workspace.yaml"), "utf8")
  const block = /^allowBuilds:\n((?:[ \t]+.*\n?)+)/m.exec(text)
  if (block === null) throw new Error("pnpm-workspace.yaml: no allowBuilds block")
  return `allowBuilds:\n${block[1]}`
}

/** A stranger's environment: none of our CODEX_* settings, and none of the npm_* that `npm test` set for the repo. */
const env = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEX_") && !/^npm_/i.test(k))),
  CODEX_ACTOR: "stranger",
  npm_config_nodedir: process.env["npm_config_nodedir"] ?? "/usr"
})

interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}
/** Asynchronous, so vitest's worker keeps answering its RPC during a long pack, install or tsc (spawnSync timed out). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: env(), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })
const pnpm = (args: ReadonlyArray<string>, cwd: string) =>
  run("bash", [path.join(root, "scripts/pnpm.sh"), ...args], cwd)
const codex = (args: ReadonlyArray<string>, cwd: string) => run("npx", ["--no", "codex", "archive", ...args], cwd)
/** pnpm's error, which it draws over several lines, as one line. */
const oneLine = (text: string) => {
  const at = text.lastIndexOf("Error")
  return (at < 0 ? text : text.slice(at)).replace(/[×╰─▶│]/g, " ").replace(/\s+/g, " ").trim()
}

let temp = ""
let consumer = ""
const tarballs: Record<string, string> = {}

beforeAll(async () => {
  temp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-install-")))
  consumer = path.join(temp, "consumer")
  fs.mkdirSync(path.join(temp, "packs"), { recursive: true })
  for (const dir of publishable) {
    if (!fs.existsSync(path.join(root, dir, built[dir]!))) {
      throw new Error(`${dir}/${built[dir]} is missing: run 'bash scripts/pnpm.sh exec turbo run build bundle' first`)
    }
    const packed = await pnpm(["pack", "--pack-destination", path.join(temp, "packs")], path.join(root, dir))
    if (packed.status !== 0) throw new Error(`pnpm pack in ${dir} failed: ${oneLine(packed.stderr + packed.stdout)}`)
    const name = (JSON.parse(fs.readFileSync(path.join(root, dir, "package.json"), "utf8")) as { name: string }).name
    const file = fs.readdirSync(path.join(temp, "packs")).find((f) =>
      f.startsWith(name.replace("@", "").replace("/", "-") + "-")
    )
    tarballs[name] = path.join(temp, "packs", file!)
  }
  // The files a consumer would write: the tarballs and the peers the README says to add.
  fs.cpSync(path.join(here, "../consumer"), consumer, { recursive: true })
  fs.writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify(
      {
        name: "codex-consumer",
        private: true,
        type: "module",
        dependencies: {
          ...Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`])),
          effect: `^${catalog("effect")}`,
          "@effect/sql": `^${catalog("@effect/sql")}`,
          "@effect/sql-sqlite-node": `^${catalog("@effect/sql-sqlite-node")}`
        },
        devDependencies: {
          typescript: catalog("typescript"),
          "@types/node": catalog("@types/node"),
          "@tsconfig/strictest": catalog("@tsconfig/strictest")
        }
      },
      null,
      2
    )
  )
  // The tarballs stand in for the registry: each package's dependency on another (e.g. `@codex-archive/core@^0.1.0`).
  const overrides = Object.entries(tarballs).map(([name, file]) => `  "${name}": "file:${file}"\n`).join("")
  fs.writeFileSync(path.join(consumer, "pnpm-workspace.yaml"), `${allowBuilds()}\noverrides:\n${overrides}`)
  // The workspace's lock as a starting point: pnpm then prefers the versions setup put in the store.
  fs.copyFileSync(path.join(root, "pnpm-lock.yaml"), path.join(consumer, "pnpm-lock.yaml"))
  fs.chmodSync(path.join(consumer, "pnpm-lock.yaml"), 0o644)
  const installed = await pnpm(["install", "--offline", "--no-frozen-lockfile", "--reporter=append-only"], consumer)
  if (installed.status !== 0) {
    throw new Error(
      `offline install of the packed tarballs into ${consumer} failed (the pnpm store lacks something: run 'npm run setup' first): ${
        oneLine(installed.stderr + installed.stdout)
      }`
    )
  }
})

afterAll(() => {
  if (temp !== "") fs.rmSync(temp, { recursive: true, force: true })
})

describe("the packed packages, installed offline into an empty folder", () => {
  it("ship built JavaScript, declarations and a license, and no sources or tests", async () => {
    for (const [name, file] of Object.entries(tarballs)) {
      const listed = (await run("tar", ["-tzf", file], temp)).stdout.split("\n").filter(Boolean)
      expect(listed, name).toContain("package/LICENSE")
      expect(listed.some((f) => f.endsWith(".d.ts")), name).toBe(true)
      expect(listed.filter((f) => /^package\/(src|test)\/|\.v8cache$|\.test\./.test(f)), name).toEqual([])
      const manifest = JSON.parse((await run("tar", ["-xzOf", file, "package/package.json"], temp)).stdout) as Record<
        string,
        any
      >
      expect(manifest["license"], name).toBe("MIT")
      expect(manifest["private"], name).toBeUndefined()
      expect(JSON.stringify(manifest), name).not.toMatch(/workspace:|catalog:/)
      expect(manifest["peerDependencies"]["effect"], name).toBe(`^${catalog("effect")}`)
    }
  })

  it("run codex archive store, restore and batch-restore through npx", async () => {
    const tree = path.join(consumer, "tree")
    fs.mkdirSync(tree)
    // Enough files for the store and the batch to use worker threads.
    const originals = Array.from({ length: 300 }, (_, i) => `file ${i}\n`.repeat(i % 40 + 1))
    originals.forEach((text, i) => fs.writeFileSync(path.join(tree, `f${i}.txt`), text))

    const stored = await codex([
      "store",
      "acme/shop",
      "tree",
      "--write-stub",
      "--manifest-out",
      "restore.json",
      "--commit",
      "4f9c2e1"
    ], consumer)
    expect(stored.stderr).toBe("")
    expect(stored.status).toBe(0)
    const report = JSON.parse(stored.stdout) as {
      stored: number
      items: ReadonlyArray<{ path: string; tombstone: string }>
    }
    expect(report.stored).toBe(300)
    expect(fs.readFileSync(path.join(tree, "f7.txt"), "utf8")).toMatch(/^# TOMBSTONE ARCHIVE STUB/)

    const f7 = report.items.find((item) => item.path === "tree/f7.txt")!
    const single = await codex(["restore", f7.tombstone, "single.txt"], consumer)
    expect(single.stderr).toBe("")
    expect(single.status).toBe(0)
    expect(fs.readFileSync(path.join(consumer, "single.txt"), "utf8")).toBe(originals[7])

    const batch = await codex(["batch-restore", "restore.json", "--results", "results.json"], consumer)
    expect(batch.status, batch.stderr).toBe(0)
    const differ = originals.filter((text, i) => fs.readFileSync(path.join(tree, `f${i}.txt`), "utf8") !== text)
    expect(differ).toEqual([])
  })

  it("serve a plain Node ESM program that stores and restores a file", async () => {
    const r = await run(process.execPath, ["main.mjs"], consumer)
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ cli: "0.1.0", stubbed: true, status: "restored", content: "# old notes\n" })
  })

  it("load through require() as well (Node's require of ESM: no separate CommonJS build)", async () => {
    const script = "const c = require('@codex-archive/core'); const s = require('@codex-archive/backend-sqlite');" +
      " process.stdout.write(typeof c.Archiver.layer + ' ' + typeof s.SqliteArchive.layer)"
    const r = await run(process.execPath, ["-e", script], consumer)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe("object function")
  })

  it("type-check under NodeNext and @tsconfig/strictest with skipLibCheck off", async () => {
    const r = await run(process.execPath, [
      path.join(consumer, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.json"
    ], consumer)
    expect(r.stdout + r.stderr).toBe("")
    expect(r.status).toBe(0)
  })
})
