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


def create_app(issuer=None, audience=None, min_refresh=30.0):
    issuer = (issuer or os.environ.get("TESSERA_ISSUER", "http://127.0.0.1:8080")).rstrip("/")
    audience = audience or os.environ.get("TESSERA_AUDIENCE", issuer)
    keys = JwksCache(issuer, min_refresh=min_refresh)

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
    jwt = JWTManager(app)

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
