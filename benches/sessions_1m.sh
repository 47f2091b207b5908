#!/usr/bin/env bash
# Refresh and introspection rates against PostgreSQL with 1,000,000 sessions, compared with
# the same server on an (almost) empty database, all in one run (docs/benchmarks.md, "Storage
# that stays flat"). Refresh state lives on the session row, so a refresh is one primary-key
# UPDATE whatever the table holds; the target is 1M within 10 % of empty.
#
#   benches/sessions_1m.sh
#
# Phases, each with fresh tokens: empty → 1M sessions seeded by one INSERT … SELECT FROM
# generate_series → the seeded rows deleted again (empty'), so the spread of the two empty
# phases shows how noisy the machine is.
#
# Environment (all optional):
#   SESSIONS=1000000      sessions to seed
#   DURATION=10s          wrk duration of each scenario
#   CONNECTIONS=32        wrk connections
#   WRK_THREADS=2
#   PG_URL=postgres://postgres@127.0.0.1:5432   server holding the throw-away database
#   PG_DB=tessera_bench_1m    created at start, dropped at exit
#   BIN=target/release/tessera  BUILD=1 (0 skips cargo build)
#   OUT=benches/results/sessions-1m-<timestamp>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOAD=$ROOT/benches/load
SESSIONS=${SESSIONS:-1000000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${WRK_THREADS:-2}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-tessera_bench_1m}
BIN=${BIN:-$ROOT/target/release/tessera}
BUILD=${BUILD:-1}
OUT=${OUT:-$ROOT/benches/results/sessions-1m-$(date +%Y%m%d-%H%M%S)}
HELP="python3 $LOAD/helpers.py"
PASSWORD=bench-Passw0rd-x7Qz
USERS=4
PORT=18180
BASE=http://127.0.0.1:$PORT
DB="$PG_URL/$PG_DB"

mkdir -p "$OUT"
: > "$OUT/wrk.jsonl"
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

for tool in wrk psql; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
  log "build (release binary)"
  (cd "$ROOT" && cargo build --release --bin tessera --quiet)
fi

ENV=(TESSERA_DATABASE_URL="$DB" TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_ISSUER=$BASE
  TESSERA_MASTER_KEY_FILE="$OUT/master.key" TESSERA_WORKERS="$(nproc)"
  TESSERA_LOGIN_RATE_LIMIT=0 TESSERA_LOCKOUT_THRESHOLD=0 RUST_LOG=warn)

psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
psql "$PG_URL/postgres" -qAt -c "CREATE DATABASE $PG_DB" >/dev/null
PG_CREATED=1
env "${ENV[@]}" "$BIN" serve >>"$OUT/tessera.log" 2>&1 &
PID=$!
$HELP wait "$BASE/readyz" 120
for i in $(seq 0 $((USERS - 1))); do
  printf '%s\n' "$PASSWORD" | env "${ENV[@]}" "$BIN" users create "bench$i" >/dev/null 2>>"$OUT/tessera.log"
done
secret=$(env "${ENV[@]}" "$BIN" clients create bench-cc --grant client_credentials 2>>"$OUT/tessera.log" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
basic="Basic $(printf '%s' "bench-cc:$secret" | base64 -w0)"

# phase NAME: fresh sessions for this phase, then the two scenarios.
phase() {
  local name=$1 tokens="$OUT/refresh-$1.txt"
  $HELP mint "$BASE" "$USERS" "$PASSWORD" $((CONNECTIONS + 8)) "$tokens"
  for scenario in refresh introspect; do
    case $scenario in
      refresh) set -- refresh.lua "$BASE/oauth/token" TOKENS_FILE="$tokens" ;;
      introspect) set -- post.lua "$BASE/oauth/introspect" BODY="token=$(cat "$tokens.access")" AUTH="$basic" ;;
    esac
    local script=$1 url=$2
    shift 2
    env "$@" WRK_NAME="$name/$scenario" WRK_OUT="$OUT/wrk.jsonl" LUA_DIR="$LOAD/lua" THREADS="$THREADS" \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s -s "$LOAD/lua/$script" "$url" \
      > "$OUT/wrk-$name-$scenario.txt" 2>&1
    tail -n 1 "$OUT/wrk.jsonl" >&2
  done
}

log "empty database"
phase empty

log "seeding $SESSIONS sessions"
start=$(date +%s)
psql "$DB" -qAt -v ON_ERROR_STOP=1 <<SQL
INSERT INTO sessions (id, user_id, client_id, scope, amr, auth_time, user_agent, ip,
                      created_at, last_used_at, expires_at, refresh_hash)
SELECT 'seed-' || g, u.id, 'first-party', 'profile email', '["pwd"]', t.now,
       'Mozilla/5.0 (X11; Linux x86_64) seeded', '192.0.2.' || (g % 250),
       t.now - (g % 86400), t.now - (g % 3600), t.now + 2592000 - (g % 86400),
       md5(g::text) || md5((g + 1)::text)
FROM generate_series(1, $SESSIONS) AS g,
     (SELECT id FROM users ORDER BY username LIMIT 1) AS u,
     (SELECT extract(epoch FROM now())::bigint AS now) AS t;
VACUUM ANALYZE sessions;
SQL
echo "seeded in $(( $(date +%s) - start )) s; sessions: $(psql "$DB" -qAt -c 'SELECT count(*) FROM sessions'), table + indexes: $(psql "$DB" -qAt -c "SELECT pg_size_pretty(pg_total_relation_size('sessions'))")" | tee "$OUT/seed.txt" >&2

log "$SESSIONS sessions"
phase seeded

log "seeded sessions deleted again"
psql "$DB" -qAt -c "DELETE FROM sessions WHERE id LIKE 'seed-%'" >/dev/null
psql "$DB" -qAt -c "VACUUM ANALYZE sessions" >/dev/null
phase empty_again

python3 - "$OUT" "$SESSIONS" <<'PY' | tee "$OUT/table.md"
import json, sys
out, sessions = sys.argv[1], int(sys.argv[2])
runs = {}
for line in open(f"{out}/wrk.jsonl"):
    if line.strip():
        r = json.loads(line)
        runs[r["name"]] = r
def rate(r): return r["requests"] / (r["duration_us"] / 1e6)
def errors(r): return max(r["status"], r["non2xx"]) + r["connect"] + r["read"] + r["write"] + r["timeout"]
print(f"| scenario | empty req/s | {sessions:,} sessions req/s | empty again req/s | 1M / mean(empty) | errors | target |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for s in ["refresh", "introspect"]:
    a, b, c = (runs[f"{p}/{s}"] for p in ["empty", "seeded", "empty_again"])
    ratio = rate(b) / ((rate(a) + rate(c)) / 2)
    verdict = "met" if ratio >= 0.90 else "MISSED"
    print(f"| {s} | {rate(a):,.0f} | {rate(b):,.0f} | {rate(c):,.0f} | {ratio:.2f} | "
          f"{errors(a) + errors(b) + errors(c)} | ≥ 0.90 ({verdict}) |")
PY
