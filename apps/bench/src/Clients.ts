/**
 * Many clients on one server archive: N concurrent CLI processes per backend store, restore and batch-restore against
 * one fresh archive, each from its own folder and evidence log (as users on different machines would). Every client
 * stores content shared with all the others (so writers race on the same artifacts, a large chunked file among them)
 * beside content of its own. Afterwards: no process failed, the archive holds exactly one artifact per distinct
 * content, every restored file equals its source, every evidence log has a line per item stored and restored, and
 * each operation's latency is reported as p50/p95/p99.
 */
import { ArchiveStore, Retry } from "@codex-archive/core"
import { Data, Effect } from "effect"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Backends from "./Backends.js"
import * as Stats from "./Stats.js"

export interface Settings {
  readonly clients: number
  readonly rounds: number
  /** Files per client and round, half of them shared with every other client. */
  readonly files: number
  readonly backends: ReadonlyArray<Backends.BackendName>
  readonly servers: Backends.ServerUrls
  readonly cli: string
  readonly tmp: string
}

export type Operation = "store" | "restore" | "batch-restore"
export const operations: ReadonlyArray<Operation> = ["store", "restore", "batch-restore"]

export interface Latency {
  readonly backend: Backends.BackendName
  readonly operation: Operation
  readonly count: number
  readonly p50_ms: number
  readonly p95_ms: number
  readonly p99_ms: number
  readonly max_ms: number
}

export interface Outcome {
  readonly backend: Backends.BackendName
  readonly clients: number
  readonly storedItems: number
  readonly distinctContent: number
  readonly artifacts: number
  readonly restoredFiles: number
  /** Everything that went wrong; empty when the run proved what it should. */
  readonly problems: ReadonlyArray<string>
  readonly latencies: ReadonlyArray<Latency>
  readonly seconds: number
}

export class ClientsFailed extends Data.TaggedError("ClientsFailed")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `clients: ${this.problems.length} problem(s):\n  ${this.problems.slice(0, 20).join("\n  ")}`
  }
}

/** Source-like text derived from `key`: the same key gives the same bytes in every client. */
const content = (key: string, size: number): Buffer => {
  const lines: Array<string> = []
  let length = 0
  for (let n = 0; length < size; n++) {
    const h = createHash("sha256").update(`${key}:${n}`).digest("hex")
    const line = `  let v${n % 97} = "${h.slice(0, 8 + (n % 40))}" // ${key}\n`
    lines.push(line)
    length += line.length
  }
  return Buffer.from(lines.join("")).subarray(0, size)
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** One CLI process: its wall time and output; a non-zero exit is a problem, not an exception. */
const cli = (settings: Settings, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv) =>
  new Promise<{ ms: number; code: number | null; stdout: string; stderr: string }>((resolve) => {
    const started = performance.now()
    const child = spawn("node", [settings.cli, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    child.on(
      "close",
      (code) =>
        resolve({
          ms: performance.now() - started,
          code,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8")
        })
    )
  })

interface Stored {
  readonly tombstone: string
  readonly sha256: string
  readonly source: Buffer
}

/** One client's rounds: store a folder, restore a few items one by one, batch-restore the round's manifest. */
const client = async (
  settings: Settings,
  url: string,
  root: string,
  index: number,
  problems: Array<string>,
  samples: Map<Operation, Array<number>>
) => {
  const home = path.join(root, `client-${index}`)
  const evidenceDir = path.join(home, "evidence")
  const env = {
    ...process.env,
    CODEX_ARCHIVE_URL: url,
    CODEX_EVIDENCE_DIR: evidenceDir,
    CODEX_ACTOR: `client-${index}`,
    CODEX_ARCHIVE_LOG_LEVEL: "warning",
    PGOPTIONS: "--client-min-messages=warning"
  }
  const stored: Array<Stored> = []
  let restored = 0
  const expectRestores: Array<string> = []
  const run = async (operation: Operation, args: ReadonlyArray<string>, cwd: string) => {
    const r = await cli(settings, args, cwd, env)
    samples.get(operation)!.push(r.ms)
    if (r.code !== 0) {
      problems.push(
        `client ${index} ${operation} exited ${r.code}: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`
      )
    }
    return r
  }
  for (let round = 1; round <= settings.rounds; round++) {
    const folder = `r${round}`
    const sources = new Map<string, Buffer>()
    for (let f = 0; f < settings.files; f++) {
      const shared = f % 2 === 0
      const key = shared ? `shared-${round}-${f}` : `client-${index}-${round}-${f}`
      // Shared content has the same size in every client; the first shared file is chunked (above 1 MiB).
      const size = shared && f === 0
        ? 3 * 1024 * 1024 + 123
        : 1024 + ((f * 7919 + (shared ? 0 : index * 104729)) % (15 * 1024))
      const file = `${folder}/d${f % 4}/f${f}.txt`
      const bytes = content(key, size)
      fs.mkdirSync(path.join(home, path.dirname(file)), { recursive: true })
      fs.writeFileSync(path.join(home, file), bytes)
      sources.set(file, bytes)
    }
    const manifest = path.join(home, `manifest-${round}.json`)
    const store = await run("store", [
      "archive",
      "store",
      `repo-${index}`,
      `${folder}/`,
      "--commit",
      `c${round}`,
      "--manifest-out",
      manifest
    ], home)
    if (store.code !== 0) continue
    const summary = JSON.parse(store.stdout) as {
      items: ReadonlyArray<{ path: string; tombstone: string; sha256: string }>
    }
    const items = summary.items.map((i) => ({ tombstone: i.tombstone, sha256: i.sha256, source: sources.get(i.path)! }))
    if (items.length !== sources.size) {
      problems.push(`client ${index} round ${round}: stored ${items.length} of ${sources.size} files`)
    }
    for (const item of items) {
      if (item.source === undefined || sha(item.source) !== item.sha256) {
        problems.push(`client ${index}: ${item.tombstone} recorded a different sha256`)
      }
    }
    stored.push(...items)
    // A few single restores, of shared and own content.
    const singles = path.join(home, `singles-${round}`)
    fs.mkdirSync(singles, { recursive: true })
    for (const [k, item] of items.slice(0, 3).entries()) {
      const out = path.join(singles, `${k}.out`)
      const r = await run("restore", ["archive", "restore", item.tombstone, out], home)
      if (r.code !== 0) continue
      expectRestores.push(item.tombstone)
      if (!fs.readFileSync(out).equals(item.source)) {
        problems.push(`client ${index}: single restore of ${item.tombstone} differs from its source`)
      } else restored++
    }
    // The whole round again from its manifest, into a fresh folder.
    const batchDir = path.join(home, `batch-${round}`)
    fs.mkdirSync(batchDir, { recursive: true })
    fs.renameSync(manifest, path.join(batchDir, "manifest.json"))
    const results = path.join(home, `results-${round}.json`)
    const batch = await run(
      "batch-restore",
      ["archive", "batch-restore", "manifest.json", "--results", results],
      batchDir
    )
    if (batch.code !== 0) continue
    for (const [file, bytes] of sources) {
      const out = path.join(batchDir, file)
      if (!fs.existsSync(out) || !fs.readFileSync(out).equals(bytes)) {
        problems.push(`client ${index}: batch restore of ${file} differs from its source`)
      } else restored++
    }
    expectRestores.push(...items.map((i) => i.tombstone))
  }
  // Evidence: one ARCHIVE line per item stored, one RESTORE line per item restored, in this client's log.
  const lines = fs.readdirSync(evidenceDir).filter((f) => f.endsWith(".jsonl")).flatMap((f) =>
    fs.readFileSync(path.join(evidenceDir, f), "utf8").split("\n").filter((l) => l.trim() !== "").map((l) =>
      JSON.parse(l) as { action: string; tombstone?: string }
    )
  )
  const count = (action: string) => {
    const m = new Map<string, number>()
    for (const l of lines) if (l.action === action && l.tombstone) m.set(l.tombstone, (m.get(l.tombstone) ?? 0) + 1)
    return m
  }
  const archived = count("ARCHIVE")
  const restores = count("RESTORE")
  for (const s of stored) {
    if (archived.get(s.tombstone) !== 1) {
      problems.push(`client ${index}: ${archived.get(s.tombstone) ?? 0} ARCHIVE lines for ${s.tombstone}`)
    }
  }
  const wanted = new Map<string, number>()
  for (const t of expectRestores) wanted.set(t, (wanted.get(t) ?? 0) + 1)
  for (const [t, n] of wanted) {
    if (restores.get(t) !== n) {
      problems.push(`client ${index}: ${restores.get(t) ?? 0} RESTORE lines for ${t}, expected ${n}`)
    }
  }
  const failures = lines.filter((l) => l.action.endsWith("_FAIL"))
  if (failures.length > 0) {
    problems.push(`client ${index}: ${failures.length} failure lines in its evidence (${failures[0]!.action})`)
  }
  return { stored, restored }
}

/** All clients of one backend at once against one fresh archive, then the checks. */
export const runBackend = (settings: Settings, backend: Backends.BackendName) =>
  Effect.scoped(Effect.gen(function*() {
    const root = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(settings.tmp, `codex-clients-${backend}-`))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const archive = yield* Backends.fresh(backend, settings.servers, root, `${process.pid}_clients_${backend}`, 2).pipe(
      Effect.mapError((e) => new ClientsFailed({ problems: [`${backend}: ${e.reason}`] }))
    )
    // The archive is created once up front, as an administrator would before handing out its URL.
    const init = yield* Effect.promise(() =>
      cli(settings, ["archive", "init"], root, {
        ...process.env,
        CODEX_ARCHIVE_URL: archive.url,
        CODEX_EVIDENCE_DIR: path.join(root, "evidence-init")
      })
    )
    if (init.code !== 0) {
      return yield* new ClientsFailed({
        problems: [`${backend}: archive init exited ${init.code}: ${init.stderr.trim()}`]
      })
    }
    const problems: Array<string> = []
    const samples = new Map<Operation, Array<number>>(operations.map((o) => [o, []]))
    const started = performance.now()
    const done = yield* Effect.promise(() =>
      Promise.all(
        Array.from({ length: settings.clients }, (_, i) => client(settings, archive.url, root, i, problems, samples))
      )
    )
    const seconds = (performance.now() - started) / 1000
    const stored = done.flatMap((d) => d.stored)
    const distinct = new Set(stored.map((s) => s.sha256))
    // Exact deduplication: one artifact per distinct content, and no artifact without an item of ours.
    const artifacts = yield* Effect.gen(function*() {
      const store = yield* ArchiveStore.ArchiveStore
      return yield* store.artifacts()
    }).pipe(Effect.provide(archive.layer), Effect.provide(Retry.none), Effect.orDie)
    const shas = artifacts.map((a) => a.sha256)
    if (artifacts.length !== distinct.size) {
      problems.push(`${backend}: ${artifacts.length} artifacts for ${distinct.size} distinct contents`)
    }
    if (new Set(shas).size !== shas.length) {
      problems.push(`${backend}: the same content is stored in more than one artifact`)
    }
    for (const s of shas) if (!distinct.has(s)) problems.push(`${backend}: artifact ${s} is no client's content`)
    const latencies = operations.map((operation): Latency => {
      const ms = samples.get(operation)!
      return {
        backend,
        operation,
        count: ms.length,
        p50_ms: Stats.percentile(ms, 50),
        p95_ms: Stats.percentile(ms, 95),
        p99_ms: Stats.percentile(ms, 99),
        max_ms: Math.max(...ms)
      }
    })
    return {
      backend,
      clients: settings.clients,
      storedItems: stored.length,
      distinctContent: distinct.size,
      artifacts: artifacts.length,
      restoredFiles: done.reduce((n, d) => n + d.restored, 0),
      problems: problems.map((p) => `${backend}: ${p}`),
      latencies,
      seconds
    } satisfies Outcome
  }))

export const run = (settings: Settings) => Effect.forEach(settings.backends, (backend) => runBackend(settings, backend))

/** The report: one line per backend, then a latency table. */
export const markdown = (outcomes: ReadonlyArray<Outcome>): string => {
  const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`)
  return [
    "| backend | clients | items stored | distinct content | artifacts | files restored & compared | problems | wall time |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...outcomes.map((o) =>
      `| ${o.backend} | ${o.clients} | ${o.storedItems} | ${o.distinctContent} | ${o.artifacts} | ${o.restoredFiles} | ${o.problems.length} | ${
        o.seconds.toFixed(1)
      } s |`
    ),
    "",
    "| backend | operation | n | p50 | p95 | p99 | max |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...outcomes.flatMap((o) =>
      o.latencies.map((l) =>
        `| ${l.backend} | ${l.operation} | ${l.count} | ${fmt(l.p50_ms)} | ${fmt(l.p95_ms)} | ${fmt(l.p99_ms)} | ${
          fmt(l.max_ms)
        } |`
      )
    ),
    ""
  ].join("\n")
}
