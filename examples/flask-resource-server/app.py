"""A Flask API protected by Flask-JWT-Extended, verifying tessera's access tokens offline.

tessera signs access tokens with RS256 and publishes its public keys as a JWKS, found
through its discovery document. This app fetches that JWKS once, keeps the keys in memory
and picks the key for each token by its ``kid``; a ``kid`` it does not know (tessera rotated
its keys) makes it fetch the JWKS again, at most once per ``min_refresh`` seconds, so forged
kids cannot make it hammer tessera, and a tessera outage does not stop it verifying tokens
signed by keys it already has.

Run it::

    pip install -r requirements.txt
    TESSERA_ISSUER=http://127.0.0.1:8080 flask --app app run --port 8081

Revocation: given ``TESSERA_FEED_CLIENT_ID`` and ``TESSERA_FEED_CLIENT_SECRET`` (a
confidential client of tessera), a background thread long-polls tessera's revocation feed
(``GET /revocations``) and keeps a local set of revoked sessions, tokens and keys, which
Flask-JWT-Extended's ``token_in_blocklist_loader`` consults: a revoked session stops working
here within about a second while the feed is reachable, and within its token lifetime if
not. After an outage the poller carries on from its last cursor; a refused cursor, or a
restart, reads the whole feed again (no ``since``).

Routes: ``GET /api/me`` (any access token), ``GET /api/admin/reports`` (role ``admin``),
``POST /api/account/delete`` (a fresh token: straight from a password or MFA login, not
from a refresh).
"""

import os
import threading
import time
from functools import wraps

import jwt as pyjwt
import requests
from flask import Flask, jsonify
from flask_jwt_extended import (
    JWTManager,
    get_jwt,
    get_jwt_identity,
    jwt_required,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTDecodeError


class JwksCache:
    """tessera's signing keys by ``kid``, fetched through discovery."""

    def __init__(self, issuer, min_refresh=30.0, timeout=5.0):
        self.issuer = issuer.rstrip("/")
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.fetches = 0
        self._keys = {}
        self._jwks_uri = None
        self._last_fetch = None
        self._lock = threading.Lock()

    def jwks_uri(self):
        if self._jwks_uri is None:
            url = f"{self.issuer}/.well-known/oauth-authorization-server"
            document = requests.get(url, timeout=self.timeout)
            document.raise_for_status()
            document = document.json()
            # RFC 8414 section 3.3: the document must name the issuer it was fetched for.
            if document.get("issuer") != self.issuer:
                raise ValueError(f"{url} names another issuer")
            self._jwks_uri = document["jwks_uri"]
        return self._jwks_uri

    def refresh(self):
        """Fetches the JWKS and replaces the cached keys with its RS256 keys."""
        self.fetches += 1
        self._last_fetch = time.monotonic()
        response = requests.get(self.jwks_uri(), timeout=self.timeout)
        response.raise_for_status()
        keys = {}
        for jwk in response.json().get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("alg", "RS256") == "RS256" and "kid" in jwk:
                keys[jwk["kid"]] = pyjwt.PyJWK(jwk, algorithm="RS256").key
        self._keys = keys

    def key_for(self, kid):
        """The public key for ``kid``, or None if tessera does not publish one."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            recently = self._last_fetch is not None and (
                time.monotonic() - self._last_fetch < self.min_refresh
            )
            if not recently:
                try:
                    self.refresh()
                except (requests.RequestException, ValueError, KeyError) as error:
                    # Keep the keys we have: their tokens still verify while tessera is down.
                    print(f"JWKS refresh failed: {error}")
            return self._keys.get(kid)


class RevocationFeed:
    """A local copy of tessera's revocation feed, kept current by a background thread."""

    def __init__(self, issuer, client_id, client_secret, wait=30):
        self.url = issuer.rstrip("/") + "/revocations"
        self.auth = (client_id, client_secret)
        self.wait = wait
        self.synced = threading.Event()
        self._revoked = {"session": {}, "token": {}, "key": {}}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def is_revoked(self, kid, sid, jti):
        """Whether a token with this header ``kid`` and these ``sid`` and ``jti`` is revoked."""
        with self._lock:
            return (
                kid in self._revoked["key"]
                or (sid is not None and sid in self._revoked["session"])
                or (jti is not None and jti in self._revoked["token"])
            )

    def poll(self, cursor):
        """One request: without a cursor the whole feed at once, with one a long poll for
        what is newer. Returns the next cursor."""
        params = {"since": cursor, "wait": str(self.wait)} if cursor else {}
        response = requests.get(self.url, params=params, auth=self.auth, timeout=self.wait + 15)
        response.raise_for_status()
        page = response.json()
        now = time.time()
        with self._lock:
            for item in page["items"]:
                kind = self._revoked.get(item["type"])
                if kind is not None:
                    kind[item["id"]] = item["until"]
            for kind in self._revoked.values():
                for key in [key for key, until in kind.items() if until < now]:
                    del kind[key]
        return page["next_cursor"]

    def run(self):
        cursor = None
        backoff = 0.25
        while not self._stop.is_set():
            try:
                cursor = self.poll(cursor)
                self.synced.set()
                backoff = 0.25
            except requests.HTTPError as error:
                if error.response is not None and error.response.status_code == 400:
                    cursor = None  # a cursor tessera no longer knows: read the whole feed again
                else:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30)
            except (requests.RequestException, ValueError, KeyError) as error:
                # Keep the cursor: what was revoked meanwhile comes with the next answer.
                print(f"revocation feed: {error}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30)

    def start(self):
        self._thread = threading.Thread(target=self.run, name="revocation-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()


def role_required(role):
    """Requires a valid access token whose ``roles`` claim holds ``role``."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            if role not in get_jwt().get("roles", []):
                return bearer_error(403, "insufficient_scope", f"the {role} role is required")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def bearer_error(status, code, description):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="api", error="{code}"'
    return response


def create_app(issuer=None, audience=None, min_refresh=30.0, feed_client=None):
    """The API. ``feed_client`` is ``(client_id, client_secret)`` for the revocation feed
    (default: ``TESSERA_FEED_CLIENT_ID`` and ``TESSERA_FEED_CLIENT_SECRET``, if set)."""
    issuer = (issuer or os.environ.get("TESSERA_ISSUER", "http://127.0.0.1:8080")).rstrip("/")
    audience = audience or os.environ.get("TESSERA_AUDIENCE", issuer)
    keys = JwksCache(issuer, min_refresh=min_refresh)
    if feed_client is None and os.environ.get("TESSERA_FEED_CLIENT_ID"):
        feed_client = (
            os.environ["TESSERA_FEED_CLIENT_ID"],
            os.environ.get("TESSERA_FEED_CLIENT_SECRET", ""),
        )
    feed = RevocationFeed(issuer, *feed_client).start() if feed_client else None

    app = Flask(__name__)
    app.config.update(
        JWT_ALGORITHM="RS256",
        # Never accept another algorithm: no HS256 with the public key as secret, no `none`.
        JWT_DECODE_ALGORITHMS=["RS256"],
        JWT_DECODE_AUDIENCE=audience,
        JWT_DECODE_ISSUER=issuer,
        JWT_DECODE_LEEWAY=30,
        JWT_IDENTITY_CLAIM="sub",
        JWT_TOKEN_LOCATION=["headers"],
    )
    app.extensions["tessera_jwks"] = keys
    app.extensions["tessera_feed"] = feed
    jwt = JWTManager(app)

    if feed is not None:

        @jwt.token_in_blocklist_loader
        def is_revoked(jwt_header, jwt_payload):
            return feed.is_revoked(
                jwt_header.get("kid"), jwt_payload.get("sid"), jwt_payload.get("jti")
            )

        @jwt.revoked_token_loader
        def revoked_token(_header, _data):
            return bearer_error(401, "invalid_token", "token revoked")

    @jwt.decode_key_loader
    def decode_key(jwt_header, _jwt_data):
        key = keys.key_for(jwt_header.get("kid"))
        if key is None:
            raise JWTDecodeError("unknown signing key")
        return key

    @jwt.token_verification_loader
    def is_access_token(jwt_header, jwt_data):
        # Flask-JWT-Extended already refuses `"type": "refresh"` on these routes; the RFC 9068
        # header says the same for any verifier.
        return jwt_header.get("typ") == "at+jwt" and jwt_data.get("type") == "access"

    @jwt.invalid_token_loader
    def invalid_token(reason):
        return bearer_error(401, "invalid_token", reason)

    @jwt.unauthorized_loader
    def missing_token(reason):
        return bearer_error(401, "invalid_token", reason)

    @jwt.expired_token_loader
    def expired_token(_header, _data):
        return bearer_error(401, "invalid_token", "token expired")

    @jwt.token_verification_failed_loader
    def not_an_access_token(_header, _data):
        return bearer_error(401, "invalid_token", "not an access token")

    @jwt.needs_fresh_token_loader
    def needs_fresh_token(_header, _data):
        # RFC 9470 step-up: the client must log in again, not just refresh.
        return bearer_error(401, "insufficient_user_authentication", "a fresh login is required")

    @app.get("/api/me")
    @jwt_required()
    def me():
        claims = get_jwt()
        return jsonify(
            sub=get_jwt_identity(),
            username=claims.get("username"),
            roles=claims.get("roles", []),
            scope=claims.get("scope", ""),
            fresh=claims.get("fresh"),
        )

    @app.get("/api/admin/reports")
    @role_required("admin")
    def admin_reports():
        return jsonify(reports=[], requested_by=get_jwt_identity())

    @app.post("/api/account/delete")
    @jwt_required(fresh=True)
    def delete_account():
        return jsonify(deleted=get_jwt_identity())

    return app


if __name__ == "__main__":
    create_app().run(port=int(os.environ.get("PORT", "8081")))
