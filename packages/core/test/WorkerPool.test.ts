import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { WorkerPool } from "../src/index.js"

// A program that fails outside its own error handling: as a bug would, or a thread that dies.
const throwing: WorkerPool.Program<null, string, string> = () => (input) => {
  if (input === "boom") throw new Error(`cannot handle ${input}`)
  return { value: input.toUpperCase() }
}

describe("WorkerPool", () => {
  it.effect("in this thread, a program that throws fails the call with WorkerFailed, not a defect", () =>
    Effect.gen(function*() {
      const pool = WorkerPool.inThread(throwing, null)
      expect(yield* pool.run(0, "ok")).toBe("OK")
      const error = yield* Effect.flip(pool.run(0, "boom"))
      expect([error._tag, error.message]).toEqual(["WorkerFailed", "a file worker failed: cannot handle boom"])
    }))

  it.scoped("in a worker thread, a dead lane fails its calls with WorkerFailed, and every later call too", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make(throwing, null, 1)
      expect(yield* pool.run(0, "ok")).toBe("OK")
      const error = yield* Effect.flip(pool.run(0, "boom"))
      expect([error._tag, error.message]).toEqual(["WorkerFailed", "a file worker failed: cannot handle boom"])
      expect((yield* Effect.flip(pool.run(0, "ok")))._tag).toBe("WorkerFailed")
    }))

  it.scoped("runAll answers many messages over every lane in their order, and fails whole when a lane dies", () =>
    Effect.gen(function*() {
      const inputs = Array.from({ length: 301 }, (_, i) => `m${i}`)
      for (const pool of [WorkerPool.inThread(throwing, null), yield* WorkerPool.make(throwing, null, 3)]) {
        expect(yield* pool.runAll(inputs)).toEqual(inputs.map((m) => m.toUpperCase()))
        expect(yield* pool.runAll([])).toEqual([])
        const error = yield* Effect.flip(pool.runAll([...inputs.slice(0, 7), "boom", ...inputs.slice(7)]))
        expect([error._tag, error.message]).toEqual(["WorkerFailed", "a file worker failed: cannot handle boom"])
      }
    }))

  it("owned gives a view on a buffer of its own: a whole one as it is, a slice as a copy, its source untouched", () => {
    const whole = new Uint8Array([1, 2, 3])
    expect(WorkerPool.owned(whole)).toBe(whole)
    const source = Buffer.from([9, 8, 7, 6, 5])
    const slice = source.subarray(1, 4)
    const own = WorkerPool.owned(slice)
    expect([...own]).toEqual([8, 7, 6])
    expect([own.byteOffset, own.buffer.byteLength]).toEqual([0, 3])
    expect(WorkerPool.transferable([own, slice])).toEqual([own.buffer])
    own[0] = 0
    expect([...source]).toEqual([9, 8, 7, 6, 5])
  })
})
