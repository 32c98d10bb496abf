import { Measure } from "@codex-archive/conformance"
import { backend } from "./helpers.js"

Measure.measureSuite(backend)
