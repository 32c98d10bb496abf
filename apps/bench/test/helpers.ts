/** Temporary folders for tests, removed when the test process ends. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const made: Array<string> = []
process.on("exit", () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

export const tempDir = (prefix = "codex-bench-test-") => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}
