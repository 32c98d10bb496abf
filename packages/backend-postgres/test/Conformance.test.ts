import { Conformance } from "@codex-archive/conformance"
import { backend } from "./helpers.js"

Conformance.suite(backend)
