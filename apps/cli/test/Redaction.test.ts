import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { codex, tempDir, write } from "./support.js"

const password = "s3cr3t-pass"
/** Unreachable (port 1: connection refused, retried) and reachable-but-refusing (no such role) servers. */
const urls = [`postgres://u:${password}@127.0.0.1:1/db`, `postgresql://u:${password}@127.0.0.1:5432/codex_no_such_db`, `mysql://u:${password}@127.0.0.1:3306/db`]
const fastRetry = { CODEX_ARCHIVE_RETRY_INITIAL: "0.01", CODEX_ARCHIVE_RETRY_MAX: "0.02", CODEX_ARCHIVE_RETRY_ATTEMPTS: "3" }
const tombstone = "0f0f0f0f-0000-4000-8000-000000000000"

/** Every byte a user could see: stdout, stderr, and every file the command left under its folder. */
const everything = (cwd: string, runs: ReadonlyArray<{ stdout: string; stderr: string }>) =>
  [
    ...runs.flatMap((r) => [r.stdout, r.stderr]),
    ...(fs.readdirSync(cwd, { recursive: true }) as Array<string>)
      .map((f) => path.join(cwd, f))
      .filter((f) => fs.statSync(f).isFile() && !f.endsWith(".toml"))
      .map((f) => fs.readFileSync(f, "latin1"))
  ].join("\n")

describe("a password-bearing URL never appears in any output", () => {
  for (const url of urls) {
    it(`${url.split(":")[0]}: config-show, debug logs in both formats, errors, health-check, evidence`, () => {
      const cwd = tempDir()
      write(path.join(cwd, "f.txt"), "x\n")
      write(path.join(cwd, "manifest.json"), JSON.stringify([{ tombstone, output: "out/a.txt" }]))
      write(path.join(cwd, "conf.toml"), `[backend]\nurl = "${url}"\n[retry]\ninitial_delay = 0.01\n`)
      const env = { CODEX_ARCHIVE_URL: url, ...fastRetry }
      const runs = [
        codex(cwd, ["config-show"], env),
        codex(cwd, ["config-show", "--origin", "--log-level=debug"], env),
        codex(cwd, ["config-show", "--config-file", "conf.toml"]),
        codex(cwd, ["restore", tombstone, "out.txt", "--log-level=debug"], env),
        codex(cwd, ["restore", tombstone, "out.txt", "--log-level=debug", "--log-format", "json", "--metrics-out", "m.prom"], env),
        codex(cwd, ["restore", tombstone, "out.txt", "--url", url, "--log-level=debug"], fastRetry),
        codex(cwd, ["store", "r", "f.txt", "--commit", "x", "--log-level=debug"], env),
        codex(cwd, ["list", "--log-level=debug"], env),
        codex(cwd, ["batch-restore", "manifest.json", "--log-level=debug", "--results", "results.json"], env),
        codex(cwd, ["health-check", "--log-level=debug"], env),
        codex(cwd, ["health-check", "--json", "--log-format", "json", "--log-level=debug"], env),
        codex(cwd, ["config-show"], { ...env, CODEX_ARCHIVE_RETRY_JITTER: "bad" })
      ]
      // Each command really ran into the URL: the failures name the backend, redacted.
      expect(runs[3]!.code).toBe(1)
      expect(runs.map((r) => r.stdout + r.stderr).join("\n")).toMatch(/(postgres|postgresql|mysql):\/\/\*\*\*@127\.0\.0\.1/)
      expect(everything(cwd, runs)).not.toContain(password)
      // Only an explicit --debug reveals it.
      expect(codex(cwd, ["config-show", "--debug"], env).stdout).toContain(password)
    })
  }
})
