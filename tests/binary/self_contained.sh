#!/usr/bin/env bash
# The built binary is self-contained: it links nothing but the C library, and it starts on
# the embedded default (SQLite) and on a PostgreSQL that takes TLS connections only
# (sslmode=verify-full against a throw-away CA). Installs the PostgreSQL server and the
# openssl CLI if missing; any step that cannot run fails the script.
#
# Usage: tests/binary/self_contained.sh [BINARY]   (default target/release/tessera)
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="$(realpath "${1:-target/release/tessera}")"
[ -x "$bin" ] || { echo "no tessera binary at $bin" >&2; exit 1; }

say() { printf -- '--- %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

work="$(mktemp -d)"
# The PostgreSQL server, running as postgres, must reach its folder inside.
chmod 0755 "$work"
pids=()
pg_data=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$pg_data" ]; then as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres() {
  # initdb and the server refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `tessera serve` in the background in folder $1 on port $2; the rest of the
# arguments are VAR=value settings. Waits for /readyz 200; fails with the log otherwise.
serve() {
  local dir="$1" port="$2"; shift 2
  (cd "$dir" && exec env -u TESSERA_DATABASE_URL -u TESSERA_MASTER_KEY "$@" \
     TESSERA_LISTEN="127.0.0.1:$port" "$bin" serve >"$dir/tessera.log" 2>&1) &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$dir/tessera.log" >&2; fail "tessera exited at start-up"; }
    sleep 0.2
  done
  cat "$dir/tessera.log" >&2
  fail "tessera did not answer /readyz 200 within 20 s"
}

# Registers a user and issues it a token on port $1.
issue_token() {
  local port="$1" body
  curl -sf -XPOST "http://127.0.0.1:$port/register" -H 'content-type: application/json' \
       -d '{"username":"alice","password":"correct horse battery staple"}' >/dev/null \
    || fail "registering on port $port"
  body="$(curl -sf -XPOST "http://127.0.0.1:$port/oauth/token" -d grant_type=password \
       -d username=alice -d 'password=correct horse battery staple')" \
    || fail "issuing a token on port $port"
  grep -q '"access_token"' <<<"$body" || fail "no access_token in $body"
}

say "ldd $bin"
libs="$(ldd "$bin")"
echo "$libs"
if grep -Eiq 'libpq|libssl|libcrypto|krb5|gssapi|ldap|lber|sasl|gnutls' <<<"$libs"; then
  fail "the binary links PostgreSQL's, OpenSSL's, Kerberos', LDAP's or GnuTLS' library"
fi
# Nothing beyond the C library itself (glibc's parts, the compiler's unwinder, the vDSO).
others="$(grep -Ev '^\s*(linux-vdso\.so|linux-gate\.so|/lib[^ ]*/ld-linux[^ ]*|(ld-linux[^ ]*|libc|libm|libgcc_s|libdl|libpthread|librt|libutil)\.so[^ ]*( =>|$))' <<<"$libs" || true)"
[ -z "$others" ] || fail "linked beyond the C library: $others"

say "embedded default (SQLite in a temporary folder)"
mkdir "$work/sqlite"
port="$(free_port)"
serve "$work/sqlite" "$port"
issue_token "$port"
[ -s "$work/sqlite/data/tessera.db" ] || fail "no data/tessera.db"
[ -s "$work/sqlite/keys/master.key" ] || fail "no keys/master.key"

say "PostgreSQL over TLS (sslmode=verify-full)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl >/dev/null
fi
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pki="$work/pki"
mkdir "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=tessera CI CA" -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' >"$pki/san.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
  -CAcreateserial -days 2 -extfile "$pki/san.ext" -out "$pki/server.crt" 2>/dev/null

pg_dir="$work/postgres"
mkdir "$pg_dir"
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
install -m 0600 "$pki/server.key" "$pg_dir/data/server.key"
install -m 0644 "$pki/server.crt" "$pg_dir/data/server.crt"
printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$pg_dir/data/postgresql.conf"
# TLS or nothing: a plain-text connection finds no pg_hba.conf entry.
printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n' >"$pg_dir/data/pg_hba.conf"
[ "$(id -u)" = 0 ] && chown -R postgres "$pg_dir/data"
pg_port="$(free_port)"
as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null \
  || { cat "$pg_dir/server.log" >&2; fail "PostgreSQL did not start"; }
pg_data="$pg_dir/data"

mkdir "$work/pg"
port="$(free_port)"
serve "$work/pg" "$port" \
  TESSERA_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=verify-full&sslrootcert=$pki/ca.pem" \
  TESSERA_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
issue_token "$port"

say "the binary is self-contained"
