import { InMemoryArchive } from "@codex-archive/core/testing"
import { Conformance, Fixtures } from "../src/index.js"

// The test kit's store runs the suite every SQL backend runs, so it cannot drift from them.
Conformance.suite(Fixtures.storeOnly({ name: "memory", fresh: InMemoryArchive.fresh, layer: InMemoryArchive.layerAt }))
