#!/usr/bin/env bash
# Schema-driven API fuzzing: schemathesis reads tessera's own /openapi.json and sends what the
# schema allows (and what it does not), checking that no answer is a 5xx and that every
# answer matches the documented response schema.
#
# Usage: tests/fuzz/schemathesis.sh [--setup-only]
#   --setup-only   install, start tessera, create the admin and the client, get a token, stop
#
# Environment:
#   TESSERA_BIN                 the binary (default: target/release/tessera, else
#                               target/debug/tessera, built with `cargo build` if neither)
#   SCHEMATHESIS_MAX_EXAMPLES   examples per operation (default 25)
#   SCHEMATHESIS_VENV           the virtualenv (default .ci/venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
VENV="${SCHEMATHESIS_VENV:-$ROOT/.ci/venv}"
SETUP_ONLY=0
[ "${1:-}" = "--setup-only" ] && SETUP_ONLY=1

step() { printf '\n==> %s\n' "$*"; }

step "schemathesis $SCHEMATHESIS_VERSION in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# `python -m pip`, not the pip script: a copied venv's scripts may point at another venv.
if ! "$PY" -c "import schemathesis, sys; sys.exit(schemathesis.__version__ != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

step "tessera binary"
BIN="${TESSERA_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x "${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera" ]; then
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tessera"
  else
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tessera"
    [ -x "$BIN" ] || cargo build --quiet --bin tessera
  fi
fi
echo "$BIN"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

# Only this run's configuration reaches tessera.
for name in $(env | grep -o '^TESSERA_[A-Z0-9_]*' || true); do unset "$name"; done
export TESSERA_DATABASE_URL="sqlite://$WORK/tessera.db"
export TESSERA_MASTER_KEY_FILE="$WORK/master.key"
export TESSERA_LISTEN="127.0.0.1:$PORT"
export TESSERA_ISSUER="$BASE"
# The fuzzer sends thousands of requests from one address with wrong passwords.
export TESSERA_LOGIN_RATE_LIMIT=0
export TESSERA_LOCKOUT_THRESHOLD=0
export TESSERA_ARGON2_MEMORY_KIB=1024
export TESSERA_ARGON2_ITERATIONS=1
# Mail to a folder, so the §6.4 endpoints are live rather than 503.
export TESSERA_SMTP_URL="file://$WORK/mail"
export RUST_LOG=warn

step "admin user and confidential client (CLI)"
ADMIN_PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')"
(cd "$WORK" && "$BIN" migrate >/dev/null)
printf '%s\n' "$ADMIN_PASSWORD" | (cd "$WORK" && "$BIN" users create fuzz-admin --role admin >/dev/null)
CLIENT_JSON="$(cd "$WORK" && "$BIN" clients create fuzz-client --grant client_credentials --scope read)"
CLIENT_SECRET="$(printf '%s' "$CLIENT_JSON" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')"

step "tessera serve on $BASE"
(cd "$WORK" && exec "$BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$WORK/server.log" >&2
    echo "tessera exited at start-up" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fsS "$BASE/readyz" >/dev/null

# Secrets go to curl on stdin, never in argv.
ADMIN_TOKEN="$(printf '%s' "$ADMIN_PASSWORD" | curl -fsS "$BASE/oauth/token" \
  -d grant_type=password -d username=fuzz-admin --data-urlencode "password@-" |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
printf 'user = "fuzz-client:%s"\n' "$CLIENT_SECRET" >"$WORK/curl.cfg"
SERVICE_TOKEN="$(curl -fsS -K "$WORK/curl.cfg" "$BASE/oauth/token" -d grant_type=client_credentials |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
[ -n "$ADMIN_TOKEN" ] && [ -n "$SERVICE_TOKEN" ]
echo "admin token and client token issued"

if [ "$SETUP_ONLY" = 1 ]; then
  echo "setup only: tessera started and answered; stopping"
  exit 0
fi

step "schemathesis run $BASE/openapi.json (max $MAX_EXAMPLES examples per operation)"
status=0
"$PY" -m schemathesis.cli run "$BASE/openapi.json" \
  --url "$BASE" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --request-timeout 20 \
  --wait-for-schema 10 \
  --header "Authorization: Bearer $ADMIN_TOKEN" || status=$?
if [ "$status" != 0 ]; then
  echo "--- tessera log (last 50 lines) ---" >&2
  tail -n 50 "$WORK/server.log" >&2
fi
exit "$status"
