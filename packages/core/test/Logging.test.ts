import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Fiber, Logger } from "effect"
import * as Logging from "../src/Logging.js"
import { hostileUrls, leaksIn } from "./HostileUrls.js"

const secretUrl = "postgres://u:s3cr3t-pass@127.0.0.1:1/db"

/** Runs `effect` under `Logging.layer` and returns what it wrote to stderr (console.error), line by line. */
const capture = <A, E>(options: Logging.Options, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const current = yield* Effect.console
    const unsafe = {
      ...current.unsafe,
      error: (...args: ReadonlyArray<unknown>) => void lines.push(args.join(" ")),
      log: () => {
        throw new Error("the logger wrote to stdout")
      }
    }
    // Awaited in its own fiber: joining would merge the logger set back into the test fiber.
    const fiber = yield* Effect.fork(
      effect.pipe(Effect.ignore, Effect.provide(Logging.layer(options)), Effect.withConsole({ ...current, unsafe }))
    )
    yield* Fiber.await(fiber)
    return lines
  })

describe("Logging", () => {
  it.effect("text: [LEVEL] message -- sorted k=v fields from annotations", () =>
    Effect.gen(function*() {
      const lines = yield* capture(
        { level: "debug", format: "text" },
        Effect.logDebug("example").pipe(Effect.annotateLogs({ status: "OK", attempt: 2, detail: "two words" }))
      )
      expect(lines).toEqual(["[DEBUG] example -- attempt=2 detail=\"two words\" status=OK"])
    }))

  it.effect("text: a message holding line breaks (a hostile file name) stays on its one line", () =>
    Effect.gen(function*() {
      const lines = yield* capture(
        { level: "info", format: "text" },
        Effect.logWarning("skipped t/evil\ncodex: error: fake\r: symbolic link (not followed)")
      )
      expect(lines).toEqual(["[WARNING] skipped t/evil\\ncodex: error: fake\\r: symbolic link (not followed)"])
    }))

  it.effect("text: C1 controls, DEL, U+2028 and ESC in a message or an annotation are escaped; line breaks stay short", () =>
    Effect.gen(function*() {
      const lines = yield* capture(
        { level: "info", format: "text" },
        Effect.logWarning("skipped t/l\u009b2J\u009d0;T\u009cink\u007f\u2028\n").pipe(
          Effect.annotateLogs({ path: "x\u001b[2J\u0085" })
        )
      )
      expect(lines).toEqual([
        "[WARNING] skipped t/l\\u009b2J\\u009d0;T\\u009cink\\u007f\\u2028\\n -- path=x\\u001b[2J\\u0085"
      ])
    }))

  it.effect("json: C1 controls and U+2028 are escaped; the line is the same JSON", () =>
    Effect.gen(function*() {
      const message = "l\u009b2J\u2028\u007f"
      const lines = yield* capture({ level: "info", format: "json" }, Effect.logWarning(message))
      expect(lines[0]).not.toMatch(/[\u007f-\u009f\u2028\u2029]/)
      expect(JSON.parse(lines[0]!).message).toBe(message)
    }))

  it.effect("json: one line, sorted keys, component, upper-case level, UTC microsecond timestamp, extra", () =>
    Effect.gen(function*() {
      const lines = yield* capture(
        { level: "info", format: "json" },
        Effect.logWarning("hello").pipe(Effect.annotateLogs("tombstone", "abc"), Effect.withLogSpan("restore"))
      )
      expect(lines).toHaveLength(1)
      const record = JSON.parse(lines[0]!)
      expect(Object.keys(record)).toEqual(["component", "extra", "level", "message", "timestamp"])
      expect(record).toMatchObject({ component: "codex.archive", level: "WARNING", message: "hello" })
      expect(record.extra.tombstone).toBe("abc")
      expect(record.extra.restore).toMatch(/^\d+ms$/)
      expect(record.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    }))

  it.effect("the level filters: info drops debug, error keeps only errors", () =>
    Effect.gen(function*() {
      const all = Effect.all([Effect.logDebug("d"), Effect.logInfo("i"), Effect.logWarning("w"), Effect.logError("e")])
      expect(yield* capture({ level: "info", format: "text" }, all)).toEqual(["[INFO] i", "[WARNING] w", "[ERROR] e"])
      expect(yield* capture({ level: "error", format: "text" }, all)).toEqual(["[ERROR] e"])
      expect(yield* capture({ level: "debug", format: "text" }, all)).toHaveLength(4)
    }))

  it.effect("credentials are redacted in the message, every annotation, causes, and known secrets alone", () =>
    Effect.gen(function*() {
      const leaky = Effect.logError(`cannot connect to ${secretUrl}`, { url: secretUrl }).pipe(
        Effect.annotateLogs({ url: secretUrl, detail: "password s3cr3t-pass rejected", nested: { deep: [secretUrl] } }),
        Effect.zipRight(Effect.fail(new Error(`driver said ${secretUrl}`))),
        Effect.tapErrorCause(Effect.logError)
      )
      for (const format of ["text", "json"] as const) {
        const lines = yield* capture({ level: "debug", format, secrets: [secretUrl] }, leaky)
        expect(lines.length).toBe(2)
        const all = lines.join("\n")
        expect(all).not.toContain("s3cr3t-pass")
        expect(all).toContain("postgres://***@127.0.0.1:1/db")
      }
    }))

  it.effect("every hostile URL's password is redacted in messages and annotations, echoed alone or encoded", () =>
    Effect.gen(function*() {
      for (const row of hostileUrls) {
        const echoes = row.secrets.map((s) => `driver said '${s}' (${encodeURIComponent(s)})`).join("; ")
        const leaky = Effect.logError(`cannot connect to ${row.url}: ${echoes}`).pipe(
          Effect.annotateLogs({ url: row.url, detail: echoes })
        )
        for (const format of ["text", "json"] as const) {
          const lines = yield* capture({ level: "debug", format, secrets: [row.url] }, leaky)
          expect(leaksIn(lines.join("\n"), row), `${row.name} (${format})`).toEqual([])
        }
      }
    }))

  it.effect("make renders without a sink, so an embedder can route lines elsewhere", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const sink = Logger.map(Logging.make({ format: "text" }), (line) => void lines.push(line))
      yield* Effect.logInfo("routed").pipe(Effect.provide(Logger.replace(Logger.defaultLogger, sink)))
      expect(lines).toEqual(["[INFO] routed"])
    }))
})

describe("Logging.redacting (a host's own logger)", () => {
  it.effect("the host's logger never sees a hostile URL's secret: message, annotations, nested values and causes", () =>
    Effect.gen(function*() {
      for (const row of hostileUrls) {
        const seen: Array<string> = []
        const host = Logger.make(({ annotations, cause, message }) => {
          seen.push(JSON.stringify({ message, annotations: [...annotations] }), Cause.pretty(cause))
        })
        const logger = Logging.redacting(host, { secrets: [row.url] })
        yield* Effect.logError(`cannot open ${row.url}`, { url: row.url }).pipe(
          Effect.annotateLogs({ url: row.url, nested: { list: [row.url] } }),
          Effect.zipRight(Effect.logWarning("failed", Cause.fail(new Error(`connect ${row.url}`)))),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        expect(seen.length, row.name).toBe(4)
        expect(leaksIn(seen.join("\n"), row), row.name).toEqual([])
      }
    }))

  it.effect("a secret given alone (not in a URL) is scrubbed too, and text without secrets passes unchanged", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const logger = Logging.redacting(Logger.make(({ message }) => void seen.push(message)), { secrets: [secretUrl] })
      yield* Effect.log("token s3cr3t-pass and plain words").pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      expect(JSON.stringify(seen)).not.toContain("s3cr3t-pass")
      expect(JSON.stringify(seen)).toContain("plain words")
    }))
})
