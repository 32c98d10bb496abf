#!/usr/bin/env bash
# The main job on the embedded SQLite default: archive a sample tree leaving stubs, restore it from the stubs,
# prove every byte came back, and show the evidence. Runs in .demo/ (a copy), so the repo stays untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
cli="$PWD/apps/cli/dist/codex.mjs"
codex() { node "$cli" "$@"; }
rm -rf .demo && mkdir -p .demo && cp -a examples/sample-tree .demo/tree && cd .demo
export CODEX_ACTOR=demo
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

step codex archive store acme/sample tree --write-stub --manifest-out restore.json --reason legacy
codex archive store acme/sample tree --write-stub --manifest-out restore.json --reason legacy --commit "$(git rev-parse HEAD 2>/dev/null || echo demo)" >store.json
node -e 'const r=require("./store.json"); console.log(`stored ${r.stored} files (${r.bytes} bytes, ${r.deduplicated} deduplicated)`)'
step cat tree/src/legacy/payments_v1.py "   # now a tombstone stub"
cat tree/src/legacy/payments_v1.py
step codex archive list --limit 3
codex archive list --limit 3
step codex archive batch-restore --stubs tree
codex archive batch-restore --stubs tree >batch.json
node -e 'const r=require("./batch.json"); console.log(`restored ${r.succeeded}/${r.total} (failed ${r.failed}) in ${r.duration_ms} ms; item p50 ${r.latency_ms.p50} ms, p95 ${r.latency_ms.p95} ms`)'
step diff -r ../examples/sample-tree tree
diff -r ../examples/sample-tree tree && echo "every file restored byte for byte"
step codex archive verify
codex archive verify >verify.json && node -e 'const r=require("./verify.json"); console.log(`verified ${r.ok}/${r.checked} artifacts, ${r.bytes} bytes re-hashed`)'
step tail -n 2 .codex/evidence/archive_ops.jsonl
tail -n 2 .codex/evidence/archive_ops.jsonl
