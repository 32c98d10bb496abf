// Vitest global setup: a test run's temporary files go under one folder of its own (TMPDIR, inherited by the test
// workers and the processes they start), removed when the run ends, so no test can leave litter in the system's /tmp.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export default function setup() {
  const previous = process.env.TMPDIR
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-tests-"))
  // As open as /tmp: a test's PostgreSQL cluster, run as the postgres user, makes its folders here too.
  fs.chmodSync(dir, 0o1777)
  process.env.TMPDIR = dir
  return () => {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
