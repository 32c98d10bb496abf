/**
 * `health-check` (spec §10, extended): can the archive be opened and queried (and how fast), is its schema the one
 * this tool expects, is the evidence folder writable and its hash chain intact, and does one stored payload decode to
 * its recorded SHA-256.
 * Every check is a value `{name, ok, detail, ms}`; nothing here fails, so one broken part never hides the others.
 */
import { Cause, Context, Effect, Exit, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArchiveStore } from "./ArchiveStore.js"
import type { ArchiveConfig, BackendName } from "./Config.js"
import * as Evidence from "./Evidence.js"
import * as EvidenceChain from "./EvidenceChain.js"
import * as Printable from "./Printable.js"
import * as Redact from "./Redact.js"
import * as Timestamp from "./Timestamp.js"
import * as Verifier from "./Verifier.js"

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
  /** Wall time of the check, in milliseconds. */
  readonly ms: number
}

export interface Report {
  readonly ok: boolean
  readonly backend: BackendName
  /** Redacted unless the report was made with `reveal`. */
  readonly url: string
  readonly schema_version: number | null
  readonly expected_schema_version: number
  readonly items_retrievable: number | null
  readonly checks: ReadonlyArray<Check>
}

export interface Options<E> {
  readonly backend: BackendName
  readonly url: Redacted.Redacted<string>
  /** Show the URL with its credentials (`--debug`). */
  readonly reveal: boolean
  /** The highest migration this tool ships for the backend (`Migrations.latest`). */
  readonly expectedSchemaVersion: number
  readonly evidenceDir: string
  /** The evidence chain's HMAC key, when configured: the chain check then checks every line's MAC too. */
  readonly evidenceKey?: Redacted.Redacted<string> | null | undefined
  /** Opens the archive; built inside the check, so a failure to connect is reported, not raised. */
  readonly store: Layer.Layer<ArchiveStore, E>
}

const skipped = "skipped: the archive could not be opened"

const round = (ms: number) => Math.round(ms * 1000) / 1000

/** Runs `effect`, timing it; its failure becomes a failed check whose detail is the redacted message. */
const timed = <A, E, R>(
  name: string,
  secrets: ReadonlyArray<string>,
  effect: Effect.Effect<{ readonly ok: boolean; readonly detail: string; readonly value?: A }, E, R>
): Effect.Effect<{ readonly check: Check; readonly value: A | undefined }, never, R> =>
  Effect.clockWith((clock) => {
    const started = clock.unsafeCurrentTimeNanos()
    return Effect.exit(effect).pipe(Effect.map((exit) => {
      const ms = round(Timestamp.elapsedMs(clock, started))
      if (Exit.isSuccess(exit)) {
        return { check: { name, ok: exit.value.ok, detail: exit.value.detail, ms }, value: exit.value.value }
      }
      const error = Cause.squash(exit.cause) as { _tag?: unknown; message?: unknown }
      const tag = typeof error._tag === "string" ? `${error._tag}: ` : ""
      const text = `${tag}${typeof error.message === "string" ? error.message : String(error)}`
      return { check: { name, ok: false, detail: Redact.secrets(text, secrets), ms }, value: undefined }
    }))
  })

/** Can we create a file in the folder (or, when it does not exist yet, in the nearest folder above it)? */
const evidenceWritable = (dir: string) =>
  Effect.sync(() => {
    let existing = path.resolve(dir)
    while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing)
    if (!fs.statSync(existing).isDirectory()) return { ok: false, detail: `${existing} is not a folder` }
    const probe = path.join(existing, `.codex-health-${process.pid}-${Date.now()}.tmp`)
    try {
      // A byte, not an empty file: a full disk still has room for an empty file's inode, not for a line.
      fs.writeFileSync(probe, "\n")
      fs.rmSync(probe, { force: true })
    } catch (e) {
      return { ok: false, detail: `${existing} is not writable: ${(e as Error).message}` }
    }
    return {
      ok: true,
      detail: existing === path.resolve(dir) ? `${dir} is writable` : `${dir} will be created in writable ${existing}`
    }
  })

/** The evidence log's hash chain holds (EvidenceChain.verify); a log not written yet is fine. */
const evidenceChain = (dir: string, key: Redacted.Redacted<string> | null | undefined) =>
  Effect.suspend(() => {
    const file = Evidence.fileIn(dir)
    if (!fs.existsSync(file)) {
      return Effect.succeed({ ok: true, detail: `${file} does not exist yet: nothing to check` })
    }
    return Effect.map(EvidenceChain.verify(file, { key }), (r) => ({ ok: r.ok, detail: EvidenceChain.describe(r) }))
  })

/** The newest item whose content is still stored, decoded and checked against its SHA-256. */
const samplePayload = (store: ArchiveStore["Type"]) =>
  Effect.gen(function*() {
    const newest = yield* store.list({ limit: 5 })
    if (newest.length === 0) return { ok: true, detail: "the archive is empty: nothing to decode" }
    const artifacts = yield* store.artifacts(newest.map((item) => item.tombstone_id))
    // Bytes gone with no purge recorded were lost, as `verify` reports them: not "purged, nothing to decode".
    const lost = artifacts.find((a) => a.layout === "purged" && a.purgeRecorded === false)
    if (lost !== undefined) {
      return { ok: false, detail: `tombstone ${lost.tombstones[0] ?? "?"}: payload missing without a purge record` }
    }
    const sample = artifacts.find((a) => a.layout !== "purged")
    if (sample === undefined) return { ok: true, detail: "the newest items' content was purged: nothing to decode" }
    const result = yield* Verifier.check(store, sample)
    const which = `tombstone ${sample.tombstones[0] ?? "?"} (${sample.layout}, ${
      sample.codec ?? "default codec"
    }, ${sample.sizeBytes} bytes)`
    return result.problem === undefined
      ? { ok: true, detail: `${which} decodes to its recorded sha256 ${sample.sha256.slice(0, 12)}…` }
      : { ok: false, detail: `${which}: ${result.problem}` }
  })

/** Chunk rows no chunked artifact claims: left by another tool's purge or re-store; their bytes are still stored. */
const orphanChunks = (store: ArchiveStore["Type"]) =>
  Effect.map(store.orphanChunks, (o) =>
    o.rows === 0
      ? { ok: true, detail: "no orphaned chunk rows" }
      : {
        ok: false,
        detail:
          `${o.rows} orphaned chunk rows (${o.bytes} bytes) of ${o.artifacts.length} artifacts: run \`codex archive gc\``
      })

export const run = <E>(options: Options<E>): Effect.Effect<Report> =>
  Effect.scoped(Effect.gen(function*() {
    const raw = Redacted.value(options.url)
    const secrets = Redact.secretsOf(raw)
    const scope = yield* Effect.scope
    const connect = yield* timed(
      "connect",
      secrets,
      Effect.map(Layer.buildWithScope(options.store, scope), (context) => ({
        ok: true,
        detail: `opened the ${options.backend} archive`,
        value: Context.get(context, ArchiveStore)
      }))
    )
    const checks: Array<Check> = [connect.check]
    const store = connect.value
    let items: number | undefined
    let version: number | undefined
    if (store !== undefined) {
      const probe = yield* timed(
        "probe",
        secrets,
        Effect.map(store.probe, (n) => ({
          ok: true,
          detail: `backend accessible, ${n} items retrievable`,
          value: n
        }))
      )
      const expected = options.expectedSchemaVersion
      const schema = yield* timed(
        "schema",
        secrets,
        Effect.map(store.schemaVersion, (v) => ({
          value: v,
          ok: v === expected,
          detail: v === expected
            ? `version ${v} (the latest this tool knows)`
            : v < expected
            ? `version ${v}, expected ${expected}: run \`codex archive init\` to migrate`
            : `version ${v} is newer than this tool knows (${expected}): upgrade codex`
        }))
      )
      items = probe.value
      version = schema.value
      checks.push(probe.check, schema.check, (yield* timed("sample", secrets, samplePayload(store))).check)
      checks.push((yield* timed("orphan-chunks", secrets, orphanChunks(store))).check)
    } else {
      for (const name of ["probe", "schema", "sample", "orphan-chunks"]) {
        checks.push({ name, ok: false, detail: skipped, ms: 0 })
      }
    }
    checks.push((yield* timed("evidence", secrets, evidenceWritable(options.evidenceDir))).check)
    const chain = evidenceChain(options.evidenceDir, options.evidenceKey)
    checks.push((yield* timed("evidence-chain", secrets, chain)).check)
    return {
      ok: checks.every((c) => c.ok),
      backend: options.backend,
      url: options.reveal ? raw : Redact.display(raw),
      schema_version: version ?? null,
      expected_schema_version: options.expectedSchemaVersion,
      items_retrievable: items ?? null,
      checks
    }
  }))

/** The checks that failed on their own; those skipped because the archive could not be opened add nothing. */
export const failures = (report: Report): ReadonlyArray<Check> =>
  report.checks.filter((c) => !c.ok && c.detail !== skipped)

/** One line: what failed and why, or that every check passed. */
export const summary = (report: Report): string => {
  const failed = failures(report)
  return failed.length === 0 ? "all checks passed" : failed.map((c) => `${c.name}: ${c.detail}`).join("; ")
}

/** The report as the original prints it (`=== Archive Health Check ===`), one line per check, then the status. */
export const renderText = (report: Report): string => {
  const width = Math.max(...report.checks.map((c) => c.name.length))
  const lines = [
    "=== Archive Health Check ===",
    `Backend: ${report.backend}`,
    `URL: ${report.url}`,
    ...report.checks.map((c) =>
      `${c.ok ? "✓" : "✗"} ${c.name.padEnd(width)} ${c.ms.toFixed(1).padStart(8)} ms  ${c.detail}`
    )
  ]
  lines.push(
    report.ok
      ? `Status: ✓ OK (backend accessible, ${report.items_retrievable ?? 0} items retrievable)`
      : `Status: ✗ FAILED (${summary(report)})`
  )
  // A detail quotes archive rows (a codec name, a row id): each line escaped whole, it stays one line and inert.
  return lines.map(Printable.escape).join("\n") + "\n"
}

/**
 * The original records each health check as a RESTORE_BATCH line (spec §10), when the configuration emits evidence
 * (`performance.emit_to_evidence`). Best effort: an unwritable evidence folder is already one of the report's failed
 * checks.
 */
export const record = (
  report: Report,
  config: { readonly evidence: ArchiveConfig["evidence"]; readonly performance: ArchiveConfig["performance"] }
): Effect.Effect<void> =>
  config.performance.emit_to_evidence
    ? Effect.flatMap(
      Evidence.make(config.evidence.dir, config.evidence),
      (evidence) => evidence.append(Evidence.healthCheck({ ok: report.ok, summary: summary(report) }))
    ).pipe(Effect.ignore)
    : Effect.void
