/** The test kit (`@codex-archive/core/testing`): an in-memory archive store and the services a host program uses. */
export * as InMemoryArchive from "./InMemoryArchive.js"
