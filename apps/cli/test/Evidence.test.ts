import { describe, expect, it } from "@effect/vitest"
import { buildSync } from "esbuild"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, evidence, tempDir, write } from "./support.js"

const log = (cwd: string) => path.join(cwd, ".codex/evidence/archive_ops.jsonl")

/** A folder whose evidence log holds two chained lines (a store, a restore). */
const withLog = (env: Record<string, string> = {}) => {
  const cwd = fs.realpathSync(tempDir())
  write(path.join(cwd, "f.txt"), "evidence\n")
  const stored = codex(cwd, ["store", "r", "f.txt", "--commit", "x"], env)
  expect(stored.code, stored.stderr).toBe(0)
  const restored = codex(cwd, ["restore", JSON.parse(stored.stdout).tombstone, "out.txt"], env)
  expect(restored.code, restored.stderr).toBe(0)
  return cwd
}

/** A node script that appends through the core's Evidence service once its stdin says go (built with esbuild). */
const appenderScript = (dir: string) => {
  const core = path.resolve(__dirname, "../../../packages/core")
  const out = path.join(dir, "appender.cjs")
  buildSync({
    stdin: {
      contents: `
        import { Effect } from "effect"
        import * as Evidence from "./src/Evidence.ts"
        const [dir, name, appends] = process.argv.slice(2)
        const program = Effect.gen(function*() {
          const evidence = yield* Evidence.make(dir)
          for (let i = 0; i < Number(appends); i++) {
            // Appends of 1, 2 and 3 lines, so batches interleave with single lines.
            const records = Array.from({ length: (i % 3) + 1 }, (_, j) =>
              ({ action: "RESTORE", actor: name, tombstone: name + "-" + i + "-" + j }))
            yield* evidence.append(...records)
          }
        })
        process.stdout.write("ready\\n")
        process.stdin.once("data", () => Effect.runPromise(program).then(() => process.exit(0), (e) => {
          process.stderr.write(String(e) + "\\n")
          process.exit(1)
        }))
      `,
      resolveDir: core,
      loader: "ts"
    },
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile: out,
    external: ["zstd-napi"],
    logLevel: "silent"
  })
  return out
}

describe("evidence verify", () => {
  it("an intact log: exit 0, one line on stdout; --json gives the report", () => {
    const cwd = withLog()
    const text = codex(cwd, ["evidence", "verify"])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toBe(`${log(cwd)}: 2 lines, chained from line 1: intact\n`)
    const json = codex(cwd, ["evidence", "verify", "--json"])
    expect(JSON.parse(json.stdout)).toEqual({
      file: log(cwd),
      lines: 2,
      legacy: 0,
      chain_from: 1,
      keyed: false,
      ok: true,
      break: null
    })
  })

  it("an edited line: exit 1, one line naming the file, the line number and the kind; health-check fails", () => {
    const cwd = withLog()
    const lines = fs.readFileSync(log(cwd), "utf8").split("\n")
    lines[0] = lines[0]!.replace("\"actor\":\"tester\"", "\"actor\":\"mallory\"")
    fs.writeFileSync(log(cwd), lines.join("\n"))
    const r = codex(cwd, ["evidence", "verify"])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toBe(
      `codex: error: evidence verify failed: ${log(cwd)}: 2 lines, chained from line 1: line 1: edited: ` +
        "its bytes do not match the prev recorded by line 2\n"
    )
    const json = codex(cwd, ["evidence", "verify", "--json"])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout).break).toMatchObject({ line: 1, kind: "edited" })
    const health = codex(cwd, ["health-check", "--json"])
    expect(health.code).toBe(1)
    const check = JSON.parse(health.stdout).checks.find((c: { name: string }) => c.name === "evidence-chain")
    expect(check).toMatchObject({ ok: false })
    expect(check.detail).toContain("line 1: edited")
  })

  it("a missing log is bad input (exit 2) naming the file", () => {
    const cwd = fs.realpathSync(tempDir())
    const r = codex(cwd, ["evidence", "verify", "nope.jsonl"])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe("codex: error: cannot read evidence log nope.jsonl: it does not exist\n")
  })

  it("a keyed chain: lines carry a mac; the key comes from env or --key-file and is never shown", () => {
    const cwd = withLog({ CODEX_EVIDENCE_HMAC_KEY: "s3cret-chain-key" })
    for (const line of evidence(cwd)) expect(line.mac).toMatch(/^[0-9a-f]{64}$/)
    expect(fs.readFileSync(log(cwd), "utf8")).not.toContain("s3cret-chain-key")
    write(path.join(cwd, "right.key"), "s3cret-chain-key\n")
    write(path.join(cwd, "wrong.key"), "guess\n")
    const right = codex(cwd, ["evidence", "verify", "--key-file", "right.key", "--json"])
    expect(right.code, right.stderr).toBe(0)
    expect(JSON.parse(right.stdout)).toMatchObject({ keyed: true, ok: true })
    const env = { CODEX_EVIDENCE_HMAC_KEY: "s3cret-chain-key" }
    const wrong = codex(cwd, ["evidence", "verify", "--key-file", "wrong.key"], env)
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("line 1: forged: its mac does not match")
    const shown = codex(cwd, ["config-show", "--debug"], env)
    expect(JSON.parse(shown.stdout).evidence.hmac_key).toBe("***")
    expect(shown.stdout + shown.stderr).not.toContain("s3cret-chain-key")
    const missing = codex(cwd, ["evidence", "verify", "--key-file", "absent.key"])
    expect(missing.code).toBe(2)
    const absent = path.join(cwd, "absent.key")
    expect(missing.stderr).toContain(`evidence.hmac_key_file (flag --key-file): ${absent} does not exist`)
  })

  it("4 processes appending at once keep one intact chain with every line", async () => {
    const cwd = fs.realpathSync(tempDir())
    const script = appenderScript(cwd)
    const dir = path.join(cwd, ".codex/evidence")
    const appends = 150
    const names = ["p1", "p2", "p3", "p4"]
    const children = names.map((name) => spawn(process.execPath, [script, dir, name, String(appends)]))
    const exits = children.map((child) =>
      new Promise<number>((resolve) => {
        let err = ""
        child.stderr.on("data", (d) => (err += d))
        child.on("close", (code) => resolve(code === 0 ? 0 : (console.error(err), code ?? -1)))
      })
    )
    // A barrier, not a sleep: every child is loaded and waiting before any of them appends.
    await Promise.all(children.map((child) => new Promise<void>((ready) => child.stdout.once("data", () => ready()))))
    for (const child of children) child.stdin.end("go\n")
    expect(await Promise.all(exits)).toEqual([0, 0, 0, 0])
    const perProcess = Array.from({ length: appends }, (_, i) => (i % 3) + 1).reduce((a, b) => a + b, 0)
    const r = codex(cwd, ["evidence", "verify", "--json"])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: 4 * perProcess, legacy: 0, chain_from: 1, ok: true })
    const records = evidence(cwd)
    expect(records.map((l) => l.seq)).toEqual(records.map((_, i) => i + 1))
    for (const name of names) {
      const own = records.filter((l) => l.actor === name).map((l) => l.tombstone)
      const expected = Array.from(
        { length: appends },
        (_, i) => Array.from({ length: (i % 3) + 1 }, (_, j) => `${name}-${i}-${j}`)
      )
      expect(own).toEqual(expected.flat())
    }
    expect(fs.existsSync(`${log(cwd)}.lock`)).toBe(false)
  })
})
