/** Help and --version as a user sees them: plain into a pipe, the full command, examples that parse, drivers listed. */
import { Tombstone } from "@codex-archive/core"
import { CliConfig, CommandDescriptor } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cli from "../src/Cli.js"
import * as Examples from "../src/Examples.js"
import * as Help from "../src/Help.js"
import * as Runtime from "../src/Runtime.js"
import { bin, tempDir } from "./support.js"

/** The bundle with exactly these colour variables (vitest's own FORCE_COLOR must not leak in), stdout a pipe. */
const run = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  script = bin,
  drop: ReadonlyArray<string> = []
) => {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) =>
      !k.startsWith("CODEX_") && k !== "NO_COLOR" && k !== "FORCE_COLOR" && !drop.includes(k)
    )
  )
  const r = spawnSync(process.execPath, [script, ...args], {
    cwd: tempDir(),
    env: { ...base, ...env },
    encoding: "utf8"
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Every command and group under `codex`, by path. */
const commands = Help.walk(Cli.tree).map((c) => c.path)
const leaves = Help.walk(Cli.tree).filter((c) => c.node.children === undefined).map((c) => c.path)
const key = (p: ReadonlyArray<string>) => p.slice(2).join(" ")

/** An EXAMPLES section's command lines, each joined back from its ` \` continuation lines. */
const shownExamples = (help: string): Array<string> => {
  const section = help.split("\nEXAMPLES\n")[1] ?? ""
  return section.replace(/ \\\n\s+/g, " ").split("\n").map((l) => l.trim()).filter((l) => l.startsWith("$ ")).map((l) =>
    l.slice(2)
  )
}

describe("help", () => {
  // Found by an attack review: Enter through the wizard's yes/no questions gave --force --allow-outside --debug.
  it("refuses @effect/cli's --wizard on one line (exit 2), and lists it nowhere", () => {
    for (const args of [["archive", "restore", "--wizard"], ["--wizard"], ["archive", "batch-restore", "--wizard"]]) {
      const r = run(args)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr).toBe(
        "codex: error: --wizard is not offered: its yes/no questions start at the flag's 'on' (--force, " +
          "--allow-outside); give the command's arguments (see --help)\n"
      )
      expect(r.stdout).toBe("")
    }
    for (const path of commands) {
      expect(run([...path.slice(1), "--help"]).stdout, path.join(" ")).not.toContain("wizard")
    }
  })

  it("is plain into a pipe, with NO_COLOR or without; FORCE_COLOR styles it", () => {
    for (const p of commands) {
      for (const env of [{}, { NO_COLOR: "1" }]) {
        const r = run([...p.slice(1), "--help"], env)
        expect(r.code, `${p.join(" ")}: ${r.stderr}`).toBe(0)
        expect(r.stdout, p.join(" ")).toContain("USAGE")
        expect(r.stdout.includes("\x1b"), `${p.join(" ")} --help ${JSON.stringify(env)} printed an ESC byte`).toBe(
          false
        )
      }
    }
    expect(run(["archive", "restore", "--help"], { FORCE_COLOR: "1" }).stdout).toContain("\x1b[")
  })

  it("decides colour as no-color.org and Node do", () => {
    expect(Help.colorWanted({}, true)).toBe(true)
    expect(Help.colorWanted({}, false)).toBe(false)
    expect(Help.colorWanted({ NO_COLOR: "1" }, true)).toBe(false)
    expect(Help.colorWanted({ NO_COLOR: "" }, true)).toBe(true)
    expect(Help.colorWanted({ FORCE_COLOR: "1" }, false)).toBe(true)
    expect(Help.colorWanted({ FORCE_COLOR: "0" }, true)).toBe(false)
  })

  it("names the full command in every usage line, and lists subcommands one short line each", () => {
    for (const p of leaves) {
      const r = run([...p.slice(1), "--help"])
      const usage = r.stdout.split("\n").find((l) => l.startsWith("$ "))
      expect(usage, r.stdout).toMatch(new RegExp(`^\\$ codex archive ${key(p)}( |$)`))
    }
    expect(run(["archive", "restore", "--help"]).stdout).toContain(
      "\n$ codex archive restore [options] TOMBSTONE|STUB [OUTPUT]\n"
    )
    expect(run(["archive", "purge", "--help"]).stdout).toContain(
      "\n$ codex archive purge [options] --second NAME --reason TEXT TOMBSTONE\n"
    )
    // A group named alone prints its help; its command list has one entry per command, summary beside the name.
    const group = run(["archive"]).stdout
    expect(group).toContain("\n$ codex archive [options] COMMAND\n")
    const list = group.split("\nCOMMANDS\n")[1]!
    for (const p of leaves) expect(list, key(p)).toMatch(new RegExp(`\\n  ${key(p)} +\\S|\\n  ${key(p)}\\n {10,}\\S`))
    expect(list).not.toContain("--config-file")
  })

  it("shows each option's and argument's own description, not @effect/cli's sentence for its type", () => {
    // The sentences @effect/cli writes under every option whatever it is for (its primitives' help, and
    // Options.optional's): the placeholder and the usage line already say them.
    const generic = [
      "A user-defined piece of text.",
      "A true or false value.",
      "An integer.",
      "A directory.",
      "A file.",
      "One of the following:",
      "This setting is optional."
    ]
    for (const p of commands) {
      const help = run([...p.slice(1), "--help"]).stdout
      for (const sentence of generic) expect(help, `${p.join(" ")} --help`).not.toContain(sentence)
      // Every option and argument keeps a description: each term is followed by an indented line.
      const lines = help.split("\n\nEXAMPLES\n")[0]!.split("\nCOMMANDS\n")[0]!.split("\n")
      const at = lines.findIndex((l) => l === "ARGUMENTS" || l === "OPTIONS")
      const listed = lines.slice(at).filter((l) => l !== "" && l !== "ARGUMENTS" && l !== "OPTIONS")
      listed.forEach((line, i) => {
        if (!line.startsWith(" ")) expect(listed[i + 1] ?? "", `${p.join(" ")}: ${line}`).toMatch(/^ {2}\S/)
      })
    }
    const batch = run(["archive", "batch-restore", "--help"]).stdout
    for (
      const term of [
        "--config-file FILE",
        "--url URL",
        "--log-format text | json",
        "--stubs DIR",
        "(--by, --actor NAME)",
        "--concurrency N",
        "--results FILE",
        "--resume FILE",
        "--metrics-out FILE",
        "--completions sh | bash | fish | zsh"
      ]
    ) expect(batch).toContain(`\n${term}\n`)
    expect(batch).toContain(
      "\n--results FILE\n\n  Write results here as the batch runs: JSON, or CSV if the name ends in .csv\n"
    )
    expect(batch).toContain("\n<MANIFEST>\n\n  Restore manifest: ")
    expect(batch).toContain("\n--fail-fast\n\n  Stop at the first failed item\n")
    // A sentence of @effect/cli's that says something stays.
    const store = run(["archive", "store", "--help"]).stdout
    expect(store).toContain(
      "\n--tag TAG...\n\n  A tag recorded on every item\n\n  This option may be repeated zero or more times.\n"
    )
    expect(store).toContain(
      "\n--reason dead | pruned | legacy | replaced\n\n  Why the files are archived (default: dead)\n"
    )
    expect(run(["archive", "list", "--help"]).stdout).toContain(
      "\n--limit N\n\n  At most this many items (default: 50)\n"
    )
    expect(run(["archive", "evidence", "verify", "--help"]).stdout).toContain("\n--key-file FILE\n")
  })

  it("shows each command's examples, and no line wider than 80 columns into a pipe", () => {
    for (const p of commands) {
      const r = run([...p.slice(1), "--help"])
      const wide = r.stdout.split("\n").filter((l) => l.length > 80)
      expect(wide, p.join(" ")).toEqual([])
      expect(shownExamples(r.stdout), p.join(" ")).toEqual(Examples.of(key(p)).map((e) => e.line))
    }
  })
})

describe("examples", () => {
  it("every command has two or three, and only commands have them", () => {
    for (const p of leaves) expect(Examples.of(key(p)).length, key(p)).toBeGreaterThanOrEqual(2)
    for (const p of leaves) expect(Examples.of(key(p)).length, key(p)).toBeLessThanOrEqual(3)
    expect(Object.keys(Examples.examples).sort()).toEqual(leaves.map(key).sort())
  })

  it.effect("each parses with the real command tree into its own command, every id a tombstone id", () =>
    Effect.gen(function*() {
      for (const [command, examples] of Object.entries(Examples.examples)) {
        for (const example of examples) {
          const words = Examples.words(example.line)
          expect(words.slice(0, 2), example.line).toEqual(["codex", "archive"])
          const argv = Runtime.hoistLogLevel(["node", "codex", ...words.slice(1)])
          const directive = yield* CommandDescriptor.parse(
            Cli.codex.descriptor,
            ["codex", ...argv.slice(2)],
            CliConfig.defaultConfig
          ).pipe(
            Effect.mapError((e) => new Error(`${example.line}: ${JSON.stringify(e)}`))
          )
          expect(directive._tag, example.line).toBe("UserDefined")
          if (directive._tag !== "UserDefined") continue
          expect(directive.leftover, example.line).toEqual([])
          // The parsed value nests each chosen subcommand as [its tag, its value]; the tag's key names the command.
          const names: Array<string> = []
          let value = directive.value as { subcommand?: { _tag: string; value?: [{ key: string }, unknown] } }
          while (value.subcommand?._tag === "Some") {
            const [tag, inner] = value.subcommand.value!
            names.push(/\(([^)]*)\)$/.exec(tag.key)![1]!)
            value = inner as typeof value
          }
          expect(names.slice(1).join(" "), example.line).toBe(command)
          for (const word of words) {
            if (/^[0-9a-f]{8}-/.test(word)) expect(Tombstone.isTombstoneId(word), `${example.line}: ${word}`).toBe(true)
          }
        }
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("--version", () => {
  const installed = (name: string) =>
    JSON.parse(fs.readFileSync(path.resolve(__dirname, `../node_modules/${name}/package.json`), "utf8"))
      .version as string

  it("prints our version and each backend's driver with its version", () => {
    const r = run(["--version"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^codex ${Cli.version.replace(/\./g, "\\.")} \\(node v\\d+`))
    expect(r.stdout).toMatch(
      new RegExp(`\\n  sqlite +better-sqlite3 ${installed("better-sqlite3").replace(/\./g, "\\.")} +installed\\n`)
    )
    expect(r.stdout).toMatch(/\n {2}postgres +pg \d+\.\d+\.\d+ +installed\n/)
    expect(r.stdout).toMatch(/\n {2}mariadb +mysql2 \d+\.\d+\.\d+ +installed\n/)
    expect(r.stdout).not.toContain("\x1b")
  })

  it("says a driver is not installed when the CLI cannot load it", () => {
    // The bundle alone, away from node_modules (and pnpm's NODE_PATH): better-sqlite3, outside the bundle, is not found.
    const dir = tempDir()
    for (const f of ["codex.mjs", "codex.cjs"]) fs.copyFileSync(path.join(path.dirname(bin), f), path.join(dir, f))
    const r = run(["--version"], {}, path.join(dir, "codex.mjs"), ["NODE_PATH"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/\n {2}sqlite +better-sqlite3 +not installed: Cannot find module 'better-sqlite3'/)
    expect(r.stdout).toMatch(/\n {2}postgres +pg \d+\.\d+\.\d+ +installed\n/)
  })
})
