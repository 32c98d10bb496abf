#!/usr/bin/env node
// Starts the CLI bundle through V8's code cache. Compiling the ~800 KB bundle costs ~100 ms at every start; the
// cached code, written beside the bundle after the first run (and again whenever V8 rejects it, e.g. after a rebuild
// or a Node upgrade), skips most of that. Node 22's module.enableCompileCache does this natively; Node 20 cannot.
import * as fs from "node:fs"
import Module, { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"

// A batch restore's and a store's V8 settings, set before anything is allocated or compiled; other commands keep V8's
// defaults.
const batchRestore = process.argv.includes("batch-restore")
const store = !batchRestore && process.argv[process.argv.indexOf("archive") + 1] === "store"
if (store) {
  // The same heap bounds: since a store's small files stopped costing a fiber each (Packer.hashPackAll), they cost no
  // time: 100,000 files on tmpfs peaked at 209 MiB instead of 260-265, in 20.7-20.9 s against 19.1-22.9 s (into
  // PostgreSQL 222 instead of 286 MiB, no slower; MariaDB 232 instead of 312 MiB, 7% slower).
  v8.setFlagsFromString("--heap-growing-percent=50")
  v8.setFlagsFromString("--semi-space-growth-factor=1")
  // As for a batch restore below: a store's many collections flushed the start-up code's bytecode, so the cache a
  // large first store wrote lacked it and every later store compiled it again, 20 MiB higher.
  v8.setFlagsFromString("--no-flush-bytecode")
}
if (batchRestore) {
  // Heap bounds (RestoreWriter.heapFlags in the core says why): set later, the young generation has already grown.
  v8.setFlagsFromString("--heap-growing-percent=50")
  v8.setFlagsFromString("--semi-space-growth-factor=1")
  // 8x V8's interrupt budget: only code that stays hot is optimized. TurboFan compiling every warm function of the
  // main thread took ~0.5 s of CPU from the workers on two cores: the large corpus's batch took 2.44 s instead of 2.59
  // and peaked 8 MiB lower (6 rounds); a store, whose per-file code needs optimizing early, got slower (8.21 vs 8.02 s).
  v8.setFlagsFromString("--interrupt-budget=540672")
  // Restore workers expose V8's collector to free their read buffers (RestoreWriter), a flag of the whole process: set
  // here, before the bundle is compiled, the code cache written at exit is made under the flags the next start has.
  v8.setFlagsFromString("--expose-gc")
  // Keep every compiled function's bytecode: a large batch's many collections flushed the start-up code's, so the
  // cache written at exit lacked it and every later start compiled it again (2.25 vs 2.18 s, and 17 MiB more).
  v8.setFlagsFromString("--no-flush-bytecode")
}

const dir = path.dirname(fileURLToPath(import.meta.url))
const file = path.join(dir, "codex.cjs")
// V8 rejects code cached under other flags: batch restores and stores get a cache each, or every switch between them
// and another command would compile the whole bundle again and rewrite the cache.
const flavour = batchRestore ? ".batch-restore" : store ? ".store" : ""
const cacheFile = path.join(dir, `.codex.cjs.${process.version}${flavour}.v8cache`)

let cachedData
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {
  // first run, or an unwritable folder: compile normally
}
const script = new vm.Script(Module.wrap(fs.readFileSync(file, "utf8")), { filename: file, cachedData })
if (cachedData === undefined || script.cachedDataRejected) {
  // At exit the cache also holds every function this run compiled lazily, not just the top level.
  process.once("exit", () => {
    try {
      const temp = `${cacheFile}.${process.pid}.tmp`
      fs.writeFileSync(temp, script.createCachedData())
      fs.renameSync(temp, cacheFile)
    } catch {
      // a cache is an optimisation only
    }
  })
}
const mod = new Module(file)
mod.filename = file
mod.paths = Module._nodeModulePaths(dir)
script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dir)
