#!/usr/bin/env bash
# Gives Debian's python3 the modules the interop suite's stand-in for the original tool needs (zstd, PostgreSQL and
# MariaDB drivers).
# A fast no-op when they import already; apt only when something is missing (PyPI is not reachable here).
set -euo pipefail
py=/usr/bin/python3
want=()
"$py" -c "import zstandard" 2>/dev/null || want+=(python3-zstandard)
"$py" -c "import psycopg2" 2>/dev/null || want+=(python3-psycopg2)
"$py" -c "import pymysql" 2>/dev/null || want+=(python3-pymysql)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: the interop suite needs ${want[*]} for $py (install them with apt-get as root)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1 ||
    echo "setup: could not install ${want[*]} with apt-get; the interop suite will fail until they are installed" >&2
fi
