"""Drives the Flask-JWT-Extended example (examples/flask-resource-server/app.py) with
tessera's tokens, through Flask's test client; the app fetches the JWKS from the live
tessera over HTTP.

Environment: TESSERA_ISSUER; FRESH_TOKEN (a password login of a user with role `admin`),
REFRESHED_TOKEN (an access token from refreshing that login: not fresh), REFRESH_TOKEN,
PLAIN_TOKEN (a user without roles), EXPIRED_TOKEN. Exits non-zero on the first failure.
"""

import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "flask-resource-server"))

from app import create_app  # noqa: E402

ISSUER = os.environ["TESSERA_ISSUER"]
FRESH = os.environ["FRESH_TOKEN"]
REFRESHED = os.environ["REFRESHED_TOKEN"]
REFRESH = os.environ["REFRESH_TOKEN"]
PLAIN = os.environ["PLAIN_TOKEN"]
EXPIRED = os.environ["EXPIRED_TOKEN"]

app = create_app(issuer=ISSUER, min_refresh=60)
keys = app.extensions["tessera_jwks"]
client = app.test_client()


def call(method, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.open(path, method=method, headers=headers)


def expect(response, status, error=None, why=""):
    body = response.get_json(silent=True)
    assert response.status_code == status, f"{why}: {response.status_code} {body}"
    if error is not None:
        assert body["error"] == error, f"{why}: {body}"
        if status == 401:
            assert "Bearer" in response.headers.get("WWW-Authenticate", ""), why
    print(f"ok: {why}")
    return body


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def with_header(token, **changes):
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=="))
    decoded.update(changes)
    return f"{b64(json.dumps(decoded).encode())}.{payload}.{signature}"


me = expect(call("GET", "/api/me", FRESH), 200, why="an access token is accepted")
assert me["fresh"] is True, me
assert me["roles"] == ["admin"], me
assert keys.fetches == 1, keys.fetches
expect(call("GET", "/api/admin/reports", FRESH), 200, why="the role route admits role admin")
expect(call("POST", "/api/account/delete", FRESH), 200, why="the fresh route admits a fresh token")

me = expect(call("GET", "/api/me", REFRESHED), 200, why="a refreshed access token is accepted")
assert me["fresh"] is False, me
expect(
    call("POST", "/api/account/delete", REFRESHED),
    401,
    "insufficient_user_authentication",
    why="the fresh route refuses a token from a refresh",
)
expect(
    call("GET", "/api/admin/reports", PLAIN),
    403,
    "insufficient_scope",
    why="the role route refuses a user without the role",
)
expect(call("GET", "/api/me", REFRESH), 401, "invalid_token", why="a refresh token is refused")
expect(
    call("GET", "/api/me", with_header(REFRESH, typ="at+jwt")),
    401,
    "invalid_token",
    why="a refresh token relabelled at+jwt is refused (type claim)",
)
expect(call("GET", "/api/me", EXPIRED), 401, "invalid_token", why="an expired token is refused")
expect(call("GET", "/api/me", None), 401, "invalid_token", why="a request without a token is refused")

header, payload, signature = PLAIN.split(".")
forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
forged["roles"] = ["admin"]
forged = b64(json.dumps(forged).encode())
expect(
    call("GET", "/api/admin/reports", f"{header}.{forged}.{signature}"),
    401,
    "invalid_token",
    why="a tampered token is refused",
)
expect(
    call("GET", "/api/me", with_header(f"{header}.{forged}.", alg="none")),
    401,
    "invalid_token",
    why="an alg:none token is refused",
)

# A rotation: the cache lacks the token's kid, so the app fetches the JWKS again.
keys._keys = {}
keys._last_fetch = None
expect(call("GET", "/api/me", FRESH), 200, why="an unknown kid makes the app fetch the JWKS again")
assert keys.fetches == 2, keys.fetches
# Forged kids do not make it fetch on every request.
bogus = with_header(FRESH, kid="no-such-key")
for _ in range(3):
    expect(call("GET", "/api/me", bogus), 401, "invalid_token", why="an unknown kid is refused")
assert keys.fetches == 2, f"fetched {keys.fetches} times: not rate-limited"

print("all Flask-JWT-Extended checks passed")
