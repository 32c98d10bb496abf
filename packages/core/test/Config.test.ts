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
        backend: { backend: "sqlite", url: "sqlite:///./.codex/archive.sqlite", path: `${cwd}/.codex/archive.sqlite` },
        logging: { level: "info", format: "text", evidence_file: null },
        retry: {
          enabled: true,
          max_attempts: 5,
          initial_delay: 1,
          max_delay: 32,
          multiplier: 2,
          jitter: 0.1,
          seed: null
        },
        batch: { concurrent: 4, progress_interval: 10, results_path: null },
        performance: { enabled: true, emit_to_evidence: true },
        store: { inline_limit: 8 * 1024 * 1024 },
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
      expect(byFlag.message).toBe(
        `invalid configuration: config file (flag --config-file): ${path.join(cwd, "nope.toml")} does not exist`
      )
      const byEnv = yield* failure({ cwd, env: { CODEX_ARCHIVE_CONFIG: "/nowhere/x.toml" } })
      expect(byEnv.message).toBe(
        "invalid configuration: config file (env CODEX_ARCHIVE_CONFIG): /nowhere/x.toml does not exist"
      )
      const bad = workdir({ "bad.toml": "[retry\nmax_attempts = 3\n" })
      expect((yield* failure({ cwd: bad, configFile: "bad.toml" })).message).toMatch(
        /config file .*bad\.toml.*: not valid TOML/
      )
    }))

  it.effect("a TOML syntax error names the file, line and column of the fault", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "bad.toml": "[backend]\nurl = \"sqlite:///x\"\n\n[retry]\nmax_attempts = = 3\n" })
      const message = (yield* failure({ cwd, configFile: "bad.toml" })).message
      expect(message).toContain(`${path.join(cwd, "bad.toml")}:5:`)
      expect(message).toMatch(/bad\.toml:5:\d+\): not valid TOML: \S/)
      expect(message).not.toContain("\n")
    }))

  it.effect("relative paths in a file resolve against the file's folder (a warning), the archive's against the working folder", () =>
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
      const file = path.join(etc, "archive.toml")
      const fromFile = yield* load({ cwd, configFile: "etc/codex/archive.toml" })
      // `sqlite:///data/...` is the absolute /data/... to the original tool.
      expect(fromFile.config.backend.path).toBe("/data/archive.sqlite")
      expect(Redacted.value(fromFile.config.backend.url)).toBe("sqlite:///data/archive.sqlite")
      expect(fromFile.config.logging.evidence_file).toBe(path.join(etc, "logs/restore.log"))
      expect(fromFile.config.batch.results_path).toBe(path.join(cwd, "etc/results.json"))
      expect(fromFile.config.evidence.dir).toBe(path.join(etc, "evidence"))
      const why = "relative to the config file's folder (the original tool: to the working folder)"
      expect(fromFile.warnings.map((w) => w.message)).toEqual([
        `logging.evidence_file = 'logs/restore.log' from ${file}:4: ${why}; using '${
          path.join(etc, "logs/restore.log")
        }'`,
        `batch.results_path = '../results.json' from ${file}:6: ${why}; using '${path.join(cwd, "etc/results.json")}'`
      ])
      const fromEnv = yield* load({
        cwd,
        configFile: "etc/codex/archive.toml",
        env: { CODEX_ARCHIVE_URL: "sqlite:///./here.sqlite", CODEX_EVIDENCE_DIR: "ev" }
      })
      expect(fromEnv.config.backend.path).toBe(`${cwd}/here.sqlite`)
      expect(fromEnv.config.evidence.dir).toBe(path.join(cwd, "ev"))
      const absolute = yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "sqlite:////var/lib/a.sqlite" } })
      expect(absolute.config.backend.path).toBe("/var/lib/a.sqlite")
      // A file in the working folder: relative paths mean the same to both tools, so nothing to warn about.
      const here = workdir({ "c.toml": "[batch]\nresults_path = \"r.json\"\n" })
      const plain = yield* load({ cwd: here, configFile: "c.toml" })
      expect(plain.config.batch.results_path).toBe(path.join(here, "r.json"))
      expect(plain.warnings).toEqual([])
    }))

  it.effect("the backend is inferred from an env or flag URL unless set at the same or a higher level; a mismatch is an error", () =>
    Effect.gen(function*() {
      const cwd = workdir({
        "pg.toml": "[backend]\nurl = \"postgresql://h/db\"\n",
        "both.toml": "[backend]\nbackend = \"mysql\"\nurl = \"mariadb://h/db\"\n"
      })
      // The original infers nothing from a file's URL: its backend stays sqlite and it would make a file of the URL.
      const fromFile = yield* failure({ cwd, configFile: "pg.toml" })
      expect(fromFile.message).toBe(
        `invalid configuration: backend.url (${
          path.join(cwd, "pg.toml")
        }:2): got 'postgresql://h/db', a postgres URL, but backend.backend is 'sqlite' (the default), and the original tool would read it as a SQLite file name: set backend.backend = "postgres" beside it`
      )
      const inferred = yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "postgresql://h/db" } })
      expect(inferred.config.backend.backend).toBe("postgres")
      expect(inferred.config.backend.path).toBeNull()
      expect(Config.explain(inferred).backend!.backend!.origin).toBe("inferred from backend.url")
      expect((yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "mysql://h/db" } })).config.backend.backend).toBe("mariadb")
      expect((yield* load({ cwd, configFile: "both.toml" })).config.backend.backend).toBe("mariadb")
      // A URL from a higher level re-infers the backend set below it.
      expect(
        (yield* load({ cwd, configFile: "both.toml", env: { CODEX_ARCHIVE_URL: secretUrl } })).config.backend.backend
      ).toBe("postgres")
      const mismatch = yield* failure({ cwd, configFile: "both.toml", env: { CODEX_ARCHIVE_BACKEND: "postgres" } })
      expect(mismatch.message).toBe(
        `invalid configuration: backend.backend (env CODEX_ARCHIVE_BACKEND): 'postgres' does not match the mariadb URL in backend.url (${
          path.join(cwd, "both.toml")
        }:3)`
      )
    }))

  describe("a value the original tool also rejects is an error naming the key, where it came from and what was expected", () => {
    const fileCases: ReadonlyArray<readonly [section: string, line: string, key: string, expected: string]> = [
      ["backend", "backend = \"oracle\"", "backend.backend", "got 'oracle', expected one of sqlite, postgres, mariadb"],
      [
        "backend",
        "url = \"\"",
        "backend.url",
        "got '', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://... (the archive URL must be provided)"
      ],
      [
        "backend",
        "url = \"http://h/x\"",
        "backend.url",
        "got 'http://h/x', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://..."
      ],
      // The original would make a SQLite file named after these credentials: refused, and not echoed.
      [
        "backend",
        "url = \"u:pw-secret@h/db\"",
        "backend.url",
        "got 'u:***@h/db', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://... (a user part needs a scheme)"
      ],
      ["logging", "level = 3", "logging.level", "got 3, expected one of debug, info, warning, error"],
      ["logging", "format = \"xml\"", "logging.format", "got 'xml', expected one of text, json"],
      ["retry", "multiplier = -2", "retry.multiplier", "got -2, expected a number >= 1"],
      ["batch", "results_path = 3", "batch.results_path", "got 3, expected a non-empty string"]
    ]
    for (const [section, line, key, problem] of fileCases) {
      const cwd = workdir({ "c.toml": `# comment\n[${section}]\n${line}\n` })
      it.effect(`file: ${line}`, () =>
        expectInvalid({ cwd, configFile: "c.toml" }, `${key} (${path.join(cwd, "c.toml")}:3)`, problem))
    }

    const envCases: ReadonlyArray<readonly [variable: string, value: string, key: string, expected: string]> = [
      ["CODEX_ARCHIVE_BACKEND", "oracle", "backend.backend", "got 'oracle', expected one of sqlite, postgres, mariadb"],
      ["CODEX_ARCHIVE_LOG_FORMAT", "xml", "logging.format", "got 'xml', expected one of text, json"],
      [
        "CODEX_ARCHIVE_URL",
        "./fx.sqlite",
        "backend.url",
        "got './fx.sqlite', expected a URL: sqlite:///PATH, postgres://..., postgresql://..., mariadb://... or mysql://... (the backend cannot be inferred from a path, nor can the original tool: set CODEX_ARCHIVE_BACKEND=sqlite)"
      ],
      ["CODEX_ARCHIVE_INLINE_LIMIT", "64MiB", "store.inline_limit", "got '64MiB', expected a whole number >= 0"]
    ]
    for (const [variable, value, key, problem] of envCases) {
      it.effect(`env: ${variable}=${value}`, () =>
        expectInvalid({ cwd: workdir(), env: { [variable]: value } }, `${key} (env ${variable})`, problem))
    }

    it.effect("flag: --url with an unknown scheme, its credentials redacted", () =>
      Effect.gen(function*() {
        const error = yield* failure({ cwd: workdir(), flags: [["backend.url", "--url", "http://u:s3cr3t-pass@h/db"]] })
        expect(error.message).toContain(
          "invalid configuration: backend.url (flag --url): got 'http://***@h/db', expected a URL"
        )
        expect(error.message).not.toContain("s3cr3t-pass")
      }))

    it.effect("flags are ours alone: what a file or the environment may get away with, a flag may not", () =>
      Effect.gen(function*() {
        const error = yield* failure({ cwd: workdir(), flags: [["batch.concurrent", "--concurrency", 0]] })
        expect(error.message).toBe(
          "invalid configuration: batch.concurrent (flag --concurrency): got 0, expected a whole number from 1 to 256"
        )
        const above = yield* failure({ cwd: workdir(), flags: [["batch.concurrent", "--concurrency", 257]] })
        expect(above.message).toBe(
          "invalid configuration: batch.concurrent (flag --concurrency): got 257, expected a whole number from 1 to 256"
        )
      }))
  })

  describe("a value the original tool tolerates is used as it would use it, with one warning naming key, source and value used", () => {
    const strictly = (why: string, value: string, using: string) =>
      `got ${value}: ${why} (strict mode; without it ${using} would be used)`
    const notBool = "not a boolean (true/false, yes/no, on/off, 1/0), the original tool falls back to the default"
    const fileCases: ReadonlyArray<
      readonly [section: string, line: string, key: string, used: unknown, why: string, using: string]
    > = [
      [
        "logging",
        "level = \"verbose\"",
        "logging.level",
        "info",
        "not a level the original tool knows, it runs at info",
        "'info'"
      ],
      [
        "logging",
        "evidence_file = \"\"",
        "logging.evidence_file",
        null,
        "empty, the original tool takes it as unset",
        "null"
      ],
      ["retry", "enabled = \"maybe\"", "retry.enabled", true, notBool, "true"],
      ["retry", "max_attempts = 0", "retry.max_attempts", 1, "below 1, the original tool runs as with 1", "1"],
      ["retry", "max_attempts = -3", "retry.max_attempts", 1, "below 1, the original tool runs as with 1", "1"],
      [
        "retry",
        "max_attempts = \"many\"",
        "retry.max_attempts",
        5,
        "not a whole number >= 1, the original tool falls back to the default",
        "5"
      ],
      [
        "retry",
        "max_attempts = 2.5",
        "retry.max_attempts",
        5,
        "not a whole number >= 1, the original tool falls back to the default",
        "5"
      ],
      [
        "retry",
        "initial_delay = -1",
        "retry.initial_delay",
        0,
        "below 0, the original tool's delays come out as with 0",
        "0"
      ],
      [
        "retry",
        "max_delay = \"soon\"",
        "retry.max_delay",
        32,
        "not a number >= 0, the original tool falls back to the default",
        "32"
      ],
      [
        "retry",
        "multiplier = 0.5",
        "retry.multiplier",
        0.5,
        "not a number >= 1, but the original tool uses it as written",
        "0.5"
      ],
      ["retry", "jitter = true", "retry.jitter", 1, "a boolean, the original tool reads it as a number", "1"],
      [
        "retry",
        "jitter = 1.5",
        "retry.jitter",
        1.5,
        "not a number from 0 to 1, but the original tool uses it as written",
        "1.5"
      ],
      ["retry", "jitter = -0.5", "retry.jitter", 0, "below 0, the original tool's delays come out as with 0", "0"],
      ["retry", "seed = \"x\"", "retry.seed", 0, "not a whole number, the original tool falls back to 0", "0"],
      ["batch", "concurrent = 0", "batch.concurrent", 1, "below 1, the original tool runs as with 1", "1"],
      [
        "batch",
        "progress_interval = \"often\"",
        "batch.progress_interval",
        10,
        "not a whole number >= 1, the original tool falls back to the default",
        "10"
      ],
      ["performance", "enabled = \"sometimes\"", "performance.enabled", true, notBool, "true"],
      [
        "performance",
        "emit_to_evidence = 2",
        "performance.emit_to_evidence",
        true,
        "a number, the original tool reads it as its truth value",
        "true"
      ]
    ]
    for (const [section, line, key, used, why, using] of fileCases) {
      const cwd = workdir({ "c.toml": `# comment\n[${section}]\n${line}\n` })
      const where = `${path.join(cwd, "c.toml")}:3`
      const value = line.slice(line.indexOf("= ") + 2).replace(/^"(.*)"$/, "'$1'")
      it.effect(`file: ${line}`, () =>
        Effect.gen(function*() {
          const loaded = yield* load({ cwd, configFile: "c.toml" })
          expect(loaded.warnings.map((w) => w.message)).toEqual([
            `${key} = ${value} from ${where}: ${why}; using ${using}`
          ])
          expect(Config.toJson(loaded.config)[section]).toMatchObject({ [key.split(".")[1]!]: used })
          // Strict mode, from the environment: the error it was before.
          const strict = yield* failure({ cwd, configFile: "c.toml", env: { CODEX_ARCHIVE_STRICT: "1" } })
          expect(strict.message).toBe(`invalid configuration: ${key} (${where}): ${strictly(why, value, using)}`)
        }))
    }

    const envCases: ReadonlyArray<
      readonly [variable: string, value: string, key: string, used: unknown, why: string, using: string]
    > = [
      [
        "CODEX_ARCHIVE_LOG_LEVEL",
        "verbose",
        "logging.level",
        "info",
        "not a level the original tool knows, it runs at info",
        "'info'"
      ],
      ["CODEX_ARCHIVE_RETRY_ENABLED", "perhaps", "retry.enabled", true, notBool, "true"],
      [
        "CODEX_ARCHIVE_RETRY_ATTEMPTS",
        "five",
        "retry.max_attempts",
        5,
        "not a whole number >= 1, the original tool falls back to the default",
        "5"
      ],
      ["CODEX_ARCHIVE_RETRY_ATTEMPTS", "0", "retry.max_attempts", 1, "below 1, the original tool runs as with 1", "1"],
      [
        "CODEX_ARCHIVE_RETRY_MAX",
        "1e",
        "retry.max_delay",
        32,
        "not a number >= 0, the original tool falls back to the default",
        "32"
      ],
      [
        "CODEX_ARCHIVE_RETRY_JITTER",
        "-0.1",
        "retry.jitter",
        0,
        "below 0, the original tool's delays come out as with 0",
        "0"
      ],
      // A string "true" is no float to the original: the default, unlike a TOML `true`.
      [
        "CODEX_ARCHIVE_RETRY_JITTER",
        "true",
        "retry.jitter",
        0.1,
        "not a number from 0 to 1, the original tool falls back to the default",
        "0.1"
      ],
      [
        "CODEX_ARCHIVE_RETRY_SEED",
        "1.5",
        "retry.seed",
        0,
        "not a whole number, the original tool falls back to 0",
        "0"
      ],
      ["CODEX_ARCHIVE_BATCH_CONCURRENT", "0", "batch.concurrent", 1, "below 1, the original tool runs as with 1", "1"],
      // No bound in the original: 99,999,999 slots grew past 3 GB on a two-item batch.
      ["CODEX_ARCHIVE_BATCH_CONCURRENT", "99999999", "batch.concurrent", 256, "above 256, it runs as with 256", "256"],
      ["CODEX_ARCHIVE_PERF_EVIDENCE", "sure", "performance.emit_to_evidence", true, notBool, "true"]
    ]
    for (const [variable, raw, key, used, why, using] of envCases) {
      it.effect(`env: ${variable}=${raw}`, () =>
        Effect.gen(function*() {
          const cwd = workdir({ "strict.toml": "strict = true\n" })
          const loaded = yield* load({ cwd, env: { [variable]: raw } })
          expect(loaded.warnings.map((w) => w.message)).toEqual([
            `${key} = '${raw}' from env ${variable}: ${why}; using ${using}`
          ])
          const [section, name] = key.split(".")
          expect(Config.toJson(loaded.config)[section!]).toMatchObject({ [name!]: used })
          // Strict mode, from a file's top-level key and from the flag.
          const expected = `invalid configuration: ${key} (env ${variable}): ${strictly(why, `'${raw}'`, using)}`
          expect((yield* failure({ cwd, configFile: "strict.toml", env: { [variable]: raw } })).message).toBe(expected)
          expect((yield* failure({ cwd, env: { [variable]: raw }, flags: [["strict", "--strict", true]] })).message)
            .toBe(expected)
        }))
    }

    it.effect("a spelling only we accept is a warning; the same value overridden by a higher source is not reported", () =>
      Effect.gen(function*() {
        const cwd = workdir({
          "c.toml": "[backend]\nbackend = \"PostgreSQL\"\nurl = \"postgres://h/db\"\n[retry]\nmax_attempts = 0\n"
        })
        const file = path.join(cwd, "c.toml")
        const loaded = yield* load({ cwd, configFile: "c.toml", env: { CODEX_ARCHIVE_RETRY_ATTEMPTS: "3" } })
        expect(loaded.config.backend.backend).toBe("postgres")
        expect(loaded.config.retry.max_attempts).toBe(3)
        expect(loaded.warnings.map((w) => w.message)).toEqual([
          `backend.backend = 'PostgreSQL' from ${file}:2: the original tool accepts only sqlite, postgres, mariadb; using 'postgres'`
        ])
        expect(loaded.strict).toBe(false)
      }))

    it.effect("strict mode with nothing to warn about changes nothing; strict = maybe is an error", () =>
      Effect.gen(function*() {
        const cwd = workdir({
          "c.toml": "strict = true\n[retry]\nmax_attempts = 3\n",
          "bad.toml": "strict = \"maybe\"\n"
        })
        const loaded = yield* load({ cwd, configFile: "c.toml" })
        expect(loaded.strict).toBe(true)
        expect(loaded.config.retry.max_attempts).toBe(3)
        expect(Config.explain(loaded).retry!.max_attempts!.origin).toBe(`${path.join(cwd, "c.toml")}:3`)
        const bad = yield* failure({ cwd, configFile: "bad.toml" })
        expect(bad.message).toBe(
          `invalid configuration: strict (${
            path.join(cwd, "bad.toml")
          }:1): got 'maybe', expected a boolean (true/false, yes/no, on/off, 1/0)`
        )
      }))
  })

  describe("a URL, a file and the environment open the archive the original tool opens (its _sqlite_path)", () => {
    it.effect("a relative sqlite:///./ URL in a file resolves against the working folder, not the file's", () =>
      Effect.gen(function*() {
        const cwd = workdir({ "etc/c.toml": "[backend]\nurl = \"sqlite:///./.codex/archive.sqlite\"\n" })
        const loaded = yield* load({ cwd, configFile: "etc/c.toml" })
        expect(loaded.config.backend.path).toBe(path.join(cwd, ".codex/archive.sqlite"))
        expect(loaded.warnings).toEqual([])
        expect(Config.explain(loaded).backend!.path).toEqual({
          value: path.join(cwd, ".codex/archive.sqlite"),
          origin: `${path.join(cwd, "etc/c.toml")}:2`
        })
      }))

    it.effect("sqlite:///fx.sqlite is the absolute /fx.sqlite; sqlite:////abs and sqlite://host/path as the original joins them", () =>
      Effect.gen(function*() {
        const cwd = workdir()
        const pathOf = (url: string) =>
          Effect.map(load({ cwd, env: { CODEX_ARCHIVE_URL: url } }), (l) => l.config.backend.path)
        expect(yield* pathOf("sqlite:///fx.sqlite")).toBe("/fx.sqlite")
        expect(yield* pathOf("sqlite:////var/lib/fx.sqlite")).toBe("/var/lib/fx.sqlite")
        expect(yield* pathOf("sqlite://rel/db.sqlite")).toBe(path.join(cwd, "rel/db.sqlite"))
        expect(yield* pathOf("SQLITE:///./a.db")).toBe(path.join(cwd, "a.db"))
        expect(yield* pathOf("sqlite:///x.db?mode=ro")).toBe("/x.db")
        expect(yield* pathOf("sqlite:///../up.db")).toBe("/up.db")
        expect(yield* pathOf("sqlite://~/x.db")).toBe(path.join(os.homedir(), "x.db"))
        expect(yield* pathOf("sqlite:///:memory:")).toBe("/:memory:")
      }))

    it.effect("a SQLite URL with a user or password part is refused, redacted: it named a folder tree after them", () =>
      Effect.gen(function*() {
        const cwd = workdir({ "c.toml": "[backend]\nurl = \"sqlite://user:SqPw8@/tmp/x.sqlite\"\n" })
        const expected = "sqlite URLs take a path only: sqlite:///ABSOLUTE, " +
          "sqlite:///./RELATIVE, sqlite://RELATIVE or sqlite:RELATIVE"
        for (
          const [options, where] of [
            [{ env: { CODEX_ARCHIVE_URL: "sqlite://user:SqPw8@/tmp/x.sqlite" } }, "env CODEX_ARCHIVE_URL"],
            [{ configFile: "c.toml" }, `${path.join(cwd, "c.toml")}:2`]
          ] as const
        ) {
          const error = yield* failure({ cwd, ...options })
          expect(error.message).toBe(
            `invalid configuration: backend.url (${where}): got 'sqlite://***@/tmp/x.sqlite', ` +
              `a user or password part in a SQLite URL; ${expected}`
          )
          expect(error.message).not.toContain("SqPw8")
        }
        const userOnly = yield* failure({ cwd, env: { CODEX_ARCHIVE_URL: "sqlite://someone@host/x.db" } })
        expect(userOnly.message).toContain("a user or password part in a SQLite URL")
        // A password holding "#" or "?" (a second attack review: `u:S3cr#t@` was read as the path `u:S3cr`).
        for (const url of ["sqlite://u:S3cr#t@/tmp/x.sqlite", "sqlite://admin:Pa?ss@/tmp/x.sqlite"]) {
          const error = yield* failure({ cwd, env: { CODEX_ARCHIVE_URL: url } })
          expect(error.message, url).toContain("a user or password part in a SQLite URL")
          expect(error.message, url).not.toMatch(/S3cr|Pa\?ss/)
        }
        expect(fs.readdirSync(cwd)).toEqual(["c.toml"])
      }))

    it.effect("a bare path is a SQLite file relative to the working folder, from a file, a flag, or the env with its backend", () =>
      Effect.gen(function*() {
        const cwd = workdir({ "etc/c.toml": "[backend]\nurl = \"data/fx.sqlite\"\n" })
        expect((yield* load({ cwd, configFile: "etc/c.toml" })).config.backend.path).toBe(
          path.join(cwd, "data/fx.sqlite")
        )
        const env = yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "./fx.sqlite", CODEX_ARCHIVE_BACKEND: "sqlite" } })
        expect(env.config.backend).toMatchObject({ backend: "sqlite", path: path.join(cwd, "fx.sqlite") })
        const flag = yield* load({ cwd, flags: [["backend.url", "--url", "/srv/a.sqlite"]] })
        expect(flag.config.backend).toMatchObject({ backend: "sqlite", path: "/srv/a.sqlite" })
      }))

    it.effect("a symlink then .. leaves the link's target, as opening the path does (Python's Path.resolve)", () =>
      Effect.gen(function*() {
        const cwd = workdir({ "real/sub/.keep": "" })
        fs.symlinkSync(path.join(cwd, "real/sub"), path.join(cwd, "link"))
        const loaded = yield* load({ cwd, env: { CODEX_ARCHIVE_URL: "sqlite:///./link/../a.sqlite" } })
        expect(loaded.config.backend.path).toBe(path.join(cwd, "real/a.sqlite"))
      }))

    it.effect("when only the earlier reading finds an archive, a warning names both files; strict refuses", () =>
      Effect.gen(function*() {
        const cwd = workdir({ "etc/c.toml": "[backend]\nurl = \"sqlite:///./a.sqlite\"\n", "etc/a.sqlite": "" })
        const loaded = yield* load({ cwd, configFile: "etc/c.toml" })
        const file = path.join(cwd, "etc/c.toml")
        expect(loaded.config.backend.path).toBe(path.join(cwd, "a.sqlite"))
        expect(loaded.warnings.map((w) => w.message)).toEqual([
          `backend.url = 'sqlite:///./a.sqlite' from ${file}:2: names ${
            path.join(cwd, "a.sqlite")
          } as the original tool reads it, not ${
            path.join(cwd, "etc/a.sqlite")
          } (which exists) as earlier versions of this tool did; using '${path.join(cwd, "a.sqlite")}'`
        ])
        expect((yield* failure({ cwd, configFile: "etc/c.toml", flags: [["strict", "--strict", true]] })).message)
          .toContain(`backend.url (${file}:2): got 'sqlite:///./a.sqlite'`)
      }))

    it.effect(".codex/archive.toml, read without being named, may not choose the archive; its other keys count, with a warning", () =>
      Effect.gen(function*() {
        const cwd = workdir({
          ".codex/archive.toml": `[backend]\nbackend = "postgres"\nurl = "${secretUrl}"\n[retry]\nmax_attempts = 7\n`
        })
        const file = path.join(cwd, ".codex/archive.toml")
        const loaded = yield* load({ cwd })
        expect(loaded.config.backend).toMatchObject({
          backend: "sqlite",
          path: path.join(cwd, ".codex/archive.sqlite")
        })
        expect(loaded.config.retry.max_attempts).toBe(7)
        const messages = loaded.warnings.map((w) => w.message)
        expect(messages).toEqual([
          `config file = '${file}' from the working folder: read without being named, which the original tool never does (name it with --config-file or CODEX_ARCHIVE_CONFIG); using it, but not to choose the archive`,
          `backend.backend = 'postgres' from ${file}:2: would open another archive than the original tool, which does not read this file; using 'sqlite'`,
          `backend.url = 'postgres://***@127.0.0.1:1/db' from ${file}:3: would open another archive than the original tool, which does not read this file; using 'sqlite:///./.codex/archive.sqlite'`
        ])
        expect(messages.join("\n")).not.toContain("s3cr3t-pass")
        // Named, the same file chooses the archive, as it does for the original tool.
        const named = yield* load({ cwd, configFile: ".codex/archive.toml" })
        expect(named.config.backend.backend).toBe("postgres")
        expect(named.warnings).toEqual([])
        // A discovered URL naming the archive the others name anyway is kept; strict refuses the discovery itself.
        const same = workdir({ ".codex/archive.toml": "[backend]\nurl = \"sqlite:///./.codex/archive.sqlite\"\n" })
        const kept = yield* load({ cwd: same })
        expect(kept.warnings.map((w) => w.key)).toEqual(["config file"])
        expect(Config.explain(kept).backend!.url!.origin).toBe(`${path.join(same, ".codex/archive.toml")}:2`)
        expect((yield* failure({ cwd: same, env: { CODEX_ARCHIVE_STRICT: "yes" } })).message).toMatch(
          /^invalid configuration: config file \(the working folder\): got '.*archive\.toml': read without being named/
        )
      }))
  })

  it.effect("store.inline_limit: from the file, overridden by CODEX_ARCHIVE_INLINE_LIMIT, origin shown", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[store]\ninline_limit = 1048576\n" })
      const fromFile = yield* load({ cwd, configFile: "c.toml" })
      expect(fromFile.config.store.inline_limit).toBe(1048576)
      expect(Config.explain(fromFile).store!.inline_limit).toEqual({
        value: 1048576,
        origin: `${path.join(cwd, "c.toml")}:2`
      })
      const fromEnv = yield* load({ cwd, configFile: "c.toml", env: { CODEX_ARCHIVE_INLINE_LIMIT: "0" } })
      expect(fromEnv.config.store.inline_limit).toBe(0)
      expect(Config.explain(fromEnv).store!.inline_limit).toEqual({
        value: 0,
        origin: "env CODEX_ARCHIVE_INLINE_LIMIT"
      })
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

  it.effect("an unknown key or section is a warning naming the key and its line, an error only in strict mode", () =>
    Effect.gen(function*() {
      const cwd = workdir({
        "c.toml": "[retry]\nmax_attempt = 3\n[extras]\ncolour = \"red\"\n[batch]\nconcurrent = 2\n"
      })
      const loaded = yield* load({ cwd, configFile: "c.toml" })
      const file = path.join(cwd, "c.toml")
      expect(loaded.warnings.map((w) => w.message)).toEqual([
        `retry.max_attempt = 3 from ${file}:2: not a known key; ignored`,
        `extras.colour = 'red' from ${file}:4: not a known key; ignored`
      ])
      expect(loaded.config.batch.concurrent).toBe(2)
      expect(loaded.config.retry.max_attempts).toBe(5)
    }))

  it.effect("dotted keys at the top level count, with their line", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "retry.max_attempts = 3\nlogging.format = \"xml\"\n" })
      const error = yield* failure({ cwd, configFile: "c.toml" })
      expect(error.message).toBe(
        `invalid configuration: logging.format (${path.join(cwd, "c.toml")}:2): got 'xml', expected one of text, json`
      )
    }))

  it.effect("the URL is Redacted once read, redacted in toJson and explain unless revealed", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ cwd: workdir(), env: { CODEX_ARCHIVE_URL: secretUrl } })
      expect(Redacted.isRedacted(loaded.config.backend.url)).toBe(true)
      expect(String(loaded.config.backend.url)).not.toContain("s3cr3t-pass")
      expect(JSON.stringify(loaded.config)).not.toContain("s3cr3t-pass")
      expect(JSON.stringify(Config.toJson(loaded.config))).not.toContain("s3cr3t-pass")
      expect(Config.toJson(loaded.config).backend).toEqual({
        backend: "postgres",
        url: "postgres://***@127.0.0.1:1/db",
        path: null
      })
      expect(JSON.stringify(Config.explain(loaded))).not.toContain("s3cr3t-pass")
      expect(Config.toJson(loaded.config, true).backend).toEqual({ backend: "postgres", url: secretUrl, path: null })
      expect(Config.explain(loaded, true).backend!.url).toEqual({ value: secretUrl, origin: "env CODEX_ARCHIVE_URL" })
    }))
})

describe("Config files that never end", () => {
  it.effect("a key file or config file that is a link to a device is an error naming it, not read without end", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[evidence]\nhmac_key_file = \"key\"\n" })
      fs.symlinkSync("/dev/zero", path.join(cwd, "key"))
      const keyError = yield* failure({ cwd, configFile: "c.toml" })
      expect(keyError.message).toContain("evidence.hmac_key_file")
      expect(keyError.message).toContain("not a regular file")
      fs.symlinkSync("/dev/zero", path.join(cwd, "zero.toml"))
      const fileError = yield* failure({ cwd, env: { CODEX_ARCHIVE_CONFIG: "zero.toml" } })
      expect(fileError.message).toContain("not a regular file")
    }))
})

describe("Config files that are not UTF-8", () => {
  it.effect("a binary key file is refused, its bytes unshown: read as text, two different keys became one", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[evidence]\nhmac_key_file = \"key\"\n" })
      fs.writeFileSync(path.join(cwd, "key"), Buffer.from([0x6b, 0xff, 0xfe, 0xfd, 0xfc]))
      const keyError = yield* failure({ cwd, configFile: "c.toml" })
      expect(keyError.message).toContain("evidence.hmac_key_file")
      expect(keyError.message).toContain("is not UTF-8 text: the key is read as text")
      expect(keyError.message).not.toMatch(/0x|\\x/)
      // A config file: named at the line of its first bad byte.
      fs.writeFileSync(path.join(cwd, "bad.toml"), Buffer.from("[evidence]\ndir = \"ev\xff\"\n", "latin1"))
      const fileError = yield* failure({ cwd, configFile: "bad.toml" })
      expect(fileError.message).toContain("bad.toml is not UTF-8 text at line 2 (offset 20)")
      expect(fileError.message).not.toContain("0xff")
    }))
})

describe("Config values of the wrong type", () => {
  it.effect("from each source, the error names the key, the source and what was expected", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[logging]\nformat = 3\n[retry]\nmax_attempts = [1]\n" })
      const file = path.join(cwd, "c.toml")
      const expected = "expected one of text, json"
      yield* expectInvalid({ cwd, configFile: "c.toml" }, `logging.format (${file}:2)`, `got 3, ${expected}`)
      yield* expectInvalid(
        { cwd, env: { CODEX_ARCHIVE_LOG_FORMAT: "3" } },
        "logging.format (env CODEX_ARCHIVE_LOG_FORMAT)",
        `got '3', ${expected}`
      )
      yield* expectInvalid(
        { cwd, flags: [["logging.format", "--log-format", 3]] },
        "logging.format (flag --log-format)",
        `got 3, ${expected}`
      )
      yield* expectInvalid(
        { cwd, flags: [["retry.max_attempts", "--max-attempts", "x"]] },
        "retry.max_attempts (flag --max-attempts)",
        "got 'x', expected a whole number >= 1"
      )
    }))

  it.effect("a list where a number belongs, from a file, falls back as the original does; strict refuses it", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[retry]\nmax_attempts = [1]\n" })
      const file = path.join(cwd, "c.toml")
      const loaded = yield* load({ cwd, configFile: "c.toml" })
      expect(loaded.config.retry.max_attempts).toBe(5)
      expect(loaded.warnings.map((w) => w.message)).toEqual([
        `retry.max_attempts = [1] from ${file}:2: not a whole number >= 1, the original tool falls back to the default; using 5`
      ])
      expect((yield* failure({ cwd, configFile: "c.toml", flags: [["strict", "--strict", true]] })).message).toBe(
        `invalid configuration: retry.max_attempts (${file}:2): got [1]: not a whole number >= 1, the original tool falls back to the default (strict mode; without it 5 would be used)`
      )
    }))

  it.effect("an evidence key of the wrong type is refused without echoing it", () =>
    Effect.gen(function*() {
      const cwd = workdir({ "c.toml": "[evidence]\nhmac_key = 12345678\n" })
      const error = yield* failure({ cwd, configFile: "c.toml" })
      expect(error.message).toBe(
        `invalid configuration: evidence.hmac_key (${path.join(cwd, "c.toml")}:2): expected a non-empty string`
      )
    }))
})
