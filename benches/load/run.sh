#!/usr/bin/env bash
# tessera's load benchmark, as /work/shared/PERF.md describes it: measures the machine's RSA
# and argon2 limits, runs every scenario against tessera on SQLite and on PostgreSQL with
# wrk, runs the Flask + Flask-JWT-Extended and node-oidc-provider baselines in the same
# session, and prints one table (also written to $OUT/table.md).
#
#   benches/load/run.sh
#
# Environment (all optional):
#   DURATION=10s          wrk duration of each scenario
#   CONNECTIONS=32        connections per scenario (isolation: see below)
#   WRK_THREADS=2         wrk threads
#   BACKENDS="sqlite postgres"
#   SCENARIOS="healthz jwks client_credentials introspect refresh_token password isolation startup
#              client_credentials_es256 refresh_token_es256 code_exchange login_page feed_fanout"
#                         the subset to run (default: all); rows not run say so in the table
#   SIGNING_ALGS=RS256,ES256   TESSERA_SIGNING_ALGS of the instances (the ES256 rows need ES256)
#   BIN=target/release/tessera   the binary to measure (e.g. one built from another commit)
#   BUILD=1               0 skips `cargo build` (with BIN given, or an up-to-date build)
#   BASELINES=1           0 skips the Flask and node-oidc-provider rows
#   LIMIT_SECONDS=3       seconds per `openssl speed` measurement
#   PG_URL=postgres://postgres@127.0.0.1:5432   server holding the throw-away database
#   PG_DB=tessera_bench   created at start, dropped at exit
#   BENCH_RUST_LOG=info   tessera's RUST_LOG (info = the product default: one line per request)
#   OUT=benches/results/<timestamp>
#
# Everything the script starts is stopped on exit (trap), and the database is dropped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOAD=$ROOT/benches/load
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${WRK_THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite postgres"}
BASELINES=${BASELINES:-1}
LIMIT_SECONDS=${LIMIT_SECONDS:-3}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-tessera_bench}
NPROC=$(nproc)
OUT=${OUT:-$ROOT/benches/results/$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-$ROOT/target/release/tessera}
BUILD=${BUILD:-1}
SCENARIOS=${SCENARIOS:-"healthz jwks client_credentials introspect refresh_token password isolation startup client_credentials_es256 refresh_token_es256 code_exchange login_page feed_fanout"}
SIGNING_ALGS=${SIGNING_ALGS:-RS256,ES256}
HELP="python3 $LOAD/helpers.py"
PASSWORD=bench-Passw0rd-x7Qz
USERS=4
PORT=18080
FLASK_PORT=18091
NODE_PORT=18092

mkdir -p "$OUT/facts"
: > "$OUT/wrk.jsonl"
PIDS=()
PG_CREATED=0

log() { printf '\n== %s\n' "$*" >&2; }
fact() { printf '%s\n' "$2" > "$OUT/facts/$1"; }
fact_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$2" > "$OUT/facts/$1"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$PG_CREATED" = 1 ]; then
    psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

want() { # SCENARIO: true when it is among $SCENARIOS
  case " $SCENARIOS " in *" $1 "*) return 0 ;; esac
  return 1
}

stop() { # PID: stop one process we started and wait for it
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

for tool in wrk openssl curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "build (release binary, criterion bench)"
  (cd "$ROOT" && cargo build --release --bin tessera --quiet && cargo bench --bench crypto --no-run --quiet)
fi
fact_str binary "$BIN"

log "machine limits"
fact loadavg_before "\"$(cut -d' ' -f1-3 /proc/loadavg)\""
fact nproc "$NPROC"
fact duration "\"$DURATION\""
fact connections "$CONNECTIONS"
fact threads "$THREADS"
openssl speed -seconds "$LIMIT_SECONDS" -multi "$NPROC" rsa2048 > "$OUT/openssl-multi.txt" 2>&1
openssl speed -seconds "$LIMIT_SECONDS" rsa2048 > "$OUT/openssl-1.txt" 2>&1
fact rsa_sign_multi "$($HELP openssl-rate "$OUT/openssl-multi.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sign"])')"
fact rsa_sign_1core "$($HELP openssl-rate "$OUT/openssl-1.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sign"])')"
# One argon2id verification (m=19456 KiB, t=2, p=1) with tessera's own PasswordHasher, on
# one thread, timed by criterion; only the password rows need it.
if want password || want isolation; then
  (cd "$ROOT" && cargo bench --bench crypto --quiet -- argon2id_owasp > "$OUT/criterion-argon2.txt" 2>&1)
  fact argon2_1core "$($HELP criterion-rate "$ROOT/target/criterion/argon2id_owasp/verify_1_thread")"
  fact_str argon2_source "criterion, tessera PasswordHasher::verify"
fi
echo "RSA sign: $(cat "$OUT/facts/rsa_sign_multi")/s on $NPROC cores, $(cat "$OUT/facts/rsa_sign_1core")/s on 1" >&2

# ---------------------------------------------------------------------------------------
# wrk NAME CONNECTIONS SCRIPT URL [VAR=VALUE...]: one scenario; its JSON line goes to wrk.jsonl.
# RUN_DURATION overrides DURATION for one call.
run_wrk() {
  local name=$1 conns=$2 script=$3 url=$4
  shift 4
  local threads=$THREADS
  [ "$conns" -lt "$threads" ] && threads=$conns
  env "$@" WRK_NAME="$name" WRK_OUT="$OUT/wrk.jsonl" LUA_DIR="$LOAD/lua" THREADS="$threads" \
    wrk -t"$threads" -c"$conns" -d"${RUN_DURATION:-$DURATION}" --timeout 5s -s "$LOAD/lua/$script" "$url" \
    > "$OUT/wrk-${name//\//_}.txt" 2>&1
  tail -n 1 "$OUT/wrk.jsonl" >&2
}

# The environment of a tessera instance on BACKEND.
tessera_env() {
  local backend=$1 url
  case $backend in
    sqlite) url="sqlite://$OUT/sqlite/tessera.db"; mkdir -p "$OUT/sqlite" ;;
    postgres) url="$PG_URL/$PG_DB" ;;
  esac
  echo "TESSERA_DATABASE_URL=$url TESSERA_LISTEN=127.0.0.1:$PORT TESSERA_ISSUER=http://127.0.0.1:$PORT" \
    "TESSERA_MASTER_KEY_FILE=$OUT/master-$backend.key TESSERA_WORKERS=$NPROC" \
    "TESSERA_LOGIN_RATE_LIMIT=0 TESSERA_LOCKOUT_THRESHOLD=0 TESSERA_SIGNING_ALGS=$SIGNING_ALGS" \
    "RUST_LOG=${BENCH_RUST_LOG:-info}"
}

# Creates a bench client through the CLI (BACKEND ID [FLAGS...]: client_credentials unless
# FLAGS say otherwise); prints its secret ("None" for a public client).
create_client() {
  local backend=$1 id=$2
  shift 2
  [ $# -gt 0 ] || set -- --grant client_credentials
  # shellcheck disable=SC2046
  env $(tessera_env "$backend") "$BIN" clients create "$id" "$@" \
    2>>"$OUT/tessera-$backend.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])'
}

# Seconds of a wrk duration (`10s`, `2m`, `1h`, or plain seconds).
seconds_of() {
  case $1 in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# Authorization code exchange: the codes are minted first (GET /oauth/authorize with a
# signed-in browser session, wrk for up to 25 s), then exchanged (up to 25 s), so every code
# is used within its 60 s lifetime. Each code is exchanged once; a code that is missing or
# refused counts as an error.
bench_code_exchange() {
  local backend=$1 base=$2 session verifier challenge phase redirect=http://127.0.0.1/cb
  create_client "$backend" bench-code --public --first-party --grant authorization_code \
    --grant refresh_token --scope profile --redirect-uri "$redirect" >/dev/null
  session=$($HELP browser-session "$base" bench0 "$PASSWORD")
  verifier=bench-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz
  challenge=$(python3 -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$verifier")
  phase=$(seconds_of "$DURATION")
  [ "$phase" -gt 25 ] && phase=25
  RUN_DURATION=${phase}s run_wrk "$backend/code_mint" "$CONNECTIONS" authorize.lua \
    "$base/oauth/authorize?response_type=code&client_id=bench-code&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=profile&state=bench&code_challenge=$challenge&code_challenge_method=S256" \
    SESSION="$session" CODES_FILE="$OUT/codes-$backend"
  RUN_DURATION=${phase}s run_wrk "$backend/code_exchange" "$CONNECTIONS" exchange.lua "$base/oauth/token" \
    CODES_FILE="$OUT/codes-$backend" MINT_THREADS="$THREADS" CLIENT_ID=bench-code \
    REDIRECT_URI="http%3A%2F%2F127.0.0.1%2Fcb" VERIFIER="$verifier"
}

# Creates a user through the CLI (password on stdin).
create_user() {
  # shellcheck disable=SC2046
  printf '%s\n' "$PASSWORD" | env $(tessera_env "$1") "$BIN" users create "$2" \
    >/dev/null 2>>"$OUT/tessera-$1.log"
}

bench_backend() {
  local backend=$1 base="http://127.0.0.1:$PORT" pid secret basic access
  log "tessera on $backend"
  if [ "$backend" = postgres ]; then
    psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    psql "$PG_URL/postgres" -qAt -c "CREATE DATABASE $PG_DB" >/dev/null
    PG_CREATED=1
  fi
  # shellcheck disable=SC2046
  env $(tessera_env "$backend") "$BIN" serve >>"$OUT/tessera-$backend.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  $HELP wait "$base/readyz" 120
  sleep 1
  fact "mem_idle_$backend" "$($HELP mem "$pid")"

  for i in $(seq 0 $((USERS - 1))); do create_user "$backend" "bench$i"; done
  secret=$(create_client "$backend" bench-cc)
  basic="Basic $(printf '%s' "bench-cc:$secret" | base64 -w0)"
  # Sessions for the refresh scenarios: one per connection plus spares, per scenario.
  $HELP mint "$base" "$USERS" "$PASSWORD" $((CONNECTIONS + 8)) "$OUT/refresh-$backend.txt"
  $HELP mint "$base" "$USERS" "$PASSWORD" 16 "$OUT/refresh-iso-$backend.txt"
  access=$(cat "$OUT/refresh-$backend.txt.access")
  # ES256: a confidential client for client_credentials, a public one for refresh.
  if want client_credentials_es256; then
    secret_es=$(create_client "$backend" bench-cc-es --grant client_credentials --token-alg ES256)
    basic_es="Basic $(printf '%s' "bench-cc-es:$secret_es" | base64 -w0)"
  fi
  if want refresh_token_es256; then
    create_client "$backend" bench-es --public --grant password --grant refresh_token \
      --token-alg ES256 >/dev/null
    $HELP mint "$base" "$USERS" "$PASSWORD" $((CONNECTIONS + 8)) "$OUT/refresh-es-$backend.txt" bench-es
  fi

  want healthz && run_wrk "$backend/healthz" "$CONNECTIONS" get.lua "$base/healthz"
  want jwks && run_wrk "$backend/jwks" "$CONNECTIONS" get.lua "$base/.well-known/jwks.json"
  want client_credentials && run_wrk "$backend/client_credentials" "$CONNECTIONS" post.lua "$base/oauth/token" \
    BODY="grant_type=client_credentials" AUTH="$basic"
  want introspect && run_wrk "$backend/introspect" "$CONNECTIONS" post.lua "$base/oauth/introspect" \
    BODY="token=$access" AUTH="$basic"
  want refresh_token && run_wrk "$backend/refresh_token" "$CONNECTIONS" refresh.lua "$base/oauth/token" \
    TOKENS_FILE="$OUT/refresh-$backend.txt"
  want password && run_wrk "$backend/password" "$CONNECTIONS" password.lua "$base/oauth/token" \
    USERS="$USERS" PASSWORD="$PASSWORD"
  want client_credentials_es256 && run_wrk "$backend/client_credentials_es256" "$CONNECTIONS" post.lua \
    "$base/oauth/token" BODY="grant_type=client_credentials" AUTH="$basic_es"
  want refresh_token_es256 && run_wrk "$backend/refresh_token_es256" "$CONNECTIONS" refresh.lua "$base/oauth/token" \
    TOKENS_FILE="$OUT/refresh-es-$backend.txt" CLIENT_ID=bench-es
  want code_exchange && bench_code_exchange "$backend" "$base"
  want login_page && run_wrk "$backend/login_page" "$CONNECTIONS" get.lua "$base/login"

  # Isolation: a login flood (more connections than hashing slots) while JWKS and refresh
  # clients measure their latency.
  if want isolation; then
  log "isolation on $backend"
  run_wrk "$backend/isolation_password" "$CONNECTIONS" password.lua "$base/oauth/token" \
    USERS="$USERS" PASSWORD="$PASSWORD" &
  local flood=$!
  sleep 1
  run_wrk "$backend/isolation_jwks" 4 get.lua "$base/.well-known/jwks.json" &
  local jw=$!
  run_wrk "$backend/isolation_refresh" 4 refresh.lua "$base/oauth/token" \
    TOKENS_FILE="$OUT/refresh-iso-$backend.txt"
  wait "$jw" "$flood"
  fi

  fact "mem_peak_$backend" "$($HELP mem "$pid")"
  stop "$pid"

  want startup || return 0
  log "start-up with an existing database ($backend)"
  local ms times=()
  for _ in 1 2 3; do
    # shellcheck disable=SC2046
    ms=$($HELP startup "$base/readyz" "$OUT/tessera-$backend.log" -- env $(tessera_env "$backend") "$BIN" serve)
    times+=("$ms")
  done
  echo "start-up: ${times[*]} ms" >&2
  # The median of three starts.
  fact "startup_ms_$backend" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)"
}

backends_json=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1].split()))' "$BACKENDS")
fact backends "$backends_json"
fact scenarios "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1].split()))' "$SCENARIOS")"
for backend in $BACKENDS; do
  bench_backend "$backend"
done

# Revocation feed fan-out: 1,000 long-polling verifiers against the same binary, on each
# backend (benches/feed_fanout.sh; its rows join the table).
if want feed_fanout; then
  log "revocation feed fan-out"
  BUILD=0 BIN="$BIN" BACKENDS="$BACKENDS" PG_URL="$PG_URL" OUT="$OUT/feed" \
    bash "$ROOT/benches/feed_fanout.sh" > "$OUT/feed-fanout.txt" 2>&1 \
    || fact_str feed_fanout_failure "benches/feed_fanout.sh failed (see feed-fanout.txt)"
fi

# ---------------------------------------------------------------------------------------
if [ "$BASELINES" = 1 ]; then
  log "baseline: Flask + Flask-JWT-Extended (gunicorn, 2 workers)"
  venv=$ROOT/benches/.venv
  if { [ -x "$venv/bin/gunicorn" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$LOAD/flask_baseline/requirements.txt"; }; } >"$OUT/flask-install.log" 2>&1; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/flask-key.pem" 2>/dev/null
    (cd "$LOAD/flask_baseline" && BASELINE_KEY_FILE="$OUT/flask-key.pem" exec "$venv/bin/gunicorn" \
      -w 2 -b "127.0.0.1:$FLASK_PORT" app:app) >"$OUT/flask.log" 2>&1 &
    fpid=$!
    PIDS+=("$fpid")
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$FLASK_PORT/" && break; sleep 0.1; done
    rt=$(curl -s -XPOST "http://127.0.0.1:$FLASK_PORT/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    run_wrk flask/token_pair "$CONNECTIONS" post.lua "http://127.0.0.1:$FLASK_PORT/token" BODY=""
    run_wrk flask/refresh "$CONNECTIONS" post.lua "http://127.0.0.1:$FLASK_PORT/refresh" BODY="" AUTH="Bearer $rt"
    stop "$fpid"
  else
    fact_str baseline_failure_flask "install failed (see flask-install.log)"
  fi

  log "baseline: node-oidc-provider 9 (production, ${NPROC}-process cluster)"
  node_dir=$LOAD/oidc_baseline
  if command -v node >/dev/null && { [ -d "$node_dir/node_modules/oidc-provider" ] || (cd "$node_dir" && npm install --no-audit --no-fund --omit=dev); } >"$OUT/node-install.log" 2>&1; then
    (cd "$node_dir" && NODE_ENV=production PORT=$NODE_PORT WORKERS=$NPROC exec node server.mjs) >"$OUT/node.log" 2>&1 &
    npid=$!
    PIDS+=("$npid")
    $HELP wait "http://127.0.0.1:$NODE_PORT/jwks" 60
    nbasic="Basic $(printf 'bench-cc:bench-secret' | base64 -w0)"
    if curl -sf -H "Authorization: $nbasic" -d grant_type=client_credentials -d scope=api \
        "http://127.0.0.1:$NODE_PORT/token" | grep -q '"access_token":"ey'; then
      run_wrk node-oidc-provider/client_credentials "$CONNECTIONS" post.lua "http://127.0.0.1:$NODE_PORT/token" \
        BODY="grant_type=client_credentials&scope=api" AUTH="$nbasic"
      run_wrk node-oidc-provider/jwks "$CONNECTIONS" get.lua "http://127.0.0.1:$NODE_PORT/jwks"
    else
      fact_str baseline_failure_node-oidc-provider "no JWT access token from client_credentials (see node.log)"
    fi
    stop "$npid"
  else
    fact_str baseline_failure_node-oidc-provider "node or npm install unavailable (see node-install.log)"
  fi
else
  fact_str baseline_failure_flask "skipped (BASELINES=0)"
  fact_str baseline_failure_node-oidc-provider "skipped (BASELINES=0)"
fi

fact loadavg_after "\"$(cut -d' ' -f1-3 /proc/loadavg)\""
log "results ($OUT)"
$HELP report "$OUT"
