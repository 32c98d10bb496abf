export * as Conformance from "./Conformance.js"
