#!/usr/bin/env bash
# Revocation feed fan-out (PERF.md, release 2): 1,000 verifiers wait on
# `GET /revocations?wait=30`; an admin revokes a session; every verifier must be told within
# 1 s, the waits must add at most 20 MB RSS and no measurable CPU while idle.
# Runs the release binary on SQLite and on PostgreSQL (docs/benchmarks.md, "Revocation feed").
#
#   benches/feed_fanout.sh
#
# Environment (all optional):
#   VERIFIERS=1000
#   BACKENDS="sqlite postgres"
#   PG_URL=postgres://postgres@127.0.0.1:5432   server holding the throw-away database
#   PG_DB=tessera_bench_feed    created at start, dropped at exit
#   BIN=target/release/tessera  BUILD=1 (0 skips cargo build)
#   OUT=benches/results/feed-fanout-<timestamp>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOAD=$ROOT/benches/load
VERIFIERS=${VERIFIERS:-1000}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-tessera_bench_feed}
BIN=${BIN:-$ROOT/target/release/tessera}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/benches/results/feed-fanout-$(date +%Y%m%d-%H%M%S)}
HELP="python3 $LOAD/helpers.py"
PASSWORD=bench-Passw0rd-x7Qz
PORT=18190
BASE=http://127.0.0.1:$PORT

mkdir -p "$OUT"
: > "$OUT/results.jsonl"
PID=
PG_CREATED=0
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ "$PG_CREATED" = 1 ]; then
    psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '\n== %s\n' "$*" >&2; }

# Each waiting verifier is a socket on both sides.
ulimit -n "$(( VERIFIERS * 2 + 1024 ))"
if [ "$BUILD" = 1 ]; then
  log "build (release binary)"
  (cd "$ROOT" && cargo build --release --bin tessera --quiet)
fi

for backend in $BACKENDS; do
  case $backend in
    sqlite)
      rm -rf "$OUT/sqlite" && mkdir -p "$OUT/sqlite"
      DB="sqlite://$OUT/sqlite/tessera.db" ;;
    postgres)
      command -v psql >/dev/null || { echo "missing psql" >&2; exit 1; }
      psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
      psql "$PG_URL/postgres" -qAt -c "CREATE DATABASE $PG_DB" >/dev/null
      PG_CREATED=1
      DB="$PG_URL/$PG_DB" ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  log "$backend: $VERIFIERS waiting verifiers"
  ENV=(TESSERA_DATABASE_URL="$DB" TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_ISSUER=$BASE
    TESSERA_MASTER_KEY_FILE="$OUT/master-$backend.key" TESSERA_WORKERS="$(nproc)"
    TESSERA_LOGIN_RATE_LIMIT=0 TESSERA_LOCKOUT_THRESHOLD=0 RUST_LOG=warn)
  env "${ENV[@]}" "$BIN" migrate >>"$OUT/tessera.log" 2>&1
  printf '%s\n' "$PASSWORD" | env "${ENV[@]}" "$BIN" users create bench-admin --role admin >/dev/null 2>>"$OUT/tessera.log"
  printf '%s\n' "$PASSWORD" | env "${ENV[@]}" "$BIN" users create bench-user >/dev/null 2>>"$OUT/tessera.log"
  secret=$(env "${ENV[@]}" "$BIN" clients create bench-verifier --grant client_credentials 2>>"$OUT/tessera.log" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
  env "${ENV[@]}" "$BIN" serve >>"$OUT/tessera.log" 2>&1 &
  PID=$!
  $HELP wait "$BASE/readyz" 120
  python3 "$LOAD/feed_fanout.py" "$BASE" "$PID" bench-verifier "$secret" bench-admin "$PASSWORD" \
    bench-user "$PASSWORD" "$VERIFIERS" | python3 -c "import json,sys; r=json.load(sys.stdin); r['backend']='$backend'; print(json.dumps(r))" \
    | tee -a "$OUT/results.jsonl" >&2
  kill -TERM "$PID" && wait "$PID" 2>/dev/null || true
  PID=
done

python3 - "$OUT/results.jsonl" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| backend | verifiers | told | errors | fan-out p50 | p99 | max | RSS added | idle CPU (5 s) | target | verdict |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    ok = (r["told"] == r["verifiers"] and r["errors"] == 0 and r["answered_before_revocation"] == 0
          and r["fanout_max_ms"] is not None and r["fanout_max_ms"] <= 1000 and r["rss_added_mb"] <= 20)
    print(f"| {r['backend']} | {r['verifiers']} | {r['told']} | {r['errors']} | {r['fanout_p50_ms']} ms | "
          f"{r['fanout_p99_ms']} ms | {r['fanout_max_ms']} ms | {r['rss_added_mb']} MB | "
          f"{r['idle_cpu_seconds']} s | all within 1 s, ≤ 20 MB | {'met' if ok else 'MISSED'} |")
PY
