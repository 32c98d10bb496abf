/** The command tree: `codex archive <command>`, as the original tool's users type it. Exported for tests. */
import { Command } from "@effect/cli"
import * as BatchRestore from "./commands/BatchRestore.js"
import * as ConfigShow from "./commands/ConfigShow.js"
import * as Evidence from "./commands/Evidence.js"
import * as Gc from "./commands/Gc.js"
import * as HealthCheck from "./commands/HealthCheck.js"
import * as Init from "./commands/Init.js"
import * as List from "./commands/List.js"
import * as Purge from "./commands/Purge.js"
import * as PruneRequest from "./commands/PruneRequest.js"
import * as Restore from "./commands/Restore.js"
import * as Schema from "./commands/Schema.js"
import * as Show from "./commands/Show.js"
import * as Store from "./commands/Store.js"
import * as Verify from "./commands/Verify.js"

export const version = "0.1.0"

const archive = Command.make("archive").pipe(
  Command.withDescription("Archive files into SQL with tombstone stubs and an evidence log; restore them verified"),
  Command.withSubcommands([
    Init.command,
    Schema.command,
    Store.command,
    List.command,
    Show.command,
    Restore.command,
    BatchRestore.command,
    Verify.command,
    PruneRequest.command,
    Purge.command,
    Gc.command,
    HealthCheck.command,
    ConfigShow.command,
    Evidence.command
  ])
)

export const codex = Command.make("codex").pipe(Command.withSubcommands([archive]))

export const run = Command.run(codex, { name: "codex", version })
