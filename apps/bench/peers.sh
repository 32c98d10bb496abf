#!/usr/bin/env bash
# The CLI against its peers on one corpus, in the same run: `codex archive store` vs `restic init + backup`, and
# `codex archive batch-restore` vs `tar -xf` and `restic restore`. Each round runs every tool once, in a rotated
# order, so drift on a shared machine hits them all alike. Prints one line per measurement (wall s, peak RSS MiB)
# and the medians. Every restore is checked against the corpus (`diff -r`), outside the timing.
#
#   apps/bench/peers.sh [CORPUS_DIR] [ROUNDS]
#   CODEX_PEERS_BACKENDS="sqlite postgres mariadb" apps/bench/peers.sh     # servers too (a fresh database per round)
#
# CORPUS_DIR defaults to the bench's cached large corpus (in the bench's cache, `$TMPDIR/codex-bench-corpus`):
# `node apps/bench/dist/bench.mjs --corpus large --scenarios store --runs 1 --warmup 0` writes it.
# The servers are the bench's (CODEX_BENCH_PG_URL, CODEX_BENCH_MARIADB_URL, with or without a database: each round
# creates and drops its own, codex_peers_*, also when the run fails).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cli="$here/../cli/dist/codex.mjs"
rounds="${2:-3}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "peers: ROUNDS '$rounds': expected a whole number >= 1" >&2; exit 2; }
corpus_dir="${1:-${TMPDIR:-/tmp}/codex-bench-corpus/10000-files-seed-42-v1}"
[ -d "$corpus_dir" ] || { echo "peers: corpus $corpus_dir: no such folder (see the comment at the top)" >&2; exit 2; }
corpus="$(cd "$corpus_dir" && pwd)"
backends="${CODEX_PEERS_BACKENDS:-sqlite}"
# scheme://user@host:port, whatever database or query the URL names: the rounds' databases go on that server.
server_of() { local rest="${1#*://}"; echo "${1%%://*}://${rest%%[/?]*}"; }
pg="$(server_of "${CODEX_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}")"
my="$(server_of "${CODEX_BENCH_MARIADB_URL:-mysql://root@127.0.0.1:3306}")"
my_at="${my#*://}"; my_user="${my_at%@*}"; my_user="${my_user%%:*}"; my_hostport="${my_at#*@}"
my_host="${my_hostport%:*}"; my_port="${my_hostport##*:}"; [ "$my_port" = "$my_hostport" ] && my_port=3306
for tool in tar restic /usr/bin/time; do command -v "$tool" >/dev/null || { echo "peers: $tool is not installed (apt-get install restic time)" >&2; exit 2; }; done
[ -f "$cli" ] || { echo "peers: $cli is missing (run npm run setup)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/codex-peers.XXXXXX")"
created=()
cleanup() {
  for db in "${created[@]}"; do drop_db "${db%% *}" "${db#* }" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export RESTIC_PASSWORD=peers CODEX_ACTOR=peers CODEX_ARCHIVE_LOG_LEVEL=warning PGOPTIONS="--client-min-messages=warning"
cp -a "$corpus" "$work/corpus"
tar -C "$work" -cf "$work/corpus.tar" corpus
printf 'corpus %s: %s files, %s MiB\n' "$corpus" "$(find "$work/corpus" -type f | wc -l)" "$(du -sm --apparent-size "$corpus" | cut -f1)" >&2

results="$work/results.tsv"
# measure LABEL CMD...: runs CMD in $work with the page cache of earlier outputs synced, appends "label secs rss".
measure() {
  local label="$1"; shift
  sync
  (cd "$work" && /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out.log" 2>"$work/err.log") ||
    { echo "peers: $label failed:" >&2; tail -5 "$work/err.log" >&2; exit 1; }
  read -r secs kb <"$work/time"
  printf '%s\t%s\t%s\n' "$label" "$secs" "$((kb / 1024))" | tee -a "$results" >&2
}
check() { diff -r "$corpus" "$1" >/dev/null || { echo "peers: $2 restored different bytes" >&2; exit 1; }; }
url_for() {
  case "$1" in
    sqlite) echo "sqlite:///$work/archive-$2.db" ;;
    postgres) echo "$pg/codex_peers_$2" ;;
    mariadb) echo "$my/codex_peers_$2" ;;
  esac
}
my_sql() { mariadb -h "$my_host" -P "$my_port" -u "$my_user" -e "$1"; }
create_db() {
  case "$1" in
    postgres) psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS codex_peers_$2" -c "CREATE DATABASE codex_peers_$2" ;;
    mariadb) my_sql "DROP DATABASE IF EXISTS codex_peers_$2; CREATE DATABASE codex_peers_$2" ;;
    *) : ;;
  esac
  created+=("$1 $2")
}
drop_db() {
  case "$1" in
    postgres) psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS codex_peers_$2" ;;
    mariadb) my_sql "DROP DATABASE IF EXISTS codex_peers_$2" ;;
    *) rm -f "$work/archive-$2.db"* ;;
  esac
}

run_tar() { rm -rf "$work/out-tar"; mkdir "$work/out-tar"; measure "restore tar -xf" tar -C "$work/out-tar" -xf "$work/corpus.tar"; check "$work/out-tar/corpus" tar; rm -rf "$work/out-tar"; }
run_restic() {
  rm -rf "$work/restic" "$work/out-restic"
  measure "store restic init+backup" sh -c 'restic -q -r restic init && restic -q -r restic backup corpus/'
  measure "restore restic" restic -q -r "$work/restic" restore latest --target "$work/out-restic"
  check "$work/out-restic/corpus" restic; rm -rf "$work/out-restic" "$work/restic"
}
run_codex() {
  local backend="$1" round="$2" name="${1}_${2}"
  create_db "$backend" "$name"
  export CODEX_ARCHIVE_URL="$(url_for "$backend" "$name")" CODEX_EVIDENCE_DIR="$work/evidence-$name"
  measure "store codex $backend" node "$cli" archive store peers corpus/ --commit peers --manifest-out "$work/manifest.json"
  rm -rf "$work/out-codex"; mkdir "$work/out-codex"; mv "$work/manifest.json" "$work/out-codex/"
  measure "restore codex $backend" node "$cli" archive batch-restore "$work/out-codex/manifest.json" --results "$work/results-$name.json"
  check "$work/out-codex/corpus" "codex $backend"; rm -rf "$work/out-codex" "$work/evidence-$name"
  drop_db "$backend" "$name"
}

for round in $(seq 1 "$rounds"); do
  echo "round $round/$rounds" >&2
  steps=(run_tar run_restic)
  for b in $backends; do steps+=("run_codex $b $round"); done
  # Rotate the order each round.
  n=${#steps[@]}
  for i in $(seq 0 $((n - 1))); do ${steps[$(((i + round - 1) % n))]}; done
done

echo
echo "| what | median wall (s) | runs (s) | median peak RSS (MiB) |"
echo "|---|---:|---|---:|"
node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split("\t"))
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
  const by = new Map()
  for (const [label, secs, rss] of rows) { const e = by.get(label) ?? { secs: [], rss: [] }; e.secs.push(+secs); e.rss.push(+rss); by.set(label, e) }
  for (const [label, e] of [...by].sort()) console.log(`| ${label} | ${med(e.secs).toFixed(2)} | ${e.secs.join(", ")} | ${med(e.rss)} |`)
' "$results"
