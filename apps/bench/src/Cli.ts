/**
 * The bench's command line: which corpus, seed, backends, scenarios and how many runs, and where the report goes.
 * Writes `bench.json`, `bench.md` and `bench.svg` to `--out`, prints the Markdown tables on stdout (progress goes to
 * stderr), and exits 1 when a requested backend could not be measured.
 */
import { Command, Options } from "@effect/cli"
import { Config, Console, Data, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Backends from "./Backends.js"
import * as Clients from "./Clients.js"
import * as Growth from "./Growth.js"
import * as Report from "./Report.js"
import * as GrowthReport from "./Report/Growth.js"
import * as Markdown from "./Report/Markdown.js"
import { type ScenarioName, scenarioNames } from "./Results.js"
import * as Runner from "./Runner.js"

/** The repository root: `src/` and `dist/` both sit two levels below it, in `apps/bench/`. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")

export class BadFlag
  extends Data.TaggedError("BadFlag")<{ readonly flag: string; readonly value: string; readonly expected: string }>
{
  override get message() {
    return `${this.flag} '${this.value}': expected ${this.expected}`
  }
}

export class BenchIncomplete extends Data.TaggedError("BenchIncomplete")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `some requested backends were not measured:\n  ${this.problems.join("\n  ")}`
  }
}

const parseScenarios = (spec: string): Effect.Effect<ReadonlyArray<ScenarioName>, BadFlag> => {
  const names = spec === "all" ? scenarioNames : spec.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  const bad = names.find((n) => !scenarioNames.includes(n as ScenarioName))
  return bad === undefined && names.length > 0
    ? Effect.succeed(scenarioNames.filter((n) => names.includes(n)))
    : Effect.fail(
      new BadFlag({ flag: "--scenarios", value: spec, expected: `all or a list of ${scenarioNames.join(", ")}` })
    )
}

const parseLevels = (spec: string): Effect.Effect<ReadonlyArray<number>, BadFlag> => {
  const levels = spec.split(",").map((s) => Number(s.trim()))
  return levels.length > 0 && levels.every((n) => Number.isInteger(n) && n >= 1)
    ? Effect.succeed([...new Set(levels)].sort((a, b) => a - b))
    : Effect.fail(
      new BadFlag({ flag: "--concurrency", value: spec, expected: "a list of positive integers, e.g. 1,4,16" })
    )
}

const positive = (flag: string, min: number) => (n: number) =>
  n >= min ? Effect.succeed(n) : Effect.fail(new BadFlag({ flag, value: String(n), expected: `an integer >= ${min}` }))

const options = {
  corpus: Options.text("corpus").pipe(
    Options.withDefault("small"),
    Options.withDescription("small (1,000 files), large (10,000 files, ~770 MiB) or a file count")
  ),
  seed: Options.integer("seed").pipe(
    Options.withDefault(42),
    Options.withDescription("Corpus seed: the same seed gives the same bytes everywhere")
  ),
  backends: Options.text("backends").pipe(
    Options.withDefault("sqlite"),
    Options.withDescription("Comma-separated: sqlite, postgres, mariadb")
  ),
  scenarios: Options.text("scenarios").pipe(
    Options.withDefault("all"),
    Options.withDescription(`all, or comma-separated: ${scenarioNames.join(", ")}`)
  ),
  runs: Options.integer("runs").pipe(
    Options.withDefault(3),
    Options.withDescription("Measured runs; figures are medians over them")
  ),
  warmup: Options.integer("warmup").pipe(
    Options.withDefault(1),
    Options.withDescription("Warm-up runs before measuring (discarded)")
  ),
  concurrency: Options.text("concurrency").pipe(
    Options.withDefault("1,8"),
    Options.withDescription("Batch-restore concurrency levels (1,4,16 for a fuller curve)")
  ),
  out: Options.text("out").pipe(
    Options.withDefault("bench-results"),
    Options.withDescription("Folder for bench.json, bench.md and bench.svg")
  ),
  pgUrl: Options.text("pg-url").pipe(
    Options.withFallbackConfig(Config.string("CODEX_BENCH_PG_URL")),
    Options.withDefault(Backends.defaultUrls.postgres),
    Options.withDescription("PostgreSQL server; each run creates and drops its own database there")
  ),
  mariadbUrl: Options.text("mariadb-url").pipe(
    Options.withFallbackConfig(Config.string("CODEX_BENCH_MARIADB_URL")),
    Options.withDefault(Backends.defaultUrls.mariadb),
    Options.withDescription("MariaDB / MySQL server; each run creates and drops its own database there")
  ),
  cli: Options.text("cli").pipe(
    Options.withDefault(path.join(repoRoot, "apps/cli/dist/codex.mjs")),
    Options.withDescription("The CLI bundle the scenarios run (the cold restore; growth's and clients' processes)")
  ),
  tmp: Options.directory("tmp", { exists: "yes" }).pipe(
    Options.withDefault(Runner.defaultTmp()),
    Options.withDescription("Scratch folder (archives, outputs; removed afterwards)")
  ),
  render: Options.text("render").pipe(
    Options.optional,
    Options.withDescription("Only re-render an earlier bench.json into --out (Markdown and SVG), measuring nothing")
  ),
  corpusCache: Options.text("corpus-cache").pipe(
    Options.withDefault(Runner.defaultCorpusCache()),
    Options.withDescription(
      "Where generated corpora are kept for reuse by later runs ('none': generate into the scratch folder)"
    )
  )
}

export type Flags = Command.Command.ParseConfig<typeof options>

/** Turns flags into settings, runs the bench and writes the report; the report is written even when a backend failed. */
export const bench = (flags: Flags) =>
  Effect.gen(function*() {
    const settings: Runner.Settings = {
      corpus: flags.corpus,
      seed: flags.seed,
      backends: yield* Backends.parseList(flags.backends),
      scenarios: yield* parseScenarios(flags.scenarios),
      runs: yield* positive("--runs", 1)(flags.runs),
      warmup: yield* positive("--warmup", 0)(flags.warmup),
      concurrency: yield* parseLevels(flags.concurrency),
      servers: { postgres: flags.pgUrl, mariadb: flags.mariadbUrl },
      cli: path.resolve(flags.cli),
      tmp: flags.tmp,
      corpusCache: flags.corpusCache === "none" ? undefined : flags.corpusCache,
      latencyFiles: { small: 100, large: 12 },
      cliInvocations: 3,
      command: ["node apps/bench/dist/bench.mjs", ...process.argv.slice(2)].join(" ")
    }
    const report = yield* Runner.run(settings)
    const written = Report.write(report, path.resolve(flags.out))
    yield* Console.log(Markdown.render(report))
    yield* Console.error(
      `bench: ${report.duration_s.toFixed(1)} s; wrote ${written.json}, ${written.markdown}, ${written.svg}`
    )
    const problems = [
      ...report.unavailable.filter((u) => u.scenario === "*").map((u) => `${u.target}: ${u.reason}`),
      ...report.failures
    ]
    if (problems.length > 0) return yield* new BenchIncomplete({ problems })
    return report
  })

/** Re-renders a report from its JSON (after the writers changed, or to move it), measuring nothing. */
export const render = (file: string, out: string) =>
  Effect.gen(function*() {
    const report = yield* Effect.try({
      try: () => JSON.parse(fs.readFileSync(file, "utf8")) as Report.Report,
      catch: (e) => new BadFlag({ flag: "--render", value: file, expected: `a bench.json (${(e as Error).message})` })
    })
    const written = Report.write(report, path.resolve(out))
    yield* Console.log(Markdown.render(report))
    yield* Console.error(`bench: wrote ${written.json}, ${written.markdown}, ${written.svg}`)
  })

const parseCounts = (spec: string): Effect.Effect<ReadonlyArray<number>, BadFlag> => {
  const counts = spec.split(",").map((s) => Number(s.trim().replace(/_/g, "")))
  return counts.length > 0 && counts.every((n) => Number.isInteger(n) && n >= 1)
    ? Effect.succeed([...new Set(counts)].sort((a, b) => a - b))
    : Effect.fail(
      new BadFlag({
        flag: "--files",
        value: spec,
        expected: "a list of positive file counts, e.g. 10000,100000,1000000"
      })
    )
}

const growthOptions = {
  files: Options.text("files").pipe(
    Options.withDefault("10000,100000"),
    Options.withDescription("File counts, e.g. 10000,100000,1000000")
  ),
  rounds: Options.integer("rounds").pipe(
    Options.withDefault(1),
    Options.withDescription("Rounds; each runs every target once, in a rotated order")
  ),
  seed: options.seed,
  backends: options.backends,
  out: Options.text("out").pipe(
    Options.withDefault("bench-results"),
    Options.withDescription("Folder for growth.json, growth.md and growth.svg")
  ),
  pgUrl: options.pgUrl,
  mariadbUrl: options.mariadbUrl,
  cli: options.cli,
  tmp: options.tmp,
  corpusCache: options.corpusCache
}

/** The growth scenario: per-file cost and peak RSS of the CLI's store and batch restore as the tree grows. */
export const growth = (flags: Command.Command.ParseConfig<typeof growthOptions>) =>
  Effect.gen(function*() {
    const report = yield* Growth.run({
      counts: yield* parseCounts(flags.files),
      backends: yield* Backends.parseList(flags.backends),
      rounds: yield* positive("--rounds", 1)(flags.rounds),
      seed: flags.seed,
      servers: { postgres: flags.pgUrl, mariadb: flags.mariadbUrl },
      cli: path.resolve(flags.cli),
      tmp: flags.tmp,
      corpusCache: flags.corpusCache === "none" ? undefined : flags.corpusCache,
      command: ["node apps/bench/dist/bench.mjs", ...process.argv.slice(2)].join(" ")
    })
    const written = GrowthReport.write(report, path.resolve(flags.out))
    yield* Console.log(GrowthReport.markdown(report))
    yield* Console.error(`bench growth: wrote ${written.json}, ${written.markdown}, ${written.svg}`)
    if (report.problems.length > 0) return yield* new BenchIncomplete({ problems: report.problems })
  }).pipe(Effect.scoped)

const clientsOptions = {
  clients: Options.integer("clients").pipe(
    Options.withDefault(16),
    Options.withDescription("Concurrent CLI processes per backend")
  ),
  rounds: Options.integer("rounds").pipe(
    Options.withDefault(2),
    Options.withDescription("Rounds per client: store, 3 single restores, batch restore")
  ),
  files: Options.integer("files").pipe(
    Options.withDefault(40),
    Options.withDescription("Files per client and round, half of them shared by all clients")
  ),
  backends: Options.text("backends").pipe(
    Options.withDefault("postgres,mariadb"),
    Options.withDescription("Comma-separated: sqlite, postgres, mariadb")
  ),
  out: Options.text("out").pipe(
    Options.withDefault("bench-results"),
    Options.withDescription("Folder for clients.json and clients.md")
  ),
  pgUrl: options.pgUrl,
  mariadbUrl: options.mariadbUrl,
  cli: options.cli,
  tmp: options.tmp
}

/** Many clients on one archive: correctness checks and per-operation latency; exits 1 on any problem. */
export const clients = (flags: Command.Command.ParseConfig<typeof clientsOptions>) =>
  Effect.gen(function*() {
    const outcomes = yield* Clients.run({
      clients: yield* positive("--clients", 1)(flags.clients),
      rounds: yield* positive("--rounds", 1)(flags.rounds),
      files: yield* positive("--files", 2)(flags.files),
      backends: yield* Backends.parseList(flags.backends),
      servers: { postgres: flags.pgUrl, mariadb: flags.mariadbUrl },
      cli: path.resolve(flags.cli),
      tmp: flags.tmp
    })
    const out = path.resolve(flags.out)
    fs.mkdirSync(out, { recursive: true })
    const md = Clients.markdown(outcomes)
    fs.writeFileSync(
      path.join(out, "clients.json"),
      JSON.stringify(
        { command: ["node apps/bench/dist/bench.mjs", ...process.argv.slice(2)].join(" "), outcomes },
        null,
        2
      )
    )
    fs.writeFileSync(path.join(out, "clients.md"), md)
    yield* Console.log(md)
    const problems = outcomes.flatMap((o) => o.problems)
    if (problems.length > 0) return yield* new Clients.ClientsFailed({ problems })
  })

export const command = Command.make(
  "bench",
  options,
  (flags) =>
    Option.match(flags.render, { onNone: () => Effect.asVoid(bench(flags)), onSome: (file) => render(file, flags.out) })
).pipe(
  Command.withDescription("Compare archive backends (and the filesystem floor) on the same seeded corpus"),
  Command.withSubcommands([
    Command.make("growth", growthOptions, growth).pipe(
      Command.withDescription(
        "Per-file time and peak RSS of store and batch restore at 10k, 100k (and 1M) small files, beside tar"
      )
    ),
    Command.make("clients", clientsOptions, clients).pipe(
      Command.withDescription(
        "Concurrent CLI processes storing and restoring against one archive per backend: checks and latencies"
      )
    )
  ])
)

export const run = Command.run(command, { name: "codex-archive bench", version: "0.1.0" })
