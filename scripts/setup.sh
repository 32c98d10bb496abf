#!/usr/bin/env bash
# One step from a fresh clone to a runnable tree: install the pinned dependencies, build the publishable packages
# (dist/ with .d.ts) and bundle the CLI and the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pnpm.sh install --frozen-lockfile --reporter=append-only | grep -v '^Progress' || true
test -d node_modules/.pnpm || { echo "setup: pnpm install failed" >&2; exit 1; }
bash scripts/pnpm.sh exec turbo run build bundle --output-logs=errors-only
bash scripts/python-interop.sh
