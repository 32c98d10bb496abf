/**
 * Two or three real command lines per command, shown under EXAMPLES in its help. Kept here, one place, keyed by the
 * command's path under `codex archive`; test/Help.test.ts parses every line with the real command tree.
 */

export interface Example {
  /** What the line does, in a few words. */
  readonly title: string
  /** The whole command line, as typed (double quotes group words, as in a shell). */
  readonly line: string
}

const id = "3f2c1a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"
const id2 = "7a9d04b2-51c3-4e8f-a6d1-0c9b8e7f6a5d"

export const examples: Readonly<Record<string, ReadonlyArray<Example>>> = {
  init: [
    {
      title: "Create the archive named by the configuration (.codex/archive.sqlite by default)",
      line: "codex archive init"
    },
    {
      title: "Create the tables in a PostgreSQL database",
      line: "codex archive init --url postgres://archiver@db.internal:5432/codex"
    }
  ],
  schema: [
    { title: "Print the DDL of the configured backend", line: "codex archive schema" },
    { title: "Print the PostgreSQL DDL, for a DBA to review", line: "codex archive schema --dialect postgres" },
    { title: "Print the MariaDB / MySQL DDL", line: "codex archive schema --dialect mariadb" }
  ],
  store: [
    {
      title: "Archive one file, with why, a tag and a ticket",
      line:
        "codex archive store acme/shop src/legacy/payments_v1.py --reason replaced --tag payments --metadata ticket=OPS-42"
    },
    {
      title: "Archive a folder, leave stubs in place and write a restore manifest",
      line: "codex archive store acme/shop docs/old --kind doc --write-stub --manifest-out restore.json"
    },
    {
      title: "Archive an asset outside git, under legal hold",
      line: "codex archive store acme/shop assets/old-logo.png --kind asset --commit 4e1f0c2 --metadata legal_hold=true"
    }
  ],
  list: [
    { title: "The 50 newest archived items", line: "codex archive list" },
    {
      title: "One repository's items since the start of the year",
      line: "codex archive list --repo acme/shop --since 2026-01-01T00:00:00Z --limit 20"
    }
  ],
  show: [
    { title: "One item with its history", line: `codex archive show ${id}` },
    {
      title: "The same, from a shared archive",
      line: `codex archive show ${id} --url sqlite:///srv/codex/archive.sqlite`
    }
  ],
  restore: [
    { title: "Restore a file to a new place", line: `codex archive restore ${id} restored/payments_v1.py` },
    { title: "Turn a stub back into its file, in place", line: "codex archive restore src/legacy/payments_v1.py" },
    {
      title: "Restore to the recorded path under a checkout; print timings",
      line: `codex archive restore ${id} --root checkout --json`
    }
  ],
  "batch-restore": [
    {
      title: "Restore a manifest, 8 at a time, recording results",
      line: "codex archive batch-restore restore.json --concurrency 8 --results results.json"
    },
    {
      title: "Check that every stub under a folder can be restored, writing nothing",
      line: "codex archive batch-restore --stubs src --dry-run"
    },
    {
      title: "Finish an interrupted run",
      line: "codex archive batch-restore restore.json --resume results.json --results results.json"
    }
  ],
  verify: [
    { title: "Re-hash one item's stored content", line: `codex archive verify ${id}` },
    { title: "Re-hash several", line: `codex archive verify ${id} ${id2}` }
  ],
  "prune-request": [
    {
      title: "Ask for an item's payload to be purged",
      line: `codex archive prune-request ${id} --by alice --reason "superseded by v2"`
    },
    {
      title: "The same, the actor taken from $CODEX_ACTOR",
      line: `codex archive prune-request ${id} --reason "retention expired"`
    }
  ],
  purge: [
    {
      title: "Approve a purge as a second person (nothing deleted yet)",
      line: `codex archive purge ${id} --by bob --second carol --reason "retention expired"`
    },
    {
      title: "Approve and scrub the payload",
      line: `codex archive purge ${id} --by bob --second carol --reason "retention expired" --apply`
    }
  ],
  gc: [
    {
      title: "Count the chunk rows no artifact claims (left by another tool's purge), removing nothing",
      line: "codex archive gc --dry-run"
    },
    { title: "Remove them, recording who did it", line: "codex archive gc --by alice" }
  ],
  "health-check": [
    { title: "Check the configured archive", line: "codex archive health-check" },
    {
      title: "Check a PostgreSQL archive, as JSON for monitoring",
      line: "codex archive health-check --url postgres://archiver@db.internal/codex --json"
    }
  ],
  "config-show": [
    { title: "The configuration in effect (credentials redacted)", line: "codex archive config-show" },
    { title: "Where each value came from (default, file:line, env, flag)", line: "codex archive config-show --origin" }
  ],
  "evidence verify": [
    { title: "Check the configured evidence log's chain", line: "codex archive evidence verify" },
    { title: "Check a copied log, as JSON", line: "codex archive evidence verify backup/archive_ops.jsonl --json" },
    { title: "Check a keyed chain's MACs too", line: "codex archive evidence verify --key-file evidence.key" }
  ]
}

/** The examples of a command by its path under `codex archive` (`restore`, `evidence verify`); none for a group. */
export const of = (command: string): ReadonlyArray<Example> => examples[command] ?? []

/** A command line's words, as a shell splits them (double or single quotes group words; no other expansion). */
export const words = (line: string): Array<string> =>
  [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!)
