/**
 * The retry policy (spec §6) as one `Schedule`, and the single place that decides which failures are transient.
 * It wraps database calls only (each port method, once), so retries never nest.
 */
import { Context, Duration, Effect, Layer, Metric, Random, Schedule } from "effect"
import type { ArchiveConfig } from "./Config.js"
import type { TransientCodes } from "./Dialect.js"
import * as Metrics from "./Metrics.js"
import * as Redact from "./Redact.js"

export type RetrySettings = ArchiveConfig["retry"]

/** Delay after the n-th failure (1-based) before jitter: min(initial × multiplier^(n−1), max). */
export const baseDelay = (settings: RetrySettings, n: number): number =>
  Math.min(settings.initial_delay * Math.pow(settings.multiplier, n - 1), settings.max_delay)

/**
 * `Schedule.exponential` bounded by `max_attempts`, capped at `max_delay`, ±`jitter` around it. Jitter never lifts a
 * delay above `max_delay` (the original could, spec §12.13). A seed gives every run the same delays. `onRetry` sees
 * each retry that will really happen (attempt number, delay), never the final give-up.
 */
export const schedule = (
  settings: RetrySettings,
  onRetry: (attempt: number, delayMs: number) => Effect.Effect<void> = () => Effect.void
): Schedule.Schedule<number, unknown> => {
  // A generator of our own: `Random.next` reads the fiber's default services, so providing Random would not seed it.
  const seeded = settings.seed === null ? undefined : Random.make(settings.seed)
  return Schedule.intersect(
    Schedule.exponential(Duration.seconds(settings.initial_delay), settings.multiplier),
    Schedule.recurs(Math.max(0, settings.max_attempts - 1))
  ).pipe(
    Schedule.modifyDelayEffect(([, n], delay) =>
      Effect.gen(function*() {
        const capped = Math.min(Duration.toMillis(delay), settings.max_delay * 1000)
        const spread = capped * settings.jitter
        const jittered = spread > 0
          ? Math.max(
            0,
            Math.min(settings.max_delay * 1000, capped - spread + (yield* (seeded ?? Random).next) * 2 * spread)
          )
          : capped
        yield* onRetry(n + 1, jittered)
        return Duration.millis(jittered)
      })
    ),
    Schedule.map(([, n]) => n)
  )
}

/** A failure that knows whether trying again can help. Backends set `transient` through `classify`. */
export interface Classified {
  readonly transient: boolean
}

const isClassified = (u: unknown): u is Classified =>
  typeof u === "object" && u !== null && "transient" in u && typeof (u as Classified).transient === "boolean"

/** Passing faults of the network and of Node itself, whatever the driver; each `Dialect` adds its driver's codes. */
const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN"
])
const transientMessages = [
  /connection terminated/i,
  /connection (was )?(refused|reset|lost|closed)/i,
  /server closed the connection/i,
  /terminating connection/i,
  /the database system is (starting up|shutting down)/i,
  /database is locked/i,
  /timeout/i,
  /timed out/i,
  /Can't add new command when connection is in closed state/i,
  /socket hang up/i,
  /Client has encountered a connection error/i
]
const noDriver: TransientCodes = { codes: new Set(), errnos: new Set() }

/** Walks an error and its causes for a network or driver code, errno or message that marks a passing fault. */
export const isTransientCause = (error: unknown, driver: TransientCodes = noDriver, depth = 0): boolean => {
  if (error === null || error === undefined || depth > 6) return false
  if (typeof error !== "object") return false
  const e = error as { code?: unknown; errno?: unknown; message?: unknown; cause?: unknown }
  if (typeof e.code === "string" && (networkCodes.has(e.code) || driver.codes.has(e.code))) return true
  if (typeof e.errno === "number" && driver.errnos.has(e.errno)) return true
  if (typeof e.message === "string" && transientMessages.some((re) => re.test(e.message as string))) return true
  return isTransientCause(e.cause, driver, depth + 1)
}

/** A classifier for `RetryPolicy.retry` that knows one driver's codes. */
export const classifier = (driver: TransientCodes) => (error: unknown): boolean =>
  isClassified(error) ? error.transient : isTransientCause(error, driver)

export const isTransient = (
  error: unknown
): boolean => (isClassified(error) ? error.transient : isTransientCause(error))

/** The configured policy as a service, so every backend call is retried the same way. */
export class RetryPolicy extends Context.Tag("@codex-archive/core/RetryPolicy")<RetryPolicy, {
  readonly settings: RetrySettings
  /** Retries `effect` while `classify` (by default: network faults, and errors that say so) calls it transient. */
  readonly retry: <A, E, R>(
    operation: string,
    effect: Effect.Effect<A, E, R>,
    classify?: (error: unknown) => boolean
  ) => Effect.Effect<A, E, R>
}>() {}

export const make = (settings: RetrySettings): Context.Tag.Service<RetryPolicy> => ({
  settings,
  retry: (operation, effect, classify = isTransient) =>
    !settings.enabled ? effect : Effect.suspend(() => {
      let cause: unknown
      // tapInput is outermost, so `cause` is set before the inner schedule decides; a permanent error logs nothing.
      const policy = schedule(settings, (attempt, delayMs) =>
        !classify(cause) ? Effect.void : Effect.logWarning(`retrying ${operation} after a transient failure`).pipe(
          Effect.annotateLogs({
            operation,
            attempt,
            delay_ms: Math.round(delayMs),
            cause: Redact.text(describe(cause))
          }),
          Effect.zipRight(Metric.increment(Metric.tagged(Metrics.retries, "operation", operation)))
        )).pipe(
          Schedule.whileInput(classify),
          Schedule.tapInput((e) =>
            Effect.sync(() =>
              void (cause = e)
            )
          )
        )
      return Effect.retry(effect, policy)
    })
})

export const layer = (settings: RetrySettings): Layer.Layer<RetryPolicy> => Layer.succeed(RetryPolicy, make(settings))

/** The configuration's defaults (`[retry]`): five attempts, backing off from 1 to 32 (×2), 10% jitter. */
export const defaults: RetrySettings = {
  enabled: true,
  max_attempts: 5,
  initial_delay: 1,
  max_delay: 32,
  multiplier: 2,
  jitter: 0.1,
  seed: null
}

/** No retries: for tests and tools that want faults to surface at once. */
export const none: Layer.Layer<RetryPolicy> = layer({
  enabled: false,
  max_attempts: 1,
  initial_delay: 0,
  max_delay: 0,
  multiplier: 1,
  jitter: 0,
  seed: null
})

/** The error and its causes in one line (`Failed to execute statement: database is locked [SQLITE_BUSY]`). */
const describe = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (typeof current !== "object") {
      parts.push(String(current))
      break
    }
    const e = current as { message?: unknown; code?: unknown; _tag?: unknown; cause?: unknown }
    const text = typeof e.message === "string" && e.message !== ""
      ? e.message
      : typeof e._tag === "string"
      ? e._tag
      : ""
    const code = typeof e.code === "string" || typeof e.code === "number" ? ` [${e.code}]` : ""
    if (text !== "" && !parts.includes(text + code)) parts.push(text + code)
    current = e.cause
  }
  return parts.join(": ") || String(error)
}
