/**
 * Turns of the event loop for long synchronous work (SQLite calls, file work, a manifest's check): without them a
 * Ctrl-C, a timer or an I/O callback waits for the whole of it.
 */
import { Effect } from "effect"

/** A macrotask turn (`setImmediate`): signals, timers and I/O callbacks run before the fiber goes on. */
export const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * Runs a synchronous job in slices: the job yields where it may pause, and each pause is a turn of the event loop,
 * where a signal is seen and the fiber can be interrupted. An interrupted job's generator is closed, so its `finally`
 * blocks (a temporary file) run. What the job throws is failed with `onError`'s error.
 */
export const sliced = <A, E>(job: () => Generator<void, A>, onError: (e: unknown) => E): Effect.Effect<A, E> =>
  Effect.acquireUseRelease(
    Effect.sync(job),
    (slices) =>
      Effect.gen(function*() {
        for (;;) {
          const step = yield* Effect.try({ try: () => slices.next(), catch: onError })
          if (step.done === true) return step.value
          yield* turn
        }
      }),
    (slices) => Effect.sync(() => void slices.return(undefined as never))
  )
