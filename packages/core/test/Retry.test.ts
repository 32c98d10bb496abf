import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, HashMap, Logger, Metric, TestClock } from "effect"
import * as ArchiveStore from "../src/ArchiveStore.js"
import * as Metrics from "../src/Metrics.js"
import * as Retry from "../src/Retry.js"

const settings = (over: Partial<Retry.RetrySettings> = {}): Retry.RetrySettings => ({
  enabled: true,
  max_attempts: 5,
  initial_delay: 1,
  max_delay: 4,
  multiplier: 2,
  jitter: 0,
  seed: null,
  ...over
})

/** A driver-like fault: better-sqlite3's SqliteError carries `code`, wrapped by @effect/sql as `cause`. */
const busy = () => ({
  _tag: "SqlError",
  message: "Failed to execute statement",
  cause: { name: "SqliteError", code: "SQLITE_BUSY", message: "database is locked" }
})

/** An operation that fails `failures` times with `error`, recording the (test) clock at each attempt. */
const flaky = <E>(failures: number, error: () => E) => {
  const attempts: Array<number> = []
  const effect = Effect.gen(function*() {
    attempts.push(yield* Clock.currentTimeMillis)
    if (attempts.length <= failures) return yield* Effect.fail(error())
    return "done"
  })
  return { attempts, effect }
}

/** Runs `effect` forked and moves the TestClock until it finishes. */
const onTestClock = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Effect.exit(effect))
    for (let i = 0; i < 100 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("500 millis")
    return yield* Fiber.join(fiber)
  })

/** The delays a schedule asks for between attempts, as the retry logs them. */
const delaysOf = (s: Retry.RetrySettings) =>
  Effect.gen(function*() {
    const delays: Array<number> = []
    const { effect } = flaky(Infinity, busy)
    yield* onTestClock(Effect.retry(effect, Retry.schedule(s, (_, ms) => Effect.sync(() => void delays.push(ms)))))
    return delays
  })

const collectLogs = () => {
  const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
  const logger = Logger.make(({ annotations, message }) =>
    void lines.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
  )
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("Retry", () => {
  it.effect("initial 1 s, ×2, max 4 s, no jitter: attempts at 0, 1, 3, 7, 11 s (delays 1, 2, 4, 4)", () =>
    Effect.gen(function*() {
      const { attempts, effect } = flaky(Infinity, busy)
      const exit = yield* onTestClock(Retry.make(settings()).retry("fetch", effect))
      expect(exit._tag).toBe("Failure")
      expect(attempts).toEqual([0, 1000, 3000, 7000, 11000])
      expect(yield* delaysOf(settings())).toEqual([1000, 2000, 4000, 4000])
      expect([1, 2, 3, 4].map((n) => Retry.baseDelay(settings(), n))).toEqual([1, 2, 4, 4])
    }))

  it.effect("succeeds as soon as the fault passes, after exactly the needed retries", () =>
    Effect.gen(function*() {
      const { attempts, effect } = flaky(2, busy)
      const exit = yield* onTestClock(Retry.make(settings()).retry("fetch", effect))
      expect(exit).toMatchObject({ _tag: "Success", value: "done" })
      expect(attempts).toEqual([0, 1000, 3000])
    }))

  it.effect("the same seed gives the same jittered delays, within ±jitter and never above max_delay", () =>
    Effect.gen(function*() {
      const jittered = settings({ jitter: 0.5, seed: 42, max_attempts: 6 })
      const first = yield* delaysOf(jittered)
      expect(first).toHaveLength(5)
      expect(yield* delaysOf(jittered)).toEqual(first)
      expect(yield* delaysOf({ ...jittered, seed: 43 })).not.toEqual(first)
      first.forEach((ms, i) => {
        const base = Retry.baseDelay(jittered, i + 1) * 1000
        expect(ms).toBeGreaterThanOrEqual(base * 0.5)
        expect(ms).toBeLessThanOrEqual(Math.min(base * 1.5, 4000))
      })
    }))

  it.effect("a permanent error fails at once: one attempt, nothing logged, nothing counted", () =>
    Effect.gen(function*() {
      const { lines, layer } = collectLogs()
      const counter = Metric.tagged(Metrics.retries, "operation", "permanent-op")
      const { attempts, effect } = flaky(Infinity, () => new Error("SQLITE_ERROR: no such table: artifact"))
      const exit = yield* onTestClock(Retry.make(settings()).retry("permanent-op", effect).pipe(Effect.provide(layer)))
      expect(exit._tag).toBe("Failure")
      expect(attempts).toEqual([0])
      expect(lines).toEqual([])
      expect((yield* Metric.value(counter)).count).toBe(0)
    }))

  it.effect("an archive that is not one fails at once, though its URL says 'timeout' (?connectTimeout=5000)", () =>
    Effect.gen(function*() {
      const { lines, layer } = collectLogs()
      const { attempts, effect } = flaky(Infinity, () =>
        new ArchiveStore.NotAnArchive({
          location: "mysql://***@127.0.0.1:3306/test?connectTimeout=5000",
          detail: "is a database but not a codex archive (no item/artifact tables)"
        }))
      const exit = yield* onTestClock(Retry.make(settings()).retry("open", effect).pipe(Effect.provide(layer)))
      expect(exit._tag).toBe("Failure")
      expect(attempts).toEqual([0])
      expect(lines).toEqual([])
    }))

  it.effect("a disabled policy makes exactly one attempt, even for a transient error", () =>
    Effect.gen(function*() {
      const { attempts, effect } = flaky(Infinity, busy)
      const exit = yield* onTestClock(Retry.make(settings({ enabled: false })).retry("fetch", effect))
      expect(exit._tag).toBe("Failure")
      expect(attempts).toEqual([0])
      const none = yield* Retry.RetryPolicy.pipe(Effect.provide(Retry.none))
      const again = flaky(Infinity, busy)
      yield* onTestClock(none.retry("fetch", again.effect))
      expect(again.attempts).toHaveLength(1)
    }))

  it.effect("max_attempts bounds the attempts; each retry is logged with attempt, delay and cause, and counted", () =>
    Effect.gen(function*() {
      const { lines, layer } = collectLogs()
      const counter = Metric.tagged(Metrics.retries, "operation", "logged-op")
      const { attempts, effect } = flaky(Infinity, busy)
      yield* onTestClock(
        Retry.make(settings({ max_attempts: 3 })).retry("logged-op", effect).pipe(Effect.provide(layer))
      )
      expect(attempts).toHaveLength(3)
      expect(lines.map((l) => l.annotations)).toEqual([
        {
          operation: "logged-op",
          attempt: 1,
          delay_ms: 1000,
          cause: "Failed to execute statement: database is locked [SQLITE_BUSY]"
        },
        {
          operation: "logged-op",
          attempt: 2,
          delay_ms: 2000,
          cause: "Failed to execute statement: database is locked [SQLITE_BUSY]"
        }
      ])
      expect(lines[0]!.message).toEqual(["retrying logged-op after a transient failure"])
      expect((yield* Metric.value(counter)).count).toBe(2)
    }))

  describe("classification", () => {
    const transient: ReadonlyArray<readonly [string, unknown]> = [
      ["SQLite busy (nested as the SqlError cause)", busy()],
      ["connection refused", { code: "ECONNREFUSED" }],
      ["connection reset", { cause: { cause: { code: "ECONNRESET" } } }],
      ["a timeout message", new Error("Connection timed out")],
      ["a store error that says so", { transient: true, message: "anything" }]
    ]
    const permanent: ReadonlyArray<readonly [string, unknown]> = [
      ["no such table", { code: "SQLITE_ERROR", message: "no such table: artifact" }],
      ["a syntax error", { code: "42601", message: "syntax error at or near" }],
      ["a duplicate key", { code: "ER_DUP_ENTRY", errno: 1062 }],
      ["a store error that says it is permanent", { transient: false, message: "database is locked" }],
      ["a plain value", "oops"],
      ["nothing", undefined]
    ]
    // Each driver's own codes are in its backend's Dialect, tested there (`*Dialect.test.ts`).
    for (const [name, error] of transient) it(`transient: ${name}`, () => expect(Retry.isTransient(error)).toBe(true))
    const driver = Retry.classifier({ codes: new Set(["DRIVER_BUSY"]), errnos: new Set([4242]) })
    it("a classifier adds a driver's codes and errnos, nested or not, and still honours a store error's say", () => {
      expect(driver({ cause: { code: "DRIVER_BUSY" } })).toBe(true)
      expect(driver({ errno: 4242 })).toBe(true)
      expect(driver({ code: "ECONNRESET" })).toBe(true)
      expect(driver({ code: "DRIVER_BUSY", transient: false })).toBe(false)
      expect(Retry.isTransient({ code: "DRIVER_BUSY" })).toBe(false)
    })
    for (const [name, error] of permanent) it(`permanent: ${name}`, () => expect(Retry.isTransient(error)).toBe(false))
  })
})
