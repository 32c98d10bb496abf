/** The child process of the multi-process tests (bundled with esbuild by the suite). */
import * as Worker from "@codex-archive/conformance/Worker"
import { backend } from "./helpers.js"

Worker.main(backend)
