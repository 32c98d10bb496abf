/**
 * The CLI tests run the CLI with spawnSync, which blocks this worker's event loop, and vitest moves from test to test
 * on microtasks alone: a file of synchronous tests (the interop suite: ~70 s) blocked it past vitest's 60 s RPC
 * timeout and failed a run whose tests all passed. A macrotask turn after each test lets the worker answer.
 */
import { afterEach } from "vitest"

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)))
