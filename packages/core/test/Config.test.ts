import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../src/Config.js"

const secretUrl = "postgres://u:s3cr3t-pass@127.0.0.1:1/db"

/** A fresh working folder; `files` are written relative to it. */
const workdir = (files: Record<string, string> = {}) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "codex-config-")))
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), text)
  }
  return dir
}

const load = (options: Partial<Config.LoadOptions> & { cwd: string }) => Config.load({ env: {}, ...options })
const failure = (options: Partial<Config.LoadOptions> & { cwd: string }) => Effect.flip(load(options))
const expectInvalid = (options: Partial<Config.LoadOptions> & { cwd: string }, where: string, problem: string) =>
  Effect.map(failure(options), (error) => {
    expect(error).toBeInstanceOf(Config.ConfigError)
    expect(error.message).toBe(`invalid configuration: ${where}: ${problem}`)
  })

describe("Config", () => {
  it.effect("defaults: spec §4.2 values, every origin 'default', the SQLite file under the working folder", () =>
    Effect.gen(function*() {
      const cwd = workdir()
      const loaded = yield* load({ cwd })
      expect(loaded.file).toBeUndefined()
      expect(Config.toJson(loaded.config)).toEqual({
        backend: { backend: "sqlite", url: `sqlite:///${cwd}/.codex/archive.sqlite` },
        logging: { level: "info", format: "text", evidence_file: null },
        retry: { enabled: true, max_attempts: 5, initial_delay: 1, max_delay: 32, multiplier: 2, jitter: 0.1, seed: null },
        batch: { concurrent: 4, progress_interval: 10, results_path: null },
        performance: { enabled: true, emit_to_evidence: true },
        store: { inline_limit: 64 * 1024 * 1024 },
        evidence: { dir: path.join(cwd, ".codex/evidence"), hmac_key_file: null, hmac_key: null }
      })
      expect(Config.explain(loaded).retry!.max_attempts).toEqual({ value: 5, origin: "default" })
    }))

  it.effect("precedence: flag > env > file > default, per key; an env var equal to the default still beats the file", () =>
    Effect.gen(function*() {
      const cwd = workdir({
        "conf.toml": "[logging]\nformat = \"json\"\nlevel = \"debug\"\n[retry]\nmax_attempts = 7\ninitial_delay = 0.5\n"
      })
      const loaded = yield* load({
        cwd,
        configFile: "conf.toml",
        env: { CODEX_ARCHIVE_LOG_FORMAT: "text", CODEX_ARCHIVE_RETRY_ATTEMPTS: "9", CODEX_ARCHIVE_RETRY_SEED: "" },
        flags: [["retry.max_attempts", "--max-attempts", 11], ["retry.jitter", "--jitter", undefined]]
      })
      const file = path.join(cwd, "conf.toml")
      const c = loaded.config
      expect(c.logging.format).toBe("text") // env equal to the default wins over the file
      expect(c.logging.level).toBe("debug") // file, env unset
      expect(c.retry.initial_delay).toBe(0.5)
      expect(c.retry.max_attempts).toBe(11) // flag over env over file
      expect(c.retry.seed).toBeNull() // an empty variable does not count
      expect(c.retry.jitter).toBe(0.1) // an absent flag does not count
      const shown = Config.explain(loaded)
      expect(shown.logging!.format!.origin).toBe("env CODEX_ARCHIVE_LOG_FORMAT")
      expect(shown.logging!.level!.origin).toBe(`${file}:3`)
      expect(shown.retry!.initial_delay!.origin).toBe(`${file}:6`)
      expect(shown.retry!.max_attempts!.origin).toBe("flag --max-attempts")
      expect(shown.retry!.jitter!.origin).toBe("default")
    }))

  it.effect("discovery: --config-file over CODEX_ARCHIVE_CONFIG over .codex/archive.toml, and none when absent", () =>
    Effect.gen(function*() {
      const cwd = workdir({
        "flag.toml": "[batch]\nconcurrent = 1\n",
        "env.toml": "[batch]\nconcurrent = 2\n",
        ".codex/archive.toml": "[batch]\nconcurrent = 3\n"
      })
      const env = { CODEX_ARCHIVE_CONFIG: "env.toml" }
      expect((yield* load({ cwd, env, configFile: "flag.toml" })).config.batch.concurrent).toBe(1)
      expect((yield* load({ cwd, env })).config.batch.concurrent).toBe(2)
      const discovered = yield* load({ cwd })
      expect(discovered.config.batch.concurrent).toBe(3)
      expect(discovered.file).toBe(path.join(cwd, ".codex/archive.toml"))
      expect((yield* load({ cwd: workdir() })).file).toBeUndefined()
    }))

  it.effect("a named file that is missing is an error naming how it was chosen; a missing discovered file is not", () =>
    Effect.gen(function*() {
      const cwd = workdir()
      const byFlag = yield* failure({ cwd, configFile: "nope.toml" })
      expect(byFlag.message).toBe(`invalid configuration: config file (flag --config-file): ${path.join(cwd, "nope.toml")} does not exist`)
      const byEnv = yield* failure({ cwd, env: { CODEX_ARCHIVE_CONFIG: "/nowhere/x.toml" } })
      expect(byEnv.message).toBe("invalid configuration: config file (env CODEX_ARCHIVE_CONFIG): /nowhere/x.toml does not exist")
      const bad = workdir({ "bad.toml": "[retry\nmax_attempts = 3\n" })
      expect((yield* failure({ cwd: bad, configFile: "bad.toml" })).message).toMatch(/config file .*bad\.toml.*: not valid TOML/)
    }))

  it.effect("a TOML syntax error names the file, line and column of the fault", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "bad.toml": "[backend]\nurl = \"sqlite:///x\"\n\n[retry]\nmax_attempts = = 3\n" })
      const message = (yield* failure({ cwd, configFile: "bad.toml" })).message
      expect(message).toContain(`${path.join(cwd, "bad.toml")}:5:`)
      expect(message).toMatch(/bad\.toml:5:\d+\): not valid TOML: \S/)
      expect(message).not.toContain("\n")
    }))

  it.effect("relative paths in a file resolve against the file's folder; in env and flags against the working folder", () =>
    Effect.gen(function*() {
      const cwd = workdir({
        "etc/codex/archive.toml": [
          "[backend]",
          "url = \"sqlite:///data/archive.sqlite\"",
          "[logging]",
          "evidence_file = \"logs/restore.log\"",
          "[batch]",
          "results_path = \"../results.json\"",
          "[evidence]",
          "dir = \"evidence\""
        ].join("\n")
      })
      const etc = path.join(cwd, "etc/codex")
      const fromFile = yield* load({ cwd, configFile: "etc/codex/archive.toml" })
      expect(Redacted.value(fromFile.config.backend.url)).toBe(`sqlite:///${etc}/data/archive.sqlite`)
      expect(fromFile.config.logging.evidence_file).toBe(path.join(etc, "logs/restore.log"))
      expect(fromFile.config.batch.results_path).toBe(path.join(cwd, "etc/results.json"))
      expect(fromFile.config.evidence.dir).toBe(path.join(etc, "evidence"))
      const fromEnv = yield* load({
        cwd,
        configFile: "etc/codex/archive.toml",
        env: { CODEX_ARCHIVE_URL: "sqlite:///here.sqlite", CODEX_EVIDENCE_DIR: "ev" }
      })
      expect(Redacted.value(fromEnv.config.backend.url)).toBe(`sqlite:///${cwd}/here.sqlite`)
      expect(fromEnv.config.evidence.dir).toBe(path.join(cwd, "ev"))
      const absolute = yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "sqlite:////var/lib/a.sqlite" } })
      expect(Redacted.value(absolute.config.backend.url)).toBe("sqlite:////var/lib/a.sqlite")
    }))

  it.effect("the backend is inferred from the URL unless set at the same or a higher level; a mismatch is an error", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "pg.toml": "[backend]\nurl = \"postgresql://h/db\"\n", "both.toml": "[backend]\nbackend = \"mysql\"\nurl = \"mariadb://h/db\"\n" })
      const inferred = yield* load({ cwd, configFile: "pg.toml" })
      expect(inferred.config.backend.backend).toBe("postgres")
      expect(Config.explain(inferred).backend!.backend!.origin).toBe("inferred from backend.url")
      expect((yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "mysql://h/db" } })).config.backend.backend).toBe("mariadb")
      expect((yield* load({ cwd, configFile: "both.toml" })).config.backend.backend).toBe("mariadb")
      // A URL from a higher level re-infers the backend set below it.
      expect((yield* load({ cwd, configFile: "both.toml", env: { CODEX_ARCHIVE_URL: secretUrl } })).config.backend.backend).toBe("postgres")
      const mismatch = yield* failure({ cwd, configFile: "both.toml", env: { CODEX_ARCHIVE_BACKEND: "postgres" } })
      expect(mismatch.message).toBe(
        `invalid configuration: backend.backend (env CODEX_ARCHIVE_BACKEND): 'postgres' does not match the mariadb URL in backend.url (${path.join(cwd, "both.toml")}:3)`
      )
    }))

  describe("every invalid value names the key, where it came from and what was expected", () => {
    const fileCases: ReadonlyArray<readonly [section: string, line: string, key: string, expected: string]> = [
      ["backend", "backend = \"oracle\"", "backend.backend", "got 'oracle', expected one of sqlite, postgres, mariadb"],
      ["backend", "url = \"\"", "backend.url", "got '', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://... (the archive URL must be provided)"],
      ["backend", "url = \"http://h/x\"", "backend.url", "got 'http://h/x', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://..."],
      ["logging", "level = \"loud\"", "logging.level", "got 'loud', expected one of debug, info, warning, error"],
      ["logging", "format = \"xml\"", "logging.format", "got 'xml', expected one of text, json"],
      ["logging", "evidence_file = \"\"", "logging.evidence_file", "got '', expected a non-empty string"],
      ["retry", "enabled = \"maybe\"", "retry.enabled", "got 'maybe', expected a boolean (true/false, yes/no, on/off, 1/0)"],
      ["retry", "max_attempts = 0", "retry.max_attempts", "got 0, expected a whole number >= 1"],
      ["retry", "max_attempts = 2.5", "retry.max_attempts", "got 2.5, expected a whole number >= 1"],
      ["retry", "initial_delay = -1", "retry.initial_delay", "got -1, expected a number >= 0"],
      ["retry", "max_delay = \"soon\"", "retry.max_delay", "got 'soon', expected a number >= 0"],
      ["retry", "multiplier = 0.5", "retry.multiplier", "got 0.5, expected a number >= 1"],
      ["retry", "jitter = 1.5", "retry.jitter", "got 1.5, expected a number from 0 to 1"],
      ["retry", "jitter = true", "retry.jitter", "got true, expected a number from 0 to 1"],
      ["retry", "seed = \"x\"", "retry.seed", "got 'x', expected a whole number"],
      ["batch", "concurrent = 0", "batch.concurrent", "got 0, expected a whole number >= 1"],
      ["batch", "progress_interval = \"often\"", "batch.progress_interval", "got 'often', expected a whole number >= 1"],
      ["batch", "results_path = 3", "batch.results_path", "got 3, expected a non-empty string"],
      ["performance", "enabled = \"sometimes\"", "performance.enabled", "got 'sometimes', expected a boolean (true/false, yes/no, on/off, 1/0)"],
      ["performance", "emit_to_evidence = 2", "performance.emit_to_evidence", "got 2, expected a boolean (true/false, yes/no, on/off, 1/0)"]
    ]
    for (const [section, line, key, problem] of fileCases) {
      const cwd = workdir({ "c.toml": `# comment\n[${section}]\n${line}\n` })
      it.effect(`file: ${line}`, () => expectInvalid({ cwd, configFile: "c.toml" }, `${key} (${path.join(cwd, "c.toml")}:3)`, problem))
    }

    const envCases: ReadonlyArray<readonly [variable: string, value: string, key: string, expected: string]> = [
      ["CODEX_ARCHIVE_BACKEND", "oracle", "backend.backend", "got 'oracle', expected one of sqlite, postgres, mariadb"],
      ["CODEX_ARCHIVE_LOG_FORMAT", "xml", "logging.format", "got 'xml', expected one of text, json"],
      ["CODEX_ARCHIVE_RETRY_ENABLED", "perhaps", "retry.enabled", "got 'perhaps', expected a boolean (true/false, yes/no, on/off, 1/0)"],
      ["CODEX_ARCHIVE_RETRY_ATTEMPTS", "five", "retry.max_attempts", "got 'five', expected a whole number >= 1"],
      ["CODEX_ARCHIVE_RETRY_MAX", "1e", "retry.max_delay", "got '1e', expected a number >= 0"],
      ["CODEX_ARCHIVE_RETRY_JITTER", "-0.1", "retry.jitter", "got '-0.1', expected a number from 0 to 1"],
      ["CODEX_ARCHIVE_RETRY_SEED", "1.5", "retry.seed", "got '1.5', expected a whole number"],
      ["CODEX_ARCHIVE_BATCH_CONCURRENT", "0", "batch.concurrent", "got '0', expected a whole number >= 1"],
      ["CODEX_ARCHIVE_PERF_EVIDENCE", "sure", "performance.emit_to_evidence", "got 'sure', expected a boolean (true/false, yes/no, on/off, 1/0)"],
      ["CODEX_ARCHIVE_INLINE_LIMIT", "64MiB", "store.inline_limit", "got '64MiB', expected a whole number >= 0"]
    ]
    for (const [variable, value, key, problem] of envCases) {
      it.effect(`env: ${variable}=${value}`, () => expectInvalid({ cwd: workdir(), env: { [variable]: value } }, `${key} (env ${variable})`, problem))
    }

    it.effect("flag: --url with an unknown scheme, its credentials redacted", () =>
      Effect.gen(function*() {
        const error = yield* failure({ cwd: workdir(), flags: [["backend.url", "--url", "http://u:s3cr3t-pass@h/db"]] })
        expect(error.message).toContain("invalid configuration: backend.url (flag --url): got 'http://***@h/db', expected a URL")
        expect(error.message).not.toContain("s3cr3t-pass")
      }))
  })

  it.effect("store.inline_limit: from the file, overridden by CODEX_ARCHIVE_INLINE_LIMIT, origin shown", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[store]\ninline_limit = 1048576\n" })
      const fromFile = yield* load({ cwd, configFile: "c.toml" })
      expect(fromFile.config.store.inline_limit).toBe(1048576)
      expect(Config.explain(fromFile).store!.inline_limit).toEqual({ value: 1048576, origin: `${path.join(cwd, "c.toml")}:2` })
      const fromEnv = yield* load({ cwd, configFile: "c.toml", env: { CODEX_ARCHIVE_INLINE_LIMIT: "0" } })
      expect(fromEnv.config.store.inline_limit).toBe(0)
      expect(Config.explain(fromEnv).store!.inline_limit).toEqual({ value: 0, origin: "env CODEX_ARCHIVE_INLINE_LIMIT" })
    }))

  it.effect("accepted spellings: aliases, case, booleans and numbers as strings", () =>
    Effect.gen(function*() {
      const loaded = yield* load({
        cwd: workdir(),
        env: {
          CODEX_ARCHIVE_URL: "postgres://h/db",
          CODEX_ARCHIVE_BACKEND: "PostgreSQL",
          CODEX_ARCHIVE_LOG_LEVEL: "WARN",
          CODEX_ARCHIVE_RETRY_ENABLED: " off ",
          CODEX_ARCHIVE_RETRY_JITTER: "0.25",
          CODEX_ARCHIVE_RETRY_SEED: "-42",
          CODEX_ARCHIVE_PERF_ENABLED: "disabled"
        }
      })
      expect(loaded.config.backend.backend).toBe("postgres")
      expect(loaded.config.logging.level).toBe("warning")
      expect(loaded.config.retry).toMatchObject({ enabled: false, jitter: 0.25, seed: -42 })
      expect(loaded.config.performance.enabled).toBe(false)
    }))

  it.effect("an unknown key or section is a warning naming the key and its line, never an error", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[retry]\nmax_attempt = 3\n[extras]\ncolour = \"red\"\n[batch]\nconcurrent = 2\n" })
      const loaded = yield* load({ cwd, configFile: "c.toml" })
      const file = path.join(cwd, "c.toml")
      expect(loaded.warnings).toEqual([`${file}:2: unknown key 'retry.max_attempt' ignored`, `${file}:4: unknown key 'extras.colour' ignored`])
      expect(loaded.config.batch.concurrent).toBe(2)
      expect(loaded.config.retry.max_attempts).toBe(5)
    }))

  it.effect("dotted keys at the top level count, with their line", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "retry.max_attempts = 3\nretry.seed = \"x\"\n" })
      const error = yield* failure({ cwd, configFile: "c.toml" })
      expect(error.message).toBe(`invalid configuration: retry.seed (${path.join(cwd, "c.toml")}:2): got 'x', expected a whole number`)
    }))

  it.effect("the URL is Redacted once read, redacted in toJson and explain unless revealed", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ cwd: workdir(), env: { CODEX_ARCHIVE_URL: secretUrl } })
      expect(Redacted.isRedacted(loaded.config.backend.url)).toBe(true)
      expect(String(loaded.config.backend.url)).not.toContain("s3cr3t-pass")
      expect(JSON.stringify(loaded.config)).not.toContain("s3cr3t-pass")
      expect(JSON.stringify(Config.toJson(loaded.config))).not.toContain("s3cr3t-pass")
      expect(Config.toJson(loaded.config).backend).toEqual({ backend: "postgres", url: "postgres://***@127.0.0.1:1/db" })
      expect(JSON.stringify(Config.explain(loaded))).not.toContain("s3cr3t-pass")
      expect(Config.toJson(loaded.config, true).backend).toEqual({ backend: "postgres", url: secretUrl })
      expect(Config.explain(loaded, true).backend!.url).toEqual({ value: secretUrl, origin: "env CODEX_ARCHIVE_URL" })
    }))
})
