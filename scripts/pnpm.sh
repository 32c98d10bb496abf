#!/usr/bin/env bash
# Runs the pinned pnpm without needing it installed globally; native addons build against the system Node headers.
set -euo pipefail
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "12.4.2" ]; then
  exec pnpm "$@"
fi
exec npx -y pnpm@12.4.2 "$@"
